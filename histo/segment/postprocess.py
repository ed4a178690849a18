"""From the network's maps to instance labels: seeded watershed, grid change, boundary refinement.

:func:`maps_to_labels` is the watershed step on any grid. When the input image is finer than
the canonical grid (large fibers, fine pixels), the watershed runs on the canonical grid,
where it is cheap, and :func:`upsample_labels` brings the labels to the input grid with
sub-canonical-pixel outlines: the fiber edge where the bilinearly interpolated foreground
probability crosses its threshold, and the border between two touching fibers by a bilinear
vote of the four surrounding canonical pixels (so outlines are smooth lines, not
canonical-pixel staircases). Only the pixels of canonical cells whose corners disagree are
voted on, so the cost is a few passes over the output.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed


def maps_to_labels(maps: np.ndarray, *, fg_threshold: float = 0.5, seed_threshold: float = 0.5,
                   min_area_px: float = 0.0) -> np.ndarray:
    """Instance labels from the network's maps by a seeded watershed.

    Parameters
    ----------
    maps : (3, Y, X) float array
        Foreground probability, boundary probability, normalised distance (see ``histo.segment.net.OUTPUTS``).
    fg_threshold : float
        Foreground probability threshold.
    seed_threshold : float
        Seeds are connected regions of normalised distance above it (each fiber's centre).
    min_area_px : float
        Objects (and seeds) smaller than this are dropped.

    Returns
    -------
    (Y, X) int32 labels, consecutive from 1.

    Examples
    --------
    >>> maps = np.zeros((3, 6, 9), np.float32)
    >>> maps[0, 1:5, 1:8] = 1; maps[2, 2:4, 2:3] = maps[2, 2:4, 6:7] = 1
    >>> maps_to_labels(maps)[2].tolist()
    [0, 1, 1, 1, 1, 2, 2, 2, 0]
    """
    fg_p, bd_p, dist = maps[0], maps[1], maps[2]
    mask = fg_p > fg_threshold
    seeds, n = ndi.label((dist > seed_threshold) & mask)
    if n == 0:
        return np.zeros(mask.shape, np.int32)
    # drop speck seeds (far smaller than any fiber's centre region)
    sizes = np.bincount(seeds.ravel(), minlength=n + 1)
    small = sizes < max(2.0, 0.02 * min_area_px)
    small[0] = False
    if small.any():
        seeds[small[seeds]] = 0
    # flood from the seeds down the distance map; the boundary map sharpens the ridges
    surface = (bd_p - dist).astype(np.float32)
    labels = watershed(surface, seeds, mask=mask)
    return drop_small(labels, min_area_px)


def drop_small(labels: np.ndarray, min_area_px: float) -> np.ndarray:
    """Labels smaller than ``min_area_px`` set to 0, the rest renumbered 1..n (int32).

    Examples
    --------
    >>> drop_small(np.array([[0, 3, 3, 5, 7, 7]]), 2).tolist()
    [[0, 1, 1, 0, 2, 2]]
    """
    sizes = np.bincount(np.asarray(labels).ravel())
    keep = sizes >= max(min_area_px, 1)
    keep[0] = False
    lut = np.where(keep, np.cumsum(keep), 0).astype(np.int32)
    if keep.sum() == len(keep) - 1:  # nothing to drop and already 1..n
        return labels.astype(np.int32, copy=False)
    return lut[labels]


def _source_coords(n_out: int, n_src: int, scale: float):
    """Bilinear source index and weight of each output pixel centre (half-pixel convention)."""
    c = (np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(scale) - 0.5
    c = np.clip(c, 0, n_src - 1)
    i0 = np.minimum(np.floor(c).astype(np.intp), max(n_src - 2, 0))
    w = (c - i0).astype(np.float32)
    i1 = np.minimum(i0 + 1, n_src - 1)
    return i0, i1, w


def upsample_labels(labels: np.ndarray, fg_prob: np.ndarray, shape_yx: tuple[int, int], *,
                    fg_threshold: float, scale: float | None = None) -> np.ndarray:
    """Labels of a coarse grid on a finer grid, with smooth sub-cell outlines.

    Parameters
    ----------
    labels : (y, x) int array
        Labels on the coarse grid.
    fg_prob : (y, x) float array
        Foreground probability on the same grid.
    shape_yx : (int, int)
        Output shape (rows and columns from the top-left corner of the coarse grid).
    fg_threshold : float
        Foreground threshold (of the bilinearly interpolated probability).
    scale : float, optional
        Coarse pixels per output pixel (default ``y / shape_yx[0]``, ``x / shape_yx[1]``); the
        grids share their top-left corner and pixel centres follow the half-pixel convention
        (like OpenCV). With a scale, the output may cover less than the coarse grid.

    Returns
    -------
    (Y, X) int32 labels (values of ``labels``; a label may be absent if it had no foreground).

    Examples
    --------
    >>> lab = np.array([[1, 1, 2, 2]]); fg = np.ones((1, 4), np.float32)
    >>> upsample_labels(lab, fg, (2, 8), fg_threshold=0.5)[0].tolist()
    [1, 1, 1, 1, 2, 2, 2, 2]
    """
    labels = np.asarray(labels, dtype=np.int32)
    hc, wc = labels.shape
    h, w = int(shape_yx[0]), int(shape_yx[1])
    sy = hc / h if scale is None else float(scale)
    sx = wc / w if scale is None else float(scale)
    y0, y1, wy = _source_coords(h, hc, sy)
    x0, x1, wx = _source_coords(w, wc, sx)
    # the whole coarse grid at the output scale (OpenCV uses the same pixel-centre convention)
    full_h, full_w = max(h, int(round(hc / sy))), max(w, int(round(wc / sx)))
    # nearest coarse pixel everywhere (exact inside cells whose four corners agree)
    out = cv2.resize(labels, (full_w, full_h), interpolation=cv2.INTER_NEAREST_EXACT)[:h, :w]
    # cells whose corners disagree: bilinear vote among their non-zero labels
    if hc > 1 and wc > 1:
        a, b, c, d = labels[:-1, :-1], labels[:-1, 1:], labels[1:, :-1], labels[1:, 1:]
        mixed = ~((a == b) & (a == c) & (a == d))
        cy, cx = np.minimum(y0, hc - 2), np.minimum(x0, wc - 2)
        band_y, band_x = np.nonzero(np.take(np.take(mixed, cy, axis=0), cx, axis=1))
        if band_y.size:
            py0, py1, pwy = y0[band_y], y1[band_y], wy[band_y]
            px0, px1, pwx = x0[band_x], x1[band_x], wx[band_x]
            cand = np.stack([labels[py0, px0], labels[py0, px1], labels[py1, px0], labels[py1, px1]])
            wts = np.stack([(1 - pwy) * (1 - pwx), (1 - pwy) * pwx, pwy * (1 - pwx), pwy * pwx])
            wts = np.where(cand > 0, wts, 0)
            score = np.stack([(wts * (cand == cand[k])).sum(0) for k in range(4)])
            out[band_y, band_x] = cand[score.argmax(0), np.arange(cand.shape[1])]
    fg = cv2.resize(np.ascontiguousarray(fg_prob, dtype=np.float32), (full_w, full_h),
                    interpolation=cv2.INTER_LINEAR)[:h, :w]
    out[fg <= fg_threshold] = 0
    return out
