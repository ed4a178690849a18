"""napari reader: slide files, and ``histo score`` result folders with their review.

* A slide file (TIFF / OME-TIFF / SVS / NDPI / PNG / JPEG) becomes an image layer in
  micrometres when the pixel size is known; pyramidal slides become multiscale layers
  (lazy dask levels of :func:`histo.io.slide.open_slide`); multichannel images one layer per
  channel.
* A result folder ``RESULTS/<slide-id>/`` (``summary.json`` + ``labels.tif``) becomes the
  slide's image layer(s) (when the slide file is still where it was scored) and a labels
  layer coloured by class with the per-fiber table on its features, the saved review
  applied (edited labels and flags), and what the review widget needs in its metadata.
* Any other folder is read by napari's built-in reader, as if histo were not installed.

napari asks which plugin should read a path that more than one reader claims (and
``viewer.open(path)`` without ``plugin=`` then fails). The manifest (``napari.yaml``) claims
folders and only the slide formats napari's built-in reader cannot show as pyramids
(``*.svs``, ``*.ndpi``); :func:`claim_reader_preferences` records histo as napari's reader
for folders and those formats (napari's own "remember this choice"), once, unless the user
already chose another reader for them. Large images and labels open as multiscale layers
(napari then prepares only the part on screen).
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tifffile
from napari.settings import get_settings
from napari_builtins.io import napari_get_reader as builtin_get_reader

from histo.io.image import read_image
from histo.io.slide import open_slide
from histo.results.tables import read_fiber_table
from histo.review.flags import apply_review
from histo.review.state import load_review
from napari_histo._layers import METADATA_KEY, class_colormap, labels_pyramid, layer_features

log = logging.getLogger(__name__)

SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".png", ".jpg", ".jpeg")
#: Slides with more pixels than this open as multiscale layers when they have levels.
MULTISCALE_MIN_PIXELS = 4096 * 4096
#: Labels larger than this per side are shown as a pyramid (napari cannot paint on those).
LARGE_LABELS_SIDE_PX = 4096
#: Labels files up to this many pixels are read at once (0.1 s for 25 Mpx); larger ones lazily.
MAX_EAGER_LABELS_PX = 128 * 1024 * 1024
#: Review widgets alive in this process: when one is, it prepares the class colours and the
#: features of an opened result in a worker, so the reader (GUI thread) leaves them out.
ACTIVE_WIDGETS: weakref.WeakSet = weakref.WeakSet()


def is_result_folder(path: str | Path) -> bool:
    """True for a slide's result folder written by ``histo score``."""
    p = Path(path)
    return p.is_dir() and (p / "summary.json").is_file() and (p / "labels.tif").is_file()


#: Reader preferences histo records in napari's settings (pattern -> plugin).
PREFERENCES = {"*" + os.sep: "histo", "*.svs": "histo", "*.ndpi": "histo"}


def claim_reader_preferences() -> dict[str, str]:
    """Record histo as napari's reader for folders and whole-slide files (see the module
    docstring); patterns the user already gave a reader are left alone. Returns what was added."""
    try:
        plugins = get_settings().plugins
        current = dict(plugins.extension2reader)
    except Exception as err:  # noqa: BLE001 - settings unavailable: napari will ask instead
        log.debug("napari settings unavailable (%s)", err)
        return {}
    added = {k: v for k, v in PREFERENCES.items() if k not in current}
    if added:
        plugins.extension2reader = {**current, **added}
    return added


def get_reader(path: str | list[str]):
    """npe2 reader contribution: a reader function for paths histo understands, else None.

    A folder that is no histo result folder goes to napari's built-in reader (histo claims
    every folder so that result folders open without a reader dialog).
    """
    claim_reader_preferences()
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return builtin_get_reader(path)
        path = path[0]
    p = Path(path)
    if is_result_folder(p):
        return read_result_folder
    if p.is_dir():
        return builtin_get_reader(str(p))
    if p.is_file() and p.name.lower().endswith(SLIDE_SUFFIXES):
        return read_slide
    return None


def _strided_levels(data: np.ndarray, axes: str) -> list[np.ndarray]:
    """Display levels of an in-memory image (views, no copies): factor 2 down to ~1024 px."""
    levels = [data]
    ys, xs = (0, 1) if axes == "YXS" else (-2, -1)
    while max(levels[-1].shape[ys], levels[-1].shape[xs]) > 1024:
        last = levels[-1]
        levels.append(last[::2, ::2] if axes == "YXS" else last[..., ::2, ::2])
    return levels


def _one(path) -> Path:
    return Path(path[0] if isinstance(path, (list, tuple)) else path)


