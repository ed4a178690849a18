"""Fiber-interior maps: one grey map per stain, high inside fibers, low on their borders.

The first step of the classical baseline (:mod:`histo.segment.classical`), by stain:

* ``he``: chroma (max - min of R, G, B): pink / purple fibers are saturated, the endomysium
  is white, so basophilic (dark) fibers stay fibers and nuclei stay small holes;
* ``nadh``, ``sdh``, ``atpase``, ``esterase`` and grey images: total optical density, since
  borders are pale;
* ``psr``: inverted total optical density (fibers pale yellow; collagen red and the fine
  borders dark), zeroed off the tissue (the tissue = smoothed yellowness above Otsu);
* ``if``: the inverted membrane channel (membranes bright, interiors dark).

Every map is scaled to [0, 1] between its 1st and 99th percentiles (99.5th for fluorescence).
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.filters import threshold_otsu

from histo.errors import HistoInputError
from histo.io.channels import pick_channel
from histo.io.image import ImageLike
from histo.io.stain import FLUORESCENCE_STAINS, Stain, check_stain


def _pixels_and_axes(image: ImageLike | np.ndarray) -> tuple[np.ndarray, str]:
    """(pixels, axes) from an ImageData-like object or a bare array."""
    if hasattr(image, "pixels") and hasattr(image, "axes"):
        return np.asarray(image.pixels), str(image.axes)
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr, "YX"
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
        return arr[..., :3], "YXS"
    if arr.ndim == 3:
        return arr, "CYX"
    raise HistoInputError(
        f"image must be (Y, X), (Y, X, 3) RGB or (C, Y, X), got shape {arr.shape}"
    )


def _normalise(x: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> np.ndarray:
    """Scale to [0, 1] between two percentiles (of a subsample, for speed)."""
    sample = x.ravel()[:: max(1, x.size // 1_000_000)]
    lo, hi = np.percentile(sample, [lo_pct, hi_pct])
    if hi <= lo:
        return np.zeros(x.shape, np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _optical_density(rgb: np.ndarray) -> np.ndarray:
    """Per-channel OD up to a constant: -log10(I) (the white level cancels on normalising)."""
    x = rgb.astype(np.float32)
    return -np.log10(np.maximum(x, 1e-3 * max(float(x.max()), 1.0)))


def interior_map(image: ImageLike | np.ndarray, *, stain: Stain, channel: int | None = None) -> np.ndarray:
    """Fiber-interior map in [0, 1]: high inside fibers, low on borders and background.

    Parameters
    ----------
    image : ImageData or ndarray
        ``(Y, X, 3)`` RGB, ``(Y, X)`` grey or ``(C, Y, X)`` multichannel.
    stain : str
        One of ``he``, ``nadh``, ``sdh``, ``atpase``, ``esterase``, ``psr``, ``if``.
    channel : int, optional
        Membrane channel of a multichannel fluorescence image.

    Returns
    -------
    ndarray of float32, shape (Y, X)
    """
    check_stain(stain)
    pixels, axes = _pixels_and_axes(image)
    if stain in FLUORESCENCE_STAINS:
        if axes == "CYX":
            plane = pixels[pick_channel(pixels.shape[0], channel)]
        elif axes == "YXS":
            plane = pixels[..., channel] if channel is not None else pixels.max(axis=-1)
        else:
            plane = pixels
        return 1.0 - _normalise(plane.astype(np.float32), 1.0, 99.5)
    if axes == "CYX":
        if pixels.shape[0] != 3:
            raise HistoInputError(
                f"a brightfield ({stain}) image must be RGB or grey, got {pixels.shape[0]} channels"
            )
        pixels = np.moveaxis(pixels, 0, -1)
        axes = "YXS"
    if axes == "YX":
        return _normalise(_optical_density(pixels))
    if stain == "he":
        x = pixels.astype(np.float32)
        return _normalise(x.max(axis=-1) - x.min(axis=-1))
    od = _optical_density(pixels)
    if stain == "psr":
        # fibers are pale yellow, collagen (red) and fine borders dark: invert the total OD,
        # and keep it only on tissue (yellowness), not on the empty slide
        yellow = cv2.GaussianBlur(_normalise(od[..., 2] - od[..., 1]), (0, 0), 4.0)
        tissue = yellow > threshold_otsu(yellow[::4, ::4])
        return (1.0 - _normalise(od.sum(axis=-1))) * tissue
    return _normalise(od.sum(axis=-1))
