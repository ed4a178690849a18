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
    """Angularity of each row of corner turns: mean score of the two sharpest corners."""
    turn = np.array(turn, dtype=np.float64, ndmin=2)
    rows = np.arange(len(turn))
    scores = np.zeros(len(turn))
    offsets = np.arange(-_M, _M + 1)
    for _ in range(ANGULARITY_CORNERS):
        i = np.argmax(turn, axis=1)
        scores += np.clip((turn[rows, i] - CIRCLE_TURN) / (np.pi - CIRCLE_TURN), 0.0, 1.0)
        turn[rows[:, None], (i[:, None] + offsets[None, :]) % _N] = -np.inf
    return scores / ANGULARITY_CORNERS


def angularity_batch(chains: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Angularity of each outline (module docstring); NaN for outlines under 4 points."""
    out = np.full(len(offsets) - 1, np.nan)
    ok = np.diff(offsets) >= 4
    if ok.any():
        c = np.asarray(chains, dtype=np.float64).reshape(-1, 2)
        keep = np.repeat(ok, np.diff(offsets))
        sub_offsets = offsets_from_lengths(np.diff(offsets)[ok])
        out[ok] = angularity_from_turns(corner_turns_batch(c[keep], sub_offsets))
    return out


def corner_turns(chain: np.ndarray) -> np.ndarray:
    """Turn (radians, convex > 0) at each of the resampled points of one outline."""
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 2)
    return corner_turns_batch(chain, np.array([0, len(chain)]))[0]


def angularity_from_chain(chain: np.ndarray) -> float:
    """Angularity of one outline (module docstring): 0 for a disk, 1 for a needle.

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
