"""Power diagrams (weighted Voronoi tessellations) and capacity-constrained Lloyd relaxation.

A power diagram assigns each point ``x`` to the site ``i`` minimising ``|x - c_i|^2 - w_i``;
its cells are convex polygons whose sizes follow the weights. It is computed exactly and
quickly by lifting the sites to the paraboloid ``z = |c|^2 - w`` and taking the lower convex
hull (qhull): the lower facets are the regular triangulation, and each facet's power centre
is a vertex of the diagram. Relaxing the sites to their cell centroids while nudging the
weights towards target areas gives a centroidal tessellation with a prescribed size spread
(the packing of muscle fibers in a fascicle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError


@dataclass(frozen=True)
class PowerCells:
    """Cells of a power diagram.

    Attributes
    ----------
    vertices : numpy.ndarray
        (M, 2) float (y, x) polygon vertices of all real cells, concatenated.
    starts : numpy.ndarray
        (N + 1,) offsets: cell ``i`` is ``vertices[starts[i]:starts[i + 1]]`` (empty if the
        site is hidden by its neighbours' weights).
    area : numpy.ndarray
        (N,) cell areas in px^2 (0 for hidden sites).
    centroid : numpy.ndarray
        (N, 2) cell centroids (the site itself for hidden sites).
    triangles : numpy.ndarray
        (T, 3) the regular triangulation (indices >= N are frame sites).
    """

    vertices: np.ndarray
    starts: np.ndarray
    area: np.ndarray
    centroid: np.ndarray
    triangles: np.ndarray

    @property
    def neighbors(self) -> np.ndarray:
        """(E, 2) int pairs ``i < j`` of real sites whose cells share an edge."""
        n = len(self.area)
        tri = self.triangles
        edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), 1)
        edges = edges[edges[:, 1] < n]
        if not len(edges):
            return edges.reshape(0, 2)
        return np.unique(edges, axis=0)

    def polygon(self, i: int) -> np.ndarray:
        """Vertices (K, 2) of cell ``i`` in counter-clockwise order (may be empty)."""
        return self.vertices[self.starts[i] : self.starts[i + 1]]


def _frame_sites(bounds: tuple[float, float, float, float], spacing: float) -> np.ndarray:
    """Dummy sites on a rectangle around ``bounds`` so that every real cell is bounded."""
    y0, x0, y1, x1 = bounds
    pad = 1.0 * spacing
    y0, x0, y1, x1 = y0 - pad, x0 - pad, y1 + pad, x1 + pad
    ny = max(2, int(np.ceil((y1 - y0) / spacing)) + 1)
    nx = max(2, int(np.ceil((x1 - x0) / spacing)) + 1)
    ys = np.linspace(y0, y1, ny)
    xs = np.linspace(x0, x1, nx)
    top = np.stack([np.full(nx, y0), xs], 1)
    bottom = np.stack([np.full(nx, y1), xs], 1)
    left = np.stack([ys[1:-1], np.full(ny - 2, x0)], 1)
    right = np.stack([ys[1:-1], np.full(ny - 2, x1)], 1)
    return np.concatenate([top, bottom, left, right])


def power_cells(
    sites: np.ndarray,
    weights: np.ndarray,
    bounds: tuple[float, float, float, float],
    *,
    spacing: float,
) -> PowerCells:
    """Power diagram cells of ``sites`` (N, 2) with ``weights`` (N,) inside ``bounds``.

    ``bounds`` = (y0, x0, y1, x1) is the region holding the sites; a frame of dummy sites
    ``spacing`` apart is added outside it so that all real cells are closed polygons.
    """
    sites = np.asarray(sites, np.float64)
    weights = np.asarray(weights, np.float64)
    n = len(sites)
    frame = _frame_sites(bounds, spacing)
    all_sites = np.concatenate([sites, frame])
    all_w = np.concatenate([weights, np.full(len(frame), float(np.median(weights)) if n else 0.0)])
    # a tiny jitter keeps qhull away from exactly co-circular configurations
    lifted = np.column_stack([all_sites, (all_sites**2).sum(1) - all_w])
    try:
        hull = ConvexHull(lifted)
    except QhullError:
        lifted[:, :2] += np.random.default_rng(0).normal(0, 1e-6, (len(lifted), 2))
        hull = ConvexHull(lifted, qhull_options="QJ")
    lower = hull.equations[:, 2] < 0
    tri = hull.simplices[lower]
    a, b, c = all_sites[tri[:, 0]], all_sites[tri[:, 1]], all_sites[tri[:, 2]]
    wa, wb, wc = all_w[tri[:, 0]], all_w[tri[:, 1]], all_w[tri[:, 2]]
    mat = np.stack([2 * (b - a), 2 * (c - a)], 1)  # (T, 2, 2)
    rhs = np.stack(
        [(b**2).sum(1) - (a**2).sum(1) - wb + wa, (c**2).sum(1) - (a**2).sum(1) - wc + wa], 1
    )
    det = mat[:, 0, 0] * mat[:, 1, 1] - mat[:, 0, 1] * mat[:, 1, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    vy = (rhs[:, 0] * mat[:, 1, 1] - mat[:, 0, 1] * rhs[:, 1]) / det
    vx = (mat[:, 0, 0] * rhs[:, 1] - rhs[:, 0] * mat[:, 1, 0]) / det
    pvert = np.stack([vy, vx], 1)

    site_of = tri.ravel()
    vert_of = np.repeat(np.arange(len(tri)), 3)
    keep = site_of < n
    site_of, vert_of = site_of[keep], vert_of[keep]
    counts = np.bincount(site_of, minlength=n)
    pts = pvert[vert_of]
    cy = np.bincount(site_of, pts[:, 0], minlength=n) / np.maximum(counts, 1)
    cx = np.bincount(site_of, pts[:, 1], minlength=n) / np.maximum(counts, 1)
    ang = np.arctan2(pts[:, 0] - cy[site_of], pts[:, 1] - cx[site_of])
    order = np.lexsort((ang, site_of))
    site_of, pts = site_of[order], pts[order]
    starts = np.concatenate([[0], np.cumsum(counts)])

    # shoelace per cell (vectorised: "next" vertex wraps inside each cell)
    idx = np.arange(len(pts))
    nxt = idx + 1
    ends = starts[1:][counts > 0] - 1
    nxt[ends] = starts[:-1][counts > 0]
    y, x = pts[:, 0], pts[:, 1]
    yn, xn = y[nxt], x[nxt]
    cross = x * yn - xn * y
    area2 = np.bincount(site_of, cross, minlength=n)
    area = np.abs(area2) / 2.0
    safe = np.where(np.abs(area2) < 1e-9, 1.0, area2)
    gy = np.bincount(site_of, (y + yn) * cross, minlength=n) / (3.0 * safe)
    gx = np.bincount(site_of, (x + xn) * cross, minlength=n) / (3.0 * safe)
    hidden = (counts < 3) | (area < 1e-9)
    centroid = np.where(hidden[:, None], sites, np.stack([gy, gx], 1))
    area = np.where(hidden, 0.0, area)

    return PowerCells(pts, starts, area, centroid, tri)


def relax(
    sites: np.ndarray,
    target_area: np.ndarray,
    bounds: tuple[float, float, float, float],
    *,
    spacing: float,
    iterations: int = 10,
    step: float = 0.8,
    fixed_iterations: int = 0,
) -> tuple[np.ndarray, np.ndarray, PowerCells]:
    """Capacity-constrained Lloyd relaxation.

    Moves each site to its cell centroid and adjusts its weight so that the cell area
    approaches ``target_area`` (N,). Returns ``(sites, weights, cells)``; the sites stay
    inside ``bounds``.

    Parameters
    ----------
    fixed_iterations : int
        How many of the last iterations only adjust the weights (keeps the sites, so small
        cells stay squeezed between their neighbours instead of drifting).
    """
    sites = np.array(sites, np.float64)
    target = np.asarray(target_area, np.float64)
    weights = target / np.pi
    y0, x0, y1, x1 = bounds
    cells = power_cells(sites, weights, bounds, spacing=spacing)
    for it in range(iterations):
        if it < iterations - fixed_iterations:
            sites = cells.centroid.copy()
            sites[:, 0] = np.clip(sites[:, 0], y0, y1)
            sites[:, 1] = np.clip(sites[:, 1], x0, x1)
        # the cells along the bounds also cover part of the frame: match the budget to the
        # area really shared out, so that inner cells converge to their targets
        budget = target * (cells.area.sum() / target.sum())
        weights = weights + step * (budget - cells.area) / np.pi
        weights -= np.median(weights) - np.median(budget) / np.pi
        cells = power_cells(sites, weights, bounds, spacing=spacing)
    return sites, weights, cells
