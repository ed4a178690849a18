"""Fibers inside a drawn region: the targets of a bulk flag (e.g. exclude a fold or a tear).

A fiber is inside a polygon when its centroid is: one rule that needs only the per-fiber
table, so it works as well for a whole slide reviewed without its labels in memory, and a
fiber cut by the outline goes wholly to one side. Pure: no Qt, no napari.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import points_in_poly

from histo.errors import HistoInputError


def labels_inside_polygon(fibers: pd.DataFrame, polygon_yx: np.ndarray) -> np.ndarray:
    """Labels whose centroid lies inside a polygon (data pixels, ``(y, x)`` vertices).

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table with ``label``, ``centroid_y_px`` and ``centroid_x_px``.
    polygon_yx : (N, 2) array
        Vertices in the label image's pixel coordinates, N >= 3, open or closed.

    Returns
    -------
    (M,) int64 array of labels, sorted.

    Raises
    ------
    HistoInputError
        When the polygon has fewer than 3 vertices or the table lacks centroids.

    Examples
    --------
    >>> df = pd.DataFrame({"label": [1, 2, 3], "centroid_y_px": [5.0, 5.0, 50.0],
    ...                    "centroid_x_px": [5.0, 30.0, 5.0]})
    >>> labels_inside_polygon(df, np.array([[0, 0], [0, 20], [20, 20], [20, 0]])).tolist()
    [1]
    """
    poly = np.asarray(polygon_yx, dtype=float)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise HistoInputError(f"a region needs at least 3 (y, x) vertices, got an array of shape {poly.shape}")
    missing = [c for c in ("label", "centroid_y_px", "centroid_x_px") if c not in fibers]
    if missing:
        raise HistoInputError(f"the fibers table has no {missing[0]!r} column; pass a table from measure_fibers")
    yx = fibers[["centroid_y_px", "centroid_x_px"]].to_numpy(dtype=float)
    lo, hi = poly.min(0), poly.max(0)
    near = np.flatnonzero(((yx >= lo) & (yx <= hi)).all(1))  # bounding box first: whole slides
    inside = near[points_in_poly(yx[near][:, ::-1], poly[:, ::-1])] if len(near) else near
    return np.sort(fibers["label"].to_numpy(dtype=np.int64)[inside])


def ellipse_polygon(corners_yx: np.ndarray, n_vertices: int = 64) -> np.ndarray:
    """The polygon of an ellipse given by the 4 corners of its bounding box (possibly rotated).

    Drawing tools (napari's Shapes layer) store an ellipse as the corners of the box it is
    inscribed in; the centre is their mean and the half-sides are its axes.

    Examples
    --------
    >>> p = ellipse_polygon(np.array([[0, 0], [0, 20], [10, 20], [10, 0]]), n_vertices=4)
    >>> p.round(6).tolist()
    [[5.0, 20.0], [10.0, 10.0], [5.0, 0.0], [0.0, 10.0]]
    """
    c = np.asarray(corners_yx, dtype=float)
    if c.shape != (4, 2):
        raise HistoInputError(f"an ellipse needs the 4 (y, x) corners of its box, got shape {c.shape}")
    center = c.mean(0)
    u = (c[1] - c[0]) / 2  # half of one side
    v = (c[3] - c[0]) / 2  # half of the other
    t = np.linspace(0, 2 * np.pi, int(n_vertices), endpoint=False)[:, None]
    return center + np.cos(t) * u + np.sin(t) * v
