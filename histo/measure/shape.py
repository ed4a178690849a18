"""Contour-based shape measures of fibers: outline, perimeter, angularity.

Contours are the 8-connected chains of boundary pixel centres that ``cv2.findContours``
traces, in ``(x, y)`` = ``(col, row)`` pixel coordinates. The ``*_batch`` functions take many
chains stored end to end (:mod:`histo.measure._ragged`) and compute all of them in a few vectorised
passes; the single-chain functions are the same computation for one chain.

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
How sharp the corners of the outline are once its elongation is removed, from 0 (a disk, or
any ellipse) towards 1.

1. **Elongation removed.** The outer outline is mapped by the area-preserving affine map that
   makes its second moments of area isotropic (the inverse square root of its inertia
   matrix, scaled to keep the area): every ellipse becomes a disk, every triangle an
   equilateral triangle, every parallelogram (a rectangle, a 60 deg rhombus) a square.
   Corners that only come from stretching a smooth outline are gone; corners that survive
   are corners of the shape. The stretch is capped at :data:`MAX_ELONGATION` : 1.
2. The normalised outline is resampled to ``N = 240`` points equally spaced along its length
   (so the measure does not depend on size) and smoothed with ``sigma = 0.5 px`` against
   the pixel staircase.
3. At every point, the *turn* is the angle between the chord arriving from the point
   ``w = L/12`` behind and the chord leaving to the point ``w`` ahead (``L`` the outline
   length): ``180 deg - interior angle`` seen at the scale of a twelfth of the outline,
   positive at convex corners and negative where the outline bends inwards. A straight side
   gives 0, a polygon corner whose sides are longer than ``w`` gives its exact exterior
   angle, and a circle gives the same turn everywhere, ``360 deg / 12 = 30 deg``.
4. ``angularity = (mean turn of the two sharpest corners - 30 deg - deepest inward turn)
   / 150 deg``, clipped to [0, 1] (the second corner is the sharpest at least ``w`` away from
   the first; the inward turn is ``max(0, -min turn)``).

The inward term separates two ways of having a sharp convex corner: a polygon whose sides
are straight or bow in a little (compressed, concave-sided fibers: bowing sharpens the
corners by more than it costs) keeps a high score, while a bent or tailed profile (a banana,
a kidney, a fiber with a tail), whose tips are sharp only because the outline turns back on
the other side, scores low. For exact shapes: every ellipse 0, regular hexagon 0.2, every
parallelogram 0.4, every triangle 0.6, a triangle with sides bowed in by 5 % of their length
0.66. Size, rotation and pixel size do not enter (only fractions of the outline length and
an affine map do); pixelation adds up to ~0.1 on a disk of 12 px diameter and ~0.05 at
24 px. Fibers smaller than :data:`MIN_SHAPE_AREA_PX` pixels get NaN: their corners cannot be
resolved. ``docs/angularity.md`` has the table at several sizes and rotations and the
calibration of the ``angular_min`` threshold on manual human masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.measure._ragged import (
    next_index,
    offsets_from_lengths,
    prev_index,
    segment_ids,
    segment_sum,
)

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
#: Largest elongation (major / minor axis of the inertia ellipse) the normalisation removes;
#: beyond it (a strip thinner than a tenth of its length) the outline is stretched by this much.
MAX_ELONGATION = 10.0

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


def outline_lengths_batch(chains: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Bias-corrected length of each closed outline (corner-count length + pi; module doc)."""
    c = np.asarray(chains, dtype=np.float64).reshape(-1, 2)
    if len(offsets) < 2:
        return np.zeros(0)
    step = c[next_index(offsets)] - c
    diagonal = (step[:, 0] != 0) & (step[:, 1] != 0)
    code = (step[:, 0] + 1) * 3 + (step[:, 1] + 1)  # the 8 directions as distinct numbers
    corner = code != code[prev_index(offsets)]
    w_even, w_odd, w_corner = CHAIN_WEIGHTS
    per_step = np.where(diagonal, w_odd, w_even) + w_corner * corner
    length = segment_sum(per_step, offsets)
    length[np.diff(offsets) < 2] = 0.0  # a single pixel: no steps
    return length + np.pi


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
    return float(outline_lengths_batch(chain, np.array([0, len(chain)]))[0])


def perimeter_px(chains: list[np.ndarray]) -> float:
    """Perimeter of a fiber: the sum of the corrected lengths of its outer outlines."""
    return float(sum(outline_length_px(c) for c in chains))


