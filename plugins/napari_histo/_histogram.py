"""Minimum-Feret histogram of the counted fibers, SAD fibers stacked in their class colour.

A small matplotlib canvas (``FigureCanvasQTAgg``) redrawn after every flag or edit, with the
normal range of the lesser diameter as dashed lines when the sizes are in micrometres.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from histo.score.classes import CLASS_COLORS

_BG = "#262930"  # napari dark theme background
_FG = "#d6d6d6"


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


class FeretHistogram(QWidget):
    """The histogram widget; call :meth:`update_histogram` with the reviewed table."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(3.2, 1.8), dpi=90, facecolor=_BG, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(140)
        self.axes = self.figure.add_subplot(111)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.counts = (np.zeros(0, int), np.zeros(0, int))

    def update_histogram(self, fibers: pd.DataFrame, normal_range_um: tuple[float, float] | None = None) -> None:
        """Redraw for a reviewed per-fiber table."""
        edges, n_other, n_sad, unit = histogram_data(fibers)
        self.counts = (n_other, n_sad)
        ax = self.axes
        ax.clear()
        ax.set_facecolor(_BG)
        width = np.diff(edges)
        other_rgb = np.array(CLASS_COLORS["normal"]) / 255
        sad_rgb = np.array(CLASS_COLORS["sad"]) / 255
        ax.bar(edges[:-1], n_other, width=width, align="edge", color=other_rgb, label="other")
        ax.bar(edges[:-1], n_sad, width=width, bottom=n_other, align="edge", color=sad_rgb, label="SAD")
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
        self.canvas.draw_idle()
