"""Labels-layer helpers: class colours, per-fiber features, multiscale pyramids, camera moves.

Small functions over napari layers; no widgets. The results layer carries everything the
review widget needs in ``layer.metadata["histo"]`` (see :func:`histo_metadata`) and the
per-fiber table on ``layer.features`` (one row per label, ``index`` = label, as napari's
status bar expects).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from histo.score.classes import CLASS_COLORS, fiber_class

#: Key of the plugin's entry in ``layer.metadata``.
METADATA_KEY = "histo"
#: Colour of labels absent from the table (freshly painted fibers, before Recompute).
UNMEASURED_RGBA = (1.0, 1.0, 1.0, 0.9)
#: Labels layers at most this many pixels per side are plain arrays (editable);
#: larger ones also get a pyramid for display.
MAX_SINGLE_SCALE_PX = 8192


def class_color_dict(fibers: pd.DataFrame, *, palette: Mapping[str, tuple[int, int, int]] | None = None,
                     hidden: Collection[str] = ()) -> dict[int | None, tuple[float, float, float, float]]:
    """``{label: RGBA}`` colouring each fiber by its display class (:mod:`histo.score.classes`).

    Background (0) is transparent; labels not in the table (``None`` key) are white.
    ``palette`` (class -> RGB 0-255, e.g. :func:`histo.review.colours.outline_palette`)
    replaces the fixed class colours; fibers of a ``hidden`` class are transparent.

    Examples
    --------
    >>> d = class_color_dict(pd.DataFrame({"label": [4], "is_sad": [True]}))
    >>> d[4]
    (1.0, 0.1568627450980392, 0.1568627450980392, 1.0)
    """
    colours = {**CLASS_COLORS, **(palette or {})}
    rgba = {name: (r / 255, g / 255, b / 255, 0.0 if name in hidden else 1.0) for name, (r, g, b) in colours.items()}
    classes = fiber_class(fibers).to_numpy()
    labels = fibers["label"].to_numpy(dtype=np.int64)
    colors: dict[int | None, tuple[float, float, float, float]] = {None: UNMEASURED_RGBA, 0: (0.0, 0.0, 0.0, 0.0)}
    colors.update({int(lab): rgba[c] for lab, c in zip(labels, classes)})
    return colors


def class_colormap(fibers: pd.DataFrame, *, palette: Mapping[str, tuple[int, int, int]] | None = None,
                   hidden: Collection[str] = ()):
    """A napari ``DirectLabelColormap`` colouring fibers by class (see :func:`class_color_dict`)."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict=class_color_dict(fibers, palette=palette, hidden=hidden))


def layer_features(fibers: pd.DataFrame) -> pd.DataFrame:
    """The per-fiber table as napari labels features: an ``index`` column holding the label."""
    out = fibers.reset_index(drop=True).copy()
    out.insert(0, "index", out["label"].to_numpy(dtype=np.int64))
    out["fiber_class"] = fiber_class(out).to_numpy()
    return out


def labels_pyramid(labels: np.ndarray, max_px: int = MAX_SINGLE_SCALE_PX) -> list[np.ndarray] | np.ndarray:
    """A label image as is, or as a list of strided views (factor 2 per level) when large.

    Striding (nearest neighbour) keeps label values exact and costs no memory. napari
    cannot paint on multiscale labels, so large slides are review-only in the canvas.
    """
    if max(labels.shape[-2:]) <= max_px:
        return labels
    levels = [labels]
    while max(levels[-1].shape[-2:]) > 1024:
        levels.append(levels[-1][..., ::2, ::2])
    return levels


def base_level(data: Any) -> Any:
    """The full-resolution array of a (possibly multiscale) layer's data.

    Multiscale data is a sequence of arrays (napari's ``MultiScaleData`` or a list); arrays
    (numpy, dask, zarr) are not sequences in the ``collections.abc`` sense.
    """
    if isinstance(data, Sequence):
        return data[0]
    return data


def label_at(layer, world_position) -> int:
    """The label under a world position (0 outside the layer or on background)."""
    value = layer.get_value(world_position, world=True)
    if isinstance(value, tuple):  # multiscale: (level, value)
        value = value[-1]
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def center_on(viewer, layer, centroid_yx_px: tuple[float, float], bbox_px: tuple[float, float, float, float] | None = None,
              *, field_px: float | None = None) -> None:
    """Centre the camera on a point of ``layer`` (data pixels) at a fixed zoom.

    ``field_px`` (data pixels, :func:`histo.review.queue.walk_field_px`) is the side of the
    field shown across the canvas's shorter side: the same zoom for every fiber, so jumping
    between fibers never drifts in or out; a fiber larger than two thirds of the field is
    fitted instead. Without ``field_px`` the zoom is left as it is.
    """
    world = np.asarray(layer.data_to_world(np.asarray(centroid_yx_px, dtype=float)), dtype=float)
    center = list(_camera(viewer).center)
    center[-2:] = world[-2:]
    _camera(viewer).center = tuple(center)
    canvas = _canvas_size(viewer)
    if field_px is None or canvas is None:
        return
    scale = np.asarray(layer.scale[-2:], dtype=float)
    extent_px = 0.0
    if bbox_px is not None:
        y0, x0, y1, x1 = bbox_px
        extent_px = max(y1 - y0, x1 - x0) * 1.5
    _camera(viewer).zoom = min(canvas) / (max(float(field_px), extent_px, 1.0) * float(scale.max()))


def _canvas_size(viewer) -> tuple[int, int] | None:
    try:
        return tuple(int(v) for v in viewer.canvas.size)  # (h, w) in screen pixels
    except (AttributeError, TypeError):
        return None


def histo_metadata(layer) -> dict[str, Any] | None:
    """The plugin's metadata of a layer, or None for layers histo did not make."""
    meta = getattr(layer, "metadata", None) or {}
    value = meta.get(METADATA_KEY)
    return value if isinstance(value, dict) else None


def _camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9 on, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera

