"""The no-model baseline: classical fiber segmentation every benchmark compares with.

Pipeline (all sizes relative to the fiber diameter ``d`` in pixels)
-------------------------------------------------------------------
1. **Fiber-interior map** ``f`` in [0, 1] (high inside fibers), by stain
   (:func:`histo.segment.interior.interior_map`: chroma on H&E, optical density on enzyme stains,
   inverted OD on PSR, the inverted membrane channel on immunofluorescence).
2. **Borders**: thin borders between touching fibers are faint valleys of ``f``; a Hessian
   valley filter (largest eigenvalue, scale-normalised, at two widths scaled with ``d``) is
   subtracted from the lightly smoothed map: ``s = f - 2 * valleys`` (``4 *`` for PSR).
3. **Foreground**: ``s`` above the Otsu threshold of ``f``; holes smaller than a nucleus filled,
   specks removed.
4. **Seeds and watershed**: seeds are the h-maxima (``h = 0.12 d``) of the smoothed distance
   transform of the foreground (one per fiber, even where two fibers touch over a wide neck);
   the watershed runs on ``-s - 2 * distance / (d / 2)`` so cuts follow valleys and necks.
5. **Clean-up**: a label-wise opening (radius ``0.05 d``) removes ragged protrusions, holes
   enclosed by a single fiber (central nuclei) are filled, objects smaller than a disk of
   diameter ``d / 6`` or paler than half the typical fiber are dropped; objects with solidity
   below 0.9 (two fibers merged over a wide neck) are re-split with finer seeds when that
   makes the parts clearly more convex; objects still below 0.8 (interstitial spaces) are
   dropped; labels grow to the middle of the border (``0.025 d``; ``0.07 d`` for the thick
   immunofluorescence membranes).

Fiber diameter
--------------
``fiber_diameter_px`` is the typical fiber diameter in pixels (the median diameter of the disk
of the same area, as Cellpose's ``diameter``). When it is None, :func:`estimate_fiber_diameter`
derives it from the mean of the distance transform over the foreground: for a disk of
diameter ``D`` the mean distance to its border is ``D / 6``, for a square ``D_eq / 6.8``, so
``6 x mean distance`` estimates the typical diameter without isolating single fibers first.
Images whose fibers are over 150 px wide are processed at a scale where they are 100 px.

Tuned on the real H&E references (data/real/he, fibers ~100 px), the immunofluorescence
reference (data/real/if, channel 3) and, by eye, the picrosirius crop (data/real/psr); see
benchmarks/bench_classical.py for the figures. Enzyme stains use the generic OD map untested
on real images (none with references is available).
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import h_maxima
from skimage.segmentation import expand_labels, find_boundaries, watershed

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.stain import FLUORESCENCE_STAINS, Stain, guess_stain
from histo.segment.interior import interior_map  # noqa: F401  (re-exported: step 1 of this baseline)

logger = logging.getLogger(__name__)

_MAX_WORKING_DIAMETER_PX = 150.0
_WORKING_DIAMETER_PX = 100.0
_MIN_SOLIDITY = 0.8  # fibers are convex-ish; interstitial spaces are not
_SPLIT_SOLIDITY = 0.9  # objects less convex than this are tried for a finer split
_VALLEY_WEIGHT = {"psr": 4.0}  # PSR's fine borders are faint grey lines: weigh valleys more
_GROW_BRIGHTFIELD = 0.025  # thin pale borders: grow labels to their middle (fraction of d)
_GROW_FLUORESCENCE = 0.07  # thick bright membranes: grow to the membrane midline


# --------------------------------------------------------------------------------------------
# filters


def _valleys(f: np.ndarray, sigma: float) -> np.ndarray:
    """Scale-normalised largest Hessian eigenvalue, kept where positive (dark thin lines)."""
    g = cv2.GaussianBlur(f, (0, 0), sigma)
    dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3)
    dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
    dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3)
    lam = 0.5 * (dxx + dyy + np.sqrt((dxx - dyy) ** 2 + 4.0 * dxy**2))
    return np.maximum(lam, 0.0) * (sigma * sigma)


def _border_scale(d: float) -> float:
    return float(np.clip(d / 100.0, 0.6, 1.5))


def _foreground(f: np.ndarray, d: float, valley_weight: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(s, fg): valley-enhanced interior map and its foreground mask."""
    scale = _border_scale(d)
    valleys = np.maximum(_valleys(f, 1.5 * scale), _valleys(f, 2.5 * scale))
    s = cv2.GaussianBlur(f, (0, 0), 1.0 * scale) - valley_weight * valleys
    fg = s > threshold_otsu(f[:: max(1, f.shape[0] // 1000), :: max(1, f.shape[1] // 1000)])
    fg = _remove_small(fg, np.pi * (d / 8) ** 2, holes=True)
    fg = _remove_small(fg, np.pi * (d / 12) ** 2, holes=False)
    return s, fg


def _remove_small(mask: np.ndarray, max_area: float, *, holes: bool) -> np.ndarray:
    """Remove connected components (or holes) with area <= max_area."""
    target = ~mask if holes else mask
    lab, n = ndi.label(target)
    if n == 0:
        return mask
    small = np.bincount(lab.ravel()) <= max_area
    small[0] = False
    return mask | small[lab] if holes else mask & ~small[lab]


# --------------------------------------------------------------------------------------------
# diameter


def estimate_fiber_diameter(image: ImageLike | np.ndarray, *, stain: Stain, channel: int | None = None) -> float:
    """Typical fiber diameter in pixels, estimated from the image.

    The foreground of the fiber-interior map (see the module docstring) is measured by its
    distance transform: for a disk of diameter ``D`` the mean distance of its pixels to the
    border is ``D / 6``, so ``6 x`` the mean over the foreground estimates the typical
    (area-equivalent) diameter. Within ~10-20 % on the real references; good enough to set
    the scale of every filter.

    Examples
    --------
    >>> yy, xx = np.mgrid[:400, :400]
    >>> img = np.zeros((400, 400), np.float32)
    >>> for cy in range(40, 400, 80):
    ...     for cx in range(40, 400, 80):
    ...         img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36 ** 2] = 1.0
    >>> 60 < estimate_fiber_diameter(1.0 - img, stain="if") < 85
    True
    """
    return _diameter_from_map(interior_map(image, stain=stain, channel=channel))


def _diameter_from_map(f: np.ndarray) -> float:
    d0 = 50.0
    for _ in range(2):  # the border filters depend on the scale: refine once
        _, fg = _foreground(f, d0)
        if not fg.any():
            raise HistoInputError("no fiber-like foreground found; cannot estimate the fiber diameter")
        dist = cv2.distanceTransform(fg.astype(np.uint8), cv2.DIST_L2, 5)
        d0 = max(6.0 * float(dist[fg].mean()), 8.0)
    return d0


# --------------------------------------------------------------------------------------------
# segmentation


def _smooth_distance(mask: np.ndarray, d: float) -> np.ndarray:
    """Distance to the background, smoothed at ``d / 30`` (the landscape seeds are found on)."""
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    return cv2.GaussianBlur(dist, (0, 0), max(1.0, d / 30))


def _seeds(dist: np.ndarray, h: float, d: float) -> np.ndarray:
    """Labelled h-maxima of a smooth map, found on a subsampled copy (it is smooth at d / 30)."""
    step = max(1, int(d // 25))
    small = dist[::step, ::step]
    peaks, _ = ndi.label(h_maxima(small, h) & (small > 0))
    seeds = np.zeros(dist.shape, np.int32)
    ys, xs = np.nonzero(peaks)
    seeds[ys * step, xs * step] = peaks[ys, xs]
    return seeds


def _split(s: np.ndarray, fg: np.ndarray, d: float) -> np.ndarray:
    """Seeded watershed: seeds from distance-transform h-maxima, cuts along valleys and necks."""
    dist = _smooth_distance(fg, d)
    seeds = _seeds(dist, 0.12 * d, d)
    landscape = -s - 2.0 * dist / (d / 2)
    return watershed(landscape, seeds, mask=fg).astype(np.uint32)


def _label_opening(labels: np.ndarray, radius: float) -> np.ndarray:
    """Opening of every label by a disk: erode by ``radius``, grow back inside the old support."""
    inner = (labels > 0) & ~find_boundaries(labels, mode="inner")
    dist = cv2.distanceTransform(inner.astype(np.uint8), cv2.DIST_L2, 5)
    eroded = np.where(dist > radius, labels, 0)
    grown = expand_labels(eroded, radius + 1)
    return np.where(labels > 0, grown, 0).astype(labels.dtype)


def _fill_enclosed_holes(labels: np.ndarray) -> np.ndarray:
    """Fill background holes surrounded by exactly one label (e.g. central nuclei)."""
    fg = labels > 0
    holes = ndi.binary_fill_holes(fg) & ~fg
    hole_lab, n = ndi.label(holes)
    if n == 0:
        return labels
    ring_id = ndi.grey_dilation(hole_lab, size=3)
    ring = (ring_id > 0) & ~holes
    pairs = np.unique(np.stack([ring_id[ring], labels[ring]]), axis=1)
    owners = np.bincount(pairs[0], minlength=n + 1)
    owner = np.zeros(n + 1, labels.dtype)
    single = owners == 1
    owner[pairs[0][single[pairs[0]]]] = pairs[1][single[pairs[0]]]
    return np.where(holes, owner[hole_lab], labels)


def _solidity(labels: np.ndarray) -> np.ndarray:
    """Area / convex-hull area per label (index = label; 1 for absent labels)."""
    out = np.ones(int(labels.max()) + 1)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        mask = (labels[box] == i).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(np.concatenate(contours))
        # the hull joins pixel centres: add half a pixel all round to compare with pixel counts
        hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
        out[i] = min(1.0, mask.sum() / hull_area)
    return out


def _split_nonconvex(labels: np.ndarray, s: np.ndarray, d: float) -> np.ndarray:
    """Re-split non-convex objects (fibers merged over a wide neck) with finer seeds.

    Only objects larger than a typical fiber are candidates (a merge is), and a split is kept
    only when it makes the parts clearly more convex than the whole.
    """
    solidity = _solidity(labels)
    area = np.bincount(labels.ravel(), minlength=len(solidity))
    typical = np.median(area[1:][area[1:] > 0]) if (area[1:] > 0).any() else 0.0
    candidate = (solidity < _SPLIT_SOLIDITY) & (area > 1.2 * typical)
    candidate[0] = False
    boxes = ndi.find_objects(labels)
    next_id = int(labels.max()) + 1
    min_part = np.pi * (d / 8) ** 2
    for i in np.flatnonzero(candidate):
        box = boxes[i - 1]
        mask = np.pad(labels[box] == i, 1)
        dist = _smooth_distance(mask, d)
        seeds = _seeds(dist, 0.04 * d, d)
        n = int(seeds.max())
        if n < 2:
            continue
        local_s = np.pad(s[box], 1, mode="edge")
        parts = watershed(-local_s - 2.0 * dist / (d / 2), seeds, mask=mask)[1:-1, 1:-1]
        part_area = np.bincount(parts.ravel())[1:]
        part_solidity = _solidity(parts)[1:]
        if part_area.min() < min_part or \
                np.average(part_solidity, weights=part_area) < solidity[i] + 0.05:
            continue
        view = labels[box]
        for k in range(2, n + 1):
            view[parts == k] = next_id
            next_id += 1
    return labels


def _clean(labels: np.ndarray, s: np.ndarray, f: np.ndarray, d: float, grow: float) -> np.ndarray:
    """Open, fill enclosed holes, drop specks / pale / non-convex objects, grow to the border."""
    labels = _label_opening(labels, max(1.0, 0.05 * d))
    labels = _fill_enclosed_holes(labels)
    area = np.bincount(labels.ravel())
    mean_f = np.bincount(labels.ravel(), f.ravel(), minlength=len(area)) / np.maximum(area, 1)
    big = area[1:] > np.pi * (d / 4) ** 2
    typical = np.median(mean_f[1:][big]) if big.any() else np.median(mean_f[1:]) if len(area) > 1 else 0
    drop = (area < np.pi * (d / 12) ** 2) | (mean_f < 0.5 * typical)
    drop[0] = False
    labels = np.where(drop[labels], 0, labels)
    labels = _split_nonconvex(labels, s, d)
    drop = _solidity(labels) < _MIN_SOLIDITY
    drop[0] = False
    labels = np.where(drop[labels], 0, labels)
    labels = expand_labels(labels, max(1, int(round(grow * d))))
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.uint32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.uint32)
    return lut[labels]


def segment_classical(
    image: ImageLike | np.ndarray,
    *,
    stain: Stain | Literal["auto"],
    channel: int | None = None,
    fiber_diameter_px: float | None = None,
) -> np.ndarray:
    """Segment muscle fibers without a model (the baseline).

    Parameters
    ----------
    image : ImageData or ndarray
        ``(Y, X, 3)`` RGB (brightfield), ``(Y, X)`` grey or ``(C, Y, X)`` multichannel.
    stain : str
        ``he``, ``nadh``, ``sdh``, ``atpase``, ``esterase``, ``psr``, ``if`` (membrane
        immunofluorescence) or ``auto`` (guessed by :func:`histo.io.stain.guess_stain`).
    channel : int, optional
        Fluorescence: the membrane channel (required for ``(C, Y, X)`` images).
    fiber_diameter_px : float, optional
        Typical fiber diameter in pixels; estimated when None (see
        :func:`estimate_fiber_diameter`).

    Returns
    -------
    ndarray of uint32, shape (Y, X)
        Instance labels 1..n, 0 = background, on the input's pixel grid.

    Notes
    -----
    The whole image is processed in memory (about 55 bytes per pixel at the peak); whole
    slides go through the tiling of :func:`histo.segment.segmenter.segment_image`. Around 0.5 CPU s per
    megapixel for 100-px fibers, 1.2 for crowded 26-px fibers (benchmarks/bench_classical.py).

    Examples
    --------
    >>> yy, xx = np.mgrid[:200, :200]
    >>> membrane = np.zeros((200, 200), np.float32)
    >>> membrane[(yy % 50 < 3) | (xx % 50 < 3)] = 1.0   # a grid of 47-px square fibers
    >>> labels = segment_classical(membrane, stain="if", fiber_diameter_px=50)
    >>> int(labels.max())
    16
    """
    if stain == "auto":
        stain = guess_stain(image)
        logger.info("classical segmentation: stain guessed as %s", stain)
    f = interior_map(image, stain=stain, channel=channel)
    if min(f.shape) < 16:
        raise HistoInputError(f"image too small to segment: {f.shape}")
    if fiber_diameter_px is None:
        d = _diameter_from_map(f)
        logger.info("estimated fiber diameter: %.1f px", d)
    else:
        d = float(fiber_diameter_px)
        if not np.isfinite(d) or d < 4:
            raise HistoInputError(f"fiber_diameter_px must be a number >= 4, got {fiber_diameter_px!r}")
    shape = f.shape
    zoom = 1.0
    if d > _MAX_WORKING_DIAMETER_PX:
        zoom = _WORKING_DIAMETER_PX / d
        f = cv2.resize(f, (round(shape[1] * zoom), round(shape[0] * zoom)), interpolation=cv2.INTER_AREA)
        d = _WORKING_DIAMETER_PX
    s, fg = _foreground(f, d, _VALLEY_WEIGHT.get(stain, 2.0))
    grow = _GROW_FLUORESCENCE if stain in FLUORESCENCE_STAINS else _GROW_BRIGHTFIELD
    labels = _clean(_split(s, fg, d), s, f, d, grow)
    if zoom != 1.0:
        labels = cv2.resize(labels.astype(np.float32), (shape[1], shape[0]),
                            interpolation=cv2.INTER_NEAREST).astype(np.uint32)
    return labels
