"""From napari image layers to :class:`histo.io.image.ImageData` and back (no widgets).

Layers made by the plugin's reader carry ``metadata["histo"]`` with the slide's file, pixel
size and channel; analysis then re-reads the file, so every channel (fiber typing, nuclei)
is available even when napari shows one layer per channel. Other image layers are used as
they are: 2-D grey, RGB(A) or channel-first ``(C, Y, X)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from histo.errors import HistoInputError
from histo.io.image import ImageData, read_image
from histo.io.slide import open_slide
from napari_histo._layers import base_level, histo_metadata


def source_file(layer) -> Path | None:
    """The slide file a layer was read from (histo's reader, or napari's built-in one)."""
    meta = histo_metadata(layer) or {}
    path = meta.get("image_path") or getattr(getattr(layer, "source", None), "path", None)
    return Path(path) if path and Path(path).is_file() else None


def layer_pixel_size_um(layer) -> float | None:
    """Pixel size the layer says it has: plugin metadata, a non-unit scale, else the pixel
    size in the header of the file napari read it from, else None."""
    meta = histo_metadata(layer) or {}
    if meta.get("pixel_size_um"):
        return float(meta["pixel_size_um"])
    path = source_file(layer)
    if path is not None and not meta:
        try:
            ps = open_slide(path).pixel_size_um
        except Exception:  # noqa: BLE001 - not a slide histo reads: no pixel size from it
            ps = None
        if ps:
            return float(ps)
    scale = np.asarray(layer.scale[-2:], dtype=float)
    if np.allclose(scale, scale[0]) and not np.isclose(scale[0], 1.0) and 0.05 <= scale[0] <= 50:
        return float(scale[0])
    return None


#: Files the analysis reads again itself (all channels, pixel size from the header).
SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".png", ".jpg", ".jpeg")


def layer_channel(layer) -> int | None:
    """The channel a layer shows when the reader split a multichannel file."""
    meta = histo_metadata(layer) or {}
    ch = meta.get("channel")
    return None if ch is None else int(ch)


def layer_n_channels(layer) -> int:
    """Channels the analysis can choose from (1 for grey or RGB)."""
    meta = histo_metadata(layer) or {}
    if meta.get("n_channels"):
        return int(meta["n_channels"])
    data = base_level(layer.data)
    if getattr(layer, "rgb", False) or np.ndim(data) == 2:
        return 1
    return int(np.shape(data)[0])


def image_from_layer(layer, *, pixel_size_um: float | None, channel: int | None) -> Any:
    """The :class:`histo.io.image.ImageData` to analyse for an image layer.

    Raises
    ------
    HistoInputError
        For a multiscale layer without a source file, or data that is not 2-D, RGB or (C, Y, X).
    """
    meta = histo_metadata(layer) or {}
    path = meta.get("image_path") or getattr(getattr(layer, "source", None), "path", None)
    source = source_file(layer)
    if source is not None and (meta.get("image_path") or source.name.lower().endswith(SLIDE_SUFFIXES)):
        return read_image(source, pixel_size_um=pixel_size_um, channel=channel)
    if getattr(layer, "multiscale", False):
        raise HistoInputError(
            f"layer {layer.name!r} is a whole-slide pyramid; score it with `histo score` and open "
            "the result folder here to review it"
        )
    data = np.asarray(layer.data)
    if getattr(layer, "rgb", False):
        pixels, axes = data[..., :3], "YXS"
    elif data.ndim == 2:
        pixels, axes = data, "YX"
    elif data.ndim == 3:
        pixels, axes = data, "CYX"
    else:
        raise HistoInputError(
            f"layer {layer.name!r} has shape {data.shape}; histo analyses 2-D grey, RGB or "
            "(channel, y, x) images"
        )
    if axes == "CYX" and channel is not None and not 0 <= channel < pixels.shape[0]:
        raise HistoInputError(f"channel {channel} does not exist; layer {layer.name!r} has channels 0 to {pixels.shape[0] - 1}")
    return ImageData(pixels=pixels, axes=axes, pixel_size_um=pixel_size_um,
                     path=Path(path) if path else None,
                     pixel_size_source="user" if pixel_size_um else None,
                     channel=channel if axes == "CYX" else None)
