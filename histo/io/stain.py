"""Stain handling: optical density, H&E colour deconvolution, darkness signal, stain guess.

Stain names used everywhere in histo: ``"he"``, ``"nadh"``, ``"sdh"``, ``"atpase"``,
``"esterase"``, ``"if"`` (immunofluorescence), ``"psr"`` (picrosirius red), and ``"auto"``
where a guess is allowed.

Pixel layouts accepted: ``(Y, X)`` grey, ``(Y, X, 3|4)`` RGB(A) (alpha dropped) and
``(C, Y, X)`` multichannel (C other than 3 or 4, or a ``histo.io.image.ImageData`` with
``axes="CYX"``).
"""

from __future__ import annotations

import logging
import typing
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.channels import pick_channel
from histo.io.image import ImageLike

log = logging.getLogger(__name__)

#: A stain name histo knows (the one definition; :data:`STAINS` lists them).
Stain = Literal["he", "nadh", "sdh", "atpase", "esterase", "if", "psr"]
#: Every stain name histo knows, in the order of :data:`Stain`.
STAINS: tuple[Stain, ...] = typing.get_args(Stain)
#: Brightfield (absorption) stains: dark means more stain.
BRIGHTFIELD_STAINS: tuple[Stain, ...] = tuple(s for s in STAINS if s != "if")
#: Fluorescence stains: bright means more signal.
FLUORESCENCE_STAINS: tuple[Stain, ...] = ("if",)


def check_stain(stain: object, *, allow_auto: bool = False) -> str:
    """``stain`` when it is one of :data:`STAINS`, else a HistoInputError listing them.

    With ``allow_auto``, ``"auto"`` and None (guess the stain from the pixels) are returned
    as they are.

    Examples
    --------
    >>> check_stain("nadh")
    'nadh'
    >>> check_stain("giemsa")
    Traceback (most recent call last):
    ...
    histo.errors.HistoInputError: unknown stain 'giemsa'; choose one of he, nadh, sdh, atpase, esterase, if, psr
    """
    if allow_auto and stain in (None, "auto"):
        return stain  # type: ignore[return-value]
    if stain not in STAINS:
        choices = ("auto, " if allow_auto else "") + ", ".join(STAINS)
        raise HistoInputError(f"unknown stain {stain!r}; choose one of {choices}")
    return stain  # type: ignore[return-value]

#: Ruifrok & Johnston (2001) optical density vectors (R, G, B) of hematoxylin and eosin.
HEMATOXYLIN_OD = np.array([0.650, 0.704, 0.286])
EOSIN_OD = np.array([0.072, 0.990, 0.105])


def _stain_matrix() -> np.ndarray:
    """Rows: unit OD vectors of hematoxylin, eosin and the residual (their cross product)."""
    h = HEMATOXYLIN_OD / np.linalg.norm(HEMATOXYLIN_OD)
    e = EOSIN_OD / np.linalg.norm(EOSIN_OD)
    r = np.cross(h, e)
    return np.vstack([h, e, r / np.linalg.norm(r)])


_HE_MATRIX = _stain_matrix()
_HE_UNMIX = np.linalg.inv(_HE_MATRIX)


