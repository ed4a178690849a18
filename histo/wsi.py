"""Whole-slide images: tissue at low resolution, analysis level, tiles, bounded memory.

:func:`score_wsi` scores a slide that is too large to hold in memory:

1. the slide is opened lazily (:func:`histo.io.open_slide`);
2. tissue is found on a thumbnail (:func:`detect_tissue`): optical density or fluorescence
   above an automatic threshold, closed, holes filled, specks dropped;
3. the *analysis level* is the coarsest pyramid level whose pixels are still at least as fine
   as the segmenter's canonical scale (:func:`choose_level`), so no work is wasted on detail
   the model does not use;
4. fibers are segmented tile by tile into an on-disk label array (zarr, compressed), tiles
   without tissue skipped;
5. fibers are measured tile by tile: each fiber is measured once, by the tile that owns it
   (:func:`histo.tiling.owned_labels`), on the tile's labels and pixels with a halo wider than
   any fiber; darkness is then re-referenced to the whole slide's fibers;
6. the slide is scored from the fiber table and the adjacency edges gathered per tile, and the
   labels are written as a tiled pyramidal OME-TIFF (:func:`histo.export.write_labels_pyramid`).

No full-resolution array of the slide (pixels or labels) is ever in memory: peak memory is a
few tiles plus the fiber table. Labels live in the slide's *analysis-level* grid, recorded in
``summary.json`` (``slide.analysis_level``, ``slide.analysis_downsample``).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from histo.errors import HistoInputError

log = logging.getLogger(__name__)

#: Images with more pixels than this (level 0) take the whole-slide path even when flat.
WSI_MIN_PIXELS = 30_000_000
#: Suffixes that are always whole-slide formats.
WSI_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif")
#: Thumbnail side used for tissue detection and the overlay.
THUMBNAIL_PX = 2048
#: Analysis pixel size of the classical method (µm/px), the model uses its canonical one.
CLASSICAL_PIXEL_SIZE_UM = 1.5
#: Tile core side (analysis px) of the measuring pass; halo = largest fiber + adjacency gap.
MEASURE_TILE_PX = 2048
#: Largest fiber diameter assumed by the tiling halo (µm; 200 px when the size is unknown).
MAX_FIBER_UM = 160.0


def is_whole_slide(path: str | Path, *, min_pixels: int = WSI_MIN_PIXELS) -> bool:
    """True for slide formats (SVS, NDPI, ...), pyramidal TIFFs and images over ``min_pixels``.

    Files that cannot be opened as slides return False: the ordinary reader then reports why.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in WSI_SUFFIXES:
        return True
    if suffix not in (".tif", ".tiff"):
        return False
    from histo.io import open_slide

    try:
        slide = open_slide(path)
    except Exception:  # noqa: BLE001 - unreadable here means "let read_image explain"
        return False
    try:
        h, w = slide.level_shapes[0]
        return slide.level_count > 1 or h * w > min_pixels
    finally:
        _close(slide)


def _close(slide) -> None:
    close = getattr(slide, "close", None)
    if callable(close):
        close()


# --------------------------------------------------------------------------- pure helpers
def choose_level(downsamples, pixel_size_um: float | None, target_um: float, *,
                 tolerance: float = 1.25) -> int:
    """Coarsest level whose pixel size is at most ``target_um * tolerance``.

    Level 0 when the pixel size is unknown (the segmenter then estimates the fiber size).

    Examples
    --------
    >>> choose_level([1, 4, 16], 0.25, 1.5)      # 0.25, 1.0, 4.0 µm/px -> 1.0 µm/px
    1
    >>> choose_level([1, 2, 4], 2.0, 1.5)        # already coarser than the target
    0
    >>> choose_level([1, 2], None, 1.5)
    0
    """
    if pixel_size_um is None:
        return 0
    best = 0
    for i, ds in enumerate(downsamples):
        if pixel_size_um * float(ds) <= target_um * tolerance:
            best = i if float(ds) >= float(downsamples[best]) else best
    return best


