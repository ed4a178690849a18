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
from typing import Callable, Literal

import numpy as np

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.pixelsize import check_pixel_size
from histo.io.stain import Stain, guess_stain
from histo.segment import inference as _inf
from histo.segment import scale as _scale
from histo.segment import tiling
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
    return _inf.estimate_scale(net, config, src, stats, dev, _inf.precision_for(precision, dev))[0]


def _tissue_tile_empty(tissue_mask, tile: tiling.Tile, shape_yx) -> bool:
    if tissue_mask is None:
        return False
    th, tw = tissue_mask.shape[:2]
    fy, fx = th / shape_yx[0], tw / shape_yx[1]
    ys, xs = tile.core  # the tile only writes fibers centred in its core
    y0, y1 = int(np.floor(ys.start * fy)), max(int(np.ceil(ys.stop * fy)), int(np.floor(ys.start * fy)) + 1)
    x0, x1 = int(np.floor(xs.start * fx)), max(int(np.ceil(xs.stop * fx)), int(np.floor(xs.start * fx)) + 1)
    return not np.asarray(tissue_mask[y0:y1, x0:x1]).any()


def _segment_model(src: ImageSource, *, pixel_size_um, fiber_diameter_px, model, out, progress,
                   tissue_mask, device, tile_px=None, precision="auto") -> np.ndarray:
    net, config = load_segmenter(model, device)
    dev = next(net.parameters()).device
    precision = _inf.precision_for(precision, dev)
    stats = _inf.image_stats(src, config.percentiles)
    cache = _inf.MapsCache()
    if pixel_size_um is not None:
        factor = _scale.factor_from_pixel_size(pixel_size_um, canonical_pixel_size_um=config.canonical_pixel_size_um)
    elif fiber_diameter_px is not None:
        factor = _scale.factor_from_diameter(fiber_diameter_px, canonical_diameter_px=config.canonical_diameter_px)
    else:
        _, factor = _inf.estimate_scale(net, config, src, stats, dev, precision, cache)
    factor, period = _scale.aligned_factor(factor, ALIGN_CANONICAL_PX)
    log.info("segmenting %s at scale factor %.4f", src.shape_yx, factor)
    if tile_px is None:
        tile_px = min(MAX_TILE_INPUT_PX, int(round(TILE_CANONICAL_PX / factor)))
    tile_px = max(period, tile_px // period * period)
    halo_px = int(np.ceil(HALO_CANONICAL_PX / factor))
    tiles = tiling.tile_cover(src.shape_yx, tile_px, halo_px, align=period)
    offset = 0
    for i, tile in enumerate(tiles):
        if not _tissue_tile_empty(tissue_mask, tile, src.shape_yx):
            maps = _inf.canonical_maps(net, config, src, *tile.outer, period, stats, dev, precision, cache)
            cache = None  # only the scale search's last run is worth keeping
            labels = _inf.region_labels(maps, config, period, tile.outer_shape, src.is_rgb)
            del maps
            owned = tiling.owned_labels(labels, tile, src.shape_yx)
            offset = tiling.write_owned(out, labels, tile, owned, offset)
        if progress is not None:
            progress(i + 1, len(tiles))
    return out


# ---------------------------------------------------------------------------- public entry
def segment_image(
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
) -> np.ndarray:
    """Segment the muscle fibers of an image into instance labels on its own pixel grid.

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

    Returns
    -------
    (Y, X) uint32 array (or ``out``)
        0 = background, fibers labelled 1..n.
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
        return _segment_classical(src, stain=stain, pixel_size_um=pixel_size_um,
                                  fiber_diameter_px=fiber_diameter_px, out=out, progress=progress)
    return _segment_model(src, pixel_size_um=pixel_size_um, fiber_diameter_px=fiber_diameter_px,
                          model=model, out=out, progress=progress, tissue_mask=tissue_mask,
                          device=device, tile_px=tile_px, precision=precision)


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