# ------------------------------------------------------------------ layouts
def image_layout(pixels: ImageLike | np.ndarray, shape_yx: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    """Array and axes (``"YX"``, ``"YXS"`` or ``"CYX"``) of pixels or of an ImageData.

    An object with ``pixels`` and ``axes`` attributes (``histo.io.image.ImageData``) is trusted.
    A bare array is matched against ``shape_yx`` when given (e.g. the labels' shape), else
    read as ``(Y, X)``, ``(Y, X, 3|4)`` (alpha dropped), or channels first when its first
    axis is the shortest (``(Y, X, C)`` with few channels is moved to ``(C, Y, X)``).

    Examples
    --------
    >>> image_layout(np.zeros((4, 64, 64), np.uint16))[1]
    'CYX'
    >>> image_layout(np.zeros((64, 64, 3), np.uint8))[1]
    'YXS'
    >>> image_layout(np.zeros((2, 2, 3), np.uint8), shape_yx=(2, 2))[1]
    'YXS'
    """
    axes = getattr(pixels, "axes", None)
    arr = np.asarray(getattr(pixels, "pixels", pixels))
    if axes in ("YX", "YXS", "CYX"):
        if axes == "YXS" and arr.shape[-1] == 4:
            arr = arr[..., :3]
        return arr, axes
    if arr.ndim == 3 and shape_yx is not None:
        shape_yx = tuple(shape_yx)
        if arr.shape[:2] == shape_yx and arr.shape[-1] in (3, 4):
            return arr[..., :3], "YXS"
        if arr.shape[1:] == shape_yx:
            return (arr[0], "YX") if arr.shape[0] == 1 else (arr, "CYX")
        if arr.shape[:2] == shape_yx:
            return (arr[..., 0], "YX") if arr.shape[-1] == 1 else (np.moveaxis(arr, -1, 0), "CYX")
    if arr.ndim == 2:
        return arr, "YX"
    if arr.ndim == 3:
        if arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
            return arr[..., :3], "YXS"
        if arr.shape[-1] == 1:
            return arr[..., 0], "YX"
        if arr.shape[0] == 1:
            return arr[0], "YX"
        if arr.shape[0] < min(arr.shape[1:]):
            return arr, "CYX"
        if arr.shape[-1] < min(arr.shape[:2]):
            return np.moveaxis(arr, -1, 0), "CYX"
    raise HistoInputError(
        f"pixels of shape {arr.shape} are not an image histo understands; expected (Y, X) "
        "grey, (Y, X, 3) RGB or (C, Y, X) channels"
    )


def full_scale(arr: np.ndarray) -> float:
    """The white level of an array: the dtype's maximum for integers, 1.0 (or max) for floats."""
    if np.issubdtype(arr.dtype, np.integer):
        return float(np.iinfo(arr.dtype).max)
    if arr.dtype == bool:
        return 1.0
    top = float(np.nanmax(arr)) if arr.size else 1.0
    return 1.0 if top <= 1.0 else top


def _check_finite(arr: np.ndarray, what: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise HistoInputError(f"{what} contains NaN or infinite values; fill or crop them first")


# ------------------------------------------------------------------ optical density
def estimate_background(rgb: np.ndarray, *, fraction: float = 0.005,
                        min_level: float = 0.8) -> np.ndarray:
    """Per-channel white level ``I0``: the median of the brightest pixels, or full scale.

    The brightest ``fraction`` of the pixels (by summed channels) is taken as background
    (glass) when its median is at least ``min_level`` of full scale in every channel;
    otherwise the image has no visible background and full scale is returned.

    Parameters
    ----------
    rgb : (Y, X) or (Y, X, C) array

    Returns
    -------
    (C,) float array (C = 1 for a grey image)
    """
    arr = np.asarray(rgb)
    flat = arr.reshape(-1, 1) if arr.ndim == 2 else arr.reshape(-1, arr.shape[-1])
    top = full_scale(arr)
    if flat.shape[0] == 0:
        return np.full(flat.shape[1], top)
    step = max(1, flat.shape[0] // 2_000_000)  # a subsample is plenty for a percentile
    sample = flat[::step]
    # summed channels, one column at a time (a row-wise sum over a (N, 3) array is slow)
    small_int = sample.dtype.kind in "ui" and sample.dtype.itemsize <= 2
    total = np.zeros(len(sample), np.int32 if small_int else np.float64)
    for c in range(sample.shape[1]):
        total += sample[:, c]
    k = max(1, int(round(fraction * len(total))))
    bright = sample[np.argpartition(total, len(total) - k)[-k:]].astype(np.float64)
    level = np.median(bright, axis=0)
    if np.all(level >= min_level * top):
        return level
    return np.full(flat.shape[1], top)


def optical_density(rgb: np.ndarray, background=None) -> np.ndarray:
    """Optical density ``OD = -log10(I / I0)`` per pixel and channel.

    Parameters
    ----------
    rgb : (Y, X) or (Y, X, C) array
        Brightfield intensities (uint8, uint16 or float).
    background : None, float, sequence of float or (Y, X) bool array, optional
        The white level ``I0``: None estimates it from the brightest background pixels
        (:func:`estimate_background`, full scale when there is no background); a number or
        one number per channel gives it directly; a boolean mask marks background pixels
        whose per-channel median is used.

    Returns
    -------
    float32 array, same shape as ``rgb``
        OD >= 0 (intensities above ``I0`` clip to 0; zero intensities to half a grey level).

    Examples
    --------
    >>> optical_density(np.array([[[255, 25, 255]]], np.uint8), background=255).round(2)
    array([[[0.  , 1.01, 0.  ]]], dtype=float32)
    """
    arr = np.asarray(rgb)
    i0 = white_level(arr, background)
    if _lut_ok(arr):
        out = np.empty(arr.shape, np.float32)
        if arr.ndim == 2:
            np.take(_od_lut(arr.dtype, i0[0]), arr, out=out)
        else:
            for c in range(arr.shape[-1]):
                out[..., c] = _od_lut(arr.dtype, i0[c])[arr[..., c]]
        return out
    eps = full_scale(arr) / 512.0
    i0f = i0.astype(np.float32)[0] if arr.ndim == 2 else i0.astype(np.float32)
    ratio = np.clip(arr.astype(np.float32), eps, None) / i0f
    od = 0.0 - np.log10(np.minimum(ratio, 1.0, dtype=np.float32))
    return od.astype(np.float32, copy=False)


def white_level(rgb: np.ndarray, background=None) -> np.ndarray:
    """Per-channel white level ``I0`` of an image from the ``background`` argument.

    See :func:`optical_density` for the accepted forms; returns a ``(C,)`` float array
    (C = 1 for a grey image).
    """
    arr = np.asarray(rgb)
    _check_finite(arr, "the image")
    nchan = 1 if arr.ndim == 2 else arr.shape[-1]
    if background is None:
        i0 = estimate_background(arr)
    elif isinstance(background, np.ndarray) and background.dtype == bool:
        if background.shape != arr.shape[:2]:
            raise HistoInputError(
                f"background mask has shape {background.shape}, the image {arr.shape[:2]}; "
                "give a mask on the image's (Y, X) grid")
        if not background.any():
            raise HistoInputError("background mask is empty; mark some glass pixels or pass None")
        i0 = np.median(arr[background].reshape(-1, nchan).astype(np.float64), axis=0)
    else:
        i0 = np.broadcast_to(np.asarray(background, dtype=np.float64), (nchan,)).copy()
    if np.any(~np.isfinite(i0)) or np.any(i0 <= 0):
        raise HistoInputError(f"background level {i0} must be positive; give the white level")
    return i0


def _lut_ok(arr: np.ndarray) -> bool:
    """8- and 16-bit unsigned images go through a lookup table (one log per grey level)."""
    return arr.dtype in (np.uint8, np.uint16)


def _od_lut(dtype, i0: float) -> np.ndarray:
    levels = np.arange(np.iinfo(dtype).max + 1, dtype=np.float64)
    ratio = np.minimum(np.maximum(levels, 0.5) / i0, 1.0)
    return (0.0 - np.log10(ratio)).astype(np.float32)


def _weighted_od(arr: np.ndarray, i0: np.ndarray, weights) -> np.ndarray:
    """``sum_c weights[c] * OD_c`` of an (Y, X, C) image, without the (Y, X, C) OD stack."""
    weights = np.asarray(weights, dtype=np.float64)
    if not _lut_ok(arr):
        return (optical_density(arr, background=i0) @ weights.astype(np.float32)).astype(np.float32)
    out = np.zeros(arr.shape[:2], np.float32)
    for c in range(arr.shape[-1]):
        out += (_od_lut(arr.dtype, i0[c]) * weights[c]).astype(np.float32)[arr[..., c]]
    return out


def deconvolve_he(rgb: np.ndarray, background=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hematoxylin, eosin and residual amounts by colour deconvolution (Ruifrok & Johnston 2001).

    The optical density of each pixel is written as ``h * H + e * E + r * R`` with ``H`` and
    ``E`` the unit OD vectors of hematoxylin (0.650, 0.704, 0.286) and eosin (0.072, 0.990,
    0.105) and ``R`` their normalised cross product; the amounts are in OD units (not clipped,
    so noise can make them slightly negative). Same vectors as ``skimage.color.rgb2hed``'s
    first two; the third differs (residual instead of DAB).

    Parameters
    ----------
    rgb : (Y, X, 3) array
    background : see :func:`optical_density`

    Returns
    -------
    hematoxylin, eosin, residual : three (Y, X) float32 arrays

    Examples
    --------
    >>> od = 0.8 * HEMATOXYLIN_OD / np.linalg.norm(HEMATOXYLIN_OD)
    >>> pixel = (255 * 10.0 ** -od).reshape(1, 1, 3)
    >>> h, e, r = deconvolve_he(pixel, background=255)
    >>> round(float(h[0, 0]), 3), abs(round(float(e[0, 0]), 3))
    (0.8, 0.0)
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise HistoInputError(
            f"H&E deconvolution needs an RGB image (Y, X, 3); got shape {arr.shape}")
    arr = arr[..., :3]
    od = optical_density(arr, background=background)
    amounts = od.reshape(-1, 3) @ _HE_UNMIX.astype(np.float32)
    amounts = amounts.reshape(arr.shape[:2] + (3,))
    return (np.ascontiguousarray(amounts[..., 0]), np.ascontiguousarray(amounts[..., 1]),
            np.ascontiguousarray(amounts[..., 2]))


# ------------------------------------------------------------------ darkness
#: H&E nuclear pixels: hematoxylin OD (smoothed, sigma 1 px) above this ...
NUCLEUS_MIN_HEMATOXYLIN_OD = 0.25
#: ... and above the eosin OD times this (a nucleus is hematoxylin-dominated; a basophilic
#: regenerating cytoplasm is not).
NUCLEUS_MIN_H_TO_E = 1.5
#: ... in a blob at most this many times the median blob's area (at least 50 px).
NUCLEUS_MAX_AREA_RATIO = 8.0


def he_cytoplasm(rgb: np.ndarray, background=None) -> tuple[np.ndarray, np.ndarray]:
    """Cytoplasmic optical densities of an H&E image, with the nuclei masked.

    The image is unmixed (:func:`deconvolve_he`); a pixel is nuclear when its smoothed
    hematoxylin OD is above :data:`NUCLEUS_MIN_HEMATOXYLIN_OD` and above
    :data:`NUCLEUS_MIN_H_TO_E` times its eosin OD, in a blob no larger than
    :data:`NUCLEUS_MAX_AREA_RATIO` times the median blob (a whole deeply basophilic fiber is
    not a nucleus), grown by one pixel. On the bundled mouse H&E images this masks about 2 % of
    the fiber pixels, in about as many blobs as there are nuclei.

    Parameters
    ----------
    rgb : (Y, X, 3) array
    background : optional
        White level, as for :func:`optical_density`.

    Returns
    -------
    total, hematoxylin : two (Y, X) float32 arrays
        Hematoxylin + eosin OD and hematoxylin OD (each clipped at 0), NaN on nuclear pixels.
        ``hematoxylin / total`` of a fiber is its basophilia.

    Examples
    --------
    >>> od = np.zeros((9, 9, 3)); od[...] = 0.3 * EOSIN_OD / np.linalg.norm(EOSIN_OD)
    >>> od[3:6, 3:6] = 0.9 * HEMATOXYLIN_OD / np.linalg.norm(HEMATOXYLIN_OD)
    >>> total, h = he_cytoplasm(255 * 10.0 ** -od, background=255)
    >>> bool(np.isnan(total[4, 4])), round(float(total[0, 0]), 2), round(float(h[0, 0]), 2)
    (True, 0.3, 0.0)
    """
    h, e, _ = deconvolve_he(rgb, background=background)
    h = np.clip(h, 0, None)
    e = np.clip(e, 0, None)
    hs, es = ndi.gaussian_filter(h, 1.0), ndi.gaussian_filter(e, 1.0)
    nucleus = (hs > NUCLEUS_MIN_HEMATOXYLIN_OD) & (hs > NUCLEUS_MIN_H_TO_E * es)
    blobs, n = ndi.label(nucleus)
    if n:  # a blob far larger than the typical one is a deeply basophilic fiber, not a nucleus
        area = np.bincount(blobs.ravel(), minlength=n + 1)
        limit = max(NUCLEUS_MAX_AREA_RATIO * float(np.median(area[1:])), 50.0)
        nucleus &= (area <= limit)[blobs]
    nucleus = ndi.binary_dilation(nucleus, iterations=1)
    total = (h + e).astype(np.float32)
    total[nucleus] = np.nan
    h = h.astype(np.float32)
    h[nucleus] = np.nan
    return total, h


def darkness_signal(pixels: ImageLike | np.ndarray, stain: Stain | Literal["auto"], channel: int | None = None) -> np.ndarray:
    """Per-pixel signal whose fiber mean is ``mean_od``: higher = darker (more stain).

    - ``"he"`` (colour): cytoplasmic hematoxylin + eosin OD with the nuclei masked (NaN), of
      :func:`he_cytoplasm`; a fiber's ``mean_od`` is the mean over its non-nuclear pixels.
      (Until issue 11 this was the hematoxylin OD, i.e. basophilia, which picks regenerating
      fibers; basophilia is now its own per-fiber column.)
    - other brightfield stains (NADH-TR, SDH, ATPase, esterase, PSR): total OD, the sum of
      the R, G and B optical densities (the single OD of a grey image).
    - ``"if"``: fluorescence has no "dark" in the brightfield sense (every fiber interior is
      dark on a membrane stain). The signal is the chosen channel's intensity divided by its
      99.5th percentile, so ``mean_od`` is a relative *brightness* (expression) of that
      channel, not an optical density, and ``darkness`` then says how much *brighter* than the
      slide's typical fiber a fiber is in that channel. Scoring should not read it as
      denervation darkness.
    - ``"auto"``: :func:`guess_stain` first.

    Parameters
    ----------
    pixels : array or ImageData-like
        ``(Y, X)``, ``(Y, X, 3)`` or ``(C, Y, X)``.
    stain : Stain or "auto"
    channel : int, optional
        Channel of a multichannel image (required for ``(C, Y, X)`` with C > 1); for an RGB
        fluorescence image, the colour channel (mean of the three when None).

    Returns
    -------
    (Y, X) float32 array
    """
    arr, axes = image_layout(pixels)
    if stain in (None, "auto"):
        stain = guess_stain(pixels)
    check_stain(stain)
    _check_finite(arr, "the image")
    if axes == "CYX":
        plane = arr[pick_channel(arr.shape[0], channel)]
        if stain in BRIGHTFIELD_STAINS:
            return optical_density(plane)
        return _normalised(plane)
    if stain == "if":
        if axes == "YXS":
            if channel is not None and not 0 <= int(channel) < arr.shape[-1]:
                raise HistoInputError(f"channel {channel} out of range: an RGB image has 0..2")
            plane = arr[..., int(channel)] if channel is not None else arr.mean(axis=-1)
            return _normalised(plane)
        return _normalised(arr)
    if axes == "YX":
        if stain == "he":
            log.warning("H&E darkness needs colour; using the grey optical density instead")
        return optical_density(arr)
    i0 = white_level(arr)
    if stain == "he":
        return he_cytoplasm(arr[..., :3], background=i0[:3])[0]
    return _weighted_od(arr, i0, np.ones(arr.shape[-1]))


def _normalised(plane: np.ndarray) -> np.ndarray:
    """Intensity divided by its 99.5th percentile (returned as is when that is 0)."""
    work = np.asarray(plane, dtype=np.float32)
    step = max(1, work.size // 4_000_000)
    top = float(np.percentile(work.ravel()[::step], 99.5)) if work.size else 0.0
    return work / top if top > 0 else work


# ------------------------------------------------------------------ guess
def guess_stain(pixels: ImageLike | np.ndarray) -> Stain:
    """Guess the stain from colour.

    Rules, in order:

    1. Multichannel (``(C, Y, X)``) or single-channel 16-bit: ``"if"``.
    2. Mostly dark (median brightness below 35 % of full scale): fluorescence, ``"if"``.
    3. Grey (8-bit single channel, or tissue saturation median below 0.12): ``"atpase"``.
    4. Otherwise the typical hue of the tissue pixels (those with total OD above 0.15; the
       circular median of their HSV hue) decides: pink-magenta (hue >= 285 or < 10 deg)
       ``"he"``; red-brown (10-32 deg) ``"esterase"``; yellow-orange (32-150 deg, the
       yellow fibers of picrosirius red, whose red collagen is the minority) ``"psr"``;
       blue-purple (150-285 deg) ``"nadh"``. On the bundled real images: H&E 323-339 deg,
       picrosirius red 45 deg.

    NADH-TR and SDH (both blue-purple formazan) cannot be told apart by colour: both are
    reported as ``"nadh"``; pass ``"sdh"`` explicitly when it matters (their darkness signal
    is the same). Guessing is a convenience; a known stain should be given.

    Parameters
    ----------
    pixels : array or ImageData-like

    Returns
    -------
    str, one of :data:`STAINS`
    """
    arr, axes = image_layout(pixels)
    if axes == "CYX":
        return "if"
    if arr.size == 0:
        raise HistoInputError("the image is empty")
    top = full_scale(arr)
    step = max(1, int(round(np.sqrt(arr.shape[0] * arr.shape[1] / 250_000))))
    small = np.asarray(arr[::step, ::step], dtype=np.float64) / top
    if arr.ndim == 2:
        if arr.dtype == np.uint16:
            return "if"
        return "if" if np.median(small) < 0.35 else "atpase"
    small = np.clip(small[..., :3], 0.0, 1.0)
    value = small.max(axis=-1)
    if np.median(value) < 0.35:
        return "if"
    od = -np.log10(np.clip(small, 1.0 / 512, 1.0))
    tissue = od.sum(axis=-1) > 0.15
    if tissue.sum() < 50:
        tissue = np.ones(value.shape, bool)
    rgb = small[tissue]
    vmax, vmin = rgb.max(axis=1), rgb.min(axis=1)
    sat = np.where(vmax > 0, (vmax - vmin) / np.maximum(vmax, 1e-9), 0.0)
    if np.median(sat) < 0.12:
        return "atpase"
    hue = _hue_deg(rgb, vmax, vmin)
    mean_hue = np.degrees(np.arctan2(np.sum(sat * np.sin(np.radians(hue))),
                                     np.sum(sat * np.cos(np.radians(hue)))))
    deviation = (hue - mean_hue + 180.0) % 360.0 - 180.0
    typical = float(mean_hue + np.median(deviation)) % 360.0  # circular median, roughly
    log.debug("guess_stain: typical hue %.0f deg, median saturation %.2f", typical, np.median(sat))
    if typical >= 285 or typical < 10:
        return "he"
    if typical < 32:
        return "esterase"
    if typical < 150:
        return "psr"
    return "nadh"


def _hue_deg(rgb: np.ndarray, vmax: np.ndarray, vmin: np.ndarray) -> np.ndarray:
    """HSV hue in degrees of (N, 3) RGB rows in [0, 1]."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    delta = np.maximum(vmax - vmin, 1e-12)
    hue = np.where(vmax == r, ((g - b) / delta) % 6.0,
                   np.where(vmax == g, (b - r) / delta + 2.0, (r - g) / delta + 4.0))
    return 60.0 * hue
