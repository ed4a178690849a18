"""Label images <-> polygons: exact pixel-edge outlines and centre-sampled rasterisation."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy import ndimage as ndi
from skimage.draw import polygon as sk_polygon

from histo.io.polygons import label_polygons, polygons_to_labels, rasterize_rings, ring_area


def voronoi_labels(shape, n, seed):
    """Discrete Voronoi cells: 4-connected regions without holes, with a known answer."""
    rng = np.random.default_rng(seed)
    seeds = rng.random((n, 2)) * shape
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    lab = (np.argmin(d, axis=-1) + 1).astype(np.uint32)
    # discrete cells can have diagonal-only pixels; keep each cell's main 4-connected piece
    for value in range(1, n + 1):
        pieces, k = ndi.label(lab == value)
        if k > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            lab[(pieces > 0) & (pieces != 1 + np.argmax(sizes))] = 0
    return lab


def test_single_pixel_outline_is_its_unit_square():
    lab = np.zeros((5, 6), np.uint16)
    lab[2, 3] = 9
    ring = label_polygons(lab)[9]
    assert ring.tolist() == [[3, 2], [4, 2], [4, 3], [3, 3]]  # (x, y) corners of pixel row 2, col 3
    assert ring_area(ring) == 1.0


def test_l_shape_keeps_only_corners_and_area():
    lab = np.zeros((6, 6), np.uint8)
    lab[1:5, 1:3] = 1
    lab[3:5, 3:5] = 1
    ring = label_polygons(lab)[1]
    assert len(ring) == 6
    assert ring_area(ring) == lab.sum()
    assert np.array_equal(polygons_to_labels({1: ring}, lab.shape), lab.astype(np.uint32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voronoi_roundtrip_is_exact(seed):
    lab = voronoi_labels((80, 90), 25, seed)
    lab[lab == 5] = 0  # a background gap
    rings = label_polygons(lab)
    assert sorted(rings) == sorted(set(np.unique(lab)) - {0})
    back = polygons_to_labels(rings, lab.shape)
    assert np.array_equal(back, lab)
    for label, ring in rings.items():
        assert ring_area(ring) == pytest.approx((lab == label).sum())
        assert shapely.Polygon(ring).is_valid


def test_hole_is_filled_and_outer_contour_returned():
    lab = np.zeros((9, 9), np.uint32)
    lab[1:8, 1:8] = 2
    lab[3:6, 3:6] = 0
    ring = label_polygons(lab)[2]
    assert ring_area(ring) == 49
    back = polygons_to_labels({2: ring}, lab.shape)
    assert np.array_equal(back > 0, ndi.binary_fill_holes(lab > 0))


def test_corner_touching_pixels_give_a_valid_simple_polygon():
    # a ring of pixels missing one corner pixel: its two ends touch only at a pixel corner,
    # which the outline passes twice; it must cut that corner instead of touching itself
    lab = np.zeros((5, 5), np.uint8)
    for y, x in [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (2, 1)]:
        lab[y, x] = 1
    ring = label_polygons(lab)[1]
    assert shapely.Polygon(ring).is_valid
    assert not any((ring == v).all(axis=1).sum() > 1 for v in ring)
    back = polygons_to_labels({1: ring}, lab.shape)
    assert np.array_equal(back, lab.astype(np.uint32))


def test_diagonal_only_piece_is_dropped_with_largest_piece_kept():
    lab = np.zeros((6, 6), np.uint8)
    lab[1:3, 1:3] = 4
    lab[3, 3] = 4  # 8-connected only
    ring = label_polygons(lab)[4]
    assert ring_area(ring) == 4


def test_large_label_ids_use_compact_path():
    lab = np.zeros((10, 10), np.uint32)
    lab[1:4, 1:4] = 4_000_000_000
    lab[5:9, 5:9] = 3
    rings = label_polygons(lab)
    assert sorted(rings) == [3, 4_000_000_000]
    assert np.array_equal(polygons_to_labels(rings, lab.shape), lab)


def test_rasterize_matches_skimage_on_random_star_polygons():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = rng.integers(5, 15)
        t = np.sort(rng.random(n)) * 2 * np.pi
        r = 5 + 10 * rng.random(n)
        ring = np.stack([20 + r * np.cos(t), 20 + r * np.sin(t)], axis=1)
        rr, cc = rasterize_rings(ring, (40, 40))
        mine = np.zeros((40, 40), bool)
        mine[rr, cc] = True
        ref = np.zeros((40, 40), bool)
        # skimage tests integer points = pixel centres; corner convention shifts by half a pixel
        ref[sk_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, (40, 40))] = True
        assert np.array_equal(mine, ref)


def test_even_odd_hole_and_clipping():
    outer = np.array([[-2, -2], [6, -2], [6, 6], [-2, 6]], float)
    inner = np.array([[1, 1], [3, 1], [3, 3], [1, 3]], float)
    out = polygons_to_labels({1: [outer, inner]}, (5, 5))
    expected = np.ones((5, 5), np.uint32)
    expected[1:3, 1:3] = 0
    assert np.array_equal(out, expected)


def test_later_polygons_win_and_list_of_pairs_accepted():
    a = np.array([[0, 0], [3, 0], [3, 3], [0, 3]])
    b = [[2, 2], [4, 2], [4, 4], [2, 4]]  # plain list of (x, y)
    out = polygons_to_labels([(1, a), (2, b)], (4, 4))
    assert out[2, 2] == 2 and out[0, 0] == 1 and out[3, 3] == 2


def test_degenerate_rings_are_ignored():
    rr, cc = rasterize_rings([np.array([[0, 0], [3, 0]])], (4, 4))
    assert rr.size == cc.size == 0
    flat = np.array([[0, 1], [4, 1], [2, 1]])  # zero area
    assert rasterize_rings(flat, (4, 4))[0].size == 0


def test_rejects_non_integer_labels():
    with pytest.raises(ValueError, match="2-D integer"):
        label_polygons(np.zeros((3, 3), float))
