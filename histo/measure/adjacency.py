"""The fiber neighbour graph: which fibers touch, or face each other across the endomysium.

Definition: two fibers are neighbours when the gap between them is at most ``max_gap_px``
pixels and no other fiber lies in between. The *gap* between two pixels is their
centre-to-centre distance minus one pixel (so fibers sharing a border have gap 0 and fibers
with ``g`` background pixels between them along a row or column have gap ``g``).

Computed in one vectorised pass, independent of the number of fibers:

1. every background pixel within ``max_gap_px`` of a fiber is given to its nearest fiber,
   with its distance ``d`` to it (a distance transform with nearest-pixel labels, as
   ``skimage.segmentation.expand_labels`` does; fiber pixels have ``d = 0``). The
   nearest-fiber rule keeps a fiber from reaching past its neighbour to the next one;
2. for every pair of adjacent pixels ``p``, ``q`` (4 directions: right, down and both
   diagonals, step ``l`` = 1 or sqrt 2) given to different fibers, the path fiber -> p -> q ->
   fiber has gap ``d_p + l + d_q - 1``; the two fibers are neighbours when that is at most
   ``max_gap_px``. This is exact for gaps along rows, columns and diagonals and never
   smaller than the true gap otherwise.

Cost: a distance transform and four shifted comparisons of the label image (about a second
for 36 million pixels and 10,000 fibers).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.labels import check_labels

log = logging.getLogger(__name__)


def gap_in_pixels(max_gap_um: float, pixel_size_um: float | None, *, default_px: float = 3) -> int:
    """The adjacency gap in whole pixels: ``round(max_gap_um / pixel_size_um)``, at least 1.

    ``default_px`` is used when the pixel size is unknown.

    Examples
    --------
    >>> gap_in_pixels(3.0, 0.5)
    6
    >>> gap_in_pixels(3.0, None)
    3
    """
    if pixel_size_um is None:
        return max(1, int(round(default_px)))
    return max(1, int(round(float(max_gap_um) / float(pixel_size_um))))


def fiber_adjacency(labels: np.ndarray, *, max_gap_px: float = 2) -> np.ndarray:
    """Edges of the fiber neighbour graph.

    Parameters
    ----------
    labels : (Y, X) integer array
        Instance labels, 0 = background.
    max_gap_px : float, default 2
        Largest background gap, in pixels, across which two fibers still count as neighbours
        (0: only fibers that share a border).

    Returns
    -------
    (E, 2) int64 array
        Unique label pairs ``(a, b)`` with ``a < b``, sorted; shape ``(0, 2)`` when none.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 2, 2, 0, 0, 0, 3]])
    >>> fiber_adjacency(lab, max_gap_px=2).tolist()
    [[1, 2]]
    >>> fiber_adjacency(lab, max_gap_px=3).tolist()
    [[1, 2], [2, 3]]
    """
    labels = check_labels(labels, floats=False)
    if not np.isfinite(max_gap_px) or max_gap_px < 0:
        raise HistoInputError(f"max_gap_px must be a number >= 0, got {max_gap_px!r}")
    if labels.size == 0 or not labels.any():
        return np.empty((0, 2), np.int64)
    gap = float(max_gap_px)
    if gap >= 1.0:
        grown, dist = grow_labels(labels, gap)
    else:  # nothing to grow: only contacts (and diagonal contacts when gap >= sqrt 2 - 1)
        grown, dist = labels, np.zeros(labels.shape, np.float32)
    return _close_pairs(grown, dist, gap)


def degree(edges: np.ndarray, labels_of_rows: np.ndarray) -> np.ndarray:
    """Number of neighbours of each label in ``labels_of_rows`` (0 for labels not in a pair).

    Examples
    --------
    >>> degree(np.array([[1, 2], [2, 3]]), np.array([1, 2, 3, 4])).tolist()
    [1, 2, 1, 0]
    """
    ids = np.asarray(labels_of_rows, dtype=np.int64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    ends = edges.ravel()
    order = np.argsort(ids)
    pos = np.searchsorted(ids, ends, sorter=order)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[order[pos]] == ends
    counts = np.bincount(order[pos[found]], minlength=len(ids))
    return counts.astype(np.int64)


def grow_labels(labels: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Grow every label into the background up to ``radius`` px; the nearest label wins.

    Like ``skimage.segmentation.expand_labels``, but with OpenCV's nearest-pixel distance
    transform (5x5 chamfer approximation of the Euclidean distance, exact along rows and
    columns, within ~2 % otherwise), several times faster on large images.

    Returns
    -------
    grown : array like ``labels``
    distance : (Y, X) float32 array
        Distance of each pixel to the nearest fiber pixel (0 on fibers); only meaningful
        where ``grown`` is not 0.
    """
    background = labels == 0
    if not background.any():
        return labels, np.zeros(labels.shape, np.float32)
    nearest = _nearest_fiber_pixel_labels(labels, background)
    out = labels.copy()
    if nearest is None:  # unexpected OpenCV behaviour: exact but slower scipy path
        dist, idx = ndi.distance_transform_edt(background, return_indices=True)
        dist = dist.astype(np.float32)
        take = background & (dist <= radius)
        out[take] = labels[idx[0][take], idx[1][take]]
        return out, dist
    dist, idx, lut = nearest
    take = background & (dist <= radius)
    out[take] = lut[idx[take]]
    return out, dist


