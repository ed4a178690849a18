"""Training targets and the membrane label convention (histo.segment.targets)."""

from __future__ import annotations

import numpy as np
import pytest

from histo.segment.targets import fiber_targets, median_diameter_px, membrane_labels


def _grid_labels(n=4, size=16, gap=2):
    side = n * (size + gap) + gap
    lab = np.zeros((side, side), np.int32)
    for k in range(n * n):
        y, x = gap + (k // n) * (size + gap), gap + (k % n) * (size + gap)
        lab[y:y + size, x:x + size] = k + 1
    return lab


def test_targets_touching_fibers():
    lab = np.zeros((10, 20), np.int32)
    lab[2:9, 2:9], lab[2:9, 9:16] = 1, 2  # touching squares
    fg, bd, dist = fiber_targets(lab)
    assert fg.sum() == 98
    # the shared border is boundary on both sides
    assert bd[5, 8] == 1 and bd[5, 9] == 1 and bd[5, 5] == 0
    # normalised distance peaks at 1 once per fiber, 0 outside
    assert dist[5, 5] == 1 and dist[5, 12] == 1 and dist[0].max() == 0
    assert 0 < dist[5, 8] < 0.5


def test_median_diameter_ignores_edge_fibers():
    lab = _grid_labels(n=4, size=16, gap=2)
    lab[lab == 1] = 0
    lab[0:3, 0:30] = 99  # a big edge object
    assert median_diameter_px(lab) == pytest.approx(np.sqrt(4 * 256 / np.pi))


def test_membrane_labels_split_narrow_gaps_at_the_midline():
    lab = _grid_labels(n=3, size=20, gap=4)  # 4 px endomysium everywhere, 4 px to the border
    out = membrane_labels(lab, max_gap_px=6)
    # every gap between two fibers is gone, each fiber grew by half the gap towards its neighbour
    row = out[12]  # through the first row of fibers
    assert row[24] == 1 and row[25] == 1 and row[26] == 2 and row[27] == 2
    # the fibers still never overlap, keep their own pixels, and stay one piece each
    assert np.array_equal(out[lab > 0], lab[lab > 0])
    from scipy import ndimage as ndi

    assert all(ndi.label(out == k)[1] == 1 for k in range(1, 10))
    # the image border (no fiber beyond it) keeps its gap
    assert (out[:3] == 0).all() and (out[:, :3] == 0).all()


def test_membrane_labels_keep_wide_interstitium():
    lab = np.zeros((40, 60), np.int32)
    lab[5:35, 5:25], lab[5:35, 40:55] = 1, 2  # 15 px apart
    out = membrane_labels(lab, max_gap_px=6)
    assert np.array_equal(out, lab)
    assert np.array_equal(membrane_labels(lab, 0), lab)


def test_size_weights_favour_small_fibers():
    from histo.segment.targets import size_weights

    lab = _grid_labels(n=3, size=20, gap=2)
    lab[lab == 5] = 0
    lab[30:35, 30:35] = 5  # one small fiber (25 px against 400)
    w = size_weights(lab, max_weight=3.0)
    assert w[lab == 1].max() == 1.0 and w[lab == 0].max() == 1.0
    assert np.allclose(w[lab == 5], 3.0)  # sqrt(400 / 25) = 4, capped at 3
    assert np.allclose(size_weights(lab, max_weight=1.0), 1.0)
