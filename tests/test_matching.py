"""Tests of histo.train.matching: relabelling, the IoU contingency table, one-to-one matching."""

from __future__ import annotations

import numpy as np
import pytest

from histo.errors import HistoInputError
from histo.io.labels import relabel_consecutive, touches_edge
from histo.train import matching
from histo.train.matching import (
    check_label_image,
    counted_objects,
    detection_scores,
    label_overlap,
    match_pairs,
)


def test_relabel_small_and_huge_label_values_agree():
    arr = np.array([[0, 5, 5], [9, 0, 2]], np.int64)
    ids, idx = relabel_consecutive(arr)
    assert ids.tolist() == [2, 5, 9] and idx.tolist() == [[0, 2, 2], [3, 0, 1]]
    huge = np.where(arr > 0, arr + 10**12, 0)          # beyond the look-up table: np.unique path
    ids_h, idx_h = relabel_consecutive(huge)
    assert ids_h.tolist() == [2 + 10**12, 5 + 10**12, 9 + 10**12]
    assert np.array_equal(idx_h, idx)
    no_background = np.full((2, 2), 10**9)
    ids_n, idx_n = relabel_consecutive(no_background)
    assert ids_n.tolist() == [10**9] and idx_n.tolist() == [[1, 1], [1, 1]]


def test_touches_edge_marks_objects_on_any_face():
    idx = np.zeros((5, 5), np.int64)
    idx[0, 2], idx[2, 2], idx[3, 4] = 1, 2, 3
    assert touches_edge(idx, 3).tolist() == [False, True, False, True]


def test_dense_and_sparse_contingency_tables_agree(monkeypatch):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 30, (40, 40))
    pred = rng.integers(0, 25, (40, 40)) * 1000
    dense = label_overlap(pred, gt)
    monkeypatch.setattr(matching, "DENSE_TABLE_MAX", 0)   # force the np.unique path
    sparse = label_overlap(pred, gt)
    for name in ("pi", "gi", "iou", "pred_ids", "gt_ids"):
        assert np.array_equal(getattr(dense, name), getattr(sparse, name)), name
    # IoU of one pair by hand
    k = 7
    p, g = pred == dense.pred_ids[dense.pi[k] - 1], gt == dense.gt_ids[dense.gi[k] - 1]
    assert dense.iou[k] == pytest.approx((p & g).sum() / (p | g).sum())


def test_match_pairs_maximises_count_then_iou():
    pi, gi = np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2])
    # two matchings of 2 pairs: (1-1, 2-2) total .9+.3 = 1.2 beats (1-2, 2-1) .35+.6 = .95
    iou = np.array([0.9, 0.35, 0.6, 0.3])
    assert match_pairs(pi, gi, iou, 0.3).tolist() == [0, 3]
    assert match_pairs(pi, gi, iou, 0.95).tolist() == []
    assert match_pairs(pi, gi, iou, 0.5).tolist() == [0]   # 2-1 (.6) loses its object to 1-1


def test_counted_objects_edge_rule():
    gt = np.zeros((20, 20), np.int32)
    gt[0:6, 5:10] = 1      # touches the border
    gt[8:14, 8:14] = 2
    pred = np.zeros_like(gt)
    pred[1:6, 5:10] = 1    # inside, but overlaps the ignored reference most: ignored
    pred[16:20, 0:3] = 2   # touches the border: ignored
    pred[8:14, 8:14] = 3
    ov = label_overlap(pred, gt)
    gt_c, pred_c = counted_objects(ov, exclude_edge=True)
    assert gt_c.tolist() == [False, False, True]
    assert pred_c.tolist() == [False, False, False, True]
    gt_all, pred_all = counted_objects(ov, exclude_edge=False)
    assert gt_all.tolist() == [False, True, True] and pred_all.tolist() == [False, True, True, True]


def test_detection_scores_and_label_checks():
    assert detection_scores(0, 0, 0) == (1.0, 1.0, 1.0)
    assert detection_scores(0, 2, 0) == (0.0, 0.0, 0.0)
    assert check_label_image(np.ones((2, 2), bool), "x").dtype == np.uint8
    with pytest.raises(HistoInputError, match="gt must hold integer labels"):
        check_label_image(np.full((2, 2), 0.5), "gt")
    with pytest.raises(HistoInputError, match="pred must be a 2-D"):
        check_label_image(np.zeros(4, int), "pred")
