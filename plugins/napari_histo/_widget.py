"""The "Myofiber review" dock widget: one slide's segmentation, table, flags and figures.

The widget lays out the controls (:mod:`._ui`) and owns the current review session
(:class:`histo.review.session.ReviewSession`) and its labels layer; the behaviours live in three
helpers: :class:`._run.RunController` (segment and score in a worker), :class:`._selection.
SelectionSync` (table <-> layer <-> camera) and :class:`._actions.ReviewActions` (flags,
Recompute, Save). Every slow step runs in a worker thread, so the viewer never freezes, and
an unsaved review is never dropped silently: re-running, switching results or closing napari
asks first (:mod:`._dialogs`).
"""

from __future__ import annotations

import logging
import weakref

import numpy as np
import pandas as pd
from napari.layers import Image, Labels
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget

from histo.errors import HistoError
from histo.review.session import ReviewSession, session_from_result
from napari_histo import _dialogs
from napari_histo._actions import ReviewActions
from napari_histo._layers import METADATA_KEY, base_level, class_colormap, histo_metadata, layer_features
from napari_histo._run import RunController
from napari_histo._selection import SelectionSync
from napari_histo._table_model import FiberTableModel
from napari_histo._ui import build_ui

log = logging.getLogger(__name__)


class _CloseGuard(QObject):
    """Asks before the napari window closes with an unsaved review.

    Holds the widget weakly and uninstalls itself once the window closes: PyQt keeps an
    event filter alive from C++, where the garbage collector cannot see the cycle back
    to the viewer.
    """

    def __init__(self, widget: MyofiberReviewWidget):
        super().__init__(widget)
        self._widget = weakref.ref(widget)

    def eventFilter(self, obj, event):  # noqa: N802 - Qt API
        if event.type() != QEvent.Type.Close:
            return False
        widget = self._widget()
        if widget is not None and not widget.confirm_discard("closing napari"):
            event.ignore()
            return True
        if widget is not None:
            widget.cancel()  # a running analysis stops at its next step
        obj.removeEventFilter(self)
        return False


