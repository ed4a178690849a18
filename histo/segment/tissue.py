"""Where the tissue is: glass, stitching fill, pen and drawn text hold no fibers.

:func:`detect_tissue` finds tissue on a low-resolution image (a whole slide's thumbnail or
any input brought down to at most :data:`MASK_MAX_SIDE` px); :func:`tissue_mask` does that for
any input and returns the mask with the factor to the input grid;
:func:`objects_outside` lists the objects of a label image that lie (mostly) off the tissue.

Brightfield rules, on top of "tissue absorbs light" (optical density above an Otsu threshold):

* black or near-black fill (stitching gaps, scanner borders, black text and scale bars):
  every channel under :data:`BLACK_MAX` and barely coloured is not tissue;
* white fill and glass: no absorption;
* pen ink that no stain makes (green, or saturated blue-green), and text / scale bars drawn
  in pure colours: strongly saturated pixels far from every stain's hue are not tissue;
* small islands (specks of dust, letters) are dropped.

Examples
--------
>>> img = np.full((64, 64, 3), 245, np.uint8); img[16:48, 10:50] = (200, 90, 140)
>>> img[50:60, 5:60] = 0  # a black scale bar
>>> m = detect_tissue(img); bool(m[30, 30]), bool(m[2, 2]), bool(m[55, 30])
(True, False, False)
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import disk

from histo.errors import HistoInputError

#: Longest side of the image the mask is computed on (px).
MASK_MAX_SIDE = 1024
#: Brightfield pixels darker than this in every channel (of 255) and barely coloured are fill.
BLACK_MAX = 40
#: An object is outside the tissue when at least this fraction of it is off the mask.
OUTSIDE_FRACTION = 0.8


def _otsu(score: np.ndarray) -> float:
    finite = score[np.isfinite(score)]
    if finite.size == 0 or float(finite.min()) == float(finite.max()):
        return float("inf")
    return float(threshold_otsu(finite))


def _not_stain(rgb: np.ndarray) -> np.ndarray:
    """Fill, black marks and pen ink: colours no muscle stain gives (``rgb`` float 0-255)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hi, lo = rgb.max(-1), rgb.min(-1)
    black = (hi < BLACK_MAX) & (hi - lo < 25)
    green_ink = (g - np.maximum(r, b) > 40)  # no stain used on muscle is green
    return black | green_ink


def detect_tissue(thumbnail: np.ndarray, *, axes: str | None = None,
                  min_object_frac: float = 0.0005, dark_reach_frac: float = 0.0) -> np.ndarray:
    """Tissue mask of a low-resolution image.

    Brightfield (RGB): tissue absorbs light, so its optical density
    ``-log10(I / 255)`` summed over channels is above an Otsu threshold (capped at 0.15, so
    a slide covered by tissue is not split into its light and dark parts); black fill and pen
    ink are not tissue (see the module notes). Fluorescence (grey or one channel): tissue is
    brighter than the dark background (Otsu on log intensity); with ``dark_reach_frac`` (fiber
    interiors on a membrane stain are as dark as glass) everything within that fraction of the
    image side of the signal counts too; exactly-zero or saturated fill is not tissue. The mask is closed, its holes filled, and objects smaller than
    ``min_object_frac`` of the image dropped.

    Parameters
    ----------
    thumbnail : (y, x, 3|4) or (y, x) array
    axes : {"YXS", "YX"}, optional
        Inferred from the shape when omitted.

    Returns
    -------
    (y, x) bool array

    Examples
    --------
    >>> img = np.full((64, 64, 3), 245, np.uint8); img[16:48, 10:50] = (200, 90, 140)
    >>> m = detect_tissue(img); bool(m[30, 30]), bool(m[2, 2])
    (True, False)
    """
    img = np.asarray(thumbnail)
    axes = axes or ("YXS" if img.ndim == 3 else "YX")
    if axes == "YXS":
        rgb = img[..., :3].astype(np.float32)
        top = 255.0 if img.dtype == np.uint8 else max(float(rgb.max()), 1.0)
        rgb255 = rgb * (255.0 / top)
        score = -np.log10(np.clip((rgb + 1.0) / (top + 1.0), 1e-4, 1.0)).sum(axis=-1)
        fill = ndi.binary_opening(_not_stain(rgb255), structure=np.ones((2, 2), bool))
        score = ndi.uniform_filter(np.where(fill, 0.0, score), 3)
        thr = _otsu(score[~fill]) if (~fill).any() else float("inf")
        mask = (score > min(max(thr, 0.03), 0.15)) & ~fill
    elif axes == "YX":
        plane = img.astype(np.float32)
        top = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else np.inf
        fill = (plane <= 0) | (plane >= top)  # stitching fill: exactly zero or saturated
        fill = ndi.binary_opening(fill, structure=np.ones((5, 5), bool)) if fill.any() else fill
        score = ndi.uniform_filter(np.log1p(np.clip(plane, 0, None)), 3)
        mask = score > _otsu(score)
        # fiber interiors are as dark as glass on a membrane stain: only wide dark areas far
        # from any signal are not tissue
        if dark_reach_frac > 0 and mask.any():
            mask = ndi.distance_transform_edt(~mask) <= max(2.0, dark_reach_frac * max(mask.shape))
        mask &= ~fill
    else:
        raise HistoInputError(f"thumbnail axes must be YXS or YX, got {axes}")
    radius = max(1, int(round(max(mask.shape) / 400)))
    mask = ndi.binary_closing(mask, structure=disk(radius), border_value=0)
    mask = ndi.binary_fill_holes(mask)
    if axes == "YXS" and fill.any():
        mask &= ~ndi.binary_dilation(fill, iterations=1)
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= max(1, min_object_frac * mask.size)
    keep[0] = False
    return keep[lab]


