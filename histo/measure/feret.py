"""Feret diameters and convex area of a digitised fiber, by rotating calipers.

Convention
----------
A fiber is a set of pixels; pixel ``(row, col)`` has its centre at ``(x, y) = (col, row)``.
Its outline for calipers is the convex hull of the **pixel-edge midpoints**: every boundary
pixel centre moved half a pixel up, down, left and right. This is the convex hull of the
half-level iso-contour of the mask (the outline ``skimage.measure.find_contours(mask, 0.5)``
draws), i.e. the convex hull of the pixel centres grown by a diamond of half-diagonal 0.5 px.

Why this one: the hull of pixel *centres* is about one pixel too narrow (an axis-aligned
square of side ``s`` pixels measures ``s - 1``) and the hull of pixel *corners* about one
pixel too wide in oblique directions (a square turned by 45 degrees measures up to
``s + 1.4``). The edge-midpoint hull sits between the two: an ``s`` x ``s`` square measures
exactly ``s`` when axis-aligned and ``s`` within 1 px at any rotation, and a digitised disk of
radius ``r`` (pixels whose centre lies within ``r``) has a minimum Feret of ``2r`` within 1 px
and a maximum Feret of ``2r`` to ``2r + 1`` (see ``tests/test_feret.py``).

The **convex area** (for solidity) counts the pixel centres inside or on the hull of the
pixel centres, exactly, by Pick's theorem, so a digitally convex fiber has solidity 1.

The midpoint hull is never built: it is the Minkowski sum of the centre hull ``A`` and the
diamond ``D``, whose width in every direction is the sum of the two widths, so the minimum
width is the smallest of ``w_A(n) + w_D(n)`` over the edge normals ``n`` of ``A`` and of ``D``
(the diagonals), and the diameter is the largest ``|p - q + delta|`` over the antipodal
vertex pairs ``(p, q)`` of ``A`` and the diamond diagonals ``delta``. Every function works
on many hulls at once (:mod:`histo.measure._ragged` layout), so thousands of fibers cost a few numpy
passes.
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.measure._ragged import next_index, segment_ids


def convex_hull_xy(points_xy: np.ndarray) -> np.ndarray:
    """Convex hull of integer pixel centres, counter-clockwise, no repeated vertex.

    Parameters
    ----------
    points_xy : (N, 2) int array
        Pixel centres as ``(x, y)`` = ``(col, row)``, N >= 1.

    Returns
    -------
    (K, 2) int64 array
        Hull vertices (K = 1 for a single point, 2 for collinear points).

    Examples
    --------
    >>> convex_hull_xy(np.array([[0, 0], [2, 0], [1, 1], [2, 2], [0, 2]])).shape
    (4, 2)
    """
    pts = np.ascontiguousarray(points_xy, dtype=np.int32).reshape(-1, 1, 2)
    hull = cv2.convexHull(pts, clockwise=False).reshape(-1, 2).astype(np.int64)
    if len(hull) > 1:
        keep = np.any(hull != np.concatenate([hull[1:], hull[:1]]), axis=1)
        hull = hull[keep] if keep.any() else hull[:1]
    return hull


def lattice_areas_px(hulls: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Number of pixel centres inside or on each hull (vertices at pixel centres).

    Pick's theorem: points = A + B/2 + 1, with A the polygon area and B the number of lattice
    points on its boundary (the sum of ``gcd(|dx|, |dy|)`` over its edges). Exact, also for a
    single point (1) or a segment (its pixel count).
    """
    h = np.asarray(hulls, dtype=np.int64).reshape(-1, 2)
    if len(offsets) < 2:
        return np.zeros(0)
    nxt = h[next_index(offsets)]
    cross = h[:, 0] * nxt[:, 1] - nxt[:, 0] * h[:, 1]
    steps = np.gcd(np.abs(nxt[:, 0] - h[:, 0]), np.abs(nxt[:, 1] - h[:, 1]))
    starts = offsets[:-1]
    twice_area = np.abs(np.add.reduceat(cross, starts))
    boundary = np.add.reduceat(steps, starts)
    return twice_area / 2.0 + boundary / 2.0 + 1.0


def lattice_area_px(hull_xy: np.ndarray) -> float:
    """:func:`lattice_areas_px` of one hull.

    Examples
    --------
    >>> lattice_area_px(np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))  # a 3 x 3 block
    9.0
    """
    h = np.asarray(hull_xy).reshape(-1, 2)
    return float(lattice_areas_px(h, np.array([0, len(h)]))[0])


