"""Label images <-> polygons, exactly, in one documented pixel convention.

Convention (the one ImageJ and QuPath use): polygon coordinates are ``(x, y)`` in pixels of
the label grid with **pixel corners at integers**; pixel ``(row r, column c)`` is the unit
square ``[c, c+1) x [r, r+1)`` and its centre is ``(c + 0.5, r + 0.5)``. A polygon covers a
pixel when it contains the pixel's **centre** (even-odd rule when a shape has several rings,
so holes and composite ROIs work).

:func:`label_polygons` traces each label's outer boundary along the pixel edges ("cracks"),
like ImageJ's wand tool, keeping only the corners. Rasterising such an outline with
:func:`polygons_to_labels` gives back exactly the label's pixels, as long as the label is one
4-connected piece without holes: holes are filled (the *outer* contour is returned), and of a
label split into several pieces only the largest piece is kept (logged at debug level).
:func:`label_shapes` keeps the holes (rings of opposite orientation) and every piece, which
the even-odd rule of :func:`polygons_to_labels` turns back into exactly the label's pixels.
Where two pixels of a label touch only at a corner inside the outline, the outline cuts that
corner diagonally through the pixel edges' midpoints so that it never touches itself
(a valid simple polygon for QuPath/JTS); the rasterised pixels are still exact.

Examples
--------
>>> import numpy as np
>>> lab = np.zeros((4, 5), np.uint32)
>>> lab[1:3, 1:4] = 7
>>> rings = label_polygons(lab)
>>> rings[7].tolist()
[[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]]
>>> bool((polygons_to_labels(rings, lab.shape) == lab).all())
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

logger = logging.getLogger(__name__)

__all__ = ["label_polygons", "label_shapes", "polygons_to_labels", "rasterize_rings", "ring_area"]

#: Above this many labels-or-max-label, find_objects on raw ids is replaced by compact ids.
_MAX_DIRECT_LABEL = 10_000_000
#: Work array budget (rows x edges) of the scanline filler.
_SCANLINE_BUDGET = 2_000_000


def ring_area(ring: np.ndarray) -> float:
    """Signed area of a closed ring of ``(x, y)`` vertices (shoelace formula).

    Positive for the orientation :func:`label_polygons` returns (clockwise on screen, where
    y points down). The last vertex may repeat the first or not.

    Examples
    --------
    >>> ring_area(np.array([[0, 0], [2, 0], [2, 3], [0, 3]]))
    6.0
    """
    ring = np.asarray(ring, dtype=np.float64)
    x, y = ring[:, 0], ring[:, 1]
    return float(0.5 * (np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0]))


def _next(a: np.ndarray) -> np.ndarray:
    """Cyclic successor of every row (np.roll(a, -1, axis=0) without its overhead)."""
    return np.concatenate([a[1:], a[:1]])


def _prev(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[-1:], a[:-1]])


def _compact_objects(labels: np.ndarray) -> tuple[np.ndarray, list]:
    """Label ids present and their bounding slices (find_objects without a huge id table)."""
    max_label = int(labels.max()) if labels.size else 0
    if max_label == 0:
        return np.empty(0, np.int64), []
    if max_label <= _MAX_DIRECT_LABEL:
        slices = ndi.find_objects(labels)
        ids = np.array([i + 1 for i, s in enumerate(slices) if s is not None], np.int64)
        return ids, [slices[i - 1] for i in ids]
    ids, inverse = np.unique(labels, return_inverse=True)
    compact = inverse.reshape(labels.shape)
    if ids[0] == 0:
        ids = ids[1:]
    else:
        compact = compact + 1
    return ids.astype(np.int64), ndi.find_objects(compact)


def _crack_outline(contour: np.ndarray) -> np.ndarray:
    """Marching-squares contour at level 0.5 -> exact pixel-edge outline, corners only.

    ``contour`` is (row, col) in corner coordinates, every vertex on a pixel edge midpoint.
    A diagonal step between two consecutive midpoints cuts a pixel corner; the corner is put
    back (its y from the point lying on a horizontal edge, its x from the other), unless the
    same corner would be visited twice (two pixels touching only at that corner), where the
    diagonal cut is kept so the outline stays a simple polygon.
    """
    pts = contour[:-1] if np.array_equal(contour[0], contour[-1]) else contour
    nxt = _next(pts)
    diag = (pts[:, 0] != nxt[:, 0]) & (pts[:, 1] != nxt[:, 1])
    y_on_edge = pts[:, 0] == np.round(pts[:, 0])
    corner_y = np.where(y_on_edge, pts[:, 0], nxt[:, 0])
    corner_x = np.where(y_on_edge, nxt[:, 1], pts[:, 1])
    idx = np.flatnonzero(diag)
    if idx.size > 1:  # a corner visited twice: keep the diagonal cut there
        keys = corner_y[idx].astype(np.int64) * (int(corner_x[idx].max()) + 2) + corner_x[idx].astype(np.int64)
        order = np.argsort(keys, kind="stable")
        same = keys[order][1:] == keys[order][:-1]
        if same.any():
            dup = np.zeros(idx.size, bool)
            dup[order[1:][same]] = True
            dup[order[:-1][same]] = True
            diag[idx[dup]] = False
    counts = 1 + diag.astype(np.int64)
    out = np.empty((int(counts.sum()), 2), np.float64)
    start = np.cumsum(counts) - counts
    out[start] = pts
    out[start[diag] + 1] = np.stack([corner_y[diag], corner_x[diag]], axis=1)
    # Keep only vertices where the direction changes (drop edge midpoints on straight runs).
    d_in, d_out = out - _prev(out), _next(out) - out
    cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
    out = out[np.abs(cross) > 1e-9]
    return out[:, ::-1].copy()  # (row, col) -> (x, y)


def label_polygons(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Outer outline of every label, traced along pixel edges.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Instance labels, 0 = background.

    Returns
    -------
    dict of int -> ndarray of float64, shape (n, 2)
        For every label present, its outline as ``(x, y)`` vertices in pixel-corner
        coordinates (see the module docstring), not closed (first vertex not repeated),
        starting at the top-left vertex, positive :func:`ring_area`. Labels in increasing order.
        Holes are filled; :func:`label_shapes` keeps them.

    Examples
    --------
    >>> lab = np.zeros((3, 3), np.uint8); lab[1, 1] = 1
    >>> label_polygons(lab)[1].tolist()
    [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]]
    """
    return {k: rings[0] for k, rings in _trace_labels(labels, holes=False).items()}


