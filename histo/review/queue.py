"""The review queue: the doubtful fibers of a slide, most doubtful first, walked one by one.

A reviewer should not read the whole table: the classifier is sure about most fibers. The
queue lists the objects whose call a pathologist should check, in this order (each object
once, under its first reason):

1. ``"sad"``: small angular dark candidates: the classifier's SAD calls, and small fibers
   that are dark or angular (two of the three criteria: a SAD fiber the classifier may have
   missed), smallest lesser diameter first;
2. ``"small"``: the other small fibers, smallest first;
3. ``"low_score"``: objects the fiber score doubts (counted, score below
   :data:`LOW_FIBER_SCORE`), lowest score first;
4. ``"not_fiber"``: objects the fiber score rejected, most fiber-like first (a reviewer may
   restore them).

Fibers cut by the image border (``is_edge``) are left out: they are never counted.
:class:`ReviewQueue` keeps its place by label, so flagging a fiber (which may change its
class) never moves or loses the walk. Pure: no Qt, no napari.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from histo.io.polygons import label_polygons
from histo.measure.adjacency import fiber_adjacency
from histo.review.flags import flag_label

#: Reasons a fiber is queued, in queue order.
QUEUE_REASONS: tuple[str, ...] = ("sad", "small", "low_score", "not_fiber")

#: What the reviewer reads for each reason.
REASON_LABELS: dict[str, str] = {
    "sad": "SAD candidate",
    "small": "small fiber",
    "low_score": "doubtful object (low fiber score)",
    "not_fiber": "rejected object (not a fiber?)",
}

#: Counted objects with a fiber score below this are queued (the score is a calibrated
#: probability of being a fiber: below one half the model leans towards "not a fiber").
LOW_FIBER_SCORE = 0.5

#: The walk shows this many typical fibers across the shorter side of the canvas.
FIBERS_ACROSS = 5.0


def _bool(fibers: pd.DataFrame, column: str) -> np.ndarray:
    if column not in fibers:
        return np.zeros(len(fibers), dtype=bool)
    return fibers[column].fillna(False).to_numpy(dtype=bool)


def _num(fibers: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    for column in columns:
        if column in fibers:
            return pd.to_numeric(fibers[column], errors="coerce").to_numpy(dtype=float)
    return np.full(len(fibers), np.nan)


def queue_order(fibers: pd.DataFrame, *, low_fiber_score: float = LOW_FIBER_SCORE) -> pd.DataFrame:
    """The doubtful objects of a scored table, in review order.

    Parameters
    ----------
    fibers : DataFrame
        Scored per-fiber table (``label`` and whichever of ``is_sad`` / ``is_sad_auto``,
        ``is_small``, ``is_dark``, ``is_angular``, ``fiber_score``, ``rejected``, ``is_edge``,
        ``counted``, ``min_feret_um`` / ``min_feret_px`` it has). The classifier's own SAD call
        (``is_sad_auto``) is used when present, so a reviewed table gives the same queue.
    low_fiber_score : float
        Counted objects scoring below this are queued as ``"low_score"``.

    Returns
    -------
    DataFrame
        ``label`` and ``reason`` (one of :data:`QUEUE_REASONS`), one row per queued object.

    Examples
    --------
    >>> df = pd.DataFrame({"label": [1, 2, 3, 4, 5], "min_feret_um": [50, 12, 20, 9, 60],
    ...                    "is_small": [False, True, True, True, False],
    ...                    "is_sad": [False, False, True, False, False],
    ...                    "is_dark": [False, True, True, False, False],
    ...                    "fiber_score": [0.9, 0.8, 0.9, 0.95, 0.2], "is_edge": False})
    >>> queue_order(df).values.tolist()
    [[2, 'sad'], [3, 'sad'], [4, 'small'], [5, 'low_score']]
    """
    if "label" not in fibers:
        raise ValueError("the fibers table has no 'label' column; pass a table from measure_fibers")
    labels = fibers["label"].to_numpy(dtype=np.int64)
    inside = ~_bool(fibers, "is_edge")
    rejected = _bool(fibers, "rejected")
    sad_call = _bool(fibers, "is_sad_auto" if "is_sad_auto" in fibers else "is_sad")
    small = _bool(fibers, "is_small")
    sad = inside & ~rejected & (sad_call | (small & (_bool(fibers, "is_dark") | _bool(fibers, "is_angular"))))
    small = inside & ~rejected & small & ~sad
    score = _num(fibers, ("fiber_score",))
    low = inside & ~rejected & ~sad & ~small & (score < float(low_fiber_score))
    not_fiber = inside & rejected
    feret = _num(fibers, ("min_feret_um", "min_feret_px"))
    tiers = (
        ("sad", sad, feret),
        ("small", small, feret),
        ("low_score", low, score),
        ("not_fiber", not_fiber, -score),
    )
    parts = []
    for reason, mask, key in tiers:
        rows = np.flatnonzero(mask)
        order = np.lexsort((labels[rows], np.nan_to_num(key[rows], nan=np.inf)))
        parts.append(pd.DataFrame({"label": labels[rows[order]], "reason": reason}))
    return pd.concat(parts, ignore_index=True)


@dataclass
class ReviewQueue:
    """A walk over the queued labels that keeps its place by label.

    Attributes
    ----------
    labels : (N,) int array
        Queued labels in review order.
    reasons : (N,) object array
        Reason of each (:data:`QUEUE_REASONS`).
    position : int
        Index of the current item; -1 before the first step.

    Examples
    --------
    >>> q = ReviewQueue.from_fibers(pd.DataFrame({"label": [7, 8, 9], "is_small": [True, False, True],
    ...                                           "min_feret_um": [20.0, 50.0, 10.0]}))
    >>> q.labels.tolist(), q.current
    ([9, 7], None)
    >>> q.next(), q.next(), q.next(), q.previous(), q.previous()
    (9, 7, None, 7, 9)
    >>> q.progress()
    (1, 2)
    """

    labels: np.ndarray
    reasons: np.ndarray
    position: int = -1

    @classmethod
    def from_fibers(cls, fibers: pd.DataFrame, *, low_fiber_score: float = LOW_FIBER_SCORE) -> ReviewQueue:
        """The queue of a scored table (:func:`queue_order`), before its first step."""
        order = queue_order(fibers, low_fiber_score=low_fiber_score)
        return cls(order["label"].to_numpy(dtype=np.int64), order["reason"].to_numpy(dtype=object))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def current(self) -> int | None:
        """The current label (None before the first step and after the last)."""
        if 0 <= self.position < len(self.labels):
            return int(self.labels[self.position])
        return None

    def reason_of(self, label: int) -> str | None:
        """Why a label is queued (None when it is not)."""
        hit = np.flatnonzero(self.labels == int(label))
        return str(self.reasons[hit[0]]) if len(hit) else None

    def next(self) -> int | None:
        """Step forward; returns the new current label (None past the end, where it stays)."""
        self.position = min(self.position + 1, len(self.labels))
        return self.current

    def previous(self) -> int | None:
        """Step back; returns the new current label (the first one stays the first)."""
        self.position = max(self.position - 1, 0) if len(self.labels) else -1
        return self.current

    def go_to(self, label: int) -> bool:
        """Make ``label`` the current item; False (and no move) when it is not queued."""
        hit = np.flatnonzero(self.labels == int(label))
        if not len(hit):
            return False
        self.position = int(hit[0])
        return True

    def progress(self) -> tuple[int, int]:
        """``(step, total)``: the current item's 1-based number (0 before the first)."""
        return (min(max(self.position + 1, 0), len(self.labels)), len(self.labels))

    def rebuilt(self, fibers: pd.DataFrame, *, low_fiber_score: float = LOW_FIBER_SCORE) -> ReviewQueue:
        """The queue of a new table (after labels were re-measured) at the same place.

        The walk stays on the current label when it is still queued, else on the first
        queued label that followed it.
        """
        new = ReviewQueue.from_fibers(fibers, low_fiber_score=low_fiber_score)
        if self.position < 0:
            return new
        for label in self.labels[max(self.position, 0):]:
            if new.go_to(int(label)):
                return new
        new.position = len(new.labels)
        return new


