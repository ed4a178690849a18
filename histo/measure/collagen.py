"""Collagen area fractions of a picrosirius red (PSR) section: endomysial and perimysial.

Picrosirius red stains collagen red and muscle fibers yellow (picric acid). Three steps, all
on the RGB pixels:

1. **Red collagen.** Optical densities after a white balance on the brightest pixels
   (``white`` = the 99th percentile of each channel, so a dim or tinted scan reads the same):
   collagen absorbs green far more than red, picric-yellow fibers and glass do not. A pixel
   is collagen when ``OD_green - OD_red >= red_min_od`` (default :data:`RED_MIN_OD` = 0.10;
   on the bundled PSR images thick septa read 0.3-0.8, fibers and glass -0.05 to 0.05).
2. **Tissue.** Collagen, fibers and coloured interstitium: pixels whose HSV saturation is at
   least :data:`TISSUE_MIN_SATURATION` (glass is grey), plus the collagen and the fibers.
   A tissue mask given by the caller replaces this.
3. **Endomysial or perimysial.** The space between fibers (everything that is not a fiber:
   the fiber labels when given, else the yellow tissue in pieces of at least
   ``(septum_min_px / 2) ** 2`` pixels) is opened with a disk of diameter ``septum_min_px``:
   a pixel lies in a *wide septum* when such a disk fits in the space around it. Collagen
   in wide septa (and at the fascicle edge, where the space opens onto glass) is
   **perimysial**; collagen in gaps narrower than the disk (around single fibers and in the
   junctions between a few) is **endomysial**. The default width, :data:`SEPTUM_MIN_UM` =
   10 µm, sits between normal endomysium (0.5-3 µm) and perimysial septa (tens of µm).

Fractions are of the tissue area. Pure functions over arrays; :func:`collagen_summary` picks
the septum width in pixels from the pixel size (or, without one, from the fiber size, and
says so) and returns the JSON-able record that ``summary.json`` stores under ``collagen``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from histo.errors import HistoInputError
from histo.io.stain import full_scale

#: Collagen: ``OD_green - OD_red`` after the white balance at least this.
RED_MIN_OD = 0.10
#: Tissue: HSV saturation at least this (glass is grey).
TISSUE_MIN_SATURATION = 0.12
#: Septa at least this wide (µm) are perimysium; narrower gaps are endomysium.
SEPTUM_MIN_UM = 10.0
#: Without a pixel size: the septum width as a fraction of the median fiber min Feret
#: (10 µm of a 50 µm fiber).
SEPTUM_FIBER_FRACTION = 0.2


@dataclass(frozen=True)
class CollagenFractions:
    """Pixel counts of a PSR section and the collagen fractions of its tissue area."""

    tissue_px: int
    """Tissue pixels (the denominator)."""
    collagen_px: int
    """Red collagen pixels inside the tissue."""
    endomysial_px: int
    """Collagen pixels in gaps narrower than ``septum_min_px``."""
    perimysial_px: int
    """Collagen pixels in wider septa or at the fascicle edge."""
    septum_min_px: float
    """Width (px) from which the space between fibers is a septum."""

    @property
    def collagen_fraction(self) -> float:
        return self.collagen_px / self.tissue_px if self.tissue_px else float("nan")

    @property
    def endomysial_fraction(self) -> float:
        return self.endomysial_px / self.tissue_px if self.tissue_px else float("nan")

    @property
    def perimysial_fraction(self) -> float:
        return self.perimysial_px / self.tissue_px if self.tissue_px else float("nan")


@dataclass(frozen=True)
class CollagenMasks:
    """Boolean ``(Y, X)`` masks of a PSR image (module doc)."""

    tissue: np.ndarray
    fibers: np.ndarray
    endomysial: np.ndarray
    perimysial: np.ndarray


def _rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise HistoInputError(f"the PSR image has shape {arr.shape}; an RGB(A) image (Y, X, 3) "
                              "is needed for the collagen fractions")
    return arr[..., :3].astype(np.float64) / full_scale(arr)


def red_collagen_od(image: np.ndarray, *, white: np.ndarray | None = None) -> np.ndarray:
    """``OD_green - OD_red`` of every pixel after the white balance (step 1 of the module doc).

    Parameters
    ----------
    image : (Y, X, 3) array
        RGB, any integer dtype or float in [0, 1].
    white : (3,) array, optional
        The white (glass) colour in the image's scale; default the 99th percentile of each
        channel.

    Returns
    -------
    (Y, X) float array
        About 0 for glass and yellow fibers, positive for red collagen.

    Examples
    --------
    >>> img = np.array([[[200, 200, 200], [190, 180, 90], [150, 40, 60]]], np.uint8)
    >>> red_collagen_od(img, white=np.array([200, 200, 200])).round(2).tolist()
    [[0.0, 0.02, 0.57]]
    """
    rgb = _rgb(image)
    if white is None:
        step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 1_000_000)))
        white = np.percentile(rgb[::step, ::step, :2].reshape(-1, 2), 99, axis=0)
    else:
        white = np.asarray(white, dtype=np.float64)[:2] / full_scale(np.asarray(image))
    white = np.maximum(white, 1e-6)
    floor = 1.0 / 512
    od_red = -np.log10(np.clip(rgb[..., 0] / white[0], floor, 1.0))
    od_green = -np.log10(np.clip(rgb[..., 1] / white[1], floor, 1.0))
    return od_green - od_red


def collagen_masks(image: np.ndarray, *, septum_min_px: float,
                   fibers: np.ndarray | None = None, tissue: np.ndarray | None = None,
                   red_min_od: float = RED_MIN_OD,
                   white: np.ndarray | None = None) -> CollagenMasks:
    """The masks behind :func:`collagen_fractions` (same parameters), e.g. for an overlay."""
    rgb = _rgb(image)
    shape = rgb.shape[:2]
    if not np.isfinite(septum_min_px) or septum_min_px < 1:
        raise HistoInputError(f"septum_min_px is {septum_min_px}; give a width of at least 1 px")
    for name, arr in (("fibers", fibers), ("tissue", tissue)):
        if arr is not None and np.shape(arr) != shape:
            raise HistoInputError(f"{name} has shape {np.shape(arr)} but the image is "
                                  f"{shape[0]} x {shape[1]}; pass a mask of the image's size")
    collagen = red_collagen_od(image, white=white) >= red_min_od
    if tissue is None:
        vmax, vmin = rgb.max(axis=-1), rgb.min(axis=-1)
        saturation = (vmax - vmin) / np.maximum(vmax, 1e-9)
        tissue = (saturation >= TISSUE_MIN_SATURATION) | collagen
        if fibers is not None:
            tissue |= np.asarray(fibers) != 0
    else:
        tissue = np.asarray(tissue, dtype=bool)
    collagen &= tissue
    if fibers is not None:
        fiber = np.asarray(fibers) != 0
    else:
        fiber = _yellow_fibers(rgb, tissue & ~collagen, min_area_px=(septum_min_px / 2) ** 2)
    space = (~fiber).astype(np.uint8)
    radius = septum_min_px / 2.0
    # opening of the space by a disk of that radius, with exact Euclidean distances: centres
    # where the disk fits (farther than the radius from every fiber pixel), grown back by the
    # radius. The image is mirrored at its border, so that gaps and septa cut by the border
    # keep their width.
    pad = int(np.ceil(septum_min_px)) + 1
    padded = cv2.copyMakeBorder(space, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    to_fiber = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    not_centre = (to_fiber <= radius).astype(np.uint8)
    to_centre = cv2.distanceTransform(not_centre, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    wide = (to_centre <= radius)[pad:-pad, pad:-pad]
    return CollagenMasks(tissue=tissue, fibers=fiber, endomysial=collagen & ~wide,
                         perimysial=collagen & wide)




def collagen_fractions(image: np.ndarray, *, septum_min_px: float,
                       fibers: np.ndarray | None = None, tissue: np.ndarray | None = None,
                       red_min_od: float = RED_MIN_OD,
                       white: np.ndarray | None = None) -> CollagenFractions:
    """Endomysial and perimysial collagen of a PSR image (module doc, steps 1-3).

    Parameters
    ----------
    image : (Y, X, 3) array
        The PSR image, RGB.
    septum_min_px : float
        Width in pixels from which the space between fibers is a (perimysial) septum.
    fibers : (Y, X) array, optional
        Fiber labels or mask (nonzero = fiber); default the yellow-orange tissue that is not
        collagen, in pieces of at least ``(septum_min_px / 2) ** 2`` pixels.
    tissue : (Y, X) bool array, optional
        Tissue mask; default from colour (step 2).
    red_min_od : float
        Collagen threshold on ``OD_green - OD_red``.
    white : (3,) array, optional
        White balance (see :func:`red_collagen_od`).

    Returns
    -------
    CollagenFractions

    Examples
    --------
    Yellow fibers 40 px wide with 2 px red gaps, beside a 20 px red septum:

    >>> img = np.zeros((84, 100, 3), np.uint8); img[:] = (200, 190, 60)      # fibers
    >>> img[:, 40:42] = img[40:42, :] = (170, 40, 60)                        # endomysium
    >>> img[:, 80:] = (170, 40, 60)                                          # septum
    >>> f = collagen_fractions(img, septum_min_px=10, white=np.array([210, 210, 210]))
    >>> f.tissue_px, f.collagen_px   # 84 x 100; gaps 168 + 160 - 4, septum 84 x 20
    (8400, 2004)
    >>> f.endomysial_px, f.perimysial_px   # 324 and 1680, but for 2 px at the gap's mouth
    (322, 1682)
    """
    m = collagen_masks(image, septum_min_px=septum_min_px, fibers=fibers, tissue=tissue,
                       red_min_od=red_min_od, white=white)
    endo, peri = int(np.count_nonzero(m.endomysial)), int(np.count_nonzero(m.perimysial))
    return CollagenFractions(tissue_px=int(np.count_nonzero(m.tissue)), collagen_px=endo + peri,
                             endomysial_px=endo, perimysial_px=peri,
                             septum_min_px=float(septum_min_px))


def _yellow_fibers(rgb: np.ndarray, candidates: np.ndarray, *, min_area_px: float) -> np.ndarray:
    """Fibers from colour: yellow-orange (HSV hue 30-90 deg) tissue that is not collagen, in
    pieces of at least ``min_area_px`` (saturated specks in septa and glass are not fibers)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # blue the smallest and red and green within a factor of two of each other above it
    yellow = candidates & (b <= r) & (b <= g) & (g - b >= 0.5 * (r - b)) & (r - b >= 0.5 * (g - b))
    n, comp, stats, _ = cv2.connectedComponentsWithStats(yellow.view(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area_px
    keep[0] = False
    return keep[comp]


def collagen_summary(image: np.ndarray, labels: np.ndarray | None = None, *,
                     pixel_size_um: float | None = None,
                     fiber_min_feret_px: float | None = None,
                     tissue_mask: np.ndarray | None = None,
                     septum_min_um: float = SEPTUM_MIN_UM) -> dict[str, Any]:
    """The ``collagen`` record of a PSR slide's ``summary.json``.

    The septum width is ``septum_min_um`` at the pixel size; without a pixel size it is
    :data:`SEPTUM_FIBER_FRACTION` of ``fiber_min_feret_px`` (the median fiber min Feret in
    pixels), and the record says so. Without either, :class:`HistoInputError`.

    Returns
    -------
    dict
        ``endomysial_fraction``, ``perimysial_fraction``, ``collagen_fraction`` (of the
        tissue area), ``tissue_area_px`` (and ``tissue_area_mm2`` with a pixel size),
        ``septum_min_px``, ``septum_min_basis`` (how the width was chosen), ``method``.

    Examples
    --------
    >>> img = np.zeros((84, 100, 3), np.uint8); img[:] = (200, 190, 60)
    >>> img[:, 40:42] = img[40:42, :] = img[:, 80:] = (170, 40, 60)
    >>> rec = collagen_summary(img, pixel_size_um=1.0)
    >>> round(rec["endomysial_fraction"], 3), round(rec["perimysial_fraction"], 3)
    (0.038, 0.2)
    >>> rec["septum_min_basis"]
    '10 µm at 1 µm/px'
    """
    if pixel_size_um:
        septum_px = septum_min_um / pixel_size_um
        basis = f"{septum_min_um:g} µm at {pixel_size_um:g} µm/px"
    elif fiber_min_feret_px and np.isfinite(fiber_min_feret_px):
        septum_px = SEPTUM_FIBER_FRACTION * fiber_min_feret_px
        basis = (f"no pixel size: {SEPTUM_FIBER_FRACTION:g} x the median fiber min Feret "
                 f"({fiber_min_feret_px:.0f} px), i.e. {septum_min_um:g} µm if fibers are "
                 f"{septum_min_um / SEPTUM_FIBER_FRACTION:g} µm across")
    else:
        raise HistoInputError("the collagen fractions need the septum width: pass the pixel "
                              "size (--pixel-size UM) or fibers to measure")
    septum_px = max(septum_px, 1.0)
    f = collagen_fractions(image, septum_min_px=septum_px, fibers=labels, tissue=tissue_mask)
    record: dict[str, Any] = {
        "endomysial_fraction": f.endomysial_fraction,
        "perimysial_fraction": f.perimysial_fraction,
        "collagen_fraction": f.collagen_fraction,
        "tissue_area_px": f.tissue_px,
    }
    if pixel_size_um:
        record["tissue_area_mm2"] = f.tissue_px * pixel_size_um ** 2 / 1e6
    record.update({
        "septum_min_px": round(f.septum_min_px, 2),
        "septum_min_basis": basis,
        "method": (f"picrosirius red: collagen where OD green - OD red >= {RED_MIN_OD:g} after "
                   "white balance; perimysial in septa at least septum_min_px wide between "
                   "fibers, endomysial in narrower gaps; fractions of the tissue area "
                   "(histo.measure.collagen)"),
    })
    return record
