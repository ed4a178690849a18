"""Tests of histo.segment.classical, the no-model baseline segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from skimage.segmentation import find_boundaries

from histo.errors import HistoInputError
from histo.segment.classical import estimate_fiber_diameter, interior_map, segment_classical
from histo.train.evaluate import match_labels


def _tessellation(shape=(400, 400), spacing=60, border_px=3, seed=0):
    """Jittered-grid Voronoi 'fibers' (convex polygons) separated by borders of ~border_px."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[spacing // 2:shape[0]:spacing, spacing // 2:shape[1]:spacing]
    pts = np.stack([ys.ravel(), xs.ravel()], 1) + rng.uniform(-spacing / 5, spacing / 5, (ys.size, 2))
    grid = np.stack(np.mgrid[:shape[0], :shape[1]], -1).reshape(-1, 2)
    cells = cKDTree(pts).query(grid)[1].reshape(shape) + 1
    border = find_boundaries(cells, mode="thick")  # 2 px wide
    if border_px >= 4:
        from scipy import ndimage as ndi

        border = ndi.binary_dilation(border, iterations=(border_px - 2) // 2)
    out = np.where(border, 0, cells).astype(np.uint32)
    assert out.max() == len(pts) and (out > 0).mean() > 0.7
    return out


def _render_he(truth, seed=0):
    """Pink fibers, white endomysium, a few dark nuclei at fiber edges, noise."""
    rng = np.random.default_rng(seed)
    img = np.empty(truth.shape + (3,), np.float32)
    img[:] = (245, 238, 244)
    shade = rng.uniform(0.85, 1.1, truth.max() + 1)
    pink = np.array([225, 120, 170], np.float32)
    fib = truth > 0
    img[fib] = pink * shade[truth[fib], None]
    edge = find_boundaries(truth, mode="inner") & fib
    ys, xs = np.nonzero(edge)
    for i in rng.choice(len(ys), size=min(len(ys), 40), replace=False):
        y, x = ys[i], xs[i]
        img[max(0, y - 3):y + 3, max(0, x - 3):x + 3] = (110, 60, 140)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _render_membrane(truth, seed=0):
    """Immunofluorescence-like membrane channel: bright borders, dark interiors (uint16)."""
    rng = np.random.default_rng(seed)
    img = np.where(truth > 0, 300.0, 2500.0) + rng.normal(0, 80, truth.shape)
    return np.clip(img, 0, 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def truth():
    return _tessellation()


def test_brightfield_he_tessellation_is_found(truth):
    labels = segment_classical(_render_he(truth), stain="he", fiber_diameter_px=60)
    assert labels.dtype == np.uint32 and labels.shape == truth.shape
    assert set(np.unique(labels)) == set(range(int(labels.max()) + 1))  # consecutive
    r = match_labels(labels, truth, thresholds=[0.5, 0.75], min_feret=False)
    assert r.n_gt == truth.max() > 30
    assert r.f1[0] >= 0.95
    assert r.f1[1] >= 0.9


def test_auto_stain_is_guessed(truth):
    labels = segment_classical(_render_he(truth), stain="auto", fiber_diameter_px=60)
    assert match_labels(labels, truth, thresholds=[0.5], min_feret=False).f1[0] >= 0.95


def test_membrane_channel_of_multichannel_image(truth):
    membrane = _render_membrane(truth)
    noise = np.random.default_rng(3).integers(0, 4095, truth.shape).astype(np.uint16)
    cyx = np.stack([noise, membrane, noise])
    labels = segment_classical(cyx, stain="if", channel=1, fiber_diameter_px=60)
    r = match_labels(labels, truth, thresholds=[0.5], min_feret=False)
    assert r.f1[0] >= 0.95


def test_diameter_is_estimated_when_not_given(truth):
    img = _render_he(truth)
    eq_diameter = 2 * np.sqrt(np.median(np.bincount(truth.ravel())[1:]) / np.pi)
    d = estimate_fiber_diameter(img, stain="he")
    assert 0.75 * eq_diameter < d < 1.3 * eq_diameter
    r = match_labels(segment_classical(img, stain="he"), truth, thresholds=[0.5], min_feret=False)
    assert r.f1[0] >= 0.9


@pytest.mark.parametrize("diameter", [24, 90])
def test_diameter_estimate_scales_with_disks(diameter):
    yy, xx = np.mgrid[:600, :600]
    step = int(diameter * 1.25)
    img = np.zeros((600, 600), np.float32)
    for cy in range(step // 2, 600 - step // 2, step):
        for cx in range(step // 2, 600 - step // 2, step):
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= (diameter / 2) ** 2] = 1.0
    d = estimate_fiber_diameter(1.0 - img, stain="if")
    assert 0.8 * diameter < d < 1.25 * diameter


def test_large_fibers_are_processed_at_a_reduced_scale():
    truth = _tessellation((800, 800), spacing=240, border_px=6, seed=2)
    labels = segment_classical(_render_membrane(truth), stain="if", fiber_diameter_px=240)
    assert labels.shape == truth.shape
    r = match_labels(labels, truth, thresholds=[0.5], min_feret=False)
    assert r.f1[0] >= 0.9


def test_grey_and_psr_inputs_run(truth):
    grey = np.where(truth > 0, 120, 235).astype(np.uint8)  # e.g. an ATPase scan: dark fibers
    labels = segment_classical(grey, stain="atpase", fiber_diameter_px=60)
    assert match_labels(labels, truth, thresholds=[0.5], min_feret=False).f1[0] >= 0.9
    psr = np.empty(truth.shape + (3,), np.uint8)
    psr[:] = (200, 30, 40)                  # red collagen
    psr[truth > 0] = (235, 225, 150)        # pale yellow fibers
    labels = segment_classical(psr, stain="psr", fiber_diameter_px=60)
    assert match_labels(labels, truth, thresholds=[0.5], min_feret=False).f1[0] >= 0.9


def test_interior_map_is_high_inside_fibers(truth):
    f = interior_map(_render_he(truth), stain="he")
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1
    assert np.median(f[truth > 0]) > np.median(f[truth == 0]) + 0.5


def test_blank_image_gives_no_fibers_or_a_clear_error():
    blank = np.full((64, 64, 3), 240, np.uint8)
    with pytest.raises(HistoInputError):
        estimate_fiber_diameter(blank, stain="he")
    labels = segment_classical(blank, stain="he", fiber_diameter_px=20)
    assert labels.max() == 0


@pytest.mark.parametrize(
    "image, kwargs",
    [
        (np.zeros((64, 64, 3), np.uint8), {"stain": "xyz"}),
        (np.zeros((3, 64, 64), np.uint16), {"stain": "if"}),               # channel missing
        (np.zeros((3, 64, 64), np.uint16), {"stain": "if", "channel": 5}),  # out of range
        (np.zeros((4, 64, 64), np.uint16), {"stain": "he"}),                # 4-channel brightfield
        (np.zeros((8, 8), np.uint8), {"stain": "he", "fiber_diameter_px": 10}),
        (np.zeros((64, 64), np.uint8), {"stain": "he", "fiber_diameter_px": 1}),
        (np.zeros((2, 3, 4, 5)), {"stain": "he"}),
    ],
)
def test_bad_inputs_raise_histo_input_error(image, kwargs):
    with pytest.raises(HistoInputError):
        segment_classical(image, **kwargs)


def test_real_he_reference(real_data):
    import tifffile
    from PIL import Image

    img = tifffile.imread(real_data / "he" / "cn_img01.tif")
    gt = np.array(Image.open(real_data / "he" / "cn_img01_labels.png"))
    r = match_labels(segment_classical(img, stain="he", fiber_diameter_px=100), gt, thresholds=[0.5])
    # measured 0.93 (benchmarks/bench_classical.py); the margin catches regressions, not noise
    assert r.f1[0] >= 0.88
    assert abs(r.min_feret.median_rel_error) < 0.1


def test_real_if_reference_through_read_image(real_data):
    import tifffile

    from histo.io.image import read_image

    image = read_image(real_data / "if" / "fs_rat.tif")
    gt = tifffile.imread(real_data / "if" / "fs_rat_labels.tif")
    labels = segment_classical(image, stain="if", channel=3)
    r = match_labels(labels, gt, thresholds=[0.5], min_feret=False)
    assert r.f1[0] >= 0.72  # measured 0.78 against a Cellpose-made reference
