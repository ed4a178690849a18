"""Tests of histo.measure.adjacency: the fiber neighbour graph."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.measure import adjacency
from histo.measure.adjacency import degree, fiber_adjacency, gap_in_pixels, grow_labels


def _pairs(edges) -> set[tuple[int, int]]:
    return {tuple(map(int, e)) for e in edges}


def _random_cells(shape=(90, 110), n=40, wall=2, seed=0) -> np.ndarray:
    """Voronoi-like cells separated by walls ``2 * wall - 1`` px thick, plus speckle holes."""
    rng = np.random.default_rng(seed)
    markers = np.zeros(shape, np.int32)
    pts = rng.integers(0, shape, size=(n, 2))
    markers[pts[:, 0], pts[:, 1]] = np.arange(1, n + 1)
    _, (iy, ix) = ndi.distance_transform_edt(markers == 0, return_indices=True)
    cells = markers[iy, ix]
    border = np.zeros(shape, bool)
    border[:, 1:] |= cells[:, 1:] != cells[:, :-1]
    border[1:, :] |= cells[1:, :] != cells[:-1, :]
    if wall > 1:
        border = ndi.binary_dilation(border, iterations=wall - 1)
    cells[border] = 0
    cells[rng.random(shape) < 0.02] = 0  # speckle
    return cells


def _true_gaps(labels: np.ndarray) -> dict[tuple[int, int], float]:
    """Smallest centre-to-centre distance minus one between every pair of labels."""
    ids = np.unique(labels[labels > 0])
    coords = {i: np.argwhere(labels == i).astype(float) for i in ids}
    out = {}
    for a_i, a in enumerate(ids):
        for b in ids[a_i + 1:]:
            d = np.sqrt(((coords[a][:, None, :] - coords[b][None, :, :]) ** 2).sum(-1)).min()
            out[(int(a), int(b))] = d - 1
    return out


def test_docstring_row():
    lab = np.array([[1, 1, 0, 2, 2, 0, 0, 0, 3]])
    assert fiber_adjacency(lab, max_gap_px=0).tolist() == []
    assert fiber_adjacency(lab, max_gap_px=1).tolist() == [[1, 2]]
    assert fiber_adjacency(lab, max_gap_px=2).tolist() == [[1, 2]]
    assert fiber_adjacency(lab, max_gap_px=3).tolist() == [[1, 2], [2, 3]]


def test_shared_border_and_diagonal_contact():
    lab = np.zeros((6, 6), np.int32)
    lab[0:3, 0:3] = 5
    lab[0:3, 3:6] = 9  # shares a border with 5
    lab[3:6, 0:3] = 0
    lab[3, 3] = 2  # touches 5 only at a corner
    assert _pairs(fiber_adjacency(lab, max_gap_px=0)) == {(5, 9), (2, 9)}
    assert _pairs(fiber_adjacency(lab, max_gap_px=1)) == {(5, 9), (2, 9), (2, 5)}


def test_gap_along_rows_columns_and_diagonals():
    lab = np.zeros((20, 20), np.int32)
    lab[2, 2] = 1
    lab[2, 6] = 2  # 3 px to the right of 1
    lab[6, 6] = 3  # 3 px below 2
    lab[10, 10] = 4  # diagonal from 3: centre distance 4 sqrt 2, gap 4.66
    assert _pairs(fiber_adjacency(lab, max_gap_px=2)) == set()
    assert _pairs(fiber_adjacency(lab, max_gap_px=3)) == {(1, 2), (2, 3)}
    assert _pairs(fiber_adjacency(lab, max_gap_px=4.6)) == {(1, 2), (2, 3)}
    assert _pairs(fiber_adjacency(lab, max_gap_px=4.7)) >= {(3, 4)}


def test_a_fiber_in_between_blocks():
    lab = np.zeros((10, 30), np.int32)
    lab[:, 0:10] = 1
    lab[:, 11:13] = 2  # thin fiber between 1 and 3
    lab[:, 14:24] = 3
    assert _pairs(fiber_adjacency(lab, max_gap_px=6)) == {(1, 2), (2, 3)}


def test_nearest_fiber_wins_in_the_gap():
    lab = np.zeros((3, 30), np.int32)
    lab[1, 0:5] = 1
    lab[1, 9] = 2  # a one-pixel fiber 4 px from 1
    lab[1, 14:20] = 3  # 4 px from 2, 13 px from 1
    assert _pairs(fiber_adjacency(lab, max_gap_px=4)) == {(1, 2), (2, 3)}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("gap", [0, 1, 2, 3, 5])
def test_edges_are_sound_and_touching_fibers_found(seed, gap):
    lab = _random_cells(wall=1 + seed, seed=seed)
    edges = _pairs(fiber_adjacency(lab, max_gap_px=gap))
    true = _true_gaps(lab)
    # every edge really is within the gap (the path gap is never below the true gap)
    assert all(true[e] <= gap + 1e-6 for e in edges)
    # every pair closer than the gap with nothing but background between is found: check
    # pairs whose closest pixels are so close that no third fiber can sit between them
    must = {e for e, g in true.items() if g <= min(gap, 0.5)}
    assert must <= edges
    # more gap, more edges
    assert edges <= _pairs(fiber_adjacency(lab, max_gap_px=gap + 2))


def test_cells_with_walls_become_neighbours_at_the_wall_width():
    lab = _random_cells(wall=3, seed=4)  # walls 5 px thick
    n_tight = len(fiber_adjacency(lab, max_gap_px=2))
    n_wall = len(fiber_adjacency(lab, max_gap_px=6))
    assert n_wall > 2 * max(n_tight, 1)
    # a Voronoi tessellation: on average 4-6 neighbours
    deg = degree(fiber_adjacency(lab, max_gap_px=6), np.unique(lab[lab > 0]))
    assert 3.5 < deg.mean() < 7


def test_opencv_and_scipy_paths_agree(monkeypatch):
    lab = np.zeros((60, 80), np.int32)
    rng = np.random.default_rng(3)
    for i in range(1, 25):  # axis-aligned boxes: distances exact in both transforms
        y, x = rng.integers(0, 55), rng.integers(0, 75)
        lab[y:y + rng.integers(2, 8), x:x + rng.integers(2, 8)] = i
    fast = fiber_adjacency(lab, max_gap_px=3)
    monkeypatch.setattr(adjacency, "_nearest_fiber_pixel_labels", lambda *a: None)
    slow = fiber_adjacency(lab, max_gap_px=3)
    assert _pairs(fast) == _pairs(slow)
    assert len(fast) > 5


def test_grow_labels_matches_skimage_expand_labels():
    from skimage.segmentation import expand_labels

    lab = _random_cells(wall=3, seed=5)
    grown, dist = grow_labels(lab, 1.0)
    want = expand_labels(lab, 1.0)
    assert (grown == want).mean() > 0.995  # ties may break differently
    assert (dist[lab > 0] == 0).all()


def test_output_format_and_edge_cases():
    lab = np.zeros((5, 5), np.uint16)
    assert fiber_adjacency(lab).shape == (0, 2)
    assert fiber_adjacency(np.zeros((0, 0), np.int32)).shape == (0, 2)
    full = np.ones((4, 4), np.int32)
    full[:, 2:] = 7
    e = fiber_adjacency(full)
    assert e.dtype == np.int64 and e.tolist() == [[1, 7]]
    big = np.zeros((4, 9), np.int64)
    big[:, :3], big[:, 4:6], big[:, 7:] = 2**40, 3, 2**33
    assert fiber_adjacency(big, max_gap_px=1).tolist() == [[3, 2**33], [3, 2**40]]


def test_pairs_sorted_and_unique():
    lab = _random_cells(seed=6)
    e = fiber_adjacency(lab, max_gap_px=3)
    assert (e[:, 0] < e[:, 1]).all()
    assert len(np.unique(e, axis=0)) == len(e)
    order = np.lexsort((e[:, 1], e[:, 0]))
    assert (order == np.arange(len(e))).all()


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 3, 3), np.int32), "2-D"),
    (np.zeros((3, 3), float), "integer"),
    (-np.ones((3, 3), np.int32), "negative"),
])
def test_bad_input(bad, match):
    with pytest.raises(HistoInputError, match=match):
        fiber_adjacency(bad)


def test_bad_gap():
    with pytest.raises(HistoInputError, match="max_gap_px"):
        fiber_adjacency(np.ones((3, 3), np.int32), max_gap_px=-1)


def test_degree_and_gap_in_pixels():
    assert degree(np.array([[1, 2], [2, 3]]), np.array([3, 1, 2, 9])).tolist() == [1, 1, 2, 0]
    assert degree(np.empty((0, 2)), np.array([1, 2])).tolist() == [0, 0]
    assert gap_in_pixels(3.0, 0.5) == 6
    assert gap_in_pixels(3.0, 10.0) == 1
    assert gap_in_pixels(3.0, None) == 3
    assert gap_in_pixels(3.0, None, default_px=5) == 5


@pytest.mark.parametrize("module", ["histo.measure.adjacency"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
