"""Everything the dock shows for a reviewed table, prepared off the GUI thread.

:func:`prepare_views` turns the session's table and summary into the table model's arrays,
the labels layer's class colormap and features, the summary text and the histogram picture.
It is pure (no Qt widgets) and runs in a worker thread; the GUI thread only swaps the results
in (:meth:`napari_histo._widget.MyofiberReviewWidget.apply_views`), so a slide of tens of
thousands of fibers never freezes the viewer while its views are rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from napari_histo._histogram import HistogramPicture, render_histogram
from napari_histo._layers import class_colormap, layer_features
from napari_histo._summary import fiber_counts, summary_html
from napari_histo._table_model import TableData, prepare_table


@dataclass
class Views:
    """Prepared views of one state of the session (see :func:`prepare_views`)."""

    table: TableData
    colormap: Any
    features: pd.DataFrame
    summary_text: str
    counts: dict[str, Any]
    histogram: HistogramPicture
    stamp: Any = None


def warm_colormap(colormap, max_label: int) -> None:
    """Build the colormap's label -> texture mapping now (worker) rather than at the first draw."""
    try:
        colormap._data_to_texture(np.array([0, max(int(max_label), 1)], dtype=np.uint32))
    except Exception:  # noqa: BLE001 - a napari internal; without it the first draw builds it
        pass


def prepare_views(fibers: pd.DataFrame, summary: dict[str, Any] | None, normal_range_um, *,
                  histogram_size_px: tuple[int, int], colormap_options: dict[str, Any] | None = None,
                  stamp: Any = None) -> Views:
    """Prepare every view of a reviewed table (pure; runs in a worker thread)."""
    colormap = class_colormap(fibers, **(colormap_options or {}))
    labels = fibers["label"].to_numpy(dtype=np.int64)
    warm_colormap(colormap, int(labels.max()) if len(labels) else 1)
    return Views(
        table=prepare_table(fibers),
        colormap=colormap,
        features=layer_features(fibers),
        summary_text=summary_html(fibers, summary),
        counts=fiber_counts(fibers),
        histogram=render_histogram(fibers, normal_range_um, size_px=histogram_size_px),
        stamp=stamp,
    )


def views_job(report, **kwargs) -> Views:
    """:func:`prepare_views` as a worker job (``report`` is the progress callback)."""
    return prepare_views(**kwargs)
