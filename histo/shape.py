"""Contour-based shape measures of one fiber: outline, perimeter, angularity.

Contours are the 8-connected chains of boundary pixel centres that ``cv2.findContours``
traces, in ``(x, y)`` = ``(col, row)`` pixel coordinates.

Perimeter
---------
The raw chain is biased twice: its staircase is too long (by up to ~8 % on a digitised
circle) and it runs through the centres of the boundary pixels, half a pixel inside the true
outline. The length of the curve the chain digitises is estimated with the corner-count
estimator of Vossepoel & Smeulders (1982), ``0.980 n_even + 1.406 n_odd - 0.091 n_corners``
(axis steps, diagonal steps, changes of direction; unbiased for straight lines at any angle
within ~1 %), and the outline is then grown by half a pixel: an outward parallel curve at
distance ``d`` of a closed curve is ``2 pi d`` longer, so ``+ pi`` per outline. A digitised
disk has a circularity of 0.98-1.00 for radii from 4 to 60 px, and regular polygons measure
within 3 % of their perimeter from 16 px across (``tests/test_morphometry.py``). Holes are
not counted: the perimeter is that of the outer outline(s).

Angularity
----------
How sharp the sharpest corners of the outline are, from 0 (a disk) towards 1 (a needle tip).

1. The outer outline is resampled to ``N = 240`` points equally spaced along its length
   (so the measure does not depend on size) and smoothed with ``sigma = 0.5 px`` against
   the pixel staircase.
2. At every point, the *corner angle* is the turn between the chord arriving from the point
   ``w = L/12`` behind and the chord leaving to the point ``w`` ahead (``L`` the outline
   length): ``180 deg - interior angle`` of the corner seen at the scale of a twelfth of the
   outline. A straight side gives 0, a polygon corner whose sides are longer than ``w``
   gives its exact exterior angle, and a circle gives the same turn everywhere,
   ``360 deg / 12 = 30 deg``.
3. The two sharpest corners (the largest turn, then the largest at least ``w`` away from it)
   are kept, each scored ``(turn - 30 deg) / (180 deg - 30 deg)`` clipped to [0, 1], and
   averaged.

For exact shapes: disk 0, regular hexagon 0.2, square 0.4, equilateral triangle 0.6, a
thin isosceles sliver with a 15 deg apex (165 and 97.5 deg turns) 0.68, a needle (two
corners turning ~180 deg) 1. Size and pixel size do not enter (only fractions of the outline
length do); pixelation adds up to ~0.1 on a disk of 12 px diameter and ~0.05 at 24 px.
Fibers smaller than :data:`MIN_SHAPE_AREA_PX` pixels get NaN: their corners cannot be
resolved. ``docs/angularity.md`` has the table at several sizes and rotations.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Below this many pixels, angularity is NaN (corners cannot be resolved).
MIN_SHAPE_AREA_PX = 16

#: Number of points the outline is resampled to for angularity.
ANGULARITY_SAMPLES = 240
#: Corner scale as a fraction of the outline length (w = L / 12).
ANGULARITY_WINDOW_FRACTION = 1.0 / 12.0
#: Number of sharpest corners averaged.
ANGULARITY_CORNERS = 2
#: Smoothing (px) of the outline before the corner angles, against the pixel staircase.
ANGULARITY_SIGMA_PX = 0.5

#: Vossepoel & Smeulders (1982) corner-count weights: even (axis) step, odd (diagonal)
#: step, change of chain direction.
CHAIN_WEIGHTS = (0.980, 1.406, -0.091)


def outer_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundary chains of a binary mask, one per connected component (8-connected).

    Parameters
    ----------
    mask : (H, W) bool or uint8 array

    Returns
    -------
    list of (K, 2) float arrays
        Boundary pixel centres ``(x, y)`` in the mask's coordinates, in tracing order.
    """
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(mask, dtype=np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0
    )
    found, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1, 2).astype(np.float64) - 1.0 for c in found]


