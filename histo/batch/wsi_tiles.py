"""Tile loops of the whole-slide path (:mod:`histo.batch.wsi`): segment and measure with bounded memory.

Both loops walk a :func:`histo.segment.tiling.tile_cover` of the analysis level, read each tile with a
halo wider than any fiber, and keep only what the tile *owns*
(:func:`histo.segment.tiling.owned_labels`), so every fiber is segmented, measured and outlined
exactly once whatever the tile size. Pixels come from any lazy array (a slide level as dask,
zarr, numpy); labels go to and come from any array-like (zarr on disk for slides).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.polygons import label_shapes
from histo.io.stain import (
    deconvolve_he,
    estimate_background,
    he_cytoplasm,
    image_layout,
    optical_density,
)
from histo.measure.adjacency import fiber_adjacency
from histo.measure.darkness import fiber_darkness
from histo.measure.morphometry import measure_fibers
from histo.score.nuclei import count_nuclei, detect_nuclei, nuclear_signal, recount_central
from histo.score.settings import ScoringSettings
from histo.segment import tiling

log = logging.getLogger(__name__)

#: Largest fiber diameter assumed by the tiling halo (µm; 200 px when the size is unknown).
MAX_FIBER_UM = 160.0


def mask_region(mask: np.ndarray, shape_yx: tuple[int, int], ys: slice, xs: slice) -> np.ndarray:
    """The part of a low-resolution ``mask`` (covering an image of ``shape_yx``) under the
    region ``ys, xs``, resampled to the region's pixels (nearest)."""
    mh, mw = mask.shape
    h, w = shape_yx
    yy = np.minimum((np.arange(ys.start, ys.stop) * mh) // h, mh - 1)
    xx = np.minimum((np.arange(xs.start, xs.stop) * mw) // w, mw - 1)
    return mask[np.ix_(yy, xx)]


def signal_reference(sample, stain: str, channel: int | None) -> dict:
    """Slide-wide constants of the darkness signal, estimated once from a (thumbnail) sample.

    Brightfield: the white level ``I0`` of the glass (:func:`histo.io.stain.estimate_background`),
    so every tile's optical density uses the same reference; fluorescence: the 99.5th
    percentile of the channel (darkness, a robust z-score, does not depend on this scale).
    """
    arr, axes = image_layout(sample)
    if axes == "CYX":
        arr = arr[channel or 0]
    if stain == "if" and axes != "YXS":
        return {"top": float(np.percentile(arr, 99.5)) or 1.0}
    if stain == "if":
        plane = arr[..., channel] if channel is not None else arr.mean(axis=-1)
        return {"top": float(np.percentile(plane, 99.5)) or 1.0}
    return {"background": estimate_background(arr)}


def tile_signal(pixels: np.ndarray, stain: str, channel: int | None, ref: dict) -> np.ndarray:
    """The darkness signal of :func:`histo.io.stain.darkness_signal` for one tile, with the
    slide-wide constants of :func:`signal_reference` instead of per-tile estimates."""
    arr, axes = image_layout(pixels)
    if axes == "CYX":
        arr, axes = arr[channel or 0], "YX"
    if "top" in ref:
        plane = arr if axes == "YX" else (arr[..., channel] if channel is not None
                                          else arr.mean(axis=-1))
        return np.asarray(plane, np.float32) / np.float32(ref["top"])
    if axes == "YX":
        return optical_density(arr, background=ref["background"])
    if stain == "he":
        return he_cytoplasm(arr[..., :3], background=ref["background"])[0]
    return optical_density(arr[..., :3], background=ref["background"]).sum(axis=-1,
                                                                          dtype=np.float32)


def segment_tiles(source, out, *, tissue_mask, pixel_size_um: float | None, stain: str,
                  channel: int | None, method: str, tile_px: int, halo_px: int,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Segment ``source`` (lazy (Y, X[, S]) or (C, Y, X) array) tile by tile into ``out``.

    Each tile is read with a halo, segmented in memory by
    :func:`histo.segment.segmenter.segment_image`, and the fibers it owns written into ``out`` with
    globally unique labels (:mod:`histo.segment.tiling`). Tiles without tissue are skipped.

    Returns
    -------
    int
        Number of fibers written.
    """
    from histo.segment.segmenter import segment_image  # torch loads here, only when segmenting

    cyx = len(source.shape) == 3 and source.shape[0] < min(source.shape[1:])
    shape_yx = tuple(int(s) for s in (source.shape[1:] if cyx else source.shape[:2]))
    tiles = tiling.tile_cover(shape_yx, tile_px, halo_px)
    offset = 0
    for i, tile in enumerate(tiles):
        if tissue_mask is None or mask_region(tissue_mask, shape_yx, *tile.outer).any():
            region = source[(slice(None), *tile.outer)] if cyx else source[tile.outer]
            pixels = np.asarray(region)
            # one scale for the whole slide: no per-tile scale check (objects the fiber score
            # rejects are dropped here; whole slides do not list them)
            labels = segment_image(pixels, stain=stain, channel=channel if cyx else None,
                                   pixel_size_um=pixel_size_um, method=method, check_scale=False)
            owned = tiling.owned_labels(labels, tile, shape_yx)
            offset = tiling.write_owned(out, labels, tile, owned, offset)
        if progress is not None:
            progress(i + 1, len(tiles))
    return offset


def measure_tiles(labels, source, *, tissue_mask, pixel_size_um: float | None, stain: str,
                  channel: int | None, gap_px: int, tile_px: int, halo_px: int,
                  signal_ref: dict | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  polygons: dict | None = None,
                  nuclei: dict | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Measure every fiber of an on-disk label array once, tile by tile.

    A fiber is measured by the tile that owns it, on the tile's labels and pixels with a
    halo (so its neighbours and the tissue edge are in view); positions are shifted to the
    slide's grid. Adjacency edges are gathered the same way. ``mean_od`` uses slide-wide
    constants (``signal_ref`` from :func:`signal_reference`, estimated from ``source`` when
    None) and ``darkness`` / ``darkness_ref`` are re-referenced to all the slide's non-edge
    fibers by :func:`histo.measure.darkness.fiber_darkness` (the function a whole image uses).

    ``polygons``, when given a dict, receives each fiber's outline: a list of rings (outer
    first, then its holes) of ``(x, y)`` pixel-corner vertices on the analysis grid
    (:func:`histo.io.polygons.label_shapes`).

    ``nuclei``, when given a dict ``{"settings": ScoringSettings, "min_area_px": float}``,
    counts the nuclei of each fiber on its owning tile (:func:`count_tile_nuclei`): the table
    gains ``n_nuclei``, ``n_central_nuclei``, ``is_centrally_nucleated`` and the dict receives
    ``method``, ``thresholds`` (one Otsu threshold per tile unless fixed), ``n_nuclei_in_fibers``
    (or ``method`` None and ``reason`` when the slide has no nuclear signal).

    Returns
    -------
    (DataFrame, (E, 2) int array)
        The per-fiber table (sorted by label, darkness re-referenced to the slide) and the
        fiber adjacency edges.
    """
    shape_yx = tuple(int(s) for s in labels.shape)
    cyx = len(source.shape) == 3 and source.shape[0] < min(source.shape[1:])
    if signal_ref is None:
        step = max(1, int(math.ceil(math.sqrt(shape_yx[0] * shape_yx[1] / 4e6))))
        sample = source[:, ::step, ::step] if cyx else source[::step, ::step]
        signal_ref = signal_reference(np.asarray(sample), stain, channel)
    tiles = tiling.tile_cover(shape_yx, tile_px, halo_px)
    tables, edges = [], []
    for i, tile in enumerate(tiles):
        lab = np.asarray(labels[tile.outer])
        owned = tiling.owned_labels(lab, tile, shape_yx) if lab.any() else []
        if len(owned):
            region = source[(slice(None), *tile.outer)] if cyx else source[tile.outer]
            tissue = (_tissue_crop(tissue_mask, shape_yx, tile.outer)
                      if tissue_mask is not None else None)
            pixels = np.asarray(region)
            table = measure_fibers(lab, None, pixel_size_um=pixel_size_um, stain=stain,
                                   tissue_mask=tissue, max_gap_um=gap_px * (pixel_size_um or 1.0))
            table = table[table["label"].isin(owned)].copy()
            ids = table["label"].to_numpy()
            hema = None
            if stain == "he" and "background" in signal_ref and pixels.ndim == 3 \
                    and pixels.shape[-1] in (3, 4):  # cytoplasm, nuclei masked (as darkness_signal)
                signal, cyto_h = he_cytoplasm(pixels[..., :3], background=signal_ref["background"])
                table["mean_od"] = _nan_means(signal, lab, ids)
                table["basophilia"] = _nan_means(cyto_h, lab, ids) / table["mean_od"].to_numpy()
                hema = deconvolve_he(pixels[..., :3], background=signal_ref["background"])[0]
            else:
                signal = tile_signal(pixels, stain, channel if cyx else None, signal_ref)
                table["mean_od"] = _nan_means(signal, lab, ids)
            if nuclei is not None and nuclei.get("reason") is None:
                table = count_tile_nuclei(table, lab, pixels, stain, nuclei, darkness=hema)
            tables.append(_shift(table, tile.outer[0].start, tile.outer[1].start, pixel_size_um))
            if polygons is not None:
                mine = np.where(np.isin(lab, owned), lab, 0)
                shift = np.array([tile.outer[1].start, tile.outer[0].start], dtype=float)
                polygons.update({k: [_compact(ring + shift) for ring in rings]
                                 for k, rings in label_shapes(mine).items()})
            pairs = np.asarray(fiber_adjacency(lab, max_gap_px=gap_px)).reshape(-1, 2)
            keep = np.isin(pairs, owned).any(axis=1)
            edges.append(pairs[keep])
        if progress is not None:
            progress(i + 1, len(tiles))
    if not tables:
        raise HistoInputError("no fibers found in the tissue of this slide")
    fibers = pd.concat(tables, ignore_index=True).sort_values("label", ignore_index=True)
    if "mean_od" in fibers and "darkness" in fibers:  # one reference for the whole slide
        darkness, darkness_ref, _ = fiber_darkness(fibers, stain=stain)
        fibers["darkness"] = darkness
        if "darkness_ref" in fibers:
            fibers["darkness_ref"] = darkness_ref
    all_edges = np.unique(np.sort(np.concatenate(edges), axis=1), axis=0) if edges else \
        np.zeros((0, 2), dtype=np.int64)
    return fibers, all_edges


def nuclei_state(settings: ScoringSettings, pixel_size_um: float | None) -> dict:
    """The ``nuclei`` argument of :func:`measure_tiles` (``reason`` set when not counted)."""
    if not settings.nuclei.enabled:
        return {"method": None, "reason": "nuclei disabled in the settings"}
    if pixel_size_um is None:
        return {"method": None, "reason": "nuclei need the pixel size on whole slides (the "
                                          "smallest nucleus is set in µm); give --pixel-size"}
    diameter_px = settings.nuclei.min_diameter_um / pixel_size_um
    return {"settings": settings, "min_area_px": math.pi / 4 * diameter_px**2}


def nuclei_summary(state: dict, scored: pd.DataFrame) -> dict:
    """The summary's ``nuclei`` from the tile-wise nucleus calls in the scored table."""
    if state.get("reason") is not None or "n_nuclei" not in scored:
        return {"method": None, "reason": state.get("reason") or "no fibers with nuclei counted"}
    opts = state["settings"].nuclei
    thresholds = np.asarray(state.get("thresholds", []), dtype=float)
    info = {
        "method": state["method"],
        "threshold": float(np.median(thresholds)) if thresholds.size else None,
        "threshold_method": ("fixed" if opts.threshold is not None
                             else "otsu per measuring tile (median shown)"),
        "min_nucleus_area_px": float(state["min_area_px"]),
        "min_nucleus_size_basis": f"{opts.min_diameter_um:g} µm",
        "central_ratio": opts.central_ratio,
        "n_nuclei_in_fibers": int(state.get("n_nuclei_in_fibers", 0)),
    }
    counted = scored["counted"].to_numpy(bool)
    info["n_nuclei_in_counted_fibers"] = int(scored["n_nuclei"].fillna(0).to_numpy(int)[counted].sum())
    return recount_central(info, scored, counted)


def count_tile_nuclei(table: pd.DataFrame, lab: np.ndarray, pixels: np.ndarray, stain: str,
                      state: dict, darkness: np.ndarray | None = None) -> pd.DataFrame:
    """Nuclei of the fibers in ``table`` (tile-local coordinates), found on the tile's pixels.

    The nuclear signal, detection and central rule are those of a whole image
    (:func:`histo.score.nuclei.nuclear_signal`, :func:`~histo.score.nuclei.detect_nuclei`,
    :func:`~histo.score.nuclei.count_nuclei`); the tile's halo holds each owned fiber whole, so its
    nuclei are all in view. On H&E the hematoxylin plane is ``darkness`` when given (unmixed
    with the slide-wide white level, not the tile's own). ``state`` (see
    :func:`measure_tiles`) collects the slide's figures.
    """
    settings = state["settings"]
    rgb = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    if stain == "he" and rgb and settings.nuclei.channel is None and darkness is not None:
        signal, how = darkness, "hematoxylin OD (H&E deconvolution)"
    else:
        signal, how = nuclear_signal(pixels, stain, settings)
    if signal is None:  # the same for every tile: the slide has no nuclear signal
        state.update(method=None, reason=how)
        return table
    state["method"] = how
    region = ndi.binary_dilation(lab > 0, iterations=3)
    yx, threshold = detect_nuclei(signal, min_area_px=state["min_area_px"],
                                  threshold=settings.nuclei.threshold, region=region)
    counts, host, _ = count_nuclei(table, lab, yx, central_ratio=settings.nuclei.central_ratio)
    state.setdefault("thresholds", []).append(threshold)
    state["n_nuclei_in_fibers"] = state.get("n_nuclei_in_fibers", 0) + int(np.count_nonzero(host))
    return pd.concat([table, counts], axis=1)


def _nan_means(signal: np.ndarray, lab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mean of ``signal`` over each label of ``ids``, NaN pixels (masked nuclei) left out."""
    val = np.asarray(signal, np.float64)
    ok = np.isfinite(val) & (lab > 0)
    sums = ndi.sum(np.where(ok, val, 0.0), labels=lab, index=ids)
    counts = ndi.sum(ok, labels=lab, index=ids)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _tissue_crop(mask: np.ndarray, shape_yx, outer) -> np.ndarray:
    """The low-resolution tissue mask under a tile, shrunk by one mask pixel.

    The mask's edge is only known to within one of its pixels; shrinking by that much flags
    every fiber the true tissue edge may cut (edge fibers are left out of the statistics,
    so erring this way is the safe side).
    """
    crop = mask_region(mask, shape_yx, *outer)
    k = int(math.ceil(max(shape_yx[0] / mask.shape[0], shape_yx[1] / mask.shape[1])))
    if k <= 1 or crop.all() or not crop.any():
        return crop
    return ndi.binary_erosion(crop, structure=np.ones((2 * k + 1, 2 * k + 1), bool),
                              border_value=1)


def _compact(ring: np.ndarray) -> np.ndarray:
    """Outline vertices as int32 when they are pixel corners (half the memory of float64)."""
    if np.array_equal(ring, np.round(ring)):
        return ring.astype(np.int32)
    return ring.astype(np.float32)


def _shift(table: pd.DataFrame, oy: int, ox: int, pixel_size_um: float | None) -> pd.DataFrame:
    table = table.copy()
    for col, off in (("centroid_y_px", oy), ("centroid_x_px", ox), ("bbox_y0_px", oy),
                     ("bbox_y1_px", oy), ("bbox_x0_px", ox), ("bbox_x1_px", ox)):
        if col in table:
            table[col] = table[col] + off
    if pixel_size_um:
        for col, off in (("centroid_y_um", oy), ("centroid_x_um", ox)):
            if col in table:
                table[col] = table[col] + off * pixel_size_um
    return table


def halo_px(pixel_size_um: float | None, gap_px: int) -> int:
    """Halo (px) wider than the largest fiber plus the adjacency gap, at a pixel size."""
    fiber_px = MAX_FIBER_UM / pixel_size_um if pixel_size_um else 200.0
    return int(math.ceil(fiber_px)) + 2 * gap_px + 2
