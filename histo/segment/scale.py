"""The canonical scale: rescale factors from the pixel size or from the fiber size.

The network runs at a canonical scale where a typical fiber is ``canonical_diameter_px``
across (32 px for the shipped model, which is 1.5 µm/px for a 48 µm fiber). The factor
``s`` maps input pixels to canonical pixels (``s < 1`` shrinks the image):

* pixel size known: ``s = pixel_size_um / canonical_pixel_size_um``;
* fiber diameter known (in input pixels): ``s = canonical_diameter_px / diameter_px``;
* neither: the fiber diameter is estimated from the image (:func:`estimate_diameter`,
  which runs the model on central crops at several scales and keeps the self-consistent one).

Examples
--------
>>> round(factor_from_pixel_size(0.75, canonical_pixel_size_um=1.5), 3)
0.5
>>> factor_from_diameter(100.0, canonical_diameter_px=32.0)
0.32
"""

from __future__ import annotations

import logging
from typing import Callable

import cv2
import numpy as np

from histo.errors import HistoInputError
from histo.io.pixelsize import check_pixel_size

log = logging.getLogger(__name__)

#: Plausible fiber diameters in input pixels searched when the scale is unknown.
DIAMETER_SEARCH_PX = tuple(float(12 * 2 ** (k / 2)) for k in range(11))  # 12 .. 384 px


def factor_from_pixel_size(pixel_size_um: float, *, canonical_pixel_size_um: float) -> float:
    """Input-to-canonical factor from the input pixel size in µm."""
    return check_pixel_size(pixel_size_um) / float(canonical_pixel_size_um)


def factor_from_diameter(diameter_px: float, *, canonical_diameter_px: float) -> float:
    """Input-to-canonical factor from the typical fiber diameter in input pixels."""
    if not diameter_px > 0:
        raise ValueError(f"diameter_px must be > 0, got {diameter_px}")
    return float(canonical_diameter_px) / float(diameter_px)


def scaled_shape(shape_yx: tuple[int, int], factor: float) -> tuple[int, int]:
    """Shape of a (Y, X) region after rescaling by ``factor`` (at least 1 px per side)."""
    return tuple(max(1, int(round(n * factor))) for n in shape_yx[:2])