class MyofiberReviewWidget(QWidget):
    """Segment, score and review the fibers of a slide (see the module docstring)."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session: ReviewSession | None = None
        self.layer = None
        self.model = FiberTableModel(self)
        self.ui = build_ui(self, self.model)
        self.runner = RunController(self)
        self.selection = SelectionSync(self)
        self.actions = ReviewActions(self)
        self.ui.filter_edit.textChanged.connect(self._apply_filter)
        self.ui.class_combo.currentTextChanged.connect(self._apply_filter)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self._close_guard = _CloseGuard(self)
        self._guarded_window = None
        self.runner.refresh_image_choices()
        for layer in reversed(list(self.viewer.layers)):
            if self._is_result_layer(layer):
                self._attach_result_layer(layer)
                break
        self.update_buttons()

    # -- public API (buttons call the same) ------------------------------------------------
    def run(self) -> None:
        """Segment and score the chosen image layer (worker thread)."""
        self.runner.run()

    def cancel(self) -> None:
        """Cancel the running analysis."""
        self.runner.cancel()

    def flag_selected(self, flag: str | None) -> None:
        """Flag the selected fiber: ``"excluded"``, ``"confirmed_sad"``, ``"not_sad"`` or None."""
        self.actions.flag_selected(flag)

    def recompute(self) -> None:
        """Re-measure the fibers changed with napari's label tools (worker thread)."""
        self.actions.recompute()

    def save(self) -> None:
        """Save the review into the slide's result folder."""
        self.actions.save()

    def selected_label(self) -> int | None:
        """The selected fiber's label."""
        return self.selection.selected_label()

    def confirm_discard(self, action: str) -> bool:
        """True when the current review may be dropped (saved, or the user agreed)."""
        return self.actions.confirm_discard(action)

    @property
    def busy(self) -> bool:
        """True while a worker (analysis, scoring, re-measuring) is running."""
        return self.runner.running or self.actions.scoring_running or self.actions.recompute_running

    # -- status -------------------------------------------------------------------------------
    def status(self, text: str) -> None:
        self.ui.status.setText(text)

    def error(self, title: str, err: BaseException) -> None:
        """Show a failure in the status line and as a napari notification; never raise."""
        message = str(err) if isinstance(err, HistoError) else f"{type(err).__name__}: {err}"
        self.status(f"{title}: {message}")
        _dialogs.show_error(self, title, message)

    def showEvent(self, event):  # noqa: N802 - Qt API
        """Once docked, guard the napari window against closing with an unsaved review."""
        super().showEvent(event)
        window = self.window()
        guarded = self._guarded_window() if self._guarded_window is not None else None
        if window is not self and window is not guarded:
            window.installEventFilter(self._close_guard)
            self._guarded_window = weakref.ref(window)  # a strong one would keep the viewer alive

    # -- the result layer ---------------------------------------------------------------------
    def _is_result_layer(self, layer) -> bool:
        meta = histo_metadata(layer)
        return isinstance(layer, Labels) and meta is not None and ("session" in meta or "result_dir" in meta)

    def _attach_result_layer(self, layer) -> None:
        meta = histo_metadata(layer)
        session = meta.get("session")
        if session is None:
            labels = None if layer.multiscale else np.asarray(base_level(layer.data))
            session = session_from_result(labels, layer.features, meta)
            layer.contour = 2  # outlines: the stain stays visible under the classes
        self.attach(layer, session)
        if session.can_score and (session.flags or session.edited):
            self.actions.request_rescore()

    def attach(self, layer, session: ReviewSession) -> None:
        """Review ``session`` on ``layer`` (replacing the current one)."""
        self.detach()
        self.layer, self.session = layer, session
        layer.metadata.setdefault(METADATA_KEY, {})["session"] = session
        self.selection.connect_layer(layer)
        layer.events.paint.connect(self.actions.on_paint)
        self.refresh_views()
        self.ui.table.resizeColumnsToContents()
        if not session.can_score:
            layer.editable = False  # edited fibers could not be measured without the pixels
            self.status("Slide pixels not loaded (whole slide, or the slide file moved): review "
                        "with flags; the size figures stay as scored.")
        self.update_buttons()

    def detach(self) -> None:
        """Stop reviewing the current layer (the layer stays in the viewer)."""
        if self.layer is not None:
            self.selection.disconnect_layer(self.layer)
            try:
                self.layer.events.paint.disconnect(self.actions.on_paint)
            except (TypeError, ValueError, RuntimeError):
                pass
        self.layer, self.session = None, None

    def _on_layer_inserted(self, event) -> None:
        layer = event.value
        if isinstance(layer, Image):
            self.runner.refresh_image_choices()
        elif self._is_result_layer(layer) and layer is not self.layer:
            if self.confirm_discard(f"reviewing {layer.name}"):
                self._attach_result_layer(layer)

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if isinstance(layer, Image):
            self.runner.refresh_image_choices()
        if layer is self.layer:
            if self.session is not None and self.session.dirty:
                _dialogs.show_error(self, "Review discarded", f"the unsaved review of {layer.name} went with its layer")
            self.detach()
            self.model.set_fibers(pd.DataFrame({"label": np.zeros(0, dtype=np.int64)}))
            self.update_buttons()

    # -- views --------------------------------------------------------------------------------
    def refresh_views(self) -> None:
        """Table, class colours, layer features, summary and histogram from the session."""
        session, layer = self.session, self.layer
        if session is None or layer is None:
            return
        selected = self.selected_label()
        self.model.set_fibers(session.fibers)
        layer.colormap = class_colormap(session.fibers)
        layer.features = layer_features(session.fibers)
        self.ui.summary.update_summary(session.fibers, session.summary)
        self.ui.histogram.update_histogram(session.fibers, session.normal_range_um())
        if selected:
            self.selection.select_row(selected)

    def _apply_filter(self, *_args) -> None:
        selected = self.selected_label()
        self.model.set_filter(self.ui.filter_edit.text(), self.ui.class_combo.currentText())
        if selected:
            self.selection.select_row(selected)

    def update_buttons(self, *_args) -> None:
        ui = self.ui
        running = self.runner.running
        recomputing = self.actions.recompute_running
        have = self.session is not None
        ui.run_button.setEnabled(not running)
        ui.cancel_button.setEnabled(running)
        for button in ui.flag_buttons.values():
            button.setEnabled(have and not recomputing)
        editable = have and self.session.can_score and self.layer is not None and not self.layer.multiscale
        ui.recompute_button.setEnabled(editable and not recomputing)
        ui.save_button.setEnabled(have and not recomputing)