def _nearest_fiber_pixel_labels(labels: np.ndarray, background: np.ndarray):
    """(distance, nearest fiber pixel number, number -> label lookup) via OpenCV, or None.

    ``cv2.distanceTransformWithLabels`` with ``DIST_LABEL_PIXEL`` numbers the zero pixels
    (here: fiber pixels) 1, 2, ... in raster order; the order is checked on the first and
    last fiber pixels before it is relied on.
    """
    if labels.shape[0] >= 2**15 or labels.shape[1] >= 2**15 or labels.size >= 2**31 - 1:
        return None
    src = np.ascontiguousarray(background).view(np.uint8)
    dist, idx = cv2.distanceTransformWithLabels(
        src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    fiber_values = labels[~background]  # raster order
    flat_bg = background.ravel()
    first = int(np.argmin(flat_bg))
    last = flat_bg.size - 1 - int(np.argmin(flat_bg[::-1]))
    idx_flat = idx.ravel()
    if idx_flat[first] != 1 or idx_flat[last] != len(fiber_values):
        log.debug("cv2 pixel-label order not as expected; using scipy's distance transform")
        return None
    lut = np.concatenate([np.zeros(1, labels.dtype), fiber_values])
    return dist, idx, lut


_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, np.sqrt(2.0)), (1, -1, np.sqrt(2.0)))


def _shifted(a: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Views of ``a`` at p and at p + (dy, dx) over the pixels where both exist."""
    h, w = a.shape
    x0, x1 = (0, w - dx) if dx >= 0 else (-dx, w)
    return a[0:h - dy, x0:x1], a[dy:h, x0 + dx:x1 + dx]


def _close_pairs(grown: np.ndarray, dist: np.ndarray, gap: float) -> np.ndarray:
    """Unique (a < b) label pairs of adjacent pixels whose path gap is at most ``gap``."""
    top = int(grown.max())
    if top >= 2**31:  # codes below would overflow int64: compact the labels first
        values, inverse = np.unique(grown, return_inverse=True)
        if values[0] != 0:  # keep 0 as background in the compact numbering
            values, inverse = np.concatenate([[0], values]), inverse + 1
        pairs = _close_pairs(inverse.reshape(grown.shape).astype(np.int64), dist, gap)
        return values[pairs].astype(np.int64) if len(pairs) else pairs
    chunks = []
    for dy, dx, step in _STEPS:
        a, b = _shifted(grown, dy, dx)
        ys, xs = np.nonzero(a != b)  # few pixels: only where regions meet
        u = a[ys, xs].astype(np.int64)
        v = b[ys, xs].astype(np.int64)
        da, db = _shifted(dist, dy, dx)
        hit = (u != 0) & (v != 0)
        hit[hit] = da[ys[hit], xs[hit]] + db[ys[hit], xs[hit]] + (step - 1.0) <= gap + 1e-3
        if hit.any():
            u, v = u[hit], v[hit]
            chunks.append(np.unique(np.minimum(u, v) * (top + 1) + np.maximum(u, v)))
    if not chunks:
        return np.empty((0, 2), np.int64)
    codes = np.unique(np.concatenate(chunks))
    return np.column_stack([codes // (top + 1), codes % (top + 1)]).astype(np.int64)
