"""From maps to labels: the seeded watershed and the smooth upsampling of labels (histo.segment.postprocess)."""

from __future__ import annotations

import numpy as np

from histo.segment.postprocess import drop_small, maps_to_labels, upsample_labels


def _disk_maps(shape, centres, radius):
    """Ideal network maps for touching disks: foreground, boundary, normalised distance."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    nearest = d.argmin(0)
    dist_own = d.min(0)
    fg = dist_own < radius
    second = np.sort(d, 0)[1] if len(centres) > 1 else np.full(shape, np.inf)
    edge = np.minimum(radius - dist_own, (second - dist_own) / 2)
    norm = np.clip(edge / radius, 0, 1) * fg
    bd = fg & (edge < 1.5)
    return np.stack([fg, bd, norm]).astype(np.float32), nearest + 1, fg


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_maps_to_labels_separates_touching_fibers():
    maps, nearest, fg = _disk_maps((60, 100), [(30, 25), (30, 55), (30, 85)], radius=16)
    labels = maps_to_labels(maps, min_area_px=20)
    assert labels.max() == 3
    for k in (1, 2, 3):
        truth = (nearest == k) & fg
        best = np.bincount(labels[truth]).argmax()
        assert _iou(labels == best, truth) > 0.9


def test_maps_to_labels_drops_specks_and_empty():
    maps = np.zeros((3, 30, 30), np.float32)
    assert maps_to_labels(maps).max() == 0
    maps[0, 5:8, 5:8] = maps[2, 5:8, 5:8] = 1  # 9 px object
    assert maps_to_labels(maps, min_area_px=20).max() == 0
    assert maps_to_labels(maps, min_area_px=5).max() == 1


def test_drop_small_renumbers():
    lab = np.array([[0, 4, 4, 4, 9, 2, 2]])
    assert drop_small(lab, 2).tolist() == [[0, 2, 2, 2, 0, 1, 1]]
    assert drop_small(np.array([[1, 2, 2]]), 1).tolist() == [[1, 2, 2]]


def test_upsample_labels_smooth_outlines_close_to_the_fine_truth():
    """Two touching disks segmented on a 4x coarser grid come back close to the fine truth."""
    fine_maps, nearest, fg = _disk_maps((240, 400), [(120, 100), (120, 230)], radius=64)
    truth = np.where(fg, nearest, 0)
    coarse = np.stack([m.reshape(60, 4, 100, 4).mean((1, 3)) for m in fine_maps])  # area average
    lab_c = maps_to_labels(coarse, fg_threshold=0.5, seed_threshold=0.3, min_area_px=10)
    up = upsample_labels(lab_c, coarse[0], truth.shape, fg_threshold=0.5, scale=0.25)
    nearest_up = np.repeat(np.repeat(lab_c, 4, 0), 4, 1)
    for k in (1, 2):
        t = truth == k
        best = np.bincount(up[t]).argmax()
        best_n = np.bincount(nearest_up[t]).argmax()
        assert _iou(up == best, t) > 0.97
        assert _iou(up == best, t) > _iou(nearest_up == best_n, t)  # better than blocks
    # the outline follows the circle row by row, without a staircase of 4 px steps
    width_up = (up == up[120, 100]).sum(1)
    width_truth = (truth == 1).sum(1)
    width_blocks = (nearest_up == nearest_up[120, 100]).sum(1)
    assert np.abs(width_up - width_truth).max() <= 3
    assert np.abs(width_up - width_truth).mean() < np.abs(width_blocks - width_truth).mean()


def test_upsample_labels_partial_output_and_threshold():
    lab = np.zeros((8, 8), np.int32)
    lab[2:6, 2:6] = 3
    fg = (lab > 0).astype(np.float32)
    out = upsample_labels(lab, fg, (20, 30), fg_threshold=0.5, scale=0.25)  # less than the 32 x 32 grid
    assert out.shape == (20, 30) and set(np.unique(out)) == {0, 3}
    assert out[12, 12] == 3 and out[2, 2] == 0
    assert upsample_labels(lab, fg * 0.4, (32, 32), fg_threshold=0.5).max() == 0
