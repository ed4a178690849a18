"""Running the fiber network on image regions: model cache, canonical-grid maps, labels, scale search.

The network always runs on the *canonical grid* of a region: the region (starting at a
multiple of the alignment ``period`` in input pixels) rescaled by ``64 / period`` so that a
typical fiber is ``canonical_diameter_px`` across (:func:`canonical_maps`). Labels come back
on the input grid (:func:`region_labels`): when the input is finer than the canonical grid
(large fibers), the watershed runs on the canonical grid and the labels are brought up with
smooth outlines (:func:`histo.segment.postprocess.upsample_labels`); otherwise the maps are brought
down to the input grid and the watershed runs there.

When neither the pixel size nor the fiber size is known, :func:`estimate_scale` searches the
scale with the network on a central crop (coarse candidates a factor 2 apart on a small crop,
then refinement runs at the estimate on a larger one; see :func:`histo.segment.scale.estimate_diameter`).
The maps of its last run are kept in a :class:`MapsCache`, so that an image covered by that run
is not run through the network twice.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from histo import __version__
from histo.errors import TORCH_MISSING, HistoInputError, MissingDependencyError
from histo.io.labels import touches_edge
from histo.segment import scale as _scale
from histo.segment.netinput import input_stats, network_input
from histo.segment.postprocess import drop_small, maps_to_labels, upsample_labels
from histo.segment.targets import fiber_targets

log = logging.getLogger(__name__)

#: Canonical px per alignment period (a multiple of the network's total down-sampling).
ALIGN_CANONICAL_PX = 64
#: Side of the central crop for the coarse scale candidates and for the refinement, canonical px.
ESTIMATE_COARSE_CROP_PX = 192
ESTIMATE_CROP_PX = 320
#: Crops at this many places in the tissue when one crop does not cover the image.
ESTIMATE_PATCHES = 4
#: Coarse diameter candidates (input px), a factor 2 apart.
COARSE_DIAMETERS_PX = (12.0, 24.0, 48.0, 96.0, 192.0, 384.0)
#: An estimated scale this close (ratio) to the last refinement run reuses that run's scale.
REUSE_RATIO = 1.08
#: Canonical / area-weighted typical diameter for a model without a calibrated ratio (fibers of
#: a normal section: the area-weighted median diameter is ~1.1x the median).
WEIGHTED_DIAMETER_RATIO = 0.9
#: Most pixels sampled for the per-image input percentiles.
STATS_SAMPLES = 250_000


# ---------------------------------------------------------------------------- the model
def torch_net():
    """:mod:`histo.segment.net` (the network, torch), imported on first use.

    torch is the optional ``model`` extra: measuring given masks and the classical segmenter
    never get here. Without torch this raises :class:`histo.errors.MissingDependencyError`,
    whose message says how to install it.
    """
    try:
        return importlib.import_module("histo.segment.net")
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] != "torch":
            raise
        raise MissingDependencyError(TORCH_MISSING) from err


@lru_cache(maxsize=4)
def _cached_model(model: str | None, device: str | None):
    import torch

    net, config = torch_net().load_model(model, device=device)
    weights, _ = torch_net()._model_paths(model)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    config = replace(config, version=f"{config.version}+{digest}")
    return torch_net().fuse_batchnorm(net).to(memory_format=torch.channels_last), config


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
        return {"name": "classical", "version": __version__, "method": "classical"}
    _, config = load_segmenter(model)
    return {"name": config.name, "version": config.version, "method": "model"}


def precision_for(precision: str, device) -> str:
    """``"auto"`` -> bfloat16 where the hardware runs it fast, else float32."""
    if precision == "auto":
        return "bfloat16" if torch_net().bf16_supported(device) else "float32"
    if precision not in ("float32", "bfloat16"):
        raise HistoInputError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    return precision


def image_stats(src, percentiles) -> np.ndarray:
    """Per-channel input percentiles of the whole image, from a strided subsample."""
    h, w = src.shape_yx
    step = max(1, int(np.ceil(np.sqrt(h * w / STATS_SAMPLES))))
    return input_stats(src.strided(step), percentiles, max_samples=STATS_SAMPLES)


def min_area_px(config, factor: float) -> float:
    """Smallest object kept, in pixels of a grid ``factor`` canonical px per pixel."""
    canonical_area = np.pi / 4 * config.canonical_diameter_px**2
    return config.min_area_frac * canonical_area / factor**2


# ---------------------------------------------------------------------------- maps and labels
class MapsCache:
    """Canonical maps of the last region run, keyed by (period, region)."""

    def __init__(self):
        self.key, self.maps = None, None

    def get(self, key):
        return self.maps if key == self.key else None

    def put(self, key, maps):
        self.key, self.maps = key, maps


def canonical_maps(net, config, src, ys: slice, xs: slice, period: int, stats, device,
                   precision: str = "float32", cache: MapsCache | None = None) -> np.ndarray:
    """(3, hc, wc) maps of a region on its canonical grid (``ceil(h / period) * 64`` rows...).

    The region starts at a multiple of ``period`` input px, so its canonical grid (and the
    network's pooling grid) is the whole image's: tiles reproduce the whole-image maps.
    """
    key = (period, ys.start, ys.stop, xs.start, xs.stop)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    pixels = src.read(ys, xs)
    canonical = _scale.rescale_aligned(pixels, period, ALIGN_CANONICAL_PX)
    maps = torch_net().predict_maps(net, network_input(canonical, stats, config.in_channels),
                             pad_multiple=config.pad_multiple, device=device, precision=precision)
    if cache is not None:
        cache.put(key, maps)
    return maps


def region_labels(maps: np.ndarray, config, period: int, shape_yx: tuple[int, int], is_rgb: bool) -> np.ndarray:
    """(h, w) int32 labels on the input grid of a region from its canonical maps."""
    factor = ALIGN_CANONICAL_PX / period
    fg_threshold = config.fg_threshold_for(is_rgb)
    h, w = shape_yx
    if factor < 1:  # input finer than canonical: watershed on the canonical grid, then up
        labels = maps_to_labels(maps, fg_threshold=fg_threshold, seed_threshold=config.seed_threshold,
                                min_area_px=min_area_px(config, 1.0))
        up = upsample_labels(labels, maps[0], (h, w), fg_threshold=fg_threshold, scale=factor)
        return drop_small(up, min_area_px(config, factor))  # remnants thinned by the finer edge
    ny, nx = maps.shape[1] // ALIGN_CANONICAL_PX, maps.shape[2] // ALIGN_CANONICAL_PX
    full = (ny * period, nx * period)
    down = np.stack([_scale.rescale(np.ascontiguousarray(m), full)[:h, :w] for m in maps])
    return maps_to_labels(down, fg_threshold=fg_threshold, seed_threshold=config.seed_threshold,
                          min_area_px=min_area_px(config, factor))


# ---------------------------------------------------------------------------- scale search
def typical_diameter_px(areas_px: np.ndarray, fragment_frac: float = 0.15, *, weighted: bool = False) -> float:
    """Median equivalent diameter of the objects, ignoring fragments.

    Objects smaller than ``fragment_frac`` of the area-weighted median area (the size of the
    object a random foreground pixel falls in) are left out: bits of interstitium that a
    segmenter mistakes for fibers would otherwise drag the median down. With ``weighted`` the
    area-weighted median itself (the diameter of the fiber a random fiber pixel lies in): a
    section full of small regenerating fibers or fragments does not pull it down, which is
    what a scale decision needs (the model's ``diameter_ratio`` converts it to the canonical
    convention).

    Examples
    --------
    >>> round(typical_diameter_px(np.array([2, 3, 2, 3, 2, 800, 900, 1000])), 1)
    33.9
    >>> round(typical_diameter_px(np.array([100, 100, 100, 900]), weighted=True), 1)
    33.9
    """
    a = np.sort(np.asarray(areas_px, dtype=np.float64))
    if not a.size:
        return float("nan")
    cum = np.cumsum(a)
    w_median = a[np.searchsorted(cum, cum[-1] / 2)]
    if weighted:
        return float(np.sqrt(4 * w_median / np.pi))
    keep = a[a >= fragment_frac * w_median]
    return float(np.sqrt(4 * np.median(keep) / np.pi))


def diameter_ratio(config) -> float:
    """Canonical diameter / area-weighted typical diameter of the fibers the model outlines.

    Calibrated on validation data with the fiber score (``benchmarks/calibrate_fiber_score.py``);
    ``WEIGHTED_DIAMETER_RATIO`` for a model without one.
    """
    return float((getattr(config, "fiber_score", None) or {}).get("diameter_ratio", WEIGHTED_DIAMETER_RATIO))


def _aligned_crop(shape_yx, size_px: int, period: int, centre=None) -> tuple[slice, slice]:
    """A crop of about ``size_px`` (central, or around ``centre``) whose start is a multiple of ``period``."""
    out = []
    for i, n in enumerate(shape_yx[:2]):
        s = min(n, size_px)
        c = n // 2 if centre is None else int(centre[i])
        start = min(max(0, c - s // 2), n - s) // period * period
        out.append(slice(start, min(n, start + s)))
    return tuple(out)


def sample_centres(tissue_mask: np.ndarray | None, shape_yx, k: int = ESTIMATE_PATCHES) -> list[tuple[int, int]]:
    """Up to ``k`` spread-out points deep inside the tissue (input px), for the scale search.

    One crop in the middle of a section can fall on an inflamed area or a tear; crops at several
    places spread the risk. Points are the deepest tissue point of each cell of a coarse grid,
    the ``k`` deepest cells kept.

    Examples
    --------
    >>> m = np.zeros((40, 40), bool); m[:, :20] = True
    >>> pts = sample_centres(m, (400, 400), k=2); len(pts), all(x < 200 for _, x in pts)
    (2, True)
    """
    h, w = shape_yx[:2]
    if tissue_mask is None or not np.asarray(tissue_mask).any():
        return [(h // 2, w // 2)]
    m = np.asarray(tissue_mask, bool)
    depth = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    mh, mw = m.shape
    g = 3
    best = []
    for i in range(g):
        for j in range(g):
            cell = depth[i * mh // g:(i + 1) * mh // g, j * mw // g:(j + 1) * mw // g]
            if cell.size and cell.max() > 0:
                y, x = np.unravel_index(int(np.argmax(cell)), cell.shape)
                best.append((float(cell.max()), i * mh // g + y, j * mw // g + x))
    best.sort(reverse=True)
    return [(int((y + 0.5) * h / mh), int((x + 0.5) * w / mw)) for _, y, x in best[:k]]


def estimate_scale(net, config, src, stats, device, precision: str = "float32",
                   cache: MapsCache | None = None, tissue_mask: np.ndarray | None = None) -> tuple[float, float]:
    """Estimate the typical fiber diameter (input px) with the network.

    Each run covers the whole image when it fits the crop (``ESTIMATE_*_CROP_PX`` canonical px
    a side), else :data:`ESTIMATE_PATCHES` crops of half that side at spread-out places in the
    tissue (:func:`sample_centres`), pooled: an inflamed or torn middle does not decide alone.

    Returns ``(diameter_px, factor)``: the estimate and the input-to-canonical factor to
    segment with (the last refinement run's factor when it is within :data:`REUSE_RATIO` of
    the estimate, so its maps in ``cache`` can be reused).
    """
    fg_threshold = config.fg_threshold_for(src.is_rgb)
    last = {}
    centres = sample_centres(tissue_mask, src.shape_yx)
    ratio = diameter_ratio(config)

    def one(factor, period, ys, xs):
        maps = canonical_maps(net, config, src, ys, xs, period, stats, device, precision, cache)
        h, w = ys.stop - ys.start, xs.stop - xs.start
        hc, wc = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
        maps = maps[:, :hc, :wc]  # the region itself, not its padding
        labels = maps_to_labels(maps, fg_threshold=fg_threshold, seed_threshold=config.seed_threshold,
                                min_area_px=min_area_px(config, 1.0))
        if labels.max() == 0:
            return np.zeros(0), None
        areas = np.bincount(labels.ravel())[1:]
        inner = ~touches_edge(labels, areas.size)[1:]
        fg = maps[0] > fg_threshold
        # self-consistency: predicted distance map vs the distance map of the instances found
        error = float(np.abs(fiber_targets(labels)[2] - maps[2])[fg].mean())
        return (areas[inner] if inner.sum() >= 3 else areas), error

    def measure(factor: float, crop_px: int):
        factor, period = _scale.aligned_factor(factor, ALIGN_CANONICAL_PX)
        side = int(np.ceil(crop_px / factor))
        h, w = src.shape_yx
        if (h <= side and w <= side) or len(centres) == 1:
            regions = [_aligned_crop(src.shape_yx, side, period)]
        else:
            regions = [_aligned_crop(src.shape_yx, side // 2, period, c) for c in centres]
        last["factor"] = factor
        areas, errors = [], []
        for ys, xs in regions:
            a, e = one(factor, period, ys, xs)
            if e is not None:
                areas.append(a)
                errors.append(e)
        pooled = np.concatenate(areas) if areas else np.zeros(0)
        if pooled.size < 3:
            return None
        return typical_diameter_px(pooled, weighted=True) * ratio, float(np.mean(errors))

    d = _scale.estimate_diameter(lambda f: measure(f, ESTIMATE_COARSE_CROP_PX),
                                 canonical_diameter_px=config.canonical_diameter_px,
                                 candidates_px=COARSE_DIAMETERS_PX, refine_steps=2,
                                 measure_refine=lambda f: measure(f, ESTIMATE_CROP_PX))
    factor = config.canonical_diameter_px / d
    if "factor" in last and abs(np.log(factor / last["factor"])) < np.log(REUSE_RATIO):
        factor = last["factor"]
    log.info("estimated fiber diameter: %.1f px", d)
    return d, factor
