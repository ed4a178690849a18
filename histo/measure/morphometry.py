"""Per-fiber measurements: the per-fiber table of ``docs/architecture.md``.

:func:`measure_fibers` turns an instance label image (and optionally the stained image) into
one row per fiber. Whole-image quantities (darkness, neighbours, edge flags) are computed
with vectorised passes over the label image; the outline measures are computed per fiber on
its bounding box with OpenCV (contour tracing, convex hull), so the cost grows with the
image area plus a few hundred microseconds per fiber.
The column names and their unit suffixes are :mod:`histo.measure.fiber_table` (``table_columns``
and ``size_column`` are importable from here too).

Conventions (pixel centres at integer coordinates, lengths in pixels before scaling):

- area: number of pixels;
- Feret diameters: rotating calipers on the convex hull of the pixel-edge midpoints
  (:mod:`histo.measure.feret`): a disk of radius r has min Feret 2r within one pixel, a square of
  side s has s at any rotation;
- perimeter: smoothed outer outline grown by half a pixel (:mod:`histo.measure.shape`), so that
  circularity ``4 pi area / perimeter**2`` of a digitised disk is 1 within ~2 %; holes are
  not part of the perimeter;
- solidity: area / number of pixel centres in the convex hull of the pixel centres (1 for a
  digitally convex fiber);
- angularity: sharpness of the two sharpest corners at the scale of a twelfth of the outline,
  after the elongation is removed (affine normalisation of the inertia ellipse), less the
  deepest inward bend: 0 for a disk or any ellipse, 0.2 hexagon, 0.4 square or any
  parallelogram, 0.6 any triangle (:mod:`histo.measure.shape`, ``docs/angularity.md``); NaN
  below 16 pixels;
- mean_od: mean of :func:`histo.io.stain.darkness_signal` over the fiber's pixels (on colour
  H&E its cytoplasm: nuclear pixels left out);
- darkness, darkness_ref: :func:`histo.measure.darkness.fiber_darkness` against the non-edge
  fibers: on NADH/SDH/esterase a z within the darkest fiber-type level (stain gradient
  removed), on H&E against the 12 nearest fibers, elsewhere the robust z-score of mean_od;
  darkness_ref is the OD the fiber is compared with;
- basophilia: on colour H&E, cytoplasmic hematoxylin OD / (hematoxylin + eosin OD), nuclei
  masked (:func:`histo.io.stain.he_cytoplasm`); NaN on other stains;
- n_neighbors: degree in :func:`histo.measure.adjacency.fiber_adjacency` with the gap
  ``max_gap_um`` (3 px when the pixel size is unknown);
- is_edge: the bounding box touches the image border, or, with ``tissue_mask``, some pixel
  of the fiber lies within the adjacency gap of the tissue edge (or outside the tissue).
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Literal

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.labels import check_labels
from histo.io.pixelsize import check_pixel_size
from histo.io.stain import (
    Stain,
    check_stain,
    darkness_signal,
    guess_stain,
    he_cytoplasm,
    image_layout,
    white_level,
)
from histo.measure._ragged import offsets_from_lengths
from histo.measure.adjacency import degree, fiber_adjacency, gap_in_pixels
from histo.measure.darkness import fiber_darkness, robust_z  # noqa: F401  (robust_z re-exported)
from histo.measure.feret import convex_hull_xy, feret_diameters_batch, lattice_areas_px
from histo.measure.fiber_table import (  # noqa: F401  (size_column re-exported: its callers)
    empty_table,
    size_column,
    table_columns,
)
from histo.measure.shape import (
    MIN_SHAPE_AREA_PX,
    angularity_batch,
    main_outline,
    outer_contours,
    outline_lengths_batch,
)

log = logging.getLogger(__name__)

def measure_fibers(
    labels: np.ndarray,
    image: ImageLike | np.ndarray | None = None,
    *,
    pixel_size_um: float | None = None,
    stain: Stain | Literal["auto"] | None = None,
    channel: int | None = None,
    tissue_mask: np.ndarray | None = None,
    max_gap_um: float = 3.0,
    edges: np.ndarray | None = None,
) -> pd.DataFrame:
    """Measure every fiber of a label image.

    Parameters
    ----------
    labels : (Y, X) integer array
        Instance labels, 0 = background; labels need not be contiguous, and a label may be
        made of several pieces (measured together).
    image : array or histo.io.image.ImageData, optional
        The stained image on the same (Y, X) grid: ``(Y, X)``, ``(Y, X, 3)`` or
        ``(C, Y, X)``. Without it ``mean_od`` and ``darkness`` are NaN.
    pixel_size_um : float, optional
        Micrometres per pixel. Sizes are in um / um2 when given, in px otherwise, and the
        column names say which.
    stain : str, optional
        One of ``histo.io.stain.STAINS``; None or ``"auto"`` guesses it from the image.
    channel : int, optional
        Channel of a multichannel image for the darkness signal (default: the ``channel`` of
        an ImageData, if any).
    tissue_mask : (Y, X) bool array, optional
        Tissue region; fibers at its edge are flagged ``is_edge``.
    max_gap_um : float, default 3.0
        Largest gap across the endomysium between neighbours (``n_neighbors``) and the
        distance from the tissue edge that flags a fiber.
    edges : (E, 2) array of label pairs, optional
        The adjacency graph when the caller already has it (the pipeline builds it once for
        measuring and scoring); computed with ``max_gap_um`` otherwise.

    Returns
    -------
    DataFrame
        One row per label, sorted by label, index 0..n-1, columns
        :func:`table_columns` (see the module docstring for the conventions).

    Examples
    --------
    >>> lab = np.zeros((40, 40), np.int32)
    >>> lab[5:15, 5:15] = 1; lab[5:15, 17:27] = 2
    >>> df = measure_fibers(lab, pixel_size_um=0.5)
    >>> df[["label", "area_um2", "min_feret_um", "n_neighbors"]].values.tolist()
    [[1.0, 25.0, 5.0, 1.0], [2.0, 25.0, 5.0, 1.0]]
    """
    t_start = time.perf_counter()
    labels = check_labels(labels, booleans=False)
    ps = check_pixel_size(pixel_size_um)
    if not np.isfinite(max_gap_um) or max_gap_um < 0:
        raise HistoInputError(f"max_gap_um must be a number >= 0, got {max_gap_um!r}")
    tissue = _validate_mask(tissue_mask, labels.shape)
    signal, hema, stain = _signal(image, labels.shape, stain, channel)

    ids, slices, work = _objects(labels)
    n = len(ids)
    cols = table_columns(ps is not None)
    if n == 0:
        return empty_table(cols)

    geo = _outline_measures(work, slices)
    t_shape = time.perf_counter()

    area = geo["area"]
    bbox = np.array([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in slices], np.int64)
    h, w = labels.shape
    is_edge = (bbox[:, 0] == 0) | (bbox[:, 1] == 0) | (bbox[:, 2] == h) | (bbox[:, 3] == w)
    gap_px = gap_in_pixels(max_gap_um, ps)
    if tissue is not None:
        is_edge |= _near_tissue_edge(work, n, tissue, gap_px)

    if edges is None:
        n_neighbors = degree(fiber_adjacency(work, max_gap_px=gap_px), np.arange(1, n + 1))
    else:
        n_neighbors = degree(np.asarray(edges).reshape(-1, 2), ids)
    t_graph = time.perf_counter()

    mean_od = _label_means(work, n, signal) if signal is not None else np.full(n, np.nan)
    basophilia = (_label_means(work, n, hema) / mean_od if hema is not None
                  else np.full(n, np.nan))
    darkness, darkness_ref, _ = fiber_darkness(
        pd.DataFrame({"mean_od": mean_od, "centroid_y_px": geo["cy"], "centroid_x_px": geo["cx"],
                      "min_feret_px": geo["min_feret"], "is_edge": is_edge}), stain=stain)

    with np.errstate(divide="ignore", invalid="ignore"):
        eq_diam = np.sqrt(4.0 * area / np.pi)
        aspect = geo["max_feret"] / geo["min_feret"]
        circ = 4.0 * np.pi * area / geo["perimeter"] ** 2
        solidity = area / geo["convex_area"]

    scale = 1.0 if ps is None else ps
    area_scale = 1.0 if ps is None else ps * ps
    data = {"label": ids.astype(np.int64),
            "centroid_y_px": geo["cy"], "centroid_x_px": geo["cx"]}
    if ps is not None:
        data["centroid_y_um"] = geo["cy"] * ps
        data["centroid_x_um"] = geo["cx"] * ps
    data.update({
        "bbox_y0_px": bbox[:, 0], "bbox_x0_px": bbox[:, 1],
        "bbox_y1_px": bbox[:, 2], "bbox_x1_px": bbox[:, 3],
        f"area_{'px' if ps is None else 'um2'}": area * area_scale,
        "perimeter": geo["perimeter"] * scale,
        "min_feret": geo["min_feret"] * scale,
        "max_feret": geo["max_feret"] * scale,
        "equivalent_diameter": eq_diam * scale,
        "aspect_ratio": aspect, "circularity": circ, "solidity": solidity,
        "angularity": geo["angularity"], "mean_od": mean_od, "darkness": darkness,
        "darkness_ref": darkness_ref, "basophilia": basophilia,
        "n_neighbors": n_neighbors.astype(np.int64), "is_edge": is_edge.astype(bool),
    })
    suffix = "um" if ps is not None else "px"
    for name in ("perimeter", "min_feret", "max_feret", "equivalent_diameter"):
        data[f"{name}_{suffix}"] = data.pop(name)
    df = pd.DataFrame(data)[cols]
    log.debug("measure_fibers: %d fibers, outlines %.2f s, graph %.2f s, total %.2f s (stain %s)",
              n, t_shape - t_start, t_graph - t_shape, time.perf_counter() - t_start, stain)
    return df


# ------------------------------------------------------------------ per-fiber outlines
def _outline_measures(work: np.ndarray, slices: list) -> dict[str, np.ndarray]:
    """Area, centroid, perimeter, Feret, convex area and angularity of fibers 1..n of ``work``.

    One short loop per fiber does the OpenCV work on its bounding box (moments, contour
    tracing, convex hull); everything else runs on all fibers at once.
    """
    n = len(slices)
    area, cy, cx = np.empty(n), np.empty(n), np.empty(n)
    chains, chain_fiber, mains, hulls = [], [], [], []
    for i, sl in enumerate(slices):
        crop = work[sl] == (i + 1)
        m = cv2.moments(crop.view(np.uint8), binaryImage=True)
        area[i] = m["m00"]
        cy[i] = m["m01"] / m["m00"] + sl[0].start
        cx[i] = m["m10"] / m["m00"] + sl[1].start
        found = outer_contours(crop)
        chains.extend(found)
        chain_fiber.extend([i] * len(found))
        mains.append(main_outline(found))
        hulls.append(convex_hull_xy(found[0] if len(found) == 1 else np.concatenate(found)))
    hull_offsets = offsets_from_lengths([len(h) for h in hulls])
    hull_xy = np.concatenate(hulls)
    min_feret, max_feret = feret_diameters_batch(hull_xy, hull_offsets)
    lengths = outline_lengths_batch(np.concatenate(chains),
                                    offsets_from_lengths([len(c) for c in chains]))
    perimeter = np.bincount(np.asarray(chain_fiber), weights=lengths, minlength=n)
    angular = angularity_batch(np.concatenate(mains), offsets_from_lengths([len(c) for c in mains]))
    angular[area < MIN_SHAPE_AREA_PX] = np.nan
    return {"area": area, "cy": cy, "cx": cx, "perimeter": perimeter, "min_feret": min_feret,
            "max_feret": max_feret, "convex_area": lattice_areas_px(hull_xy, hull_offsets),
            "angularity": angular}


# ------------------------------------------------------------------ whole-image passes
def _objects(labels: np.ndarray) -> tuple[np.ndarray, list, np.ndarray]:
    """Present labels (sorted), their bounding slices, and labels renumbered 1..n.

    The renumbered image is the input itself when the labels are already 1..n.
    """
    top = int(labels.max()) if labels.size else 0
    if top == 0:
        return np.zeros(0, np.int64), [], labels
    if top <= 4 * labels.size + 1024:
        found = ndi.find_objects(labels)
        ids = np.array([i + 1 for i, s in enumerate(found) if s is not None], np.int64)
        slices = [s for s in found if s is not None]
        if len(ids) == top:
            return ids, slices, labels
        lut = np.zeros(top + 1, np.int64 if len(ids) >= 2**31 else np.int32)
        lut[ids] = np.arange(1, len(ids) + 1)
        return ids, slices, lut[labels]
    values, inverse = np.unique(labels, return_inverse=True)
    work = inverse.reshape(labels.shape).astype(np.int32)
    if values[0] != 0:
        values, work = np.concatenate([[0], values]), work + 1
    ids = values[1:].astype(np.int64)
    return ids, ndi.find_objects(work), work


def _label_means(work: np.ndarray, n: int, signal: np.ndarray) -> np.ndarray:
    """Mean of ``signal`` over each label 1..n, NaN pixels (masked nuclei) left out, in row
    blocks to bound memory; NaN for a label without a finite pixel."""
    sums = np.zeros(n + 1)
    counts = np.zeros(n + 1)
    rows = max(1, 4_000_000 // max(1, work.shape[1]))
    for y in range(0, work.shape[0], rows):
        lab = work[y:y + rows].ravel()
        val = signal[y:y + rows].ravel()
        ok = np.isfinite(val)
        sums += np.bincount(lab[ok], weights=val[ok], minlength=n + 1)[: n + 1]
        counts += np.bincount(lab[ok], minlength=n + 1)[: n + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[1:] > 0, sums[1:] / np.maximum(counts[1:], 1), np.nan)


def _near_tissue_edge(work: np.ndarray, n: int, tissue: np.ndarray, gap_px: int) -> np.ndarray:
    """Fibers with a pixel outside the tissue or within ``gap_px`` of its edge."""
    if tissue.all():
        return np.zeros(n, bool)
    dist = cv2.distanceTransform(tissue.view(np.uint8), cv2.DIST_L2, 5)
    band = dist <= gap_px + 1  # centre distance = gap + 1 (see histo.measure.adjacency)
    hit = np.bincount(work[band].ravel(), minlength=n + 1)[: n + 1]
    return hit[1:] > 0


def _signal(image: ImageLike | np.ndarray | None, shape: tuple[int, int], stain: str | None,
            channel: int | None):
    """(darkness signal or None, cytoplasmic hematoxylin OD on colour H&E or None, resolved stain)."""
    if image is None:
        return None, None, check_stain(stain, allow_auto=True)
    arr, axes = image_layout(image, shape_yx=shape)
    if channel is None:  # an ImageData remembers the channel chosen at reading
        channel = getattr(image, "channel", None)
    image = SimpleNamespace(pixels=arr, axes=axes)  # the layout is settled from here on
    yx = arr.shape[1:] if axes == "CYX" else arr.shape[:2]
    if tuple(yx) != tuple(shape):
        raise HistoInputError(
            f"the image is {yx[0]} x {yx[1]} pixels but the labels are {shape[0]} x {shape[1]}; "
            "give labels drawn on this image's pixel grid")
    if stain in (None, "auto"):
        stain = guess_stain(image)
        log.info("stain guessed as %s", stain)
    else:
        check_stain(stain, allow_auto=True)
    if axes == "CYX" and channel is None and arr.shape[0] > 1:
        log.warning("multichannel image without a channel: mean_od and darkness left NaN; "
                    "pass channel= to measure one")
        return None, None, stain
    if stain == "he" and axes == "YXS":
        total, hema = he_cytoplasm(arr[..., :3], background=white_level(arr)[:3])
        return total, hema, stain
    return darkness_signal(image, stain, channel), None, stain


# ------------------------------------------------------------------ validation
def _validate_mask(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise HistoInputError(f"tissue_mask has shape {arr.shape}, the labels {tuple(shape)}; "
                              "give a mask on the labels' pixel grid")
    return np.ascontiguousarray(arr != 0)
