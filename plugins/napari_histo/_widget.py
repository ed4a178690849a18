"""The "Myofiber review" dock widget: one slide's segmentation, table, flags and figures.

The widget lays out the controls (:mod:`._ui`) and owns the current review session
(:class:`histo.review.session.ReviewSession`) and its labels layer; the behaviours live in three
helpers: :class:`._run.RunController` (segment and score in a worker), :class:`._selection.
SelectionSync` (table <-> layer <-> camera) and :class:`._actions.ReviewActions` (flags,
Recompute, Save). Every slow step runs in a worker thread, so the viewer never freezes: the
table, the class colours, the layer features, the summary and the histogram are prepared in a
worker (:mod:`._views`) and only swapped in on the GUI thread; a result folder opened in
napari is loaded (slide pixels, full-resolution labels) in a worker too. An unsaved review
is never dropped silently: re-running, switching results or closing napari asks first
(:mod:`._dialogs`).
"""

from __future__ import annotations

import logging
import weakref
from functools import partial

import numpy as np
import pandas as pd
from napari.layers import Image, Labels
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget

from histo.errors import HistoError
from histo.review.export import export_review
from histo.review.options import choices_from_settings, settings_from_choices
from histo.review.session import ReviewSession, session_from_result
from napari_histo import _dialogs
from napari_histo._actions import ReviewActions
from napari_histo._layers import METADATA_KEY, base_level, histo_metadata
from napari_histo._legend import ClassLegend
from napari_histo._queue import ReviewWalk
from napari_histo._reader import ACTIVE_WIDGETS, claim_reader_preferences
from napari_histo._run import RunController
from napari_histo._selection import SelectionSync
from napari_histo._summary import fiber_counts, summary_html
from napari_histo._table_model import FiberTableModel
from napari_histo._train_panel import add_train_panel
from napari_histo._ui import TAB_REVIEW, build_ui
from napari_histo._views import Views, prepare_views, views_job
from napari_histo._worker import start_job

log = logging.getLogger(__name__)

#: Labels up to this many pixels are loaded in full for a result opened as a pyramid (the
#: figures are then rescored after flags); larger ones are reviewed with flags only.
MAX_LOADED_LABELS_PX = 400_000_000


def _load_session_job(report, *, data, features, meta, name, histogram_size_px, colormap_options):
    """Worker: the review session of an opened result folder, and its views."""
    report(0, 1, f"loading {name}")
    base = base_level(data)
    whole = float(meta.get("analysis_downsample") or 1.0) != 1.0  # labels on a coarser grid
    too_big = int(np.prod(np.shape(base)[-2:])) > MAX_LOADED_LABELS_PX
    labels = None if whole or too_big else np.asarray(base)
    session = session_from_result(labels, features, meta)
    views = prepare_views(session.fibers, session.summary, session.normal_range_um(),
                          histogram_size_px=histogram_size_px, colormap_options=colormap_options,
                          stamp=(id(session), id(session.fibers)))
    return session, views