def read_slide(path, *, name: str | None = None) -> list[tuple[Any, dict, str]]:
    """Layer data for a slide file (see the module docstring)."""
    path = _one(path)
    slide = open_slide(path)
    ps = slide.pixel_size_um
    h, w = slide.level_shapes[0]
    multiscale = slide.level_count > 1 and h * w > MULTISCALE_MIN_PIXELS
    if multiscale:
        data: Any = [slide.to_dask(level) for level in range(slide.level_count)]
        axes = slide.axes
    else:
        image = read_image(path)
        data, axes, ps = image.pixels, image.axes, image.pixel_size_um
        if h * w > MULTISCALE_MIN_PIXELS:  # one big level: strided views for display
            data, multiscale = _strided_levels(data, axes), True
    name = name or path.stem
    meta = {"image_path": str(path), "pixel_size_um": ps, "axes": axes,
            "n_channels": slide.n_channels if axes == "CYX" else 1}
    kwargs: dict[str, Any] = {"name": name, "multiscale": multiscale}
    if ps:
        kwargs["scale"] = (ps, ps)
        kwargs["units"] = ("um", "um")
    if axes == "YXS":
        return [(data, {**kwargs, "rgb": True, "metadata": {METADATA_KEY: meta}}, "image")]
    if axes == "YX":
        return [(data, {**kwargs, "metadata": {METADATA_KEY: meta}}, "image")]
    names = slide.channel_names or tuple(f"{name} c{i}" for i in range(slide.n_channels))
    return [
        (
            [lvl[i] for lvl in data] if multiscale else data[i],
            {**kwargs, "name": f"{name} {names[i]}" if slide.channel_names else names[i],
             "blending": "additive", "colormap": ("gray", "green", "magenta", "cyan", "yellow")[i % 5],
             "metadata": {METADATA_KEY: {**meta, "channel": i}}},
            "image",
        )
        for i in range(slide.n_channels)
    ]


def _read_fibers(result_dir: Path) -> pd.DataFrame:
    return read_fiber_table(result_dir)


def _read_labels(path: Path):
    """Result labels: an array, or a list of lazy levels for a pyramidal labels file."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        if len(series.levels) > 1 and np.prod(series.shape) > MAX_EAGER_LABELS_PX:
            slide = open_slide(path)
            return [slide.to_dask(level) for level in range(slide.level_count)]
        return np.asarray(series.asarray()).astype(np.uint32, copy=False)


def read_result_folder(path) -> list[tuple[Any, dict, str]]:
    """Layer data for ``RESULTS/<slide-id>/`` (see the module docstring)."""
    result_dir = _one(path)
    summary = json.loads((result_dir / "summary.json").read_text(encoding="utf-8"))
    slide_info = summary.get("slide") or {}
    review = load_review(result_dir)
    labels = review.labels if review.edited_labels else _read_labels(result_dir / "labels.tif")
    fibers = review.fibers if review.edited_labels else _read_fibers(result_dir)
    fibers = apply_review(fibers, review)

    layers: list[tuple[Any, dict, str]] = []
    image_path = slide_info.get("path")
    if image_path and Path(image_path).is_file():
        try:
            layers = read_slide(image_path, name=slide_info.get("id") or Path(image_path).stem)
        except Exception as err:  # noqa: BLE001 - the results stay reviewable without pixels
            log.warning("could not open the slide %s (%s); showing the labels only", image_path, err)
    else:
        log.warning("slide file %s not found; showing the labels only", image_path)

    ps = slide_info.get("pixel_size_um")
    # labels.tif's base level over the slide's level 0: 1 since issue 12 (whole slides are written
    # in the level-0 frame); earlier whole-slide folders hold analysis-level labels
    downsample = float(slide_info.get("labels_downsample", slide_info.get("analysis_downsample")) or 1.0)
    kwargs: dict[str, Any] = {}
    if layers:
        kwargs["scale"] = tuple(np.asarray(layers[0][1].get("scale", (1.0, 1.0)), dtype=float) * downsample)
        if "units" in layers[0][1]:
            kwargs["units"] = layers[0][1]["units"]
    elif ps:
        kwargs["scale"] = (ps * downsample, ps * downsample)
        kwargs["units"] = ("um", "um")
    data = labels if isinstance(labels, list) or labels.size <= MULTISCALE_MIN_PIXELS else \
        labels_pyramid(labels, max_px=LARGE_LABELS_SIDE_PX)
    meta = {
        "result_dir": str(result_dir),
        "summary": summary,
        "flags": {int(k): v for k, v in review.flags.items()},
        "edited": bool(review.edited_labels),
        "seen_labels": list(review.seen_labels),
        "image_path": image_path if layers else None,
        "stain": slide_info.get("stain"),
        "channel": slide_info.get("channel"),
        "pixel_size_um": ps * downsample if ps else None,
        "analysis_downsample": float(slide_info.get("analysis_downsample") or 1.0),
    }
    if ACTIVE_WIDGETS:  # the review widget colours and tabulates it in a worker (no GUI pause)
        meta["fibers"] = fibers
    else:
        kwargs.update(features=layer_features(fibers), colormap=class_colormap(fibers))
    layers.append((
        data,
        {"name": f"{slide_info.get('id') or result_dir.name} fibers", "opacity": 0.7,
         "multiscale": isinstance(data, list), "metadata": {METADATA_KEY: meta}, **kwargs},
        "labels",
    ))
    return layers
