"""napari plugin of histo: open slides and result folders, segment, score and review fibers.

The plugin is the only place where histo meets Qt, and only a view: the reviewed state of the
slide on screen and every operation on it live in :mod:`histo.review.session` (no Qt). Its
parts, one job each:

``_reader``        slide files and ``histo score`` result folders as napari layers
``_sample_data``   the bundled H&E sample slide
``_widget``        the "Myofiber review" dock widget (layout and glue only)
``_worker``        segmentation and scoring in a worker thread, with progress and cancel
``_table_model``   the per-fiber table (sorted and filtered with numpy)
``_views``         table, colours, features, summary and histogram prepared in a worker
``_summary``       counts, size figures with normal ranges, grouping p-values
``_histogram``     min-Feret histogram
``_layers``        class colours, layer features, pyramids, camera moves
``_dialogs``       questions to the user (monkeypatched in tests)
"""

from __future__ import annotations

try:
    from histo import __version__
except ImportError:  # pragma: no cover - histo is a hard dependency
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
