"""Fiber segmentation: the model (tiled inference + seeded watershed) or the classical baseline.

:func:`segment_image` is the one entry point. With ``method="model"`` it

1. picks the scale: from the pixel size, a given fiber diameter, or an estimate
   (:func:`histo.segment.inference.estimate_scale`, the network run on a central crop at a few scales);
2. cuts the image into tiles with a halo larger than the biggest fiber (:mod:`histo.segment.tiling`),
   reading each tile lazily from any array-like (numpy, dask, zarr; :mod:`histo.segment.imagesource`)
   and skipping tiles outside an optional low-resolution ``tissue_mask``;
3. per tile: rescales to the canonical scale, normalises with per-image statistics, runs the
   network (:mod:`histo.segment.net`) and turns the maps into instances on the input grid by a seeded
   watershed (:mod:`histo.segment.inference`, :mod:`histo.segment.postprocess`);
4. writes the objects the tile owns into ``out`` (a preallocated numpy array by default, or any
   array-like such as zarr) with unique labels.

Peak memory is bounded by the tile size whatever the image size, plus ``out``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.pixelsize import check_pixel_size
from histo.io.stain import Stain, guess_stain
from histo.segment import evidence as _ev
from histo.segment import inference as _inf
from histo.segment import scale as _scale
from histo.segment import tiling
from histo.segment import tissue as _tissue
from histo.segment.classical import segment_classical
from histo.segment.imagesource import ImageSource, image_source
from histo.segment.inference import load_segmenter, model_info  # noqa: F401 (public here)
from histo.segment.postprocess import maps_to_labels  # noqa: F401 (public here)

log = logging.getLogger(__name__)

METHODS = ("model", "classical")
#: Tile core side and halo at the canonical scale (px); the halo exceeds 3 canonical diameters.
TILE_CANONICAL_PX = 2048
HALO_CANONICAL_PX = 112
#: Largest tile side on the input grid (bounds memory when the input is much finer than canonical).
MAX_TILE_INPUT_PX = 4096
ALIGN_CANONICAL_PX = _inf.ALIGN_CANONICAL_PX


def estimate_fiber_diameter(image: ImageLike | np.ndarray, *, channel: int | None = None, model=None, device=None,
                            precision: str = "auto") -> float:
    """Typical fiber diameter in input pixels, estimated with the model (see histo.segment.inference)."""
    src, _ = image_source(image, channel)
    net, config = load_segmenter(model, device)
    dev = next(net.parameters()).device
    stats = _inf.image_stats(src, config.percentiles)
    mask = _image_tissue_mask(src)
    return _inf.estimate_scale(net, config, src, stats, dev, _inf.precision_for(precision, dev),
                               tissue_mask=mask)[0]


def _image_tissue_mask(src: ImageSource) -> np.ndarray:
    """Tissue mask of the whole image from a strided thumbnail (at most ``MASK_MAX_SIDE`` px a side)."""
    step = max(1, int(np.ceil(max(src.shape_yx) / _tissue.MASK_MAX_SIDE)))
    return _tissue.tissue_mask(src.strided(step))[0]


def _tissue_tile_empty(tissue_mask, tile: tiling.Tile, shape_yx) -> bool:
    if tissue_mask is None:
        return False
    th, tw = tissue_mask.shape[:2]
    fy, fx = th / shape_yx[0], tw / shape_yx[1]
    ys, xs = tile.core  # the tile only writes fibers centred in its core
    y0, y1 = int(np.floor(ys.start * fy)), max(int(np.ceil(ys.stop * fy)), int(np.floor(ys.start * fy)) + 1)
    x0, x1 = int(np.floor(xs.start * fx)), max(int(np.ceil(xs.stop * fx)), int(np.floor(xs.start * fx)) + 1)
    return not np.asarray(tissue_mask[y0:y1, x0:x1]).any()


@dataclass
class Segmentation:
    """What segmenting a slide gives: labels, the per-object fiber evidence, the scale used.

    Attributes
    ----------
    labels : (Y, X) uint32 array-like
        Every object found, 1..n, rejected ones included (a reviewer can restore them).
    objects : pandas.DataFrame or None
        One row per label (``label``, ``fiber_score``, ``rejected`` and the evidence features
        of :mod:`histo.segment.evidence`); None for the classical method.
    scale : dict
        How the scale was chosen (see :func:`scale_record`).
    tissue_area_px : int or None
        Tissue area on the input grid (:mod:`histo.segment.tissue`).
    fiber_score_threshold : float or None
        Objects scoring below it are rejected.
    n_outside_tissue : int
        Objects dropped because they lay on glass, fill, pen or drawn text.
    """

    labels: np.ndarray
    objects: pd.DataFrame | None = None
    scale: dict = field(default_factory=dict)
    tissue_area_px: int | None = None
    fiber_score_threshold: float | None = None
    n_outside_tissue: int = 0

    def info(self) -> dict:
        """JSON-able record for the slide's summary (``summary["segmentation"]``)."""
        n_rej = int(self.objects["rejected"].sum()) if self.objects is not None else 0
        return {"scale": dict(self.scale), "tissue_area_px": self.tissue_area_px,
                "n_objects": None if self.objects is None else int(len(self.objects)),
                "n_rejected": n_rej, "fiber_score_threshold": self.fiber_score_threshold,
                "n_outside_tissue": int(self.n_outside_tissue)}