def caliper_widths(polygons: np.ndarray, offsets: np.ndarray, *,
                   pixel_outline: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum caliper width of many convex polygons, by rotating calipers.

    For every edge the caliper pair is flush with that edge; its antipodal vertex (the vertex
    whose normal cone contains the opposite direction) is found for all edges of all polygons
    at once with one binary search on the monotone edge angles. The minimum width is the
    smallest edge-to-antipode distance (a minimum-width caliper is always flush with an edge);
    the maximum is the largest distance over the antipodal vertex pairs (both ends of each
    edge against its antipode and the antipode's neighbours, which covers parallel edges).

    Parameters
    ----------
    polygons : (P, 2) array
        Vertices of convex polygons, counter-clockwise (as :func:`convex_hull_xy` returns
        them; clockwise ones are reversed), no repeated vertex; collinear is allowed.
    offsets : (n + 1,) int array
        Polygon ``i`` is ``polygons[offsets[i]:offsets[i + 1]]``.
    pixel_outline : bool
        Measure the Minkowski sum with the half-pixel diamond (the pixel-edge-midpoint
        convention of this module) instead of the polygon itself.

    Returns
    -------
    min_width, max_width : (n,) float arrays
    """
    p = np.asarray(polygons, dtype=np.float64).reshape(-1, 2)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    starts, counts = offsets[:-1], np.diff(offsets)
    sid = segment_ids(offsets)
    p = _counter_clockwise(p, offsets, sid)
    nxt = next_index(offsets)
    edges = p[nxt] - p
    length = np.hypot(edges[:, 0], edges[:, 1])
    angle = np.arctan2(edges[:, 1], edges[:, 0])
    # make the edge angles increase within each polygon (one wrap of 2 pi around it)
    jump = np.zeros(len(p))
    jump[1:] = np.diff(angle) < -np.pi
    jump[starts] = 0
    wraps = np.cumsum(jump)
    angle += 2 * np.pi * (wraps - wraps[starts][sid])
    # all polygons' angles, each polygon twice (second copy + 2 pi), in one sorted key
    big = 8 * np.pi
    local = np.arange(len(p)) - starts[sid]
    key = np.empty(2 * len(p))
    first = 2 * starts[sid] + local
    key[first] = angle + big * sid
    key[first + counts[sid]] = angle + 2 * np.pi + big * sid
    pos = np.searchsorted(key, angle + np.pi + big * sid, side="left")
    k_local = (pos - 2 * starts[sid]) % counts[sid]
    k = starts[sid] + k_local
    rel = p[k] - p
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.abs(edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]) / length
        nx, ny = edges[:, 1] / length, -edges[:, 0] / length  # unit normals
    if pixel_outline:
        width = width + np.maximum(np.abs(nx), np.abs(ny))
    width = np.where(length > 0, width, np.inf)
    min_w = np.minimum.reduceat(width, starts)
    if pixel_outline:  # the diamond's own edge normals, the two diagonals
        for u in (np.array([1.0, 1.0]), np.array([1.0, -1.0])):
            proj = p @ (u / np.sqrt(2.0))
            w = np.maximum.reduceat(proj, starts) - np.minimum.reduceat(proj, starts)
            min_w = np.minimum(min_w, w + np.sqrt(0.5))
    min_w = np.where(np.isfinite(min_w), min_w, 0.0)  # a single point
    # diameter over antipodal pairs
    best = np.zeros(len(p))
    for a in (np.arange(len(p)), nxt):
        for dk in (-1, 0, 1):
            b = starts[sid] + (k_local + dk) % counts[sid]
            v = p[a] - p[b]
            d2 = v[:, 0] ** 2 + v[:, 1] ** 2
            if pixel_outline:
                d2 = d2 + 2.0 * np.maximum(np.abs(v[:, 0]), np.abs(v[:, 1])) + 1.0
            best = np.maximum(best, d2)
    max_w = np.sqrt(np.maximum.reduceat(best, starts))
    return min_w, max_w


def calipers(polygon_xy: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum caliper width of one convex polygon (see :func:`caliper_widths`).

    Examples
    --------
    >>> calipers(np.array([[0, 0], [4, 0], [4, 3], [0, 3]], float))
    (3.0, 5.0)
    """
    p = np.asarray(polygon_xy, dtype=np.float64).reshape(-1, 2)
    lo, hi = caliper_widths(p, np.array([0, len(p)]))
    return float(lo[0]), float(hi[0])


def feret_diameters_batch(hulls: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max Feret diameters (px) of many fibers from their pixel-centre hulls."""
    return caliper_widths(hulls, offsets, pixel_outline=True)


def feret_diameters_px(hull_xy: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum Feret diameter in pixels of a fiber given its pixel-centre hull.

    Uses the pixel-edge-midpoint convention of this module (see the module docstring).

    Examples
    --------
    >>> dmin, dmax = feret_diameters_px(np.array([[0, 0], [9, 0], [9, 9], [0, 9]]))  # 10 x 10 px
    >>> dmin, round(dmax, 2)
    (10.0, 13.45)
    """
    h = np.asarray(hull_xy).reshape(-1, 2)
    lo, hi = feret_diameters_batch(h, np.array([0, len(h)]))
    return float(lo[0]), float(hi[0])


def _counter_clockwise(p: np.ndarray, offsets: np.ndarray, sid: np.ndarray) -> np.ndarray:
    """Reverse the vertex order of the clockwise polygons."""
    nxt = p[next_index(offsets)]
    area2 = np.add.reduceat(p[:, 0] * nxt[:, 1] - nxt[:, 0] * p[:, 1], offsets[:-1])
    flip = area2 < 0
    if not flip.any():
        return p
    starts, ends = offsets[:-1], offsets[1:]
    idx = np.arange(len(p))
    rev = starts[sid] + ends[sid] - 1 - idx
    return p[np.where(flip[sid], rev, idx)]


__all__ = ["convex_hull_xy", "lattice_areas_px", "lattice_area_px", "caliper_widths",
           "calipers", "feret_diameters_batch", "feret_diameters_px"]