def walk_field_px(fibers: pd.DataFrame, *, fibers_across: float = FIBERS_ACROSS) -> float:
    """Side of the square field (data pixels) each walk step shows: a fixed zoom for the walk.

    ``fibers_across`` typical (median lesser diameter of the counted fibers) fibers, so the
    fiber and a ring of neighbours are in view; the same for every step, unlike a zoom fitted
    to each fiber, which jumps with fiber size.

    Examples
    --------
    >>> walk_field_px(pd.DataFrame({"min_feret_px": [40.0, 60.0, 50.0]}))
    250.0
    """
    diam = _num(fibers, ("min_feret_px", "equivalent_diameter_px"))
    if "counted" in fibers and _bool(fibers, "counted").any():
        diam = diam[_bool(fibers, "counted")]
    diam = diam[np.isfinite(diam) & (diam > 0)]
    typical = float(np.median(diam)) if len(diam) else 50.0
    return float(fibers_across) * typical


def describe_fiber(row: pd.Series, *, reason: str | None = None) -> str:
    """One line with what a reviewer needs to decide about a fiber.

    Examples
    --------
    >>> row = pd.Series({"label": 12, "fiber_class": "sad", "min_feret_um": 11.24, "area_um2": 160.0,
    ...                  "angularity": 0.41, "darkness": 1.3, "fiber_score": 0.93, "review_flag": "not_sad"})
    >>> describe_fiber(row, reason="sad")
    'fiber 12 · SAD candidate · class sad · min Feret 11.2 µm · area 160 µm² · angularity 0.41 · darkness 1.30 · fiber score 0.93 · flag: Not SAD'
    """
    parts = [f"fiber {int(row['label'])}"]
    if reason:
        parts.append(REASON_LABELS.get(reason, reason))
    if isinstance(row.get("fiber_class"), str):
        parts.append(f"class {row['fiber_class']}")
    for name, columns, fmt in (
        ("min Feret", ("min_feret_um", "min_feret_px"), "{:.1f}"),
        ("area", ("area_um2", "area_px"), "{:.0f}"),
        ("angularity", ("angularity",), "{:.2f}"),
        ("darkness", ("darkness",), "{:.2f}"),
        ("fiber score", ("fiber_score",), "{:.2f}"),
    ):
        column = next((c for c in columns if c in row.index), None)
        value = row.get(column) if column else None
        if value is None or pd.isna(value):
            continue
        unit = {"min_feret_um": " µm", "min_feret_px": " px", "area_um2": " µm²", "area_px": " px"}.get(column, "")
        parts.append(f"{name} {fmt.format(float(value))}{unit}")
    flag = flag_label(row.get("review_flag"))
    if flag:
        parts.append(f"flag: {flag}")
    return " · ".join(parts)