#: The image and the metadata disagree on the fiber size when their ratio exceeds this.
SCALE_DISAGREE_RATIO = 1.5
#: A run whose typical fiber is this far (ratio) from the canonical size is re-run at the image's scale.
RERUN_RATIO = 1.5
#: After a re-run, one more run when the fibers found still differ from its scale by more than this.
REFINE_RATIO = 1.12


def scale_record(*, source: str, factor: float, canonical_diameter_px: float, pixel_size_um: float | None,
                 canonical_pixel_size_um: float, image_diameter_px: float | None, used: str = "metadata",
                 warning: str | None = None) -> dict:
    """The ``scale`` block of a segmentation: where the scale came from and what the image says.

    ``metadata_diameter_px`` is the typical fiber diameter the pixel size implies (a 48 µm
    fiber, the canonical size), ``image_diameter_px`` the typical diameter of the objects
    accepted as fibers, ``ratio`` image / metadata.

    Examples
    --------
    >>> r = scale_record(source="pixel_size", factor=0.5, canonical_diameter_px=32, pixel_size_um=0.75,
    ...                  canonical_pixel_size_um=1.5, image_diameter_px=90.0)
    >>> r["metadata_diameter_px"], round(r["ratio"], 2)
    (64.0, 1.41)
    """
    meta = None
    if pixel_size_um:
        meta = canonical_diameter_px * canonical_pixel_size_um / pixel_size_um
    ratio = image_diameter_px / meta if (meta and image_diameter_px) else None
    return {"source": source, "pixel_size_um": pixel_size_um, "metadata_diameter_px": meta,
            "image_diameter_px": image_diameter_px, "ratio": ratio, "used": used,
            "factor": float(factor), "diameter_segmented_px": canonical_diameter_px / factor,
            "warning": warning}