def rescale(image: np.ndarray, shape_yx: tuple[int, int], *, labels: bool = False) -> np.ndarray:
    """Resize a (Y, X) or (Y, X, C) array to ``shape_yx``.

    Area averaging when shrinking, bilinear when enlarging, nearest for ``labels=True``
    (label values are kept exactly).

    Examples
    --------
    >>> rescale(np.arange(16, dtype=np.float32).reshape(4, 4), (2, 2))
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    h, w = image.shape[:2]
    th, tw = int(shape_yx[0]), int(shape_yx[1])
    if (h, w) == (th, tw):
        return image
    if labels:
        yi = np.minimum(((np.arange(th) + 0.5) * h / th).astype(np.intp), h - 1)
        xi = np.minimum(((np.arange(tw) + 0.5) * w / tw).astype(np.intp), w - 1)
        return image[yi[:, None], xi[None, :]]
    interp = cv2.INTER_AREA if th * tw < h * w else cv2.INTER_LINEAR
    src = image
    if src.dtype not in (np.uint8, np.uint16, np.float32):
        src = src.astype(np.float32)
    if src.ndim == 3 and src.shape[2] > 4:
        return np.stack([rescale(src[..., c], shape_yx) for c in range(src.shape[2])], -1)
    out = cv2.resize(src, (tw, th), interpolation=interp)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def aligned_factor(factor: float, unit_canonical_px: int = 64) -> tuple[float, int]:
    """A factor ``unit / period`` close to ``factor`` with an integer input ``period``.

    Rescaling any region that starts at a multiple of ``period`` input pixels then lands on
    the same canonical grid as rescaling the whole image (and at a multiple of
    ``unit_canonical_px``, so the network's pooling grid lines up too): tiles reproduce the
    whole-image result.

    Examples
    --------
    >>> aligned_factor(0.25)
    (0.25, 256)
    >>> f, period = aligned_factor(0.6149)
    >>> period, round(f, 4)
    (104, 0.6154)
    """
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    period = max(1, int(round(unit_canonical_px / factor)))
    return unit_canonical_px / period, period


def rescale_aligned(region: np.ndarray, period: int, unit_canonical_px: int = 64) -> np.ndarray:
    """Rescale a region by ``unit / period`` on the grid of :func:`aligned_factor`.

    The region is padded at its end (reflect) to whole periods first, so the result is
    ``ceil(h / period) * unit`` by ``ceil(w / period) * unit`` whatever the region size.
    """
    h, w = region.shape[:2]
    ph, pw = (-h) % period, (-w) % period
    if ph or pw:
        pad = ((0, ph), (0, pw)) + ((0, 0),) * (region.ndim - 2)
        mode = "reflect" if (ph < h and pw < w) else "edge"
        region = np.pad(region, pad, mode=mode)
    n_y, n_x = region.shape[0] // period, region.shape[1] // period
    return rescale(region, (n_y * unit_canonical_px, n_x * unit_canonical_px))


def central_crop(shape_yx: tuple[int, int], size_px: int) -> tuple[slice, slice]:
    """Slices of the central ``size_px`` square (or less) of an image."""
    h, w = shape_yx[:2]
    sy, sx = min(h, size_px), min(w, size_px)
    y0, x0 = (h - sy) // 2, (w - sx) // 2
    return slice(y0, y0 + sy), slice(x0, x0 + sx)


def estimate_diameter(
    measure: Callable[[float], tuple[float, float] | None],
    *,
    canonical_diameter_px: float,
    candidates_px=DIAMETER_SEARCH_PX,
    refine_steps: int = 1,
    measure_refine: Callable[[float], tuple[float, float] | None] | None = None,
    converged_rel: float = 0.05,
) -> float:
    """Estimate the typical fiber diameter (input px) as the scale where a segmenter works best.

    ``measure(factor)`` segments a central crop rescaled by ``factor`` and returns
    ``(median_diameter_canonical_px, error)``, or ``None`` when nothing was found. ``error``
    is a self-consistency score, low when the segmenter is sure of what it sees (for the
    network: how far its predicted distance map is from the distance map of the instances it
    produced). The candidate with the lowest error, smoothed over its neighbours, gives the
    diameter ``measured / factor`` (the geometric mean over the three neighbours), refined by
    ``refine_steps`` runs at the estimated scale (with ``measure_refine`` when given, e.g. the
    same segmenter on a larger crop: the candidates can then be cheap).

    Parameters
    ----------
    measure : callable(float) -> (float, float) or None
    canonical_diameter_px : float
    candidates_px : sequence of float
        Input-pixel diameters tried, increasing, one factor each.
    refine_steps : int
    measure_refine : callable(float) -> (float, float) or None, optional
        Used for the refinement runs (default ``measure``).
    converged_rel : float
        Refinement stops once a run changes the estimate by less than this (relative).

    Returns
    -------
    float
        Estimated fiber diameter in input pixels.

    Examples
    --------
    A segmenter exact for fibers 16 to 64 canonical px, most sure of itself at 32 px:

    >>> def measure(f):
    ...     m = 80.0 * f
    ...     return (m, abs(np.log(m / 32))) if 16 <= m <= 64 else (32.0, 1.0)
    >>> round(estimate_diameter(measure, canonical_diameter_px=32.0), 6)
    80.0
    """
    implied, error = [], []
    for d in candidates_px:
        factor = canonical_diameter_px / d
        r = measure(factor)
        ok = r is not None and r[0] > 0
        implied.append(np.log(r[0] / factor) if ok else np.nan)
        error.append(r[1] if ok else np.inf)
        log.debug("diameter search: assumed %.1f px -> implied %.1f px, error %.3f", d,
                  np.exp(implied[-1]), error[-1])
    implied, error = np.asarray(implied), np.asarray(error, dtype=np.float64)
    if not np.isfinite(error).any():
        raise HistoInputError(
            "no fibers found at any scale: the image looks blank or has no fiber-like structure; "
            "check the stain / --channel, or give --pixel-size so the scale is not guessed"
        )
    padded = np.concatenate([[np.inf], error, [np.inf]])
    window = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    finite = np.isfinite(window)
    smooth = np.where(finite.sum(0) > 0, np.where(finite, window, 0).sum(0) / np.maximum(finite.sum(0), 1), np.inf)
    smooth[~np.isfinite(error)] = np.inf
    i = int(np.argmin(smooth))
    near = implied[max(0, i - 1): i + 2]
    best = float(np.exp(np.nanmean(near)))
    for _ in range(refine_steps):
        factor = canonical_diameter_px / best
        r = (measure_refine or measure)(factor)
        if r is None or not r[0] > 0:
            break
        new = float(r[0] / factor)
        if abs(np.log(new / best)) > np.log(2):  # a run far from its own scale is not trusted
            break
        converged = abs(np.log(new / best)) < np.log(1 + converged_rel)
        best = new
        if converged:  # the run at the estimate agrees with it: no further run needed
            break
    return best
