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
"""

from __future__ import annotations

import cv2
import numpy as np

#: The half-pixel diamond added to every hull vertex (x, y): the pixel-edge midpoints.
_DIAMOND = np.array([[0.5, 0.0], [0.0, 0.5], [-0.5, 0.0], [0.0, -0.5]])


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
    return _dedupe_closed(hull)


def lattice_area_px(hull_xy: np.ndarray) -> float:
    """Number of pixel centres inside or on a hull whose vertices are pixel centres.

    Pick's theorem: points = A + B/2 + 1, with A the polygon area and B the number of lattice
    points on its boundary (the sum of ``gcd(|dx|, |dy|)`` over its edges). Exact, also for a
    single point (1) or a segment (its pixel count).

    Examples
    --------
    >>> lattice_area_px(np.array([[0, 0], [2, 0], [2, 2], [0, 2]]))  # a 3 x 3 block
    9.0
    """
    h = np.asarray(hull_xy, dtype=np.int64).reshape(-1, 2)
    nxt = np.concatenate([h[1:], h[:1]])
    twice_area = abs(int(np.sum(h[:, 0] * nxt[:, 1] - nxt[:, 0] * h[:, 1])))
    boundary = int(np.gcd(np.abs(nxt[:, 0] - h[:, 0]), np.abs(nxt[:, 1] - h[:, 1])).sum())
    return twice_area / 2.0 + boundary / 2.0 + 1.0


def pixel_outline_hull(hull_xy: np.ndarray) -> np.ndarray:
    """Convex hull of the pixel-edge midpoints around a hull of pixel centres (float, CCW)."""
    h = np.asarray(hull_xy, dtype=np.float64).reshape(-1, 2)
    pts = (h[:, None, :] + _DIAMOND[None, :, :]).reshape(-1, 2).astype(np.float32)
    out = cv2.convexHull(pts.reshape(-1, 1, 2), clockwise=False).reshape(-1, 2).astype(np.float64)
    return _dedupe_closed(out)


def calipers(polygon_xy: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum caliper width of a convex polygon, by rotating calipers.

    For every hull edge the caliper pair is flush with that edge; its antipodal vertex (the
    vertex whose normal cone contains the opposite direction) is found for all edges at once
    with a binary search on the monotone edge angles, so the whole sweep is vectorised. The
    minimum width is the smallest edge-to-antipode distance (a minimum-width caliper is always
    flush with an edge); the maximum is the largest distance over the antipodal vertex pairs.

    Parameters
    ----------
    polygon_xy : (K, 2) array
        Vertices of a convex polygon in order (either orientation), no repeated vertex.

    Returns
    -------
    (min_width, max_width) : tuple of float
        (0, 0) for one point; (0, length) for a segment.

    Examples
    --------
    >>> calipers(np.array([[0, 0], [4, 0], [4, 3], [0, 3]], float))
    (3.0, 5.0)
    """
    p = np.asarray(polygon_xy, dtype=np.float64).reshape(-1, 2)
    n = len(p)
    if n == 1:
        return 0.0, 0.0
    if n == 2:
        return 0.0, float(np.hypot(*(p[1] - p[0])))
    edges = np.concatenate([p[1:], p[:1]]) - p
    area2 = float(np.sum(p[:, 0] * edges[:, 1] - p[:, 1] * edges[:, 0]))
    if area2 == 0:  # all collinear: a segment
        d = p[:, None, :] - p[None, :, :]
        return 0.0, float(np.sqrt(np.max(d[..., 0] ** 2 + d[..., 1] ** 2)))
    if area2 < 0:
        p = p[::-1]
        edges = np.concatenate([p[1:], p[:1]]) - p
    length = np.sqrt(edges[:, 0] ** 2 + edges[:, 1] ** 2)
    angle = np.arctan2(edges[:, 1], edges[:, 0])
    # make the edge angles increase monotonically (one wrap of 2 pi around a convex polygon)
    angle[1:] += 2 * np.pi * np.cumsum(np.diff(angle) < -np.pi)
    # vertex j lies between edge j-1 and edge j; the antipode of edge i is the vertex whose
    # incident edge angles bracket angle_i + pi.
    ext = np.concatenate([angle, angle + 2 * np.pi])
    k = np.searchsorted(ext, angle + np.pi, side="left") % n
    rel = p[k] - p
    width = np.abs(edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]) / length
    # antipodal vertex pairs: both ends of each edge against its antipode and the antipode's
    # neighbours (covers parallel opposite edges); the diameter is one of them.
    i = np.arange(n)
    ends = np.stack([i, (i + 1) % n])[:, None, :]
    opposite = (k[None, :] + np.array([-1, 0, 1])[:, None]) % n
    d = p[ends] - p[opposite[None, :, :]]
    best = float(np.max(d[..., 0] ** 2 + d[..., 1] ** 2))
    return float(width.min()), float(np.sqrt(best))


def feret_diameters_px(hull_xy: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum Feret diameter in pixels of a fiber given its pixel-centre hull.

    Uses the pixel-edge-midpoint convention of this module (see the module docstring).

    Examples
    --------
    >>> dmin, dmax = feret_diameters_px(np.array([[0, 0], [9, 0], [9, 9], [0, 9]]))  # 10 x 10 px
    >>> dmin, round(dmax, 2)
    (10.0, 13.45)
    """
    return calipers(pixel_outline_hull(hull_xy))


def _dedupe_closed(poly: np.ndarray) -> np.ndarray:
    """Drop consecutive repeated vertices (including last == first)."""
    if len(poly) < 2:
        return poly
    keep = np.any(poly != np.concatenate([poly[1:], poly[:1]]), axis=1)
    if not keep.any():
        return poly[:1]
    return poly[keep]