def _run_tiles(src: ImageSource, net, config, factor: float, stats, dev, precision, *, out, progress,
               tissue_mask, tile_px, cache, collect: bool):
    """Segment every tile at ``factor`` into ``out``; per-object evidence rows when ``collect``."""
    factor, period = _scale.aligned_factor(factor, ALIGN_CANONICAL_PX)
    log.info("segmenting %s at scale factor %.4f", src.shape_yx, factor)
    if tile_px is None:
        tile_px = min(MAX_TILE_INPUT_PX, int(round(TILE_CANONICAL_PX / factor)))
    tile_px = max(period, tile_px // period * period)
    halo_px = int(np.ceil(HALO_CANONICAL_PX / factor))
    tiles = tiling.tile_cover(src.shape_yx, tile_px, halo_px, align=period)
    offset, rows = 0, []
    fg_threshold = config.fg_threshold_for(src.is_rgb)
    for i, tile in enumerate(tiles):
        if not _tissue_tile_empty(tissue_mask, tile, src.shape_yx):
            maps = _inf.canonical_maps(net, config, src, *tile.outer, period, stats, dev, precision, cache)
            cache = None  # only the scale search's last run is worth keeping
            labels = _inf.region_labels(maps, config, period, tile.outer_shape, src.is_rgb)
            owned = tiling.owned_labels(labels, tile, src.shape_yx)
            if collect and owned.size:
                ev = _ev.network_evidence(_ev.canonical_labels(labels, maps.shape[1:], period), maps, fg_threshold)
                ap = _ev.appearance(labels, src.read(*tile.outer))
                row = {k: v[owned] for k, v in {**ev, **ap}.items()}
                row["label"] = np.arange(offset + 1, offset + owned.size + 1)
                rows.append(row)
            del maps
            offset = tiling.write_owned(out, labels, tile, owned, offset)
        if progress is not None:
            progress(i + 1, len(tiles))
    if not collect:
        return out, None, factor
    keys = ["label", *_ev.NETWORK_FEATURES, *_ev.APPEARANCE_SUMS]
    table = {k: np.concatenate([r[k] for r in rows]) if rows else np.zeros(0) for k in keys}
    return out, table, factor


def _score_objects(table: dict, config) -> pd.DataFrame:
    """The objects' evidence, relative features and fiber score as a table."""
    rel = _ev.relative_features(table) if len(table["label"]) else {k: np.zeros(0) for k in
                                                                   ("colour_z", "texture_z", "log_area_rel")}
    feats = {**{k: table[k] for k in _ev.NETWORK_FEATURES}, **rel}
    df = pd.DataFrame({"label": table["label"].astype(np.int64), **feats})
    df["area_px"] = table["n_px"].astype(np.int64)
    weights = getattr(config, "fiber_score", None)
    if weights and len(df):
        df["fiber_score"] = _ev.fiber_score(feats, weights)
        df["rejected"] = df["fiber_score"] < float(weights["threshold"])
    else:
        df["fiber_score"] = np.nan
        df["rejected"] = False
    return df


def _accepted_diameter_px(objects: pd.DataFrame, config=None) -> float | None:
    """Typical fiber diameter the accepted objects imply, in the canonical convention.

    The area-weighted median diameter of the accepted objects (small regenerating fibers or
    fragments do not pull it down), converted to the diameter the model was trained to see as
    canonical by ``fiber_score["diameter_ratio"]`` (calibrated on validation data with the score).
    """
    keep = objects.loc[~objects["rejected"], "area_px"].to_numpy()
    if keep.size < 3:
        return None
    d = _inf.typical_diameter_px(keep, weighted=True)
    return float(d * _inf.diameter_ratio(config)) if np.isfinite(d) else None


def _segment_model(src: ImageSource, *, pixel_size_um, fiber_diameter_px, model, out, progress,
                   tissue_mask, device, tile_px=None, precision="auto", check_scale=True) -> Segmentation:
    net, config = load_segmenter(model, device)
    dev = next(net.parameters()).device
    precision = _inf.precision_for(precision, dev)
    stats = _inf.image_stats(src, config.percentiles)
    cache = _inf.MapsCache()
    canon_d, canon_um = config.canonical_diameter_px, config.canonical_pixel_size_um
    if fiber_diameter_px is not None:
        source = "fiber_diameter"
        factor = _scale.factor_from_diameter(fiber_diameter_px, canonical_diameter_px=canon_d)
    elif pixel_size_um is not None:
        source = "pixel_size"
        factor = _scale.factor_from_pixel_size(pixel_size_um, canonical_pixel_size_um=canon_um)
    auto_mask = None
    if tissue_mask is None:
        auto_mask = _image_tissue_mask(src)
        tissue_mask = auto_mask
    if fiber_diameter_px is None and pixel_size_um is None:
        source = "estimated"
        _, factor = _inf.estimate_scale(net, config, src, stats, dev, precision, cache,
                                        tissue_mask=np.asarray(tissue_mask))
    run = dict(out=out, progress=progress, tissue_mask=tissue_mask, tile_px=tile_px, cache=cache, collect=True)
    out, table, factor = _run_tiles(src, net, config, factor, stats, dev, precision, **run)
    objects = _score_objects(table, config)
    image_d = _accepted_diameter_px(objects, config)
    used, warning = "metadata" if source == "pixel_size" else "image", None
    for attempt in range(2 if check_scale and source != "fiber_diameter" else 0):
        if image_d is None:
            break
        segmented_d = canon_d / factor
        off = image_d / segmented_d
        limit = RERUN_RATIO if attempt == 0 else REFINE_RATIO
        if limit ** -1 <= off <= limit:
            break
        if attempt == 0:
            what = (f"the pixel size ({pixel_size_um:g} µm/px) implies fibers of {segmented_d:.0f} px"
                    if source == "pixel_size" else f"the first estimate was {segmented_d:.0f} px")
            warning = (f"{what} but the fibers found measure ~{image_d:.0f} px ({off:.2f}x): segmented again "
                       "at the image's scale" + ("; sizes in µm still use the pixel size — check it"
                                                  if source == "pixel_size" else ""))
            log.warning("%s: %s", src.path or "image", warning)
        if isinstance(out, np.ndarray):
            out[...] = 0
        else:
            out[:] = 0
        run["cache"] = None
        out, table, factor = _run_tiles(src, net, config, canon_d / image_d, stats, dev, precision, **run)
        objects = _score_objects(table, config)
        image_d = _accepted_diameter_px(objects, config) or image_d
        used = "image"
    if source == "pixel_size" and warning is None and image_d is not None:
        meta_d = canon_d * canon_um / pixel_size_um
        if not 1 / SCALE_DISAGREE_RATIO <= image_d / meta_d <= SCALE_DISAGREE_RATIO:
            warning = (f"the pixel size ({pixel_size_um:g} µm/px) implies fibers of {meta_d:.0f} px but the "
                       f"fibers found measure ~{image_d:.0f} px ({image_d / meta_d:.2f}x); check the pixel size")
    scale = scale_record(source=source, factor=factor, canonical_diameter_px=canon_d, pixel_size_um=pixel_size_um,
                         canonical_pixel_size_um=canon_um, image_diameter_px=image_d, used=used, warning=warning)
    tissue_area = None
    n_outside = 0
    if auto_mask is not None:
        tissue_area = int(round(auto_mask.mean() * src.shape_yx[0] * src.shape_yx[1]))
        outside = _outside_blockwise(out, auto_mask)
        if outside.size:
            n_outside = int(outside.size)
            keep = ~objects["label"].isin(outside)
            objects = objects[keep].copy()
            lut = np.zeros(int(max(objects["label"].max() if len(objects) else 0, outside.max())) + 1, np.uint32)
            lut[objects["label"].to_numpy()] = np.arange(1, len(objects) + 1, dtype=np.uint32)
            _relabel_blockwise(out, lut)
            objects["label"] = np.arange(1, len(objects) + 1)
    threshold = (getattr(config, "fiber_score", None) or {}).get("threshold")
    return Segmentation(labels=out, objects=objects.reset_index(drop=True), scale=scale,
                        tissue_area_px=tissue_area, fiber_score_threshold=threshold, n_outside_tissue=n_outside)


# ---------------------------------------------------------------------------- public entry
def segment(
    image: ImageLike | np.ndarray,
    *,
    stain: Stain | Literal["auto"] = "auto",
    channel: int | None = None,
    pixel_size_um: float | None = None,
    method: str = "model",
    model=None,
    out=None,
    progress: Callable[[int, int], None] | None = None,
    tissue_mask=None,
    fiber_diameter_px: float | None = None,
    device: str | None = None,
    tile_px: int | None = None,
    precision: str = "auto",
    check_scale: bool = True,
) -> Segmentation:
    """Segment the muscle fibers of an image: every object with its fiber score, and the scale used.

    Parameters
    ----------
    image : histo.io.image.ImageData or array-like
        ``ImageData``, or a numpy / dask / zarr array shaped (Y, X), (Y, X, 3|4) or (C, Y, X);
        array-likes are read lazily tile by tile.
    stain : str
        ``"auto"`` or a stain name; the model handles every stain the same way (brightfield
        RGB or one fluorescence channel), the classical method uses it.
    channel : int, optional
        Membrane channel of a (C, Y, X) image.
    pixel_size_um : float, optional
        Micrometres per pixel; default the image's own. When unknown, the fiber size is
        estimated from the image (or taken from ``fiber_diameter_px``).
    method : {"model", "classical"}
    model : str, Path or (net, config), optional
        Model name in ``models/``, a path, or a loaded pair; default the shipped model.
    out : array-like, optional
        Preallocated (Y, X) integer output (numpy, memmap, zarr), all zeros; default a new
        uint32 numpy array.
    progress : callable(done, total), optional
        Called after each tile.
    tissue_mask : (y, x) bool array-like, optional
        Tissue at any lower resolution covering the whole image; tiles whose core holds no
        tissue are skipped (the fibers centred there are outside the tissue).
    fiber_diameter_px : float, optional
        Typical fiber diameter in input pixels, used when the pixel size is unknown.
    device : {"cpu", "cuda"}, optional
        Default CUDA when available.
    tile_px : int, optional
        Tile core side on the input grid (default: 2048 canonical px, at most 4096 input px).
    precision : {"auto", "float32", "bfloat16"}
        Network arithmetic; ``"auto"`` uses bfloat16 where the hardware runs it fast.
    check_scale : bool
        Compare the size of the fibers found with the scale segmented at, and segment again at
        the image's own scale when they disagree by more than :data:`RERUN_RATIO` (tiles of
        a whole slide pass False: one scale for the whole slide).

    Returns
    -------
    Segmentation
        ``labels`` holds every object (rejected ones too), ``objects`` their fiber scores.
        Without ``tissue_mask`` a tissue mask is made from the image
        (:func:`histo.segment.tissue.tissue_mask`) and objects on glass, fill, pen or text dropped.
    """
    if method not in METHODS:
        raise HistoInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    src, image_pixel_size = image_source(image, channel)
    if pixel_size_um is None:
        pixel_size_um = image_pixel_size
    pixel_size_um = check_pixel_size(pixel_size_um, path=src.path)
    if out is None:
        out = np.zeros(src.shape_yx, dtype=np.uint32)
    elif tuple(out.shape) != src.shape_yx:
        raise HistoInputError(f"out has shape {tuple(out.shape)}, expected {src.shape_yx}", path=src.path)
    if method == "classical":
        labels = _segment_classical(src, stain=stain, pixel_size_um=pixel_size_um,
                                    fiber_diameter_px=fiber_diameter_px, out=out, progress=progress)
        source = "fiber_diameter" if fiber_diameter_px else ("pixel_size" if pixel_size_um else "estimated")
        return Segmentation(labels=labels, scale={"source": source, "pixel_size_um": pixel_size_um})
    return _segment_model(src, pixel_size_um=pixel_size_um, fiber_diameter_px=fiber_diameter_px,
                          model=model, out=out, progress=progress, tissue_mask=tissue_mask,
                          device=device, tile_px=tile_px, precision=precision, check_scale=check_scale)


def segment_image(image: ImageLike | np.ndarray, *, keep_rejected: bool = False, **options) -> np.ndarray:
    """Segment the muscle fibers of an image into instance labels on its own pixel grid.

    ``options`` are the keyword arguments of :func:`segment`; this returns the labels only,
    without the objects the fiber score rejects unless ``keep_rejected``.

    Returns
    -------
    (Y, X) uint32 array (or ``out``)
        0 = background, fibers labelled 1..n.
    """
    seg = segment(image, **options)
    return seg.labels if keep_rejected else accepted_labels(seg)


def accepted_labels(seg: Segmentation) -> np.ndarray:
    """The labels without the rejected objects, renumbered 1..n in label order (in place).

    Works on any array-like ``seg.labels`` (numpy, zarr...), a block of rows at a time.
    """
    labels = seg.labels
    if seg.objects is None or not seg.objects["rejected"].any():
        return labels
    kept = seg.objects.loc[~seg.objects["rejected"], "label"].to_numpy()
    lut = np.zeros(int(seg.objects["label"].max()) + 1, np.uint32)
    lut[kept] = np.arange(1, kept.size + 1, dtype=np.uint32)
    _relabel_blockwise(labels, lut)
    return labels


#: Rows of an output array read at a time when relabelling it.
BLOCK_ROWS = 2048


def _relabel_blockwise(out, lut: np.ndarray) -> None:
    """``out[...] = lut[out]`` a block of rows at a time (labels beyond the table become 0)."""
    for y0 in range(0, out.shape[0], BLOCK_ROWS):
        block = np.asarray(out[y0:y0 + BLOCK_ROWS])
        safe = np.where(block < lut.size, block, 0)
        out[y0:y0 + BLOCK_ROWS] = lut[safe].astype(block.dtype, copy=False)


def _outside_blockwise(out, mask: np.ndarray) -> np.ndarray:
    """Labels of ``out`` (any array-like) lying mostly off the tissue ``mask`` (see objects_outside)."""
    h, w = out.shape[:2]
    mh, mw = mask.shape
    xi = np.minimum(((np.arange(w) + 0.5) * mw / w).astype(np.intp), mw - 1)
    total = np.zeros(1, np.int64)
    off = np.zeros(1, np.float64)
    for y0 in range(0, h, BLOCK_ROWS):
        block = np.asarray(out[y0:y0 + BLOCK_ROWS]).astype(np.int64, copy=False)
        yi = np.minimum(((np.arange(y0, y0 + block.shape[0]) + 0.5) * mh / h).astype(np.intp), mh - 1)
        outside = ~np.asarray(mask, bool)[yi[:, None], xi[None, :]]
        n = int(block.max(initial=0)) + 1
        t = np.bincount(block.ravel(), minlength=n)
        o = np.bincount(block.ravel(), weights=outside.ravel(), minlength=n)
        if n > total.size:
            total = np.pad(total, (0, n - total.size))
            off = np.pad(off, (0, n - off.size))
        total[:n] += t
        off[:n] += o
    bad = (total > 0) & (off >= _tissue.OUTSIDE_FRACTION * np.maximum(total, 1))
    bad[0] = False
    return np.flatnonzero(bad)


def _segment_classical(src: ImageSource, *, stain, pixel_size_um, fiber_diameter_px, out, progress):
    pixels = src.read(slice(None), slice(None))
    if stain in (None, "auto"):
        stain = _guess_stain(pixels)
    if fiber_diameter_px is None and pixel_size_um is not None:
        fiber_diameter_px = 48.0 / pixel_size_um  # a typical 48 µm fiber
    labels = segment_classical(pixels, stain=stain, channel=None, fiber_diameter_px=fiber_diameter_px)
    out[...] = labels
    if progress is not None:
        progress(1, 1)
    return out


def _guess_stain(pixels: np.ndarray) -> Stain:
    """A single plane is a fluorescence channel; RGB is guessed from its colours."""
    return "if" if pixels.ndim == 2 else guess_stain(pixels)
