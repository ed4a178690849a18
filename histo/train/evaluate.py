"""Accuracy yardstick: match predicted fiber labels against reference labels.

:func:`match_labels` pairs every predicted object with at most one reference object (and
vice versa), then reports, per IoU threshold, true positives, false positives, false
negatives, precision, recall and F1, the mean IoU of the matched pairs, and the error of the
minimum Feret diameter on the fibers matched at IoU 0.5. It follows the design of stardist's
``matching.py``: one sparse contingency table, one frozen result object. The table and the
one-to-one matching are :mod:`histo.train.matching`; this module holds the rules a user reads, the
result objects and the min-Feret error.

Matching rules
--------------
* IoU of two objects = overlap / union, computed from a sparse contingency table (one
  ``bincount``/``unique`` over the paired label values, no per-object loop).
* At a threshold ``t`` a pair can match only when ``IoU >= t``. Above IoU 0.5 an object can
  overlap at most one other object that much, so the matching is unique and free. At or below
  0.5 ambiguous candidates are resolved optimally: per connected group of candidates, the
  Hungarian algorithm maximises the number of matched pairs, then their total IoU.
* ``pairs`` (and the min-Feret error) use the matching at IoU 0.5 whatever ``thresholds`` holds.

Edge objects
------------
Reference masks often include fibers cut by the image border, which a pathologist does not
count. With ``exclude_edge=True`` the matching itself is unchanged (so a prediction is never
penalised for matching a cut fiber), but the counts ignore

* every reference object that touches the image border (it is neither TP nor FN);
* every prediction that is not matched to a counted reference object and either touches the
  border or overlaps an ignored reference object more than any other (by IoU).

A prediction touching the border that matches an interior reference object still counts (a
true positive), so that each counted reference object is counted exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from histo.errors import HistoInputError
from histo.io.pixelsize import check_pixel_size
from histo.measure.morphometry import measure_fibers, size_column
from histo.train.matching import (
    Overlap,
    check_label_image,
    counted_objects,
    detection_scores,
    label_overlap,
    match_pairs,
)

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))
"""IoU thresholds 0.5, 0.55, ..., 0.9."""

MATCH_IOU = 0.5
"""IoU threshold of the reported ``pairs`` and of the min-Feret error."""


# --------------------------------------------------------------------------------------------
# result objects


@dataclass(frozen=True)
class FeretError:
    """Minimum Feret diameter of matched predictions against their reference objects.

    Relative errors are ``(pred - ref) / ref``: signed (bias; negative = predicted fibers are
    too thin) and absolute (spread). ``median_abs_error`` is in ``unit`` (µm when the pixel
    size is known, else px).
    """

    n_pairs: int
    median_rel_error: float
    mean_rel_error: float
    median_abs_rel_error: float
    mean_abs_rel_error: float
    median_abs_error: float
    unit: str

    def to_dict(self) -> dict:
        """JSON-able dictionary of the fields."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Scores of one prediction against one reference, per IoU threshold.

    Per-threshold fields are tuples aligned with ``thresholds``. ``n_pred`` / ``n_gt`` are the
    counted objects (edge objects left out when ``exclude_edge``); ``n_pred_ignored`` /
    ``n_gt_ignored`` how many were left out at IoU 0.5 (or the lowest threshold).

    Attributes
    ----------
    thresholds : tuple of float
    tp, fp, fn : tuple of int
    precision, recall, f1 : tuple of float
        ``precision = TP/(TP+FP)``, ``recall = TP/(TP+FN)``, ``F1 = 2TP/(2TP+FP+FN)``; 0 when
        undefined except that two empty images score 1.
    mean_iou : tuple of float
        Mean IoU of the true positives at each threshold (NaN without any).
    mean_matched_iou : float
        Mean IoU of ``pairs`` (the counted matches at IoU >= 0.5).
    pairs : ndarray of int64, shape (k, 2)
        ``(pred_label, gt_label)`` matched at IoU >= 0.5 and counted, sorted by gt label.
    pair_iou : ndarray of float64, shape (k,)
    min_feret : FeretError or None
        None when not computed (``min_feret=False``) or no pair matched.
    exclude_edge : bool
    """

    thresholds: tuple[float, ...]
    tp: tuple[int, ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    mean_iou: tuple[float, ...]
    n_pred: int
    n_gt: int
    n_pred_ignored: int
    n_gt_ignored: int
    mean_matched_iou: float
    pairs: np.ndarray = field(repr=False)
    pair_iou: np.ndarray = field(repr=False)
    min_feret: FeretError | None = None
    exclude_edge: bool = False

    def at(self, threshold: float = MATCH_IOU) -> dict:
        """Scores at one of ``thresholds`` as a dictionary.

        Raises
        ------
        KeyError
            When ``threshold`` is not one of ``thresholds``.
        """
        for i, t in enumerate(self.thresholds):
            if abs(t - threshold) < 1e-9:
                return {
                    "threshold": t, "tp": self.tp[i], "fp": self.fp[i], "fn": self.fn[i],
                    "precision": self.precision[i], "recall": self.recall[i], "f1": self.f1[i],
                    "mean_iou": self.mean_iou[i],
                }
        raise KeyError(f"threshold {threshold} not among {self.thresholds}")

    def to_dict(self, *, include_pairs: bool = False) -> dict:
        """JSON-able dictionary: counts, per-threshold rows and the min-Feret error.

        ``include_pairs=True`` adds the matched label pairs and their IoU.
        """
        out = {
            "n_pred": self.n_pred,
            "n_gt": self.n_gt,
            "n_pred_ignored": self.n_pred_ignored,
            "n_gt_ignored": self.n_gt_ignored,
            "exclude_edge": self.exclude_edge,
            "mean_matched_iou": _json_float(self.mean_matched_iou),
            "n_pairs": int(len(self.pairs)),
            "per_threshold": [
                {k: _json_float(v) for k, v in self.at(t).items()} for t in self.thresholds
            ],
            "min_feret": None if self.min_feret is None else {
                k: _json_float(v) for k, v in self.min_feret.to_dict().items()
            },
        }
        if include_pairs:
            out["pairs"] = [
                {"pred": int(p), "gt": int(g), "iou": float(i)}
                for (p, g), i in zip(self.pairs, self.pair_iou)
            ]
        return out

    def table(self) -> str:
        """A plain-text table a person reads (one row per threshold, then summary lines)."""
        edge = " (objects touching the image edge ignored)" if self.exclude_edge else ""
        lines = [
            f"prediction: {self.n_pred} objects, reference: {self.n_gt} objects{edge}",
            f"{'IoU':>5} {'TP':>6} {'FP':>6} {'FN':>6} {'precision':>9} {'recall':>7} "
            f"{'F1':>6} {'mean IoU':>8}",
        ]
        for i, t in enumerate(self.thresholds):
            lines.append(
                f"{t:5.2f} {self.tp[i]:6d} {self.fp[i]:6d} {self.fn[i]:6d} "
                f"{self.precision[i]:9.3f} {self.recall[i]:7.3f} {self.f1[i]:6.3f} "
                f"{_fmt(self.mean_iou[i], '8.3f')}"
            )
        lines.append(f"mean matched IoU (IoU >= {MATCH_IOU}): {_fmt(self.mean_matched_iou, '.3f')} "
                     f"over {len(self.pairs)} pairs")
        fe = self.min_feret
        if fe is None:
            lines.append("min Feret error: not computed")
        else:
            lines.append(
                f"min Feret on {fe.n_pairs} matched fibers: relative error median "
                f"{fe.median_rel_error:+.1%} (absolute {fe.median_abs_rel_error:.1%}), mean "
                f"{fe.mean_rel_error:+.1%} (absolute {fe.mean_abs_rel_error:.1%}); median "
                f"absolute error {fe.median_abs_error:.3g} {fe.unit}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _json_float(v):
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _fmt(v: float, spec: str) -> str:
    width = spec.split(".")[0]
    return f"{'n/a':>{width}}" if not np.isfinite(v) else format(v, spec)


# --------------------------------------------------------------------------------------------
# validation


def _validate_thresholds(thresholds) -> tuple[float, ...]:
    try:
        ts = tuple(sorted({float(t) for t in np.atleast_1d(thresholds)}))
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"thresholds must be numbers in (0, 1], got {thresholds!r}") from err
    if not ts or any(not 0 < t <= 1 for t in ts):
        raise HistoInputError(f"thresholds must be numbers in (0, 1], got {thresholds!r}")
    return ts


# --------------------------------------------------------------------------------------------
# public API


def match_labels(
    pred,
    gt,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    pixel_size_um: float | None = None,
    exclude_edge: bool = False,
    min_feret: bool = True,
) -> MatchResult:
    """Match predicted instance labels against reference labels.

    Parameters
    ----------
    pred, gt : ndarray of int, shape (Y, X) (or any equal n-D shape)
        Instance label images, 0 = background. Label values need not be consecutive.
    thresholds : sequence of float in (0, 1]
        IoU thresholds at which TP / FP / FN are counted (default 0.5, 0.55, ..., 0.9).
    pixel_size_um : float, optional
        Micrometres per pixel; only changes the unit of the absolute min-Feret error.
    exclude_edge : bool
        Ignore objects touching the image border (see the module docstring for the rule).
    min_feret : bool
        Compute the minimum Feret diameter error on the pairs matched at IoU 0.5 (with
        :func:`histo.measure.morphometry.measure_fibers`; 2-D only).

    Returns
    -------
    MatchResult

    Raises
    ------
    HistoInputError
        When the shapes differ, a label image is not integer, or a threshold is out of range.

    Examples
    --------
    >>> gt = np.zeros((8, 8), int); gt[1:5, 1:5] = 1; gt[5:8, 5:8] = 2
    >>> pred = np.zeros((8, 8), int); pred[1:5, 1:4] = 7
    >>> r = match_labels(pred, gt, thresholds=[0.5, 0.8], min_feret=False)
    >>> r.tp, r.fp, r.fn
    ((1, 0), (0, 1), (1, 2))
    >>> r.pairs.tolist(), float(r.pair_iou[0])
    ([[7, 1]], 0.75)
    """
    pred = check_label_image(pred, "pred")
    gt = check_label_image(gt, "gt")
    if pred.shape != gt.shape:
        raise HistoInputError(
            f"pred and gt must have the same shape, got {pred.shape} and {gt.shape}; "
            "the prediction must be on the reference's pixel grid"
        )
    ts = _validate_thresholds(thresholds)
    pixel_size_um = check_pixel_size(pixel_size_um)
    ov = label_overlap(pred, gt)
    n_p, n_g = len(ov.pred_ids), len(ov.gt_ids)
    gt_counted, pred_free_counted = counted_objects(ov, exclude_edge)

    def count(sel: np.ndarray):
        keep = sel[gt_counted[ov.gi[sel]]]  # pairs with an ignored reference are ignored
        matched_p = np.zeros(n_p + 1, bool)
        matched_p[ov.pi[sel]] = True
        tp = len(keep)
        fn = int(gt_counted.sum()) - tp
        fp = int((pred_free_counted & ~matched_p).sum())
        n_pred_counted = tp + fp
        return keep, tp, fp, fn, n_pred_counted

    rows = {k: [] for k in ("tp", "fp", "fn", "precision", "recall", "f1", "mean_iou")}
    for t in ts:
        keep, tp, fp, fn, _ = count(match_pairs(ov.pi, ov.gi, ov.iou, t))
        p, r, f = detection_scores(tp, fp, fn)
        for k, v in zip(rows, (tp, fp, fn, p, r, f,
                               float(ov.iou[keep].mean()) if tp else float("nan"))):
            rows[k].append(v)

    keep, tp, fp, fn, n_pred_counted = count(match_pairs(ov.pi, ov.gi, ov.iou, MATCH_IOU))
    keep = keep[np.argsort(ov.gi[keep], kind="stable")]
    pairs = np.stack([ov.pred_ids[ov.pi[keep] - 1], ov.gt_ids[ov.gi[keep] - 1]], axis=1) \
        if len(keep) else np.zeros((0, 2), np.int64)
    pair_iou = ov.iou[keep].copy()
    pairs.setflags(write=False)
    pair_iou.setflags(write=False)

    feret = None
    if min_feret and len(keep):
        if pred.ndim != 2:
            logger.warning("min-Feret error needs 2-D labels; skipped for shape %s", pred.shape)
        else:
            feret = _feret_error(ov, keep, pixel_size_um)

    return MatchResult(
        thresholds=ts,
        tp=tuple(rows["tp"]), fp=tuple(rows["fp"]), fn=tuple(rows["fn"]),
        precision=tuple(rows["precision"]), recall=tuple(rows["recall"]), f1=tuple(rows["f1"]),
        mean_iou=tuple(rows["mean_iou"]),
        n_pred=n_pred_counted,
        n_gt=int(gt_counted.sum()),
        n_pred_ignored=n_p - n_pred_counted,
        n_gt_ignored=n_g - int(gt_counted.sum()),
        mean_matched_iou=float(pair_iou.mean()) if len(pair_iou) else float("nan"),
        pairs=pairs,
        pair_iou=pair_iou,
        min_feret=feret,
        exclude_edge=exclude_edge,
    )


def _feret_error(ov: Overlap, keep: np.ndarray, pixel_size_um: float | None) -> FeretError:
    """Min Feret of matched pairs, measured by histo.measure.morphometry on the matched objects only."""
    def measured(idx_img: np.ndarray, obj: np.ndarray) -> np.ndarray:
        # keep only the matched objects (fewer to measure), numbered by pair position 1..k
        lut = np.zeros(int(idx_img.max()) + 1 if idx_img.size else 1, np.uint32)
        lut[obj] = np.arange(1, len(obj) + 1, dtype=np.uint32)
        df = measure_fibers(lut[idx_img], pixel_size_um=pixel_size_um)
        col = size_column(df, "min_feret")
        values = np.full(len(obj), np.nan)
        values[df["label"].to_numpy(np.int64) - 1] = df[col].to_numpy(float)
        return values

    d_pred = measured(ov.pred_idx, ov.pi[keep])
    d_gt = measured(ov.gt_idx, ov.gi[keep])
    ok = np.isfinite(d_pred) & np.isfinite(d_gt) & (d_gt > 0)
    rel = (d_pred[ok] - d_gt[ok]) / d_gt[ok]
    if not len(rel):
        nan = float("nan")
        return FeretError(0, nan, nan, nan, nan, nan, "um" if pixel_size_um else "px")
    return FeretError(
        n_pairs=int(ok.sum()),
        median_rel_error=float(np.median(rel)),
        mean_rel_error=float(np.mean(rel)),
        median_abs_rel_error=float(np.median(np.abs(rel))),
        mean_abs_rel_error=float(np.mean(np.abs(rel))),
        median_abs_error=float(np.median(np.abs(d_pred[ok] - d_gt[ok]))),
        unit="um" if pixel_size_um else "px",
    )