_N = ANGULARITY_SAMPLES
_M = int(round(ANGULARITY_SAMPLES * ANGULARITY_WINDOW_FRACTION))
#: Turn of a circle at the corner scale: 360 deg / 12.
CIRCLE_TURN = 2 * np.pi * _M / _N


def inertia_normalised_batch(chains: np.ndarray, offsets: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Outlines with their elongation removed (step 1 of the angularity, module doc).

    Each closed outline is mapped by ``p -> R S R^T (p - c)``: ``c`` its centroid, ``R`` the
    axes of its inertia ellipse (second moments of the area it encloses, from Green's
    theorem), ``S`` the scaling that makes both axes equal while keeping the area. The
    stretch is capped at :data:`MAX_ELONGATION`; an outline enclosing no area is only centred.

    Parameters
    ----------
    chains : (P, 2) float array
        Closed outlines ``(x, y)`` stored end to end.
    offsets : (n + 1,) int array
        Start of each outline in ``chains`` (:mod:`histo.measure._ragged`).

    Returns
    -------
    points : (P, 2) float array
        The normalised outlines, centred on their centroids, same order.
    elongation : (n,) float array
        Major / minor axis ratio of each outline's inertia ellipse (1 for a disk, 3 for a
        3:1 ellipse; NaN without area).

    Examples
    --------
    >>> t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> ellipse = np.column_stack([30 * np.cos(t), 10 * np.sin(t)])
    >>> pts, elong = inertia_normalised_batch(ellipse, np.array([0, 400]))
    >>> radius = np.hypot(pts[:, 0], pts[:, 1])
    >>> round(float(elong[0]), 2), bool(np.ptp(radius) < 0.01 * radius.mean())
    (3.0, True)
    """
    c = np.asarray(chains, dtype=np.float64).reshape(-1, 2)
    offsets = np.asarray(offsets, dtype=np.int64)
    sid = segment_ids(offsets)
    nxt = c[next_index(offsets)]
    x0, y0, x1, y1 = c[:, 0], c[:, 1], nxt[:, 0], nxt[:, 1]
    cross = x0 * y1 - x1 * y0
    area2 = segment_sum(cross, offsets)  # twice the signed area
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = segment_sum((x0 + x1) * cross, offsets) / (3 * area2)
        my = segment_sum((y0 + y1) * cross, offsets) / (3 * area2)
        cxx = segment_sum((x0 * x0 + x0 * x1 + x1 * x1) * cross, offsets) / (6 * area2) - mx * mx
        cyy = segment_sum((y0 * y0 + y0 * y1 + y1 * y1) * cross, offsets) / (6 * area2) - my * my
        cxy = segment_sum((2 * x0 * y0 + x0 * y1 + x1 * y0 + 2 * x1 * y1) * cross,
                          offsets) / (12 * area2) - mx * my
    half_gap = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy ** 2)
    major = (cxx + cyy) / 2 + half_gap
    minor = (cxx + cyy) / 2 - half_gap
    valid = np.isfinite(major) & np.isfinite(minor) & (np.abs(area2) > 1e-9) & (minor > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        elongation = np.where(valid, np.sqrt(major / minor), np.nan)
    stretch = np.where(valid, np.minimum(elongation, MAX_ELONGATION), 1.0)
    theta = np.where(valid, 0.5 * np.arctan2(2 * cxy, cxx - cyy), 0.0)
    centre = np.where(valid[:, None], np.column_stack([mx, my]), 0.0)
    if not valid.all():  # no area: centre on the mean point
        counts = np.maximum(np.diff(offsets), 1)
        mean = np.column_stack([segment_sum(c[:, 0], offsets), segment_sum(c[:, 1], offsets)])
        centre = np.where(valid[:, None], centre, mean / counts[:, None])
    cos, sin = np.cos(theta)[sid], np.sin(theta)[sid]
    d = c - centre[sid]
    u = (d[:, 0] * cos + d[:, 1] * sin) / np.sqrt(stretch)[sid]  # along the major axis
    v = (-d[:, 0] * sin + d[:, 1] * cos) * np.sqrt(stretch)[sid]
    return np.column_stack([u * cos - v * sin, u * sin + v * cos]), elongation


def corner_turns_batch(chains: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Turn (radians, convex > 0) at the ``N`` resampled points of each outline (module doc).

    Returns
    -------
    (n, N) float array
    """
    c = np.asarray(chains, dtype=np.float64).reshape(-1, 2)
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros((0, _N))
    sid = segment_ids(offsets)
    starts = offsets[:-1]
    seg = c[next_index(offsets)] - c
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.cumsum(seg_len)
    total = cum[offsets[1:] - 1] - np.concatenate([[0.0], cum])[starts]
    s_local = cum - seg_len - (cum - seg_len)[starts][sid]  # arc length at each vertex
    # one sorted key for all outlines: outline i occupies [base_i, base_i + total_i]
    base = np.concatenate([[0.0], np.cumsum(total + 1.0)[:-1]])
    t = (np.arange(_N) / _N)[None, :] * total[:, None]  # (n, N) arc positions
    pos = np.searchsorted(s_local + base[sid], (t + base[:, None]).ravel(), side="right") - 1
    pos = np.maximum(pos, np.repeat(starts, _N))  # guard float ties at an outline start
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(seg_len[pos] > 0, (t.ravel() - s_local[pos]) / seg_len[pos], 0.0)
    pts = (c[pos] + frac[:, None] * seg[pos]).reshape(n, _N, 2)
    # Gaussian smoothing along each closed outline, sigma in samples = sigma_px * N / L
    sigma = ANGULARITY_SIGMA_PX * _N / np.maximum(total, 1e-9)
    freq = np.fft.rfftfreq(_N)  # cycles per sample
    gain = np.exp(-2.0 * (np.pi * freq[None, :] * sigma[:, None]) ** 2)
    pts = np.fft.irfft(np.fft.rfft(pts, axis=1) * gain[:, :, None], n=_N, axis=1)
    a = pts - np.roll(pts, _M, axis=1)
    b = np.roll(pts, -_M, axis=1) - pts
    turn = np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
                      a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1])
    nxt = np.roll(pts, -1, axis=1)
    orientation = np.sum(pts[..., 0] * nxt[..., 1] - nxt[..., 0] * pts[..., 1], axis=1)
    return turn * np.where(orientation >= 0, 1.0, -1.0)[:, None]


