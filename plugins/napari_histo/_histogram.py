"""Minimum-Feret histogram of the counted fibers, SAD fibers stacked in their class colour.

The histogram is drawn off screen with matplotlib's Agg renderer (:func:`render_histogram`,
pure, safe in a worker thread) and shown as a picture, so redrawing it after a flag or an
edit never holds up the viewer. The normal range of the lesser diameter is drawn as dashed
lines when the sizes are in micrometres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from histo.score.classes import CLASS_COLORS

_BG = "#262930"  # napari dark theme background
_FG = "#d6d6d6"
#: Size the histogram is drawn at when the widget has not been laid out yet (px).
DEFAULT_SIZE_PX = (320, 170)


def feret_column(fibers: pd.DataFrame) -> str | None:
    """``min_feret_um`` when present, else ``min_feret_px``, else None."""
    return next((c for c in ("min_feret_um", "min_feret_px") if c in fibers), None)


def histogram_data(fibers: pd.DataFrame, bins: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Counts of counted non-SAD and SAD fibers per min-Feret bin (pure; tests use it).

    Returns
    -------
    edges, n_other, n_sad, unit
    """
    column = feret_column(fibers)
    if column is None or fibers.empty:
        return np.zeros(bins + 1), np.zeros(bins, int), np.zeros(bins, int), ""
    counted = fibers["counted"].fillna(False).to_numpy(bool) if "counted" in fibers else np.ones(len(fibers), bool)
    sad = fibers["is_sad"].fillna(False).to_numpy(bool) if "is_sad" in fibers else np.zeros(len(fibers), bool)
    d = pd.to_numeric(fibers[column], errors="coerce").to_numpy(float)
    ok = counted & np.isfinite(d)
    hi = float(np.max(d[ok])) if ok.any() else 1.0
    edges = np.linspace(0.0, max(hi, 1e-9) * 1.02, bins + 1)
    n_other = np.histogram(d[ok & ~sad], edges)[0]
    n_sad = np.histogram(d[ok & sad], edges)[0]
    return edges, n_other, n_sad, "µm" if column.endswith("_um") else "px"


@dataclass(frozen=True)
class HistogramPicture:
    """A drawn histogram: RGBA pixels and the counts drawn."""

    rgba: np.ndarray
    n_other: np.ndarray
    n_sad: np.ndarray


def render_histogram(fibers: pd.DataFrame, normal_range_um: tuple[float, float] | None = None, *,
                     size_px: tuple[int, int] = DEFAULT_SIZE_PX) -> HistogramPicture:
    """Draw the histogram of a reviewed table off screen (pure; runs in a worker thread)."""
    edges, n_other, n_sad, unit = histogram_data(fibers)
    w, h = max(int(size_px[0]), 120), max(int(size_px[1]), 80)
    dpi = 90
    figure = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, facecolor=_BG, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot(111)
    ax.set_facecolor(_BG)
    other_rgb = np.array(CLASS_COLORS["normal"]) / 255
    sad_rgb = np.array(CLASS_COLORS["sad"]) / 255
    ax.stairs(n_other, edges, fill=True, color=other_rgb, label="other")
    if n_sad.any():
        ax.stairs(n_other + n_sad, edges, baseline=n_other, fill=True, color=sad_rgb, label="SAD")
    if unit == "µm" and normal_range_um is not None:
        for x in normal_range_um:
            ax.axvline(x, color=_FG, linestyle="--", linewidth=0.8)
    ax.set_xlabel(f"min Feret ({unit})" if unit else "min Feret", color=_FG, fontsize=8)
    ax.set_ylabel("fibers", color=_FG, fontsize=8)
    ax.tick_params(colors=_FG, labelsize=7)
    for spine in ax.spines.values():
        spine.set_color(_FG)
    if n_sad.any():
        ax.legend(fontsize=7, frameon=False, labelcolor=_FG)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba()).copy()
    return HistogramPicture(rgba=rgba, n_other=n_other, n_sad=n_sad)


class FeretHistogram(QWidget):
    """Shows a :class:`HistogramPicture`; :meth:`update_histogram` draws one on the spot."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMinimumHeight(100)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        self.counts = (np.zeros(0, int), np.zeros(0, int))
        self._image = None

    def size_px(self) -> tuple[int, int]:
        """The size to draw at: the widget's, or :data:`DEFAULT_SIZE_PX` before it is shown."""
        w, h = self.label.width(), self.label.height()
        return (w, h) if w > 100 and h > 60 else DEFAULT_SIZE_PX

    def show_picture(self, picture: HistogramPicture) -> None:
        """Show a histogram drawn by :func:`render_histogram` (GUI thread, cheap)."""
        self.counts = (picture.n_other, picture.n_sad)
        rgba = np.ascontiguousarray(picture.rgba)
        h, w = rgba.shape[:2]
        self._image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.label.setPixmap(QPixmap.fromImage(self._image))

    def update_histogram(self, fibers: pd.DataFrame, normal_range_um: tuple[float, float] | None = None) -> None:
        """Draw and show at once (small tables, tests)."""
        self.show_picture(render_histogram(fibers, normal_range_um, size_px=self.size_px()))
