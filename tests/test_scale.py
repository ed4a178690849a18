"""Canonical scale: factors, resizing, the scale-equivariance diameter search."""

from __future__ import annotations

import numpy as np
import pytest

from histo.segment.scale import (
    central_crop,
    estimate_diameter,
    factor_from_diameter,
    factor_from_pixel_size,
    rescale,
    scaled_shape,
)


def test_factors():
    assert factor_from_pixel_size(0.9224, canonical_pixel_size_um=1.5) == pytest.approx(0.61493, rel=1e-4)
    assert factor_from_diameter(64, canonical_diameter_px=32) == 0.5
    with pytest.raises(ValueError):
        factor_from_pixel_size(0, canonical_pixel_size_um=1.5)
    with pytest.raises(ValueError):
        factor_from_diameter(-3, canonical_diameter_px=32)


def test_scaled_shape_and_crop():
    assert scaled_shape((1002, 1002), 0.32) == (321, 321)
    assert scaled_shape((3, 5), 0.01) == (1, 1)
    assert central_crop((10, 20), 4) == (slice(3, 7), slice(8, 12))
    assert central_crop((10, 20), 50) == (slice(0, 10), slice(0, 20))


def test_rescale_labels_keeps_values_and_area():
    lab = np.zeros((40, 40), np.int32)
    lab[5:25, 10:30] = 7
    up = rescale(lab, (80, 80), labels=True)
    assert set(np.unique(up)) == {0, 7}
    assert (up == 7).sum() == 4 * (lab == 7).sum()
    down = rescale(up, (40, 40), labels=True)
    assert np.array_equal(down, lab)


def test_rescale_image_mean_and_channels():
    img = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    small = rescale(img, (32, 24))
    assert small.shape == (32, 24, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(img.mean())) < 1.0
    grey = rescale(img[..., 0].astype(np.float64), (128, 96))
    assert grey.shape == (128, 96) and grey.dtype == np.float32


@pytest.mark.parametrize("true_px", [20.0, 55.0, 140.0, 300.0])
def test_estimate_diameter_picks_the_most_consistent_scale(true_px):
    # a segmenter exact for fibers 16-64 canonical px, most sure of itself near 32 px,
    # that returns its own prior (32 px, with a poor score) outside its range
    def measure(factor):
        m = true_px * factor
        if 16 <= m <= 64:
            return m, 0.05 + abs(np.log(m / 32))
        return 32.0, 2.0

    est = estimate_diameter(measure, canonical_diameter_px=32.0)
    assert est == pytest.approx(true_px, rel=1e-6)


def test_estimate_diameter_ignores_failed_scales():
    calls = []

    def measure(factor):
        calls.append(factor)
        return None if factor > 1 else (100.0 * factor, 0.1)

    assert estimate_diameter(measure, canonical_diameter_px=32.0) == pytest.approx(100.0)
    assert len(calls) == 12  # 11 candidates + 1 refinement


def test_estimate_diameter_without_fibers():
    from histo.errors import HistoInputError

    with pytest.raises(HistoInputError, match="no fibers found at any scale"):
        estimate_diameter(lambda f: None, canonical_diameter_px=32.0)