def _arc(chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closed polyline (first point repeated) and its cumulative arc length."""
    closed = np.concatenate([chain, chain[:1]])
    d = closed[1:] - closed[:-1]
    s = np.empty(len(closed))
    s[0] = 0.0
    np.cumsum(np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2), out=s[1:])
    return closed, s


def _sample(closed: np.ndarray, s: np.ndarray, n: int) -> np.ndarray:
    """``n`` points equally spaced along the closed polyline."""
    t = np.arange(n) * (s[-1] / n)
    out = np.empty((n, 2))
    out[:, 0] = np.interp(t, s, closed[:, 0])
    out[:, 1] = np.interp(t, s, closed[:, 1])
    return out


def _smooth_closed(pts: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (``sigma`` in samples) of a closed sequence of points."""
    n = len(pts)
    radius = int(4.0 * sigma + 0.5)
    if radius < 1:
        return pts
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.take(pts, np.arange(-radius, n + radius) % n, axis=0)
    out = np.empty_like(pts)
    out[:, 0] = np.convolve(padded[:, 0], kernel, mode="valid")
    out[:, 1] = np.convolve(padded[:, 1], kernel, mode="valid")
    return out


def outline_length_px(chain: np.ndarray) -> float:
    """Bias-corrected length of one closed outline given its boundary-pixel chain.

    Corner-count length of the chain plus ``pi`` (the half-pixel outward offset; see the
    module docstring).

    Examples
    --------
    >>> yy, xx = np.mgrid[-30:31, -30:31]
    >>> chain = outer_contours(yy**2 + xx**2 <= 20**2)[0]
    >>> abs(outline_length_px(chain) / (2 * np.pi * 20) - 1) < 0.015
    True
    """
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 2)
    if len(chain) < 2:
        return float(np.pi)
    step = np.concatenate([chain[1:], chain[:1]]) - chain
    diagonal = (step[:, 0] != 0) & (step[:, 1] != 0)
    code = (step[:, 0] + 1) * 3 + (step[:, 1] + 1)  # 8 directions as distinct integers
    corners = np.count_nonzero(code != np.concatenate([code[-1:], code[:-1]]))
    n_odd = int(np.count_nonzero(diagonal))
    w_even, w_odd, w_corner = CHAIN_WEIGHTS
    return float(w_even * (len(step) - n_odd) + w_odd * n_odd + w_corner * corners + np.pi)


def perimeter_px(chains: list[np.ndarray]) -> float:
    """Perimeter of a fiber: the sum of the corrected lengths of its outer outlines."""
    return float(sum(outline_length_px(c) for c in chains))


_N = ANGULARITY_SAMPLES
_M = int(round(ANGULARITY_SAMPLES * ANGULARITY_WINDOW_FRACTION))
_PREV = (np.arange(_N) - _M) % _N
_NEXT = (np.arange(_N) + _M) % _N
#: Turn of a circle at the corner scale: 360 deg / 12.
CIRCLE_TURN = 2 * np.pi * _M / _N


def _turns_from_arc(closed: np.ndarray, s: np.ndarray) -> np.ndarray:
    pts = _sample(closed, s, _N)
    if s[-1] > 0:
        pts = _smooth_closed(pts, ANGULARITY_SIGMA_PX * _N / s[-1])
    a = pts - pts[_PREV]
    b = pts[_NEXT] - pts
    turn = np.arctan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])
    nxt = np.concatenate([pts[1:], pts[:1]])
    orientation = np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1])
    return turn if orientation >= 0 else -turn


def corner_turns(chain: np.ndarray) -> np.ndarray:
    """Turn (radians, convex > 0) at each of the resampled outline points (see module doc)."""
    return _turns_from_arc(*_arc(np.asarray(chain, dtype=np.float64).reshape(-1, 2)))


def _angularity_from_turns(turn: np.ndarray) -> float:
    turn = turn.copy()
    scores = []
    for _ in range(ANGULARITY_CORNERS):
        i = int(np.argmax(turn))
        scores.append(turn[i])
        turn[np.arange(i - _M, i + _M + 1) % _N] = -np.inf
    scores = np.clip((np.asarray(scores) - CIRCLE_TURN) / (np.pi - CIRCLE_TURN), 0.0, 1.0)
    return float(scores.mean())


def angularity_from_chain(chain: np.ndarray) -> float:
    """Angularity of one outline (module docstring): 0 for a disk, 1 for a needle.

    Examples
    --------
    >>> square = np.zeros((40, 40), bool); square[5:35, 5:35] = True
    >>> round(angularity_from_chain(outer_contours(square)[0]), 1)
    0.4
    """
    return _angularity_from_turns(corner_turns(chain))


def outline_measures(chains: list[np.ndarray], area_px: float) -> tuple[float, float]:
    """(perimeter_px, angularity) of a fiber from its outer outlines.

    The angularity is that of the largest outline; NaN below :data:`MIN_SHAPE_AREA_PX`.
    """
    perimeter = perimeter_px(chains)
    if area_px < MIN_SHAPE_AREA_PX or not chains:
        return perimeter, float("nan")
    main = chains[0] if len(chains) == 1 else max(
        chains, key=lambda c: abs(cv2.contourArea(c.astype(np.float32))))
    if len(main) < 4:
        return perimeter, float("nan")
    return perimeter, angularity_from_chain(main)


def angularity(chains: list[np.ndarray], area_px: float) -> float:
    """Angularity of a fiber: that of its largest outer outline; NaN when too small."""
    return outline_measures(chains, area_px)[1]