def neighbours_of(edges: np.ndarray, label: int) -> np.ndarray:
    """Labels adjacent to ``label`` in an adjacency edge list ((E, 2) pairs), sorted.

    Examples
    --------
    >>> neighbours_of(np.array([[1, 2], [2, 5], [3, 4]]), 2).tolist()
    [1, 5]
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    hit = (e == int(label)).any(1)
    other = np.where(e[hit, 0] == int(label), e[hit, 1], e[hit, 0])
    return np.unique(other)


def local_neighbours(labels: np.ndarray, label: int, bbox_yx: tuple[float, float, float, float], *,
                     max_gap_px: float = 2) -> np.ndarray:
    """Labels adjacent to ``label`` (at most ``max_gap_px`` apart), found around its box only.

    The same answer as :func:`neighbours_of` on the whole slide's adjacency
    (:func:`histo.measure.adjacency.fiber_adjacency`), at the cost of a crop: a walk step on a
    whole slide never waits for the slide's adjacency graph.

    Examples
    --------
    >>> lab = np.zeros((6, 9), int); lab[1:5, 1:3] = 1; lab[1:5, 3:5] = 2; lab[1:5, 8:9] = 3
    >>> local_neighbours(lab, 2, (1, 3, 5, 5)).tolist(), local_neighbours(lab, 1, (1, 1, 5, 3)).tolist()
    ([1], [2])
    """
    pad = int(np.ceil(max_gap_px)) + 2
    y0, x0, y1, x1 = (int(v) for v in bbox_yx)
    y0, x0 = max(y0 - pad, 0), max(x0 - pad, 0)
    y1, x1 = min(y1 + pad, labels.shape[0]), min(x1 + pad, labels.shape[1])
    crop = np.asarray(labels[y0:y1, x0:x1])
    return neighbours_of(fiber_adjacency(crop, max_gap_px=max_gap_px), label)


def focus_outlines(labels: np.ndarray, wanted: Sequence[int], window_yx: tuple[int, int, int, int]) -> dict[int, np.ndarray]:
    """Outlines of some labels inside a window of a label image, in its pixel coordinates.

    Parameters
    ----------
    labels : (Y, X) int array
    wanted : sequence of int
        The labels to outline (e.g. the current fiber and its neighbours).
    window_yx : (y0, x0, y1, x1)
        The part of ``labels`` to trace (clipped to the image); a label cut by the window
        is outlined where it is inside.

    Returns
    -------
    dict of label to (N, 2) float array
        ``(y, x)`` vertices in pixel-centre coordinates (pixel ``(i, j)`` spans
        ``i - 0.5 .. i + 0.5``), the convention of napari layers; labels absent from the
        window are left out.

    Examples
    --------
    >>> lab = np.zeros((5, 5), int); lab[1:3, 1:3] = 4; lab[3:, 3:] = 9
    >>> focus_outlines(lab, [4], (0, 0, 5, 5))[4].tolist()
    [[0.5, 0.5], [0.5, 2.5], [2.5, 2.5], [2.5, 0.5]]
    """
    y0, x0, y1, x1 = (int(v) for v in window_yx)
    y0, x0 = max(y0, 0), max(x0, 0)
    y1, x1 = min(y1, labels.shape[0]), min(x1, labels.shape[1])
    if y1 <= y0 or x1 <= x0:
        return {}
    crop = np.asarray(labels[y0:y1, x0:x1])
    keep = np.isin(crop, np.asarray(list(wanted), dtype=crop.dtype))
    traced = label_polygons(np.where(keep, crop, 0))
    offset = np.array([y0 - 0.5, x0 - 0.5])
    return {int(k): ring[:, ::-1] + offset for k, ring in traced.items()}
