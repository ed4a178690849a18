"""Tests of histo.measure.feret: rotating calipers, the pixel-edge-midpoint convention, Pick's area."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from histo.measure._ragged import offsets_from_lengths
from histo.measure.feret import (
    caliper_widths,
    calipers,
    convex_hull_xy,
    feret_diameters_batch,
    feret_diameters_px,
    lattice_area_px,
    lattice_areas_px,
)

RNG = np.random.default_rng(7)


def _points(mask: np.ndarray) -> np.ndarray:
    y, x = np.nonzero(mask)
    return np.column_stack([x, y])


def _disk(r: float, centre=(0.0, 0.0)) -> np.ndarray:
    n = int(np.ceil(r)) + 2
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r


def _rotated_square(s: float, angle_deg: float, offset) -> np.ndarray:
    h = s / 2
    v = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    v = v @ rot.T + offset
    n = int(np.ceil(s)) + 2
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    inside = MplPath(v).contains_points(np.column_stack([xx.ravel(), yy.ravel()]))
    return inside.reshape(xx.shape)


def _brute_widths(poly: np.ndarray) -> tuple[float, float]:
    theta = np.linspace(0, np.pi, 20000, endpoint=False)
    proj = poly @ np.vstack([np.cos(theta), np.sin(theta)])
    widths = proj.max(axis=0) - proj.min(axis=0)
    d = poly[:, None, :] - poly[None, :, :]
    return widths.min(), np.sqrt((d ** 2).sum(-1)).max()


def test_calipers_rectangle_exact():
    assert calipers(np.array([[0, 0], [4, 0], [4, 3], [0, 3]], float)) == (3.0, 5.0)
    # clockwise order gives the same answer
    assert calipers(np.array([[0, 0], [0, 3], [4, 3], [4, 0]], float)) == (3.0, 5.0)


@pytest.mark.parametrize("seed", range(8))
def test_calipers_match_brute_force_on_random_hulls(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(rng.integers(3, 60), 2)) * rng.uniform(1, 50, size=2)
    hull = convex_hull_xy(np.round(pts * 3))
    if len(hull) < 3:
        pytest.skip("degenerate draw")
    got = calipers(hull.astype(float))
    want = _brute_widths(hull.astype(float))
    assert got[0] == pytest.approx(want[0], rel=1e-3, abs=1e-6)
    assert got[1] == pytest.approx(want[1], rel=1e-12)


def test_calipers_degenerate():
    assert calipers(np.array([[2.0, 3.0]])) == (0.0, 0.0)
    assert calipers(np.array([[0.0, 0.0], [3.0, 4.0]])) == (0.0, 5.0)
    assert calipers(np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 3.0]])) == (0.0, pytest.approx(np.sqrt(18)))


def test_single_pixel_and_line():
    assert feret_diameters_px(np.array([[0, 0]])) == pytest.approx((np.sqrt(0.5), 1.0))
    dmin, dmax = feret_diameters_px(convex_hull_xy(np.array([[x, 0] for x in range(10)])))
    assert dmin == pytest.approx(1.0)  # one pixel thick
    assert dmax == pytest.approx(10.0)


@pytest.mark.parametrize("r", [3.0, 4.5, 7.0, 10.3, 16.0, 25.5, 40.0])
def test_disk_min_feret_is_2r_within_a_pixel(r):
    for _ in range(4):
        mask = _disk(r, RNG.random(2) - 0.5)
        dmin, dmax = feret_diameters_px(convex_hull_xy(_points(mask)))
        assert abs(dmin - 2 * r) <= 1.0
        assert 2 * r - 0.5 <= dmax <= 2 * r + 1.0


@pytest.mark.parametrize("s", [6, 11, 20, 33, 50])
@pytest.mark.parametrize("angle", [0, 10, 22.5, 30, 45, 63, 80])
def test_square_min_feret_is_side_at_any_rotation(s, angle):
    mask = _rotated_square(s, angle, RNG.random(2) - 0.5)
    dmin, dmax = feret_diameters_px(convex_hull_xy(_points(mask)))
    assert abs(dmin - s) <= 1.0
    assert abs(dmax - s * np.sqrt(2)) <= 1.8


def test_axis_aligned_square_is_exact():
    mask = np.ones((12, 12), bool)
    dmin, _ = feret_diameters_px(convex_hull_xy(_points(mask)))
    assert dmin == 12.0


@pytest.mark.parametrize("seed", range(6))
def test_pixel_outline_equals_explicit_edge_midpoint_hull(seed):
    """The analytic Minkowski sum matches calipers on the hull of the pixel-edge midpoints."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 12 + 10 * seed, size=(rng.integers(1, 30), 2))
    hull = convex_hull_xy(pts)
    mids = (hull[:, None, :] + np.array([[0.5, 0], [0, 0.5], [-0.5, 0], [0, -0.5]])).reshape(-1, 2)
    want = _brute_widths(mids)
    got = feret_diameters_px(hull)
    assert got[0] == pytest.approx(want[0], rel=1e-3, abs=1e-3)
    assert got[1] == pytest.approx(want[1], rel=1e-12)


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(9)
    hulls = [convex_hull_xy(rng.integers(0, 40, size=(rng.integers(1, 40), 2))) for _ in range(30)]
    offsets = offsets_from_lengths([len(h) for h in hulls])
    stacked = np.concatenate(hulls)
    lo, hi = feret_diameters_batch(stacked, offsets)
    areas = lattice_areas_px(stacked, offsets)
    for i, h in enumerate(hulls):
        assert (lo[i], hi[i]) == pytest.approx(feret_diameters_px(h))
        assert areas[i] == lattice_area_px(h)
    # clockwise input is handled
    flipped = np.concatenate([h[::-1] for h in hulls])
    lo2, hi2 = caliper_widths(flipped, offsets, pixel_outline=True)
    np.testing.assert_allclose(lo2, lo)
    np.testing.assert_allclose(hi2, hi)


@pytest.mark.parametrize("seed", range(5))
def test_lattice_area_counts_pixels_in_hull(seed):
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 30, size=(rng.integers(1, 25), 2))
    hull = convex_hull_xy(pts)
    yy, xx = np.mgrid[-1:32, -1:32]
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    if len(hull) >= 3:
        inside = MplPath(hull.astype(float)).contains_points(grid, radius=1e-9) | \
            MplPath(hull.astype(float)).contains_points(grid, radius=-1e-9)
        want = int(inside.sum())
    else:  # point or segment: lattice points on it
        want = 1 if len(hull) == 1 else int(np.gcd(*np.abs(hull[1] - hull[0]))) + 1
    assert lattice_area_px(hull) == want


def test_digitised_disk_is_digitally_convex():
    mask = _disk(12.3, (0.2, -0.1))
    assert lattice_area_px(convex_hull_xy(_points(mask))) == mask.sum()


@pytest.mark.parametrize("module", ["histo.measure.feret"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