def label_shapes(labels: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Outline of every label with its holes and all its pieces.

    For each 4-connected piece of a label, largest first: its outer ring (positive
    :func:`ring_area`), then one ring per hole (background, or another label, enclosed by the
    piece) with the opposite orientation (negative area), as GeoJSON (Polygon interior rings)
    and ImageJ composite ROIs expect. The first ring is that of :func:`label_polygons`. A
    positive ring thus starts a piece and the negative rings after it are its holes
    (a GeoJSON ``MultiPolygon`` when there are several pieces). Rasterising all the rings of
    a label with the even-odd rule (:func:`polygons_to_labels`) gives back exactly its pixels.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)

    Returns
    -------
    dict of int -> list of ndarray (n, 2)
        Labels in increasing order; a label without holes has a list of one ring.

    Examples
    --------
    >>> lab = np.zeros((5, 5), np.uint8); lab[1:4, 1:4] = 2; lab[2, 2] = 0
    >>> [ring_area(r) for r in label_shapes(lab)[2]]
    [9.0, -1.0]
    >>> bool((polygons_to_labels(label_shapes(lab), lab.shape) == lab).all())
    True
    """
    return _trace_labels(labels, holes=True)


def _ring(contour: np.ndarray, offset_rc: np.ndarray, outer: bool) -> np.ndarray:
    """A marching-squares contour of a padded crop -> crack ring on the label grid, oriented
    positive (outer) or negative (hole), starting at its top-left vertex."""
    ring = _crack_outline(contour + offset_rc)
    if (ring_area(ring) < 0) == outer:
        ring = ring[::-1]
    first = int(np.lexsort((ring[:, 0], ring[:, 1]))[0])  # start at the top-left vertex
    return np.roll(ring, -first, axis=0)


def _trace_labels(labels: np.ndarray, *, holes: bool) -> dict[int, list[np.ndarray]]:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "biu":
        raise ValueError(f"labels must be a 2-D integer array, got {labels.dtype} of shape {labels.shape}")
    ids, slices = _compact_objects(labels)
    out: dict[int, list[np.ndarray]] = {}
    for lab, sl in zip(ids.tolist(), slices):
        ys, xs = sl
        padded = np.zeros((ys.stop - ys.start + 2, xs.stop - xs.start + 2), np.float32)
        padded[1:-1, 1:-1] = labels[ys, xs] == lab
        contours = measure.find_contours(padded, 0.5, fully_connected="low")
        if not contours:  # pragma: no cover - a present label always has a contour
            continue
        # padded-crop centre coordinates -> label-grid corner coordinates
        offset = np.array([ys.start - 1 + 0.5, xs.start - 1 + 0.5])
        if not holes:
            if len(contours) > 1:
                logger.debug("label %d has %d contours (pieces or holes); keeping the outer one",
                             lab, len(contours))
            best = max(contours, key=lambda c: abs(ring_area(c)))
            out[int(lab)] = [_ring(best, offset, outer=True)]
            continue
        groups = [contours]
        if len(contours) > 1:
            pieces, n = ndi.label(padded > 0)  # 4-connected, as the contours see them
            if n > 1:
                groups = [measure.find_contours((pieces == i).astype(np.float32), 0.5,
                                                fully_connected="low") for i in range(1, n + 1)]
        rings = []
        for group in sorted(groups, key=lambda cs: -max(abs(ring_area(c)) for c in cs)):
            k = int(np.argmax([abs(ring_area(c)) for c in group]))  # a piece's outer contour
            rings.append(_ring(group[k], offset, outer=True))
            rings += [_ring(c, offset, outer=False) for i, c in enumerate(group) if i != k]
        out[int(lab)] = rings
    return out


def _as_rings(shape_rings) -> list[np.ndarray]:
    """One ring (n, 2) or a sequence of rings -> list of float arrays of shape (n, 2)."""
    if isinstance(shape_rings, np.ndarray) and shape_rings.ndim == 2:
        rings = [shape_rings]
    else:
        seq = list(shape_rings)
        if seq and np.asarray(seq[0], dtype=np.float64).ndim == 1:
            rings = [np.asarray(seq, dtype=np.float64)]
        else:
            rings = [np.asarray(r, dtype=np.float64) for r in seq]
    for ring in rings:
        if ring.ndim != 2 or ring.shape[1] != 2:
            raise ValueError(f"a polygon ring must have shape (n, 2) of (x, y), got {ring.shape}")
    return [r for r in rings if len(r) >= 3]


def rasterize_rings(rings, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose centre lies inside a shape made of one or more rings (even-odd rule).

    Parameters
    ----------
    rings : ndarray (n, 2) or sequence of them
        ``(x, y)`` vertices in pixel-corner coordinates; rings may be closed or not. Several
        rings combine with the even-odd rule (a ring inside another is a hole).
    shape : (int, int)
        ``(Y, X)`` of the raster; pixels outside are clipped.

    Returns
    -------
    rows, cols : ndarray of intp
        Indices of the covered pixels.

    Examples
    --------
    >>> rr, cc = rasterize_rings(np.array([[0, 0], [2, 0], [2, 1], [0, 1]]), (3, 3))
    >>> rr.tolist(), cc.tolist()
    ([0, 0], [0, 1])
    """
    rings = _as_rings(rings)
    height, width = int(shape[0]), int(shape[1])
    empty = (np.empty(0, np.intp), np.empty(0, np.intp))
    if not rings:
        return empty
    p0 = np.concatenate(rings)
    p1 = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
    keep = p0[:, 1] != p1[:, 1]  # horizontal edges never cross a scanline
    x0, y0, x1, y1 = p0[keep, 0], p0[keep, 1], p1[keep, 0], p1[keep, 1]
    if x0.size == 0:
        return empty
    slope = (x1 - x0) / (y1 - y0)
    r_lo = max(int(np.ceil(min(y0.min(), y1.min()) - 0.5)), 0)
    r_hi = min(int(np.floor(max(y0.max(), y1.max()) - 0.5)), height - 1)
    rows_out, cols_out = [], []
    step = max(1, _SCANLINE_BUDGET // x0.size)
    for b0 in range(r_lo, r_hi + 1, step):
        rows = np.arange(b0, min(b0 + step, r_hi + 1))
        yc = rows[:, None] + 0.5
        crosses = (y0[None, :] <= yc) != (y1[None, :] <= yc)
        xs = np.where(crosses, x0[None, :] + (yc - y0[None, :]) * slope[None, :], np.inf)
        xs.sort(axis=1)
        n_cross = crosses.sum(axis=1)
        n_pairs = int(n_cross.max()) // 2
        if n_pairs == 0:
            continue
        left = xs[:, 0 : 2 * n_pairs : 2]
        right = xs[:, 1 : 2 * n_pairs : 2]
        valid = np.isfinite(right)
        start = np.clip(np.ceil(left - 0.5), 0, width)
        stop = np.clip(np.ceil(right - 0.5), 0, width)
        valid &= stop > start
        row_idx = np.broadcast_to(rows[:, None], left.shape)[valid]
        start, stop = start[valid].astype(np.intp), stop[valid].astype(np.intp)
        lengths = stop - start
        total = int(lengths.sum())
        if total == 0:
            continue
        run_of = np.repeat(np.arange(lengths.size), lengths)
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows_out.append(row_idx[run_of].astype(np.intp))
        cols_out.append(start[run_of] + offsets)
    if not rows_out:
        return empty
    return np.concatenate(rows_out), np.concatenate(cols_out)


def polygons_to_labels(
    polygons: Mapping[int, object] | Iterable[tuple[int, object]],
    shape: Sequence[int],
    *,
    dtype=np.uint32,
) -> np.ndarray:
    """Rasterise polygons into a label image.

    Parameters
    ----------
    polygons : mapping label -> rings, or iterable of (label, rings)
        ``rings`` is one ``(n, 2)`` array of ``(x, y)`` or a sequence of rings combined with
        the even-odd rule (outer ring plus holes, or every ring of a MultiPolygon).
        Coordinates follow the pixel-corner convention of this module.
    shape : (int, int)
        ``(Y, X)`` of the label image.
    dtype : numpy dtype, default uint32

    Returns
    -------
    ndarray, shape ``shape``
        Where polygons overlap, the one drawn **later** wins.

    Examples
    --------
    >>> sq = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    >>> polygons_to_labels({3: sq}, (3, 3)).tolist()
    [[3, 3, 0], [3, 3, 0], [0, 0, 0]]
    """
    shape = (int(shape[0]), int(shape[1]))
    out = np.zeros(shape, dtype=dtype)
    items = polygons.items() if isinstance(polygons, Mapping) else polygons
    for label, rings in items:
        rr, cc = rasterize_rings(rings, shape)
        out[rr, cc] = label
    return out
