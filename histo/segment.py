"""Fiber segmentation: the model (tiled inference + seeded watershed) or the classical baseline.

:func:`segment_image` is the one entry point. With ``method="model"`` it

1. picks the scale: from the pixel size, a given fiber diameter, or an estimate
   (:func:`histo.scale.estimate_diameter`, the network run on a central crop at several scales);
2. cuts the image into tiles with a halo larger than the biggest fiber (:mod:`histo.tiling`),
   reading each tile lazily from any array-like (numpy, dask, zarr) and skipping tiles outside
   an optional low-resolution ``tissue_mask``;
3. per tile: rescales to the canonical scale, normalises with per-image statistics, runs the
   network (:mod:`histo.net`), upsamples the probability maps back to the input grid, and
   turns them into instances by a seeded watershed (:func:`maps_to_labels`);
4. writes the objects the tile owns into ``out`` (a preallocated numpy array by default, or any
   array-like such as zarr) with unique labels.

Peak memory is bounded by the tile size whatever the image size, plus ``out``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from histo import net as _net
from histo import scale as _scale
from histo import tiling
from histo.errors import HistoInputError

log = logging.getLogger(__name__)

METHODS = ("model", "classical")
#: Tile core side and halo at the canonical scale (px); the halo exceeds 3 canonical diameters.
TILE_CANONICAL_PX = 2048
HALO_CANONICAL_PX = 112
#: Largest tile side on the input grid (bounds memory when the input is much finer than canonical).
MAX_TILE_INPUT_PX = 4096
#: Canonical px per alignment period (a multiple of the network's total down-sampling).
ALIGN_CANONICAL_PX = 64
#: Side of the central crop used to estimate the scale, in canonical px.
ESTIMATE_CROP_CANONICAL_PX = 320


# ---------------------------------------------------------------------------- input access
class _Source:
    """Lazy (Y, X) or (Y, X, 3) view of an image, read region by region."""

    def __init__(self, array, axes: str, channel: int | None, path=None):
        self.array, self.axes, self.channel, self.path = array, axes, channel, path
        shape = array.shape
        self.shape_yx = tuple(int(s) for s in (shape[1:3] if axes == "CYX" else shape[:2]))

    @property
    def is_rgb(self) -> bool:
        return self.axes == "YXS"

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        if self.axes == "CYX":
            return np.asarray(self.array[self.channel, ys, xs])
        if self.axes == "YXS":
            return np.asarray(self.array[ys, xs, :3])
        return np.asarray(self.array[ys, xs])

    def strided(self, step: int) -> np.ndarray:
        return self.read(slice(None, None, step), slice(None, None, step))


def _source(image, channel: int | None) -> tuple[_Source, float | None]:
    """Wrap an ImageData or a raw array-like; return it with its pixel size (if any)."""
    pixel_size = getattr(image, "pixel_size_um", None)
    path = getattr(image, "path", None)
    if hasattr(image, "pixels") and hasattr(image, "axes"):
        array, axes = image.pixels, image.axes
    else:
        array = image
        if not hasattr(array, "shape") or not hasattr(array, "__getitem__"):
            raise HistoInputError(f"image must be an ImageData or an array-like, got {type(image).__name__}")
        if len(array.shape) == 2:
            axes = "YX"
        elif len(array.shape) == 3 and array.shape[2] in (3, 4):
            axes = "YXS"
        elif len(array.shape) == 3:
            axes = "CYX"
        else:
            raise HistoInputError(
                f"image must be (Y, X), (Y, X, 3) or (C, Y, X); got shape {tuple(array.shape)}", path=path
            )
    if axes == "CYX":
        n = array.shape[0]
        if channel is None:
            if n != 1:
                raise HistoInputError(
                    f"the image has {n} channels; say which one shows the fiber membrane with "
                    f"channel=N (0 to {n - 1})",
                    path=path,
                )
            channel = 0
        if not 0 <= channel < n:
            raise HistoInputError(f"channel {channel} is out of range 0 to {n - 1}", path=path)
    src = _Source(array, axes, channel, path)
    if min(src.shape_yx) < 8:
        raise HistoInputError(f"image too small to segment: {src.shape_yx}", path=path)
    return src, pixel_size


# ---------------------------------------------------------------------------- post-processing
def maps_to_labels(maps: np.ndarray, *, fg_threshold: float = 0.5, seed_threshold: float = 0.5,
                   min_area_px: float = 0.0) -> np.ndarray:
    """Instance labels from the network's maps by a seeded watershed.

    Parameters
    ----------
    maps : (3, Y, X) float array
        Foreground probability, boundary probability, normalised distance (see ``histo.net.OUTPUTS``).
    fg_threshold : float
        Foreground probability threshold.
    seed_threshold : float
        Seeds are connected regions of normalised distance above it (each fiber's centre).
    min_area_px : float
        Objects (and seeds) smaller than this are dropped.

    Returns
    -------
    (Y, X) int32 labels, consecutive from 1.
    """
    from skimage.segmentation import watershed

    fg_p, bd_p, dist = maps[0], maps[1], maps[2]
    mask = fg_p > fg_threshold
    seeds, n = ndi.label((dist > seed_threshold) & mask)
    if n == 0:
        return np.zeros(mask.shape, np.int32)
    # drop speck seeds (far smaller than any fiber's centre region)
    sizes = np.bincount(seeds.ravel(), minlength=n + 1)
    small = sizes < max(2.0, 0.02 * min_area_px)
    small[0] = False
    if small.any():
        seeds[small[seeds]] = 0
    # flood from the seeds down the distance map; the boundary map sharpens the ridges
    surface = (bd_p - dist).astype(np.float32)
    labels = watershed(surface, seeds, mask=mask)
    sizes = np.bincount(labels.ravel())
    drop = sizes < min_area_px
    drop[0] = False
    if drop.any():
        labels[drop[labels]] = 0
    labels, _, _ = _relabel(labels)
    return labels.astype(np.int32, copy=False)


def _relabel(labels):
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)


# ---------------------------------------------------------------------------- the model path
@lru_cache(maxsize=4)
def _cached_model(model: str | None, device: str | None):
    import hashlib

    import torch

    net, config = _net.load_model(model, device=device)
    weights, _ = _net._model_paths(model)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    config = replace(config, version=f"{config.version}+{digest}")
    return _net.fuse_batchnorm(net).to(memory_format=torch.channels_last), config


def load_segmenter(model=None, device: str | None = None):
    """The (network with BatchNorm folded, config) pair for ``model``; cached per process.

    ``config.version`` carries the first 12 hex digits of the weights' SHA-256.
    """
    if model is None or isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return _cached_model(None if model is None else str(model), device)
    net, config = model  # an already loaded (net, config) pair
    return net, config


def model_info(method: str = "model", model=None) -> dict | None:
    """``{"name", "version", "method"}`` of the segmenter, recorded in every result's summary."""
    if method == "classical":
        from histo import __version__

        return {"name": "classical", "version": __version__, "method": "classical"}
    _, config = load_segmenter(model)
    return {"name": config.name, "version": config.version, "method": "model"}


def _predict_region(net, config, src: _Source, ys: slice, xs: slice, factor: float,
                    stats: np.ndarray, device, precision: str = "float32") -> np.ndarray:
    """(3, h, w) probability maps of a region at canonical scale (h, w = scaled region)."""
    pixels = src.read(ys, xs)
    target = _scale.scaled_shape(pixels.shape[:2], factor)
    pixels = _scale.rescale(pixels, target)
    x = _net.network_input(pixels, stats)
    return _net.predict_maps(net, x, pad_multiple=config.pad_multiple, device=device, precision=precision)


def _predict_aligned(net, config, src: _Source, ys: slice, xs: slice, period: int,
                     stats: np.ndarray, device, precision: str = "float32") -> np.ndarray:
    """(3, h, w) probability maps of a region on the input grid.

    The region starts at a multiple of ``period`` input px, so its canonical grid (and the
    network's pooling grid) is the whole image's: tiles reproduce the whole-image maps.
    """
    pixels = src.read(ys, xs)
    h, w = pixels.shape[:2]
    canonical = _scale.rescale_aligned(pixels, period, ALIGN_CANONICAL_PX)
    maps = _net.predict_maps(net, _net.network_input(canonical, stats),
                             pad_multiple=config.pad_multiple, device=device, precision=precision)
    ny, nx = canonical.shape[0] // ALIGN_CANONICAL_PX, canonical.shape[1] // ALIGN_CANONICAL_PX
    full = (ny * period, nx * period)
    return np.stack([_scale.rescale(np.ascontiguousarray(m), full)[:h, :w] for m in maps])


def _min_area_px(config, factor: float) -> float:
    canonical_area = np.pi / 4 * config.canonical_diameter_px**2
    return config.min_area_frac * canonical_area / factor**2


def estimate_fiber_diameter(image, *, channel: int | None = None, model=None, device=None,
                            precision: str = "auto") -> float:
    """Typical fiber diameter in input pixels, estimated with the model (see histo.scale)."""
    src, _ = _source(image, channel)
    net, config = load_segmenter(model, device)
    dev = next(net.parameters()).device
    stats = _image_stats(src, config.percentiles)
    return _estimate_diameter(net, config, src, stats, dev, _precision(precision, dev))


def _precision(precision: str, device) -> str:
    if precision == "auto":
        return "bfloat16" if _net.bf16_supported(device) else "float32"
    if precision not in ("float32", "bfloat16"):
        raise HistoInputError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    return precision


def _estimate_diameter(net, config, src: _Source, stats, device, precision="float32") -> float:
    from histo.train import fiber_targets

    def measure(factor: float):
        size = int(ESTIMATE_CROP_CANONICAL_PX / factor)
        ys, xs = _scale.central_crop(src.shape_yx, size)
        maps = _predict_region(net, config, src, ys, xs, factor, stats, device, precision)
        labels = maps_to_labels(maps, fg_threshold=config.fg_threshold_for(src.is_rgb),
                                seed_threshold=config.seed_threshold,
                                min_area_px=_min_area_px(config, 1.0))
        if labels.max() < 3:
            return None
        areas = np.bincount(labels.ravel())[1:]
        inner = np.setdiff1d(np.arange(1, labels.max() + 1),
                             np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
        use = areas[inner - 1] if inner.size >= 3 else areas
        fg = maps[0] > config.fg_threshold_for(src.is_rgb)
        # self-consistency: predicted distance map vs the distance map of the instances found
        error = float(np.abs(fiber_targets(labels)[2] - maps[2])[fg].mean())
        return float(np.sqrt(4 * np.median(use) / np.pi)), error

    d = _scale.estimate_diameter(measure, canonical_diameter_px=config.canonical_diameter_px)
    log.info("estimated fiber diameter: %.1f px", d)
    return d


def _image_stats(src: _Source, percentiles) -> np.ndarray:
    h, w = src.shape_yx
    step = max(1, int(np.ceil(np.sqrt(h * w / 2_000_000))))
    return _net.input_stats(src.strided(step), percentiles)


def _tissue_tile_empty(tissue_mask, tile: tiling.Tile, shape_yx) -> bool:
    if tissue_mask is None:
        return False
    th, tw = tissue_mask.shape[:2]
    fy, fx = th / shape_yx[0], tw / shape_yx[1]
    ys, xs = tile.core  # the tile only writes fibers centred in its core
    y0, y1 = int(np.floor(ys.start * fy)), max(int(np.ceil(ys.stop * fy)), int(np.floor(ys.start * fy)) + 1)
    x0, x1 = int(np.floor(xs.start * fx)), max(int(np.ceil(xs.stop * fx)), int(np.floor(xs.start * fx)) + 1)
    return not np.asarray(tissue_mask[y0:y1, x0:x1]).any()


def _segment_model(src: _Source, *, pixel_size_um, fiber_diameter_px, model, out, progress,
                   tissue_mask, device, tile_px=None, precision="auto") -> np.ndarray:
    net, config = load_segmenter(model, device)
    dev = next(net.parameters()).device
    precision = _precision(precision, dev)
    stats = _image_stats(src, config.percentiles)
    if pixel_size_um is not None:
        factor = _scale.factor_from_pixel_size(pixel_size_um, canonical_pixel_size_um=config.canonical_pixel_size_um)
    else:
        if fiber_diameter_px is None:
            fiber_diameter_px = _estimate_diameter(net, config, src, stats, dev, precision)
        factor = _scale.factor_from_diameter(fiber_diameter_px, canonical_diameter_px=config.canonical_diameter_px)
    factor, period = _scale.aligned_factor(factor, ALIGN_CANONICAL_PX)
    log.info("segmenting %s at scale factor %.4f", src.shape_yx, factor)
    if tile_px is None:
        tile_px = min(MAX_TILE_INPUT_PX, int(round(TILE_CANONICAL_PX / factor)))
    tile_px = max(period, tile_px // period * period)
    halo_px = int(np.ceil(HALO_CANONICAL_PX / factor))
    tiles = tiling.tile_cover(src.shape_yx, tile_px, halo_px, align=period)
    min_area = _min_area_px(config, factor)
    offset = 0
    for i, tile in enumerate(tiles):
        if not _tissue_tile_empty(tissue_mask, tile, src.shape_yx):
            maps = _predict_aligned(net, config, src, *tile.outer, period, stats, dev, precision)
            labels = maps_to_labels(maps, fg_threshold=config.fg_threshold_for(src.is_rgb),
                                    seed_threshold=config.seed_threshold, min_area_px=min_area)
            del maps
            owned = tiling.owned_labels(labels, tile, src.shape_yx)
            offset = tiling.write_owned(out, labels, tile, owned, offset)
        if progress is not None:
            progress(i + 1, len(tiles))
    return out


# ---------------------------------------------------------------------------- public entry
def segment_image(
    image,
    *,
    stain: str = "auto",
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
    image : histo.io.ImageData or array-like
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
    src, image_pixel_size = _source(image, channel)
    if pixel_size_um is None:
        pixel_size_um = image_pixel_size
    if pixel_size_um is not None and not pixel_size_um > 0:
        raise HistoInputError(f"pixel_size_um must be > 0, got {pixel_size_um}", path=src.path)
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


def _segment_classical(src: _Source, *, stain, pixel_size_um, fiber_diameter_px, out, progress):
    from histo.classical import segment_classical

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


def _guess_stain(pixels: np.ndarray) -> str:
    if pixels.ndim == 2:
        return "if"
    try:
        from histo.stain import guess_stain
    except ImportError:  # pragma: no cover - stain module not installed yet
        return "he"
    return guess_stain(pixels)
