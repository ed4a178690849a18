"""Pairing two label images: the sparse IoU contingency table and optimal one-to-one matching.

The machinery behind :func:`histo.train.evaluate.match_labels` (which holds the user-facing rules
and the result objects). Objects are numbered ``1..n`` by :func:`histo.io.labels.relabel_consecutive`; the
IoU of every overlapping pair comes from one ``bincount``/``unique`` over the paired index
values (:func:`label_overlap`), never from a per-object loop; :func:`match_pairs` then picks
a one-to-one matching among the pairs above a threshold, optimal where it is ambiguous
(at or below IoU 0.5), and :func:`counted_objects` applies the edge rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from histo.io.labels import check_labels, relabel_consecutive, touches_edge

DENSE_TABLE_MAX = 1 << 25
"""Count overlaps with ``bincount`` over (P+1)*(G+1) cells up to this size, else ``unique``."""


def check_label_image(arr, name: str) -> np.ndarray:
    """An instance label image (2-D or n-D) as an integer array, or a ``HistoInputError``
    naming ``name``: :func:`histo.io.labels.check_labels` with any number of dimensions.

    Examples
    --------
    >>> check_label_image(np.array([[0, 1.0], [2, 2]]), "gt").dtype
    dtype('int64')
    """
    return check_labels(arr, name=name, ndim=None)


@dataclass(frozen=True)
class Overlap:
    """Every overlapping (prediction, reference) pair of two label images, with its IoU.

    Object ``i`` (1-based) of either image has the original label ``*_ids[i - 1]``.
    """

    pred_ids: np.ndarray   # original labels, index i-1 for object i
    gt_ids: np.ndarray
    pi: np.ndarray         # 1-based object indices of the overlapping pairs
    gi: np.ndarray
    iou: np.ndarray
    pred_edge: np.ndarray  # bool, length n_pred + 1
    gt_edge: np.ndarray
    pred_idx: np.ndarray   # index images
    gt_idx: np.ndarray


def label_overlap(pred: np.ndarray, gt: np.ndarray) -> Overlap:
    """The sparse contingency table of two label images of the same shape.

    Examples
    --------
    >>> gt = np.zeros((4, 4), int); gt[:, :2] = 5
    >>> pred = np.zeros((4, 4), int); pred[:, 1:3] = 9
    >>> ov = label_overlap(pred, gt)
    >>> ov.pred_ids.tolist(), ov.gt_ids.tolist(), ov.iou.tolist()
    ([9], [5], [0.3333333333333333])
    """
    pred_ids, p = relabel_consecutive(pred)
    gt_ids, g = relabel_consecutive(gt)
    n_p, n_g = len(pred_ids), len(gt_ids)
    area_p = np.bincount(p.ravel(), minlength=n_p + 1)
    area_g = np.bincount(g.ravel(), minlength=n_g + 1)
    both = (p > 0) & (g > 0)
    keys = p[both] * (n_g + 1) + g[both]
    cells = (n_p + 1) * (n_g + 1)
    if cells <= DENSE_TABLE_MAX:
        counts = np.bincount(keys, minlength=cells)
        keys = np.flatnonzero(counts)
        inter = counts[keys]
    else:
        keys, inter = np.unique(keys, return_counts=True)
    pi, gi = np.divmod(keys, n_g + 1)
    union = area_p[pi] + area_g[gi] - inter
    iou = inter / union if len(inter) else np.zeros(0)
    return Overlap(pred_ids, gt_ids, pi, gi, iou.astype(np.float64),
                   touches_edge(p, n_p), touches_edge(g, n_g), p, g)


def match_pairs(pi: np.ndarray, gi: np.ndarray, iou: np.ndarray, threshold: float) -> np.ndarray:
    """Indices (into pi/gi/iou) of an optimal one-to-one matching among pairs with IoU >= t.

    Maximises the number of matched pairs, then their total IoU. Pairs whose objects have no
    other candidate are taken as they are; the ambiguous rest is solved per connected group
    with the Hungarian algorithm.

    Examples
    --------
    >>> pi, gi = np.array([1, 1, 2]), np.array([1, 2, 1])   # pred 1 overlaps gt 1 and 2
    >>> match_pairs(pi, gi, np.array([0.45, 0.4, 0.3]), 0.3).tolist()   # 2 pairs beat 1
    [1, 2]
    """
    cand = np.flatnonzero(iou >= threshold)
    if len(cand) == 0:
        return cand
    cp, cg = pi[cand], gi[cand]
    p_count = np.bincount(cp)
    g_count = np.bincount(cg)
    single = (p_count[cp] == 1) & (g_count[cg] == 1)
    if single.all():
        return cand
    chosen = [cand[single]]
    rest = cand[~single]
    # connected groups of ambiguous candidates, solved one by one (they are small)
    up, pinv = np.unique(pi[rest], return_inverse=True)
    ug, ginv = np.unique(gi[rest], return_inverse=True)
    n_nodes = len(up) + len(ug)
    graph = coo_matrix((np.ones(len(rest)), (pinv, ginv + len(up))), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[pinv]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for group in np.split(order, bounds):
        rows, r_inv = np.unique(pinv[group], return_inverse=True)
        cols, c_inv = np.unique(ginv[group], return_inverse=True)
        k = min(len(rows), len(cols))
        weight = np.zeros((len(rows), len(cols)))
        # 1 per matched pair dominates; the IoU term only breaks ties between equal counts
        weight[r_inv, c_inv] = 1.0 + iou[rest[group]] / (k + 1)
        r, c = linear_sum_assignment(weight, maximize=True)
        ok = weight[r, c] > 0
        lookup = {(a, b): e for a, b, e in zip(r_inv, c_inv, rest[group])}
        chosen.append(np.array([lookup[(a, b)] for a, b in zip(r[ok], c[ok])], dtype=np.int64))
    return np.sort(np.concatenate(chosen))


def counted_objects(ov: Overlap, exclude_edge: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which objects the counts include (the edge rule of :mod:`histo.train.evaluate`).

    Returns
    -------
    gt_counted : ndarray of bool, shape (n_gt + 1,)
        Reference objects that count (all, or those not touching the border).
    pred_free_counted : ndarray of bool, shape (n_pred + 1,)
        Predictions that count as false positives when unmatched: with ``exclude_edge``
        not those touching the border nor those overlapping an ignored reference object
        most (by IoU). Position 0 (background) is False in both.
    """
    n_p, n_g = len(ov.pred_ids), len(ov.gt_ids)
    if exclude_edge:
        gt_counted = ~ov.gt_edge
        # an unmatched prediction is ignored when it touches the border or when the reference
        # object it overlaps most (by IoU) is ignored: it is an attempt at an uncounted fiber
        pred_free_counted = ~ov.pred_edge
        best_gt = np.zeros(n_p + 1, np.int64)
        order = np.argsort(ov.iou, kind="stable")  # later (larger IoU) writes win
        best_gt[ov.pi[order]] = ov.gi[order]
        pred_free_counted &= ~(ov.gt_edge[best_gt] & (best_gt > 0))
    else:
        gt_counted = np.ones(n_g + 1, bool)
        pred_free_counted = np.ones(n_p + 1, bool)
    gt_counted[0] = pred_free_counted[0] = False
    return gt_counted, pred_free_counted


def detection_scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1); 0 when undefined, except that nothing to find and nothing
    found scores 1.

    Examples
    --------
    >>> detection_scores(3, 1, 2)
    (0.75, 0.6, 0.6666666666666666)
    """
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0  # nothing to find and nothing found: perfect
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return precision, recall, f1
