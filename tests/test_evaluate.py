"""Tests of histo.train.evaluate (matching, F1 at IoU thresholds, min-Feret error) and `histo eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from histo.errors import HistoInputError
from histo.train.evaluate import DEFAULT_THRESHOLDS, match_labels


def _square_grid(n: int, size: int, gap: int = 2) -> np.ndarray:
    """n x n squares of side `size` separated by `gap` px, labelled 1..n*n, with a margin."""
    step = size + gap
    out = np.zeros((n * step + gap, n * step + gap), np.uint32)
    k = 1
    for i in range(n):
        for j in range(n):
            y, x = gap + i * step, gap + j * step
            out[y:y + size, x:x + size] = k
            k += 1
    return out


def test_default_thresholds():
    assert DEFAULT_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def test_identical_labels_score_one_whatever_the_label_values():
    gt = _square_grid(4, 12)
    rng = np.random.default_rng(0)
    lut = np.concatenate([[0], rng.permutation(np.arange(100, 116))])
    pred = lut[gt]
    r = match_labels(pred, gt, min_feret=False)
    assert r.f1 == (1.0,) * 9 and r.precision == (1.0,) * 9 and r.recall == (1.0,) * 9
    assert r.tp[0] == 16 and r.fp[0] == 0 and r.fn[0] == 0
    assert r.mean_matched_iou == 1.0
    assert {(int(p), int(g)) for p, g in r.pairs} == {(int(lut[g]), g) for g in range(1, 17)}


def test_shifted_square_has_known_iou():
    gt = np.zeros((30, 30), np.uint16)
    gt[5:15, 5:15] = 1
    pred = np.roll(gt, 2, axis=1)  # overlap 10 x 8 = 80, union 120: IoU 2/3
    r = match_labels(pred, gt, thresholds=[0.5, 0.6, 0.65, 0.7], min_feret=False)
    assert r.pair_iou[0] == pytest.approx(2 / 3)
    assert r.tp == (1, 1, 1, 0)
    assert r.fp == (0, 0, 0, 1) and r.fn == (0, 0, 0, 1)
    assert r.f1[-1] == 0.0
    assert r.mean_iou[0] == pytest.approx(2 / 3) and np.isnan(r.mean_iou[-1])


def test_eroded_square_has_known_iou():
    gt = np.zeros((20, 20), np.int32)
    gt[5:15, 5:15] = 3
    pred = np.zeros_like(gt)
    pred[6:14, 6:14] = 9  # 64 / 100
    r = match_labels(pred, gt, thresholds=[0.6, 0.65], min_feret=False)
    assert r.pair_iou.tolist() == [0.64]
    assert r.tp == (1, 0)
    assert r.pairs.tolist() == [[9, 3]]


def test_split_fiber_is_one_tp_and_one_fp():
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 5:25] = 1
    pred = np.zeros_like(gt)
    pred[5:15, 5:19] = 1  # 140 / 200 = 0.7
    pred[5:15, 19:25] = 2  # 60 / 200 = 0.3
    r = match_labels(pred, gt, thresholds=[0.5], min_feret=False)
    assert (r.tp, r.fp, r.fn) == ((1,), (1,), (0,))
    assert r.precision[0] == 0.5 and r.recall[0] == 1.0
    assert r.pair_iou[0] == pytest.approx(0.7)


def test_merged_fibers_are_one_tp_and_one_fn():
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 5:19] = 1
    gt[5:15, 19:25] = 2
    pred = (gt > 0).astype(np.uint8) * 7
    r = match_labels(pred, gt, thresholds=[0.5], min_feret=False)
    assert (r.tp, r.fp, r.fn) == ((1,), (0,), (1,))
    assert r.pairs.tolist() == [[7, 1]]


def test_empty_prediction_or_reference():
    gt = _square_grid(2, 8)
    empty = np.zeros_like(gt)
    r = match_labels(empty, gt, min_feret=False)
    assert r.tp[0] == 0 and r.fn[0] == 4 and r.fp[0] == 0
    assert r.f1[0] == 0.0 and r.recall[0] == 0.0 and r.precision[0] == 0.0
    assert len(r.pairs) == 0 and np.isnan(r.mean_matched_iou) and r.min_feret is None
    r = match_labels(gt, empty, min_feret=False)
    assert r.fp[0] == 4 and r.f1[0] == 0.0
    r = match_labels(empty, empty)
    assert r.f1[0] == 1.0 and r.n_pred == 0 and r.n_gt == 0


def test_low_thresholds_use_an_optimal_one_to_one_matching():
    # gt A = cols 0..9, B = cols 10..19; P1 = cols 3..15 (IoU .4375 with A, .353 with B),
    # P2 = cols 0..2 (IoU .3 with A). Greedy by IoU gives 1 match, the optimum 2.
    gt = np.zeros((1, 20), np.int32)
    gt[0, :10], gt[0, 10:] = 1, 2
    pred = np.zeros_like(gt)
    pred[0, 3:16], pred[0, :3] = 1, 2
    r = match_labels(pred, gt, thresholds=[0.3, 0.4, 0.5], min_feret=False)
    assert r.tp == (2, 1, 0)
    assert r.fp == (0, 1, 2) and r.fn == (0, 1, 2)


def test_exclude_edge_ignores_cut_fibers_on_both_sides():
    gt = np.zeros((40, 40), np.uint16)
    gt[0:10, 5:15] = 1     # touches the top edge
    gt[15:25, 15:25] = 2   # interior
    pred = np.zeros_like(gt)
    pred[1:10, 5:15] = 11  # matches the edge fiber without touching the edge itself
    pred[15:25, 15:25] = 12
    pred[30:40, 30:35] = 13  # unmatched, touches the edge: ignored when excluding edges
    pred[28:33, 2:7] = 14    # unmatched interior prediction: a false positive either way
    full = match_labels(pred, gt, thresholds=[0.5], min_feret=False)
    assert (full.tp, full.fp, full.fn) == ((2,), (2,), (0,))
    inner = match_labels(pred, gt, thresholds=[0.5], min_feret=False, exclude_edge=True)
    assert (inner.tp, inner.fp, inner.fn) == ((1,), (1,), (0,))
    assert inner.n_gt == 1 and inner.n_gt_ignored == 1
    assert inner.n_pred == 2 and inner.n_pred_ignored == 2
    assert inner.pairs.tolist() == [[12, 2]]


def test_many_objects_sparse_table():
    gt = _square_grid(60, 6, gap=1)  # 3600 objects
    rng = np.random.default_rng(1)
    lut = np.concatenate([[0], rng.permutation(3600) + 1])
    pred = np.roll(lut[gt], 1, axis=0)  # every IoU = 30 / 42
    r = match_labels(pred, gt, thresholds=[0.5, 0.75], min_feret=False)
    assert r.tp == (3600, 0)
    assert np.allclose(r.pair_iou, 30 / 42)


def test_min_feret_error_of_eroded_fibers():
    gt = _square_grid(3, 21, gap=4)
    from scipy import ndimage as ndi

    pred = np.where(ndi.grey_erosion(gt, size=3) == gt, gt, 0)  # each square 19 x 19
    same = match_labels(gt, gt)
    assert same.min_feret.n_pairs == 9
    assert same.min_feret.median_rel_error == pytest.approx(0.0)
    r = match_labels(pred, gt, pixel_size_um=0.5)
    fe = r.min_feret
    assert fe.n_pairs == 9 and fe.unit == "um"
    assert fe.median_rel_error == pytest.approx(-2 / 21, abs=0.02)
    assert fe.median_abs_rel_error == pytest.approx(2 / 21, abs=0.02)
    assert fe.median_abs_error == pytest.approx(1.0, abs=0.2)  # 2 px at 0.5 um/px


def test_to_dict_is_json_and_table_is_readable():
    gt = _square_grid(2, 10)
    r = match_labels(gt, gt, exclude_edge=True)
    d = json.loads(json.dumps(r.to_dict(include_pairs=True)))
    assert d["per_threshold"][0]["f1"] == 1.0 and len(d["per_threshold"]) == 9
    assert d["min_feret"]["n_pairs"] == 4 and len(d["pairs"]) == 4
    text = r.table()
    assert "0.50" in text and "0.90" in text and "min Feret" in text and "edge" in text
    assert r.at(0.75)["tp"] == 4
    with pytest.raises(KeyError):
        r.at(0.33)


@pytest.mark.parametrize(
    "pred, gt, kwargs",
    [
        (np.zeros((5, 5), int), np.zeros((5, 6), int), {}),
        (np.full((5, 5), 0.5), np.zeros((5, 5), int), {}),
        (np.zeros((5, 5), int), np.zeros((5, 5), int), {"thresholds": [0.0]}),
        (np.zeros((5, 5), int), np.zeros((5, 5), int), {"thresholds": [1.5]}),
        (-np.ones((5, 5), int), np.zeros((5, 5), int), {}),
        (np.zeros((5, 5), int), np.zeros((5, 5), int), {"pixel_size_um": -1.0}),
    ],
)
def test_bad_inputs_raise_histo_input_error(pred, gt, kwargs):
    with pytest.raises(HistoInputError):
        match_labels(pred, gt, **kwargs)


def test_real_reference_against_itself_and_shifted(real_data):
    from PIL import Image

    gt = np.array(Image.open(real_data / "he" / "cn_img01_labels.png"))
    r = match_labels(gt, gt, min_feret=False)
    assert r.f1[0] == 1.0 and r.n_gt == 66
    shifted = match_labels(np.roll(gt, 3, axis=1), gt, min_feret=False, exclude_edge=True)
    assert shifted.f1[0] == 1.0 and 0.85 < shifted.mean_matched_iou < 0.97


def test_cli_eval_prints_and_writes_json(tmp_path, capsys):
    from histo.cli import main

    gt = _square_grid(3, 20)
    pred = np.roll(gt, 1, axis=1)
    tifffile.imwrite(tmp_path / "gt.tif", gt)
    tifffile.imwrite(tmp_path / "pred.tif", pred)
    out = tmp_path / "res" / "eval.json"
    code = main(["eval", str(tmp_path / "pred.tif"), str(tmp_path / "gt.tif"),
                 "--exclude-edge", "--pixel-size", "0.5", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "all objects" in text and "edge objects ignored" in text and "F1" in text
    report = json.loads(out.read_text())
    assert report["all"]["per_threshold"][0]["tp"] == 9
    assert report["exclude_edge"]["n_gt"] == 9  # the margin keeps every square off the edge
    assert report["all"]["min_feret"]["unit"] == "um"


def test_cli_eval_reports_shape_mismatch(tmp_path, capsys):
    from histo.cli import main

    tifffile.imwrite(tmp_path / "a.tif", _square_grid(2, 10))
    tifffile.imwrite(tmp_path / "b.tif", _square_grid(3, 10))
    assert main(["eval", str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) == 2
    assert "same pixel grid" in capsys.readouterr().err