def _export_job(report, *, result_dir, labels, fibers, summary, image):
    report(0, 1, "exporting")
    return export_review(result_dir, labels=labels, fibers=fibers, summary=summary, image=image)


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
        self._views_job = None
        self._views_pending = False
        self._loading = None
        self._exporting = None
        self._shown_flags: dict[int, str] = {}
        claim_reader_preferences()  # result folders open without napari's reader dialog
        ACTIVE_WIDGETS.add(self)  # the reader then leaves class colours and features to us
        self.model = FiberTableModel(self)
        self.ui = build_ui(self, self.model)
        self.train_panel = add_train_panel(self)  # model picker + Train on my reviews
        self.runner = RunController(self)
        self.selection = SelectionSync(self)
        self.actions = ReviewActions(self)
        self.walk = ReviewWalk(self)  # review queue: Space / Shift+Space, undo, exclude in shape
        self.legend = ClassLegend(self)  # class colours chosen against the image, show / hide
        extras = self.ui.review_extras  # under the table, in the Review tab
        extras.addWidget(self.walk.panel)
        extras.addWidget(self.legend)
        self.ui.apply_pixel_button.clicked.connect(self.apply_pixel_size)
        self.ui.export_button.clicked.connect(self.export)
        self.ui.open_button.clicked.connect(self.open_result_dialog)
        self.ui.reference_combo.currentTextChanged.connect(self._on_reference_changed)
        self.ui.age_spin.valueChanged.connect(self._on_reference_changed)
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

    def scoring_settings(self, base=None):
        """The scoring settings the Analyse tab asks for (reference, age, IF channels)."""
        nuclei = self.ui.nuclei_spin.value()
        return settings_from_choices(
            base, reference=self.ui.reference_combo.currentText(),
            age_years=self.ui.age_spin.value() or None, type_channels=self.ui.type_channels_edit.text(),
            nuclei_channel=None if nuclei < 0 else nuclei)

    def apply_pixel_size(self) -> None:
        """Give the slide under review the pixel size of the Analyse tab; sizes and figures follow."""
        session = self.session
        ps = self.ui.pixel_spin.value()
        if session is None or not ps:
            self.status("Open or analyse a slide, and enter its pixel size (µm/px) first.")
            return
        try:
            session.set_pixel_size(ps)
        except HistoError as err:
            self.error("Cannot set the pixel size", err)
            return
        if self.layer is not None:
            self.layer.scale = (ps, ps) if self.layer.ndim == 2 else (*self.layer.scale[:-2], ps, ps)
        self.refresh_views()
        self.actions.request_rescore()
        self.status(f"Pixel size {ps:g} µm/px set: sizes in µm recomputed (unsaved; Export writes them).")

    def _on_reference_changed(self, *_args) -> None:
        session = self.session
        if session is None:
            return
        try:
            settings = self.scoring_settings(session.settings)
        except HistoError as err:
            self.error("Cannot use these settings", err)
            return
        if settings == session.settings:
            return
        session.set_settings(settings)
        self.refresh_views()
        self.actions.request_rescore()
        self.status(f"Reference {self.ui.reference_combo.currentText()}: figures recomputed (unsaved).")

    def _show_settings(self, session: ReviewSession) -> None:
        """Set the Analyse tab's controls to a session's settings (no rescoring)."""
        choices = choices_from_settings(session.settings)
        ui = self.ui
        for w in (ui.reference_combo, ui.age_spin):
            w.blockSignals(True)
        try:
            if ui.reference_combo.findText(choices["reference"]) >= 0:
                ui.reference_combo.setCurrentText(choices["reference"])
            ui.age_spin.setValue(choices["age_years"] or 0.0)
            ui.type_channels_edit.setText(choices["type_channels"])
            ui.nuclei_spin.setValue(-1 if choices["nuclei_channel"] is None else choices["nuclei_channel"])
            if session.pixel_size_um:
                ui.pixel_spin.setValue(float(session.pixel_size_um))
        finally:
            for w in (ui.reference_combo, ui.age_spin):
                w.blockSignals(False)

    def export(self) -> None:
        """Save the review, then write the reviewed outputs into RESULTS/<slide-id>/reviewed/ (worker)."""
        session = self.session
        if session is None or self.export_running:
            return
        if self.actions.recompute_running or len(session.pending_changes(self.actions.labels_now())):
            self.status("Press Recompute (or Save) first: the labels were edited since the last measurement.")
            return
        if session.dirty or session.result_dir is None:
            if not self.actions.save_now():
                return
        self._exporting = start_job(
            _export_job, result_dir=session.result_dir, labels=session.labels, fibers=session.fibers,
            summary=session.summary, image=session.image,
            on_done=lambda out: self.status(f"Reviewed fibers.csv, GeoJSON and summary written to {out}."),
            on_error=partial(self.error, "Export failed"), on_finished=self.update_buttons)
        self.status("Exporting the reviewed slide…")
        self.update_buttons()

    def open_result_dialog(self) -> None:
        """Ask for a result folder and open it with histo's reader (no reader choice)."""
        path = _dialogs.ask_result_folder(self)
        if path is not None:
            self.viewer.open(str(path), plugin="histo")

    @property
    def export_running(self) -> bool:
        return self._exporting is not None and self._exporting.running

    @property
    def loading(self) -> bool:
        """True while an opened result folder is being loaded."""
        return self._loading is not None and self._loading.running

    @property
    def views_running(self) -> bool:
        return self._views_job is not None and self._views_job.running

    @property
    def busy(self) -> bool:
        """True while a worker (analysis, scoring, re-measuring, views, loading) is running."""
        return (self.runner.running or self.actions.scoring_running or self.actions.recompute_running
                or self.views_running or self.loading or self.export_running or self._views_pending)

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
        if session is not None:
            self.attach(layer, session)
            return
        layer.contour = 2  # outlines: the stain stays visible under the classes
        if self._loading is not None:
            self._loading.cancel()
        self.detach()
        self.status(f"Loading {layer.name}…")
        self._loading = start_job(
            _load_session_job, data=layer.data, meta=dict(meta), name=layer.name,
            features=meta.pop("fibers") if "fibers" in meta else layer.features,
            histogram_size_px=self.ui.histogram.size_px(), colormap_options=None,
            on_done=partial(self._on_loaded, layer), on_error=partial(self._on_load_error, layer),
            on_finished=self.update_buttons)
        self.update_buttons()

    def _on_loaded(self, layer, result) -> None:
        session, views = result
        if layer not in self.viewer.layers or self.session is not None and self.layer is not layer:
            return
        self.attach(layer, session, views)
        if session.can_score:  # else attach() said why the review is flags only
            self.status(f"{len(session.fibers)} fibers in {layer.name}: click a row or a fiber, or press Space.")
        if session.can_score and (session.flags or session.edited):
            self.actions.request_rescore()

    def _on_load_error(self, layer, err) -> None:
        if not isinstance(err, Exception) or type(err).__name__ != "Cancelled":
            self.error(f"Cannot review {layer.name}", err)

    def attach(self, layer, session: ReviewSession, views: Views | None = None) -> None:
        """Review ``session`` on ``layer`` (replacing the current one); ``views`` prepared in a
        worker are shown at once, and fresh ones are prepared in a worker."""
        self.detach()
        self.layer, self.session = layer, session
        layer.metadata.setdefault(METADATA_KEY, {})["session"] = session
        self.selection.connect_layer(layer)
        layer.events.paint.connect(self.actions.on_paint)
        self._show_settings(session)
        if views is not None:
            self.apply_views(views)
        self.refresh_views()
        self.ui.table.resizeColumnsToContents()
        self.ui.tabs.setCurrentIndex(TAB_REVIEW)
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
        """Table, class colours, layer features, summary and histogram from the session.

        At once (GUI thread, cheap): the table rows whose flag changed and the counts of the
        summary. In a worker: everything else (:func:`napari_histo._views.prepare_views`),
        swapped in by :meth:`apply_views`; the latest request wins.
        """
        session, layer = self.session, self.layer
        if session is None or layer is None:
            return
        changed = {k for k in set(self._shown_flags) | set(session.flags)
                   if self._shown_flags.get(k) != session.flags.get(k)}
        if changed:
            self.model.update_rows(session.fibers, sorted(changed))
        self._shown_flags = dict(session.flags)
        self.ui.summary.show_prepared(summary_html(session.fibers, session.summary), fiber_counts(session.fibers))
        if self.views_running:
            self._views_pending = True
            return
        self._views_pending = False
        self._views_job = start_job(
            views_job, fibers=session.fibers, summary=session.summary, normal_range_um=session.normal_range_um(),
            histogram_size_px=self.ui.histogram.size_px(), colormap_options=self.legend.refresh(),
            stamp=(id(session), id(session.fibers)),
            on_done=self.apply_views, on_error=partial(self.error, "Views failed"),
            on_finished=self._on_views_finished)

    def _on_views_finished(self) -> None:
        if self._views_pending:
            self.refresh_views()
        self.update_buttons()

    def apply_views(self, views: Views) -> None:
        """Swap in views prepared in a worker (GUI thread; dropped when the table moved on)."""
        session, layer = self.session, self.layer
        if session is None or layer is None or views.stamp != (id(session), id(session.fibers)):
            return
        selected = self.selected_label()
        self.model.set_table(views.table)
        self._shown_flags = dict(session.flags)
        layer.colormap = views.colormap
        layer.features = views.features
        self.ui.summary.show_prepared(views.summary_text, views.counts)
        self.ui.histogram.show_picture(views.histogram)
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
        ui.export_button.setEnabled(have and not recomputing and not self.export_running)
        ui.apply_pixel_button.setEnabled(have and not recomputing)
