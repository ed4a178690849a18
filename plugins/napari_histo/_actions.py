"""Review actions of the dock widget: flags, undo / redo, re-scoring, Recompute after edits, Save.

Flags take effect in the table at once, then the slide is re-scored in a worker thread
(the latest request wins) so that the figures follow. During the review walk
(:mod:`._queue`) a flag moves on to the next queued fiber; otherwise the table keeps its
place when the flagged row leaves a filtered list. Flag changes are undone and redone in
steps (a bulk exclusion is one step; :class:`histo.review.flags.FlagHistory`). Recompute re-measures only the fibers changed with
napari's label tools, in a worker. Save writes the review atomically into the result
folder (:func:`histo.review.state.save_review`), re-measuring pending edits first.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QShortcut

from histo.errors import HistoError
from histo.review.flags import flag_label
from histo.review.session import ReviewSession, rescore_snapshot
from napari_histo import _dialogs
from napari_histo._layers import METADATA_KEY
from napari_histo._ui import FLAG_ACTIONS
from napari_histo._worker import start_job


def _rescore_job(report, **inputs):
    return rescore_snapshot(**inputs)


def _recompute_job(session: ReviewSession, labels_now: np.ndarray, report):
    report(0, 1, "re-measuring")
    return session.compute_recompute(labels_now)


class ReviewActions:
    """Flag / Recompute / Save for a :class:`MyofiberReviewWidget`."""

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.scoring = None
        self.recomputing = None
        self._rescore_pending = False
        self._save_after_recompute = False
        for _, flag, qt_key, napari_key in FLAG_ACTIONS:
            self.ui.flag_buttons[flag].clicked.connect(partial(self.flag_selected, flag))
            shortcut = QShortcut(QKeySequence(qt_key), widget)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(partial(self.flag_selected, flag))
            widget.viewer.bind_key(napari_key, self._key_handler(flag), overwrite=True)
        self.ui.recompute_button.clicked.connect(self.recompute)
        self.ui.save_button.clicked.connect(self.save)

    @property
    def recompute_running(self) -> bool:
        return self.recomputing is not None and self.recomputing.running

    @property
    def scoring_running(self) -> bool:
        return self.scoring is not None and self.scoring.running

    def _key_handler(self, flag):
        """A named function for napari's key bindings (napari reads ``__name__``)."""

        def handler(_viewer=None):
            self.flag_selected(flag)

        handler.__name__ = handler.__qualname__ = f"histo_flag_{flag or 'clear'}"
        return handler

    # -- flags ------------------------------------------------------------------------------
    def flag_selected(self, flag: str | None) -> None:
        """Flag the selected fiber (``None`` clears); figures follow."""
        session = self.widget.session
        if session is None or self.recompute_running:
            return
        label = self.widget.selected_label()
        if label is None:
            self.widget.status("Select a fiber first (click a row or a fiber, or press Space to walk the queue).")
            return
        index = self.ui.table.currentIndex()
        row_before = index.row() if index.isValid() else None
        try:
            changed = session.set_flag(label, flag)
        except HistoError as err:
            self.widget.error("Cannot flag", err)
            return
        if changed:
            self.widget.refresh_views()
            self.widget.status(f"Fiber {label}: {flag_label(flag) or 'flag cleared'} (unsaved; U undoes).")
            self.request_rescore()  # exclusions change every figure, SAD calls the SAD figures
        walk = getattr(self.widget, "walk", None)
        if walk is not None and walk.after_flag(label):
            return
        if changed:
            self.widget.selection.keep_place(label, row_before)

    def flag_labels(self, changes: dict[int, str | None], what: str) -> list[int]:
        """Flag several fibers as one undoable step; returns the labels that changed."""
        session = self.widget.session
        if session is None or self.recompute_running:
            return []
        try:
            changed = session.set_flags(changes)
        except HistoError as err:
            self.widget.error("Cannot flag", err)
            return []
        if changed:
            self.widget.refresh_views()
            self.request_rescore()
        self.widget.status(f"{what}: {len(changed)} fiber(s) changed (unsaved; U undoes).")
        return changed

    def undo_flags(self) -> list[int]:
        """Undo the last flag step (one flag, or a whole bulk exclusion)."""
        return self._history_step("undo")

    def redo_flags(self) -> list[int]:
        """Redo the last undone flag step."""
        return self._history_step("redo")

    def _history_step(self, which: str) -> list[int]:
        session = self.widget.session
        if session is None or self.recompute_running:
            return []
        changed = session.undo_flags() if which == "undo" else session.redo_flags()
        if not changed:
            self.widget.status(f"Nothing to {which}.")
            return []
        self.widget.refresh_views()
        self.request_rescore()
        walk = getattr(self.widget, "walk", None)
        if walk is not None:
            walk.update_info()
        shown = ", ".join(f"{k} ({flag_label(session.flags.get(k)) or 'no flag'})" for k in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        self.widget.status(f"{which.capitalize()}: fiber {shown}{more} (unsaved).")
        return changed

    def request_rescore(self) -> None:
        """Score the slide again in a worker; a request during a run queues one more run."""
        session = self.widget.session
        if session is None or not session.can_score:
            return
        if self.scoring_running:
            self._rescore_pending = True
            return
        self._rescore_pending = False
        inputs = session.rescore_inputs()
        self.scoring = start_job(
            _rescore_job, **inputs,
            on_done=partial(self._on_rescored, session, dict(inputs["flags"]), session.version),
            on_error=partial(self.widget.error, "Scoring failed"),
            on_finished=self._on_scoring_finished,
        )

    def _on_rescored(self, session, flags_used, version, result) -> None:
        fibers, part = result
        if session is self.widget.session and session.accept_rescore(fibers, part, flags_used, version):
            self.widget.refresh_views()

    def _on_scoring_finished(self) -> None:
        if self._rescore_pending:
            self.request_rescore()

    # -- edits ------------------------------------------------------------------------------
    def on_paint(self, _event=None) -> None:
        if self.widget.session is not None:
            self.widget.session.dirty = True
            self.widget.status("Labels edited: press Recompute to re-measure the changed fibers.")

    def labels_now(self) -> np.ndarray | None:
        """The labels as painted in the canvas (None for a multiscale, read-only layer)."""
        layer = self.widget.layer
        if layer is None or layer.multiscale:
            return None
        return np.asarray(layer.data)

    def recompute(self) -> None:
        """Re-measure the fibers changed with the label tools (worker thread)."""
        session = self.widget.session
        if session is None or not session.can_score or self.recompute_running:
            return
        labels_now = np.array(self.labels_now(), dtype=np.uint32, copy=True)
        if not len(session.pending_changes(labels_now)):
            self.widget.status("No changed fibers to re-measure.")
            if self._save_after_recompute:
                self._save_after_recompute = False
                self.save_now()
            return
        self.recomputing = start_job(
            _recompute_job, session=session, labels_now=labels_now,
            on_done=partial(self._on_recomputed, session), on_error=self._on_recompute_error,
            on_finished=self.widget.update_buttons,
        )
        self.widget.status("Re-measuring the changed fibers…")
        self.widget.update_buttons()

    def _on_recomputed(self, session, result) -> None:
        if session is not self.widget.session:
            return
        session.accept_recompute(result)
        self.widget.refresh_views()
        self.widget.status(f"Re-measured {len(result['changed'])} changed fibers (unsaved).")
        if self._save_after_recompute:
            self._save_after_recompute = False
            self.save_now()

    def _on_recompute_error(self, err: BaseException) -> None:
        self._save_after_recompute = False
        self.widget.error("Recompute failed", err)

    # -- saving -----------------------------------------------------------------------------
    def save(self) -> None:
        """Save flags and edited labels into the result folder (re-measuring edits first)."""
        session = self.widget.session
        if session is None:
            return
        if len(session.pending_changes(self.labels_now())):
            self._save_after_recompute = True
            self.recompute()
            return
        self.save_now()

    def save_now(self) -> bool:
        """Save on the GUI thread; asks for a results folder when the slide has none."""
        session = self.widget.session
        if session is None:
            return False
        root = None
        if session.result_dir is None:
            root = _dialogs.ask_results_folder(self.widget)
            if root is None:
                return False
        try:
            out = session.save(self.labels_now(), root)
        except (HistoError, OSError) as err:
            self.widget.error("Save failed", err)
            return False
        self.widget.layer.metadata.setdefault(METADATA_KEY, {})["result_dir"] = str(out)
        self.widget.status(f"Review saved in {out}.")
        return True

    def confirm_discard(self, action: str) -> bool:
        """True when it is fine to drop the current review (saved, or the user said so)."""
        session = self.widget.session
        if session is None:
            return True
        labels_now = self.labels_now()
        pending = len(session.pending_changes(labels_now)) > 0
        if not (session.dirty or pending):
            return True
        answer = _dialogs.ask_unsaved(self.widget, action)
        if answer == _dialogs.CANCEL:
            return False
        if answer == _dialogs.SAVE:
            if pending:
                try:
                    session.recompute(np.array(labels_now, dtype=np.uint32))
                except (HistoError, OSError) as err:
                    self.widget.error("Recompute failed", err)
                    return False
            return self.save_now()
        session.dirty = False
        return True