def detect_tissue(thumbnail: np.ndarray, *, axes: str | None = None,
                  min_object_frac: float = 0.0005) -> np.ndarray:
    """Tissue mask of a low-resolution image.

    Brightfield (RGB): tissue absorbs light, so its optical density
    ``-log10(I / 255)`` summed over channels is above an Otsu threshold (capped at 0.15, so
    a slide covered by tissue is not split into its light and dark parts). Fluorescence
    (grey or one channel): tissue is brighter than the dark background (Otsu on log intensity).
    The mask is closed, its holes filled, and objects smaller than ``min_object_frac`` of the
    image dropped.

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
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu
    from skimage.morphology import disk

    img = np.asarray(thumbnail)
    axes = axes or ("YXS" if img.ndim == 3 else "YX")
    if axes == "YXS":
        rgb = img[..., :3].astype(np.float32)
        top = 255.0 if img.dtype == np.uint8 else max(float(rgb.max()), 1.0)
        score = -np.log10(np.clip((rgb + 1.0) / (top + 1.0), 1e-4, 1.0)).sum(axis=-1)
        score = ndi.uniform_filter(score, 3)
        thr = _otsu(score, threshold_otsu)
        mask = score > min(max(thr, 0.03), 0.15)
    elif axes == "YX":
        score = ndi.uniform_filter(np.log1p(img.astype(np.float32)), 3)
        mask = score > _otsu(score, threshold_otsu)
    else:
        raise HistoInputError(f"thumbnail axes must be YXS or YX, got {axes}")
    radius = max(1, int(round(max(mask.shape) / 400)))
    mask = ndi.binary_closing(mask, structure=disk(radius), border_value=0)
    mask = ndi.binary_fill_holes(mask)
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= max(1, min_object_frac * mask.size)
    keep[0] = False
    return keep[lab]


def _otsu(score: np.ndarray, threshold_otsu) -> float:
    finite = score[np.isfinite(score)]
    if finite.size == 0 or float(finite.min()) == float(finite.max()):
        return float("inf")
    return float(threshold_otsu(finite))


def mask_region(mask: np.ndarray, shape_yx: tuple[int, int], ys: slice, xs: slice) -> np.ndarray:
    """The part of a low-resolution ``mask`` (covering an image of ``shape_yx``) under the
    region ``ys, xs``, resampled to the region's pixels (nearest)."""
    mh, mw = mask.shape
    h, w = shape_yx
    yy = np.minimum((np.arange(ys.start, ys.stop) * mh) // h, mh - 1)
    xx = np.minimum((np.arange(xs.start, xs.stop) * mw) // w, mw - 1)
    return mask[np.ix_(yy, xx)]


def robust_darkness(mean_od: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Robust z-score of ``mean_od`` against the fibers selected by ``reference``.

    ``(od - median) / (1.4826 * MAD)`` over the reference fibers: the darkness of
    :func:`histo.morphometry.measure_fibers`, recomputed on the whole slide after measuring
    tile by tile.
    """
    od = np.asarray(mean_od, dtype=float)
    ref = od[np.asarray(reference, dtype=bool) & np.isfinite(od)]
    if ref.size < 3:
        return np.full(od.shape, np.nan)
    med = float(np.median(ref))
    mad = 1.4826 * float(np.median(np.abs(ref - med)))
    if not mad > 0:
        mad = float(np.std(ref)) or 1.0
    return (od - med) / mad


def scratch_dir(out_dir: Path) -> Path:
    """A hidden working folder beside ``out_dir`` that a killed run's cleanup recognises."""
    return out_dir.parent / f".{out_dir.name}.partial-scratch-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _labels_store(path: Path, shape_yx, chunk_px: int = 1024):
    """A zero-filled, compressed on-disk uint32 array (zarr) of ``shape_yx``."""
    import zarr

    return zarr.open_array(str(path), mode="w", shape=tuple(int(s) for s in shape_yx),
                           chunks=(chunk_px, chunk_px), dtype="uint32", fill_value=0)


def segment_tiles(source, out, *, tissue_mask, pixel_size_um: float | None, stain: str,
                  channel: int | None, method: str, tile_px: int, halo_px: int,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Segment ``source`` (lazy (Y, X[, S]) or (C, Y, X) array) tile by tile into ``out``.

    Each tile is read with a halo, segmented in memory by
    :func:`histo.segment.segment_image`, and the fibers it owns written into ``out`` with
    globally unique labels (:mod:`histo.tiling`). Tiles without tissue are skipped.

    Returns
    -------
    int
        Number of fibers written.
    """
    from histo import tiling
    from histo.segment import segment_image

    cyx = len(source.shape) == 3 and source.shape[0] < min(source.shape[1:])
    shape_yx = tuple(int(s) for s in (source.shape[1:] if cyx else source.shape[:2]))
    tiles = tiling.tile_cover(shape_yx, tile_px, halo_px)
    offset = 0
    for i, tile in enumerate(tiles):
        if tissue_mask is None or mask_region(tissue_mask, shape_yx, *tile.outer).any():
            region = source[(slice(None), *tile.outer)] if cyx else source[tile.outer]
            pixels = np.asarray(region)
            labels = segment_image(pixels, stain=stain, channel=channel if cyx else None,
                                   pixel_size_um=pixel_size_um, method=method)
            owned = tiling.owned_labels(labels, tile, shape_yx)
            offset = tiling.write_owned(out, labels, tile, owned, offset)
        if progress is not None:
            progress(i + 1, len(tiles))
    return offset


def measure_tiles(labels, source, *, tissue_mask, pixel_size_um: float | None, stain: str,
                  channel: int | None, gap_px: int, tile_px: int, halo_px: int,
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Measure every fiber of an on-disk label array once, tile by tile.

    A fiber is measured by the tile that owns it, on the tile's labels and pixels with a
    halo (so its neighbours and the tissue edge are in view); positions are shifted to the
    slide's grid. Adjacency edges are gathered the same way.

    Returns
    -------
    (DataFrame, (E, 2) int array)
        The per-fiber table (sorted by label, darkness re-referenced to the slide) and the
        fiber adjacency edges.
    """
    from histo import tiling
    from histo.adjacency import fiber_adjacency
    from histo.morphometry import measure_fibers

    shape_yx = tuple(int(s) for s in labels.shape)
    cyx = len(source.shape) == 3 and source.shape[0] < min(source.shape[1:])
    tiles = tiling.tile_cover(shape_yx, tile_px, halo_px)
    tables, edges = [], []
    for i, tile in enumerate(tiles):
        lab = np.asarray(labels[tile.outer])
        owned = tiling.owned_labels(lab, tile, shape_yx) if lab.any() else []
        if len(owned):
            region = source[(slice(None), *tile.outer)] if cyx else source[tile.outer]
            tissue = (mask_region(tissue_mask, shape_yx, *tile.outer)
                      if tissue_mask is not None else None)
            table = measure_fibers(lab, np.asarray(region), pixel_size_um=pixel_size_um,
                                   stain=stain, channel=channel if cyx else None,
                                   tissue_mask=tissue,
                                   max_gap_um=gap_px * (pixel_size_um or 1.0))
            table = table[table["label"].isin(owned)]
            tables.append(_shift(table, tile.outer[0].start, tile.outer[1].start, pixel_size_um))
            pairs = np.asarray(fiber_adjacency(lab, max_gap_px=gap_px)).reshape(-1, 2)
            keep = np.isin(pairs, owned).any(axis=1)
            edges.append(pairs[keep])
        if progress is not None:
            progress(i + 1, len(tiles))
    if not tables:
        raise HistoInputError("no fibers found in the tissue of this slide")
    fibers = pd.concat(tables, ignore_index=True).sort_values("label", ignore_index=True)
    if "mean_od" in fibers and "darkness" in fibers:
        fibers["darkness"] = robust_darkness(fibers["mean_od"], ~fibers["is_edge"].astype(bool))
    all_edges = np.unique(np.sort(np.concatenate(edges), axis=1), axis=0) if edges else \
        np.zeros((0, 2), dtype=np.int64)
    return fibers, all_edges


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


def tiling_halo_px(pixel_size_um: float | None, gap_px: int) -> int:
    """Halo (px) wider than the largest fiber plus the adjacency gap, at a pixel size."""
    fiber_px = MAX_FIBER_UM / pixel_size_um if pixel_size_um else 200.0
    return int(math.ceil(fiber_px)) + 2 * gap_px + 2


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