def tissue_mask(pixels: np.ndarray, *, max_side: int = MASK_MAX_SIDE) -> tuple[np.ndarray, float]:
    """Tissue mask of a (Y, X[, 3]) image at most ``max_side`` px long, and its scale factor.

    Returns
    -------
    mask : (y, x) bool array
    factor : float
        Mask pixels per input pixel (``<= 1``).

    Examples
    --------
    >>> img = np.full((2000, 1000, 3), 250, np.uint8); img[200:1800, 100:900] = (190, 80, 150)
    >>> m, f = tissue_mask(img); m.shape, f, bool(m[500, 250]), bool(m[20, 20])
    ((1024, 512), 0.512, True, False)
    """
    img = np.asarray(pixels)
    h, w = img.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    small = img
    if factor < 1:
        size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
        src = img if img.dtype in (np.uint8, np.uint16, np.float32) else img.astype(np.float32)
        small = cv2.resize(src[..., :3] if src.ndim == 3 else src, size, interpolation=cv2.INTER_AREA)
    axes = "YXS" if small.ndim == 3 else "YX"
    return detect_tissue(small, axes=axes, dark_reach_frac=1 / 8 if axes == "YX" else 0.0), factor


def objects_outside(labels: np.ndarray, mask: np.ndarray, *, fraction: float = OUTSIDE_FRACTION) -> np.ndarray:
    """Labels of the objects with at least ``fraction`` of their pixels off ``mask``.

    ``mask`` may be at a lower resolution than ``labels`` (nearest sampling).

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 2, 2]]); mask = np.array([[1, 1, 1, 0, 0]], bool)
    >>> objects_outside(lab, mask).tolist()
    [2]
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    mh, mw = mask.shape
    yi = np.minimum(((np.arange(h) + 0.5) * mh / h).astype(np.intp), mh - 1)
    xi = np.minimum(((np.arange(w) + 0.5) * mw / w).astype(np.intp), mw - 1)
    off = ~np.asarray(mask, bool)[yi[:, None], xi[None, :]]
    n = int(labels.max()) + 1
    total = np.bincount(labels.ravel(), minlength=n)
    outside = np.bincount(labels.ravel(), weights=off.ravel(), minlength=n)
    bad = (total > 0) & (outside >= fraction * np.maximum(total, 1))
    bad[0] = False
    return np.flatnonzero(bad)
