"""The class legend of the dock widget: a colour, a count and show / hide for every class.

The outline colours are chosen against the image under the fibers
(:func:`histo.review.colours.outline_palette` on :func:`displayed_rgb`): violet and blue give
way on H&E, cyan on a cyan membrane channel. They are chosen again when another slide (or
another image layer) is reviewed. Unticking a class makes its fibers transparent in the
canvas; the table is not filtered (use the class filter above it for that).
"""

from __future__ import annotations

import logging

import numpy as np
from napari.layers import Image
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QCheckBox, QGridLayout, QWidget

from histo.review.colours import image_backgrounds, outline_palette
from histo.score.classes import CLASS_COLORS, CLASS_NAMES, fiber_class
from napari_histo._layers import base_level, class_colormap

log = logging.getLogger(__name__)

#: The legend samples at most this many image pixels to choose its colours.
SAMPLE_PIXELS = 250_000
#: Class names as the legend shows them.
CLASS_TITLES = {"excluded": "excluded", "not_fiber": "not a fiber", "sad": "SAD", "small": "small",
                "dark": "dark", "angular": "angular", "normal": "normal"}


def _sample(data, max_pixels: int, leading: tuple[int, ...] = ()) -> np.ndarray:
    """A strided (Y, X[, C]) sample of a 2-D (or RGB) array, indexing leading axes first."""
    arr = data
    for i in leading:
        arr = arr[i]
    h, w = np.shape(arr)[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    return np.asarray(arr[::step, ::step])


def displayed_rgb(viewer, labels_layer, max_pixels: int = SAMPLE_PIXELS) -> tuple[np.ndarray, np.ndarray] | None:
    """What the viewer shows under the labels, as ``(rgb 0-255 (Y, X, 3), labels (Y, X))``.

    Visible image layers are rendered with their contrast limits and colormaps; additive
    layers (fluorescence channels) are summed, otherwise the top image layer is used. Both
    arrays are sampled on the same coarse grid (the coarsest pyramid level of a whole slide).
    None when there is no visible image layer.
    """
    images = [layer for layer in viewer.layers if isinstance(layer, Image) and layer.visible]
    if not images:
        return None
    additive = [layer for layer in images if str(getattr(layer.blending, "value", layer.blending)) == "additive"]
    total = None
    for layer in additive or images[-1:]:
        data = layer.data[-1] if layer.multiscale else layer.data
        lead_nd = np.ndim(data) - (3 if layer.rgb else 2)
        leading = tuple(int(i) for i in viewer.dims.current_step[:lead_nd]) if lead_nd > 0 else ()
        arr = _sample(data, max_pixels, leading).astype(float)
        lo, hi = (float(v) for v in layer.contrast_limits)
        norm = np.clip((arr - lo) / max(hi - lo, 1e-9), 0, 1)
        if layer.rgb:
            rgb = norm[..., :3] * 255
        else:
            rgb = np.asarray(layer.colormap.map(norm.ravel()))[:, :3].reshape(*norm.shape, 3) * 255
        total = rgb if total is None or total.shape != rgb.shape else np.clip(total + rgb, 0, 255)
    labels = labels_layer.data[-1] if labels_layer.multiscale else base_level(labels_layer.data)
    h, w = total.shape[:2]
    ly, lx = np.shape(labels)[:2]
    iy = np.minimum((np.arange(h) * ly / h).astype(int), ly - 1)
    ix = np.minimum((np.arange(w) * lx / w).astype(int), lx - 1)
    return total, np.asarray(labels)[np.ix_(iy, ix)]


def _swatch(rgb: tuple[int, int, int]) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(*rgb))
    return QIcon(pix)


class ClassLegend(QWidget):
    """Show / hide per class with the class's outline colour and its number of fibers."""

    def __init__(self, widget):
        super().__init__()
        self.widget = widget
        self.palette: dict[str, tuple[int, int, int]] = dict(CLASS_COLORS)
        self.backgrounds: np.ndarray | None = None
        self._palette_for = None
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(0)
        self.boxes: dict[str, QCheckBox] = {}
        for i, name in enumerate(CLASS_NAMES):
            box = QCheckBox(CLASS_TITLES.get(name, name))
            box.setChecked(True)
            box.setToolTip(f"Show or hide the {CLASS_TITLES.get(name, name)} fibers in the canvas")
            box.toggled.connect(self._on_toggled)
            self.boxes[name] = box
            grid.addWidget(box, i // 4, i % 4)
        self._show_palette()

    # -- state ------------------------------------------------------------------------------
    @property
    def hidden(self) -> set[str]:
        """Classes unticked in the legend."""
        return {name for name, box in self.boxes.items() if not box.isChecked()}

    def set_visible_class(self, name: str, visible: bool) -> None:
        """Tick or untick a class (as a click on its box would)."""
        self.boxes[name].setChecked(bool(visible))

    def refresh(self) -> dict:
        """Counts and (for a new slide) colours from the session; the colormap options to use."""
        session, layer = self.widget.session, self.widget.layer
        if session is not None and layer is not None:
            key = (id(session), id(layer))
            if key != self._palette_for:
                self._palette_for = key
                self._choose_palette(layer)
            classes = fiber_class(session.fibers).to_numpy()
            for name, box in self.boxes.items():
                n = int((classes == name).sum())
                box.setText(f"{CLASS_TITLES.get(name, name)} {n}")
        return {"palette": self.palette, "hidden": self.hidden}

    def _choose_palette(self, layer) -> None:
        try:
            shown = displayed_rgb(self.widget.viewer, layer)
        except Exception as err:  # noqa: BLE001 - an odd layer must not break the review
            log.warning("cannot sample the image for the outline colours (%s); using the fixed ones", err)
            shown = None
        if shown is None:
            self.backgrounds, self.palette = None, dict(CLASS_COLORS)
        else:
            self.backgrounds = image_backgrounds(*shown)
            self.palette = outline_palette(self.backgrounds)
        self._show_palette()
        model = getattr(self.widget, "model", None)
        if model is not None and hasattr(model, "palette"):  # the table's class swatches match
            model.palette = dict(self.palette)
            if model.rowCount():
                model.dataChanged.emit(model.index(0, 0), model.index(model.rowCount() - 1, 0))

    def _show_palette(self) -> None:
        for name, box in self.boxes.items():
            box.setIcon(_swatch(self.palette.get(name, CLASS_COLORS[name])))

    def _on_toggled(self, _checked: bool) -> None:
        session, layer = self.widget.session, self.widget.layer
        if session is not None and layer is not None:
            layer.colormap = class_colormap(session.fibers, palette=self.palette, hidden=self.hidden)
