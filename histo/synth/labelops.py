"""Small exact operations on instance label images used by the synthetic generator.

All functions take and return integer (Y, X) label images where 0 is background. They keep
the ground truth exact: every label ends up as one 4-connected component and no two labels
touch (not even diagonally) unless a caller skips :func:`separate_touching`.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label as cc_label

# (dy, dx) half-neighbourhood: every 8-neighbour pair is visited exactly once
_HALF_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _pairs(shape: tuple[int, int], dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    h, w = shape
    ys_a = slice(0, h - dy)
    ys_b = slice(dy, h)
    if dx >= 0:
        xs_a, xs_b = slice(0, w - dx), slice(dx, w)
    else:
        xs_a, xs_b = slice(-dx, w), slice(0, w + dx)
    return (ys_a, xs_a), (ys_b, xs_b)


def separate_touching(labels: np.ndarray) -> np.ndarray:
    """Set to 0 one pixel of every pair of 8-neighbours that carry different labels.

    The pixel of the higher label is removed, so the result has at least a one-pixel
    (8-connected) gap between any two labels.

    Examples
    --------
    >>> a = np.array([[1, 1, 2, 2]])
    >>> separate_touching(a).tolist()
    [[1, 1, 0, 2]]
    """
    out = labels.copy()
    remove = np.zeros(labels.shape, bool)
    for dy, dx in _HALF_NEIGHBOURS:
        sa, sb = _pairs(labels.shape, dy, dx)
        a, b = labels[sa], labels[sb]
        touch = (a > 0) & (b > 0) & (a != b)
        if not touch.any():
            continue
        a_higher = touch & (a > b)
        remove[sa] |= a_higher
        remove[sb] |= touch & ~a_higher
    out[remove] = 0
    return out


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest 4-connected piece of every label; smaller pieces become 0."""
    cc = cc_label(labels, background=0, connectivity=1)
    n_cc = int(cc.max())
    if n_cc == 0:
        return labels.copy()
    flat_cc = cc.ravel()
    orig = np.zeros(n_cc + 1, labels.dtype)
    orig[flat_cc] = labels.ravel()
    area = np.bincount(flat_cc, minlength=n_cc + 1)
    ids = np.arange(1, n_cc + 1)
    order = np.lexsort((area[ids], orig[ids]))  # by label, then area ascending
    sorted_ids = ids[order]
    sorted_orig = orig[sorted_ids]
    last = np.r_[sorted_orig[1:] != sorted_orig[:-1], True]
    keep = np.zeros(n_cc + 1, bool)
    keep[sorted_ids[last]] = True
    return np.where(keep[cc], labels, 0).astype(labels.dtype, copy=False)


def relabel_sequential(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber labels to 1..n (raster order of first appearance is not kept; sorted by value).

    Returns ``(new_labels uint32, mapping)`` where ``mapping[old] = new`` (0 for absent).
    """
    present = np.unique(labels)
    present = present[present > 0]
    mapping = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.uint32)
    mapping[present] = np.arange(1, len(present) + 1, dtype=np.uint32)
    return mapping[labels], mapping


def label_areas(labels: np.ndarray) -> np.ndarray:
    """Pixel count per label value (index = label)."""
    return np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)


def label_centroids(labels: np.ndarray) -> np.ndarray:
    """(max_label + 1, 2) centroids (y, x); NaN for absent labels."""
    n = int(labels.max()) + 1
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    yy, xx = np.indices(labels.shape)
    cy = np.bincount(flat, yy.ravel(), minlength=n)
    cx = np.bincount(flat, xx.ravel(), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([cy / area, cx / area], 1)


def clean_labels(labels: np.ndarray, *, min_area_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Make a label image exact: separate touching labels, one component each, no slivers.

    Returns ``(labels uint32 numbered 1..n, mapping)`` where ``mapping[old] = new`` for every
    input value (0 for labels that were dropped).
    """
    out = separate_touching(labels)
    out = keep_largest_component(out)
    area = label_areas(out)
    small = area < min_area_px
    small[0] = False
    if small.any():
        out = np.where(small[out], 0, out)
    new, m = relabel_sequential(out)
    full = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.uint32)
    full[: len(m)] = m[: len(full)]
    return new, full