def angularity_from_turns(turn: np.ndarray) -> np.ndarray:
    """Angularity of each row of corner turns (step 4 of the module doc).

    ``(mean of the two sharpest turns - 30 deg - deepest inward turn) / 150 deg`` in [0, 1].
    """
    turn = np.array(turn, dtype=np.float64, ndmin=2)
    inward = np.maximum(-turn.min(axis=1), 0.0)
    rows = np.arange(len(turn))
    sharpest = np.zeros(len(turn))
    offsets = np.arange(-_M, _M + 1)
    for _ in range(ANGULARITY_CORNERS):
        i = np.argmax(turn, axis=1)
        sharpest += turn[rows, i]
        turn[rows[:, None], (i[:, None] + offsets[None, :]) % _N] = -np.inf
    sharpest /= ANGULARITY_CORNERS
    return np.clip((sharpest - CIRCLE_TURN - inward) / (np.pi - CIRCLE_TURN), 0.0, 1.0)


def angularity_batch(chains: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Angularity of each outline (module docstring); NaN for outlines under 4 points."""
    out = np.full(len(offsets) - 1, np.nan)
    ok = np.diff(offsets) >= 4
    if ok.any():
        c = np.asarray(chains, dtype=np.float64).reshape(-1, 2)
        keep = np.repeat(ok, np.diff(offsets))
        sub_offsets = offsets_from_lengths(np.diff(offsets)[ok])
        normalised, _ = inertia_normalised_batch(c[keep], sub_offsets)
        out[ok] = angularity_from_turns(corner_turns_batch(normalised, sub_offsets))
    return out


def corner_turns(chain: np.ndarray) -> np.ndarray:
    """Turn (radians, convex > 0) at each resampled point of one outline, as drawn (not normalised)."""
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 2)
    return corner_turns_batch(chain, np.array([0, len(chain)]))[0]


def angularity_from_chain(chain: np.ndarray) -> float:
    """Angularity of one outline (module docstring): 0 for any ellipse, 0.4 for a square.

    Examples
    --------
    >>> square = np.zeros((40, 40), bool); square[5:35, 5:35] = True
    >>> round(angularity_from_chain(outer_contours(square)[0]), 1)
    0.4
    """
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 2)
    return float(angularity_batch(chain, np.array([0, len(chain)]))[0])


def main_outline(chains: list[np.ndarray]) -> np.ndarray:
    """The outline of the largest piece (by enclosed area) of a fiber."""
    if len(chains) == 1:
        return chains[0]
    return max(chains, key=lambda c: abs(cv2.contourArea(c.astype(np.float32))))


def angularity(chains: list[np.ndarray], area_px: float) -> float:
    """Angularity of a fiber: that of its largest outer outline; NaN when too small."""
    if area_px < MIN_SHAPE_AREA_PX or not chains:
        return float("nan")
    return angularity_from_chain(main_outline(chains))
