"""The "Train" part of the dock widget: the model picker and **Train on my reviews**.

The model picker lists the shipped models and the ones trained from reviews
(:func:`histo.train.reviews.list_models`, :func:`~histo.train.reviews.user_models_dir`), or any
model file chosen with Browse; "Segment and score" uses the chosen one
(:meth:`TrainPanel.model`). **Train on my reviews** fine-tunes the chosen model on the saved
reviews of the current results folder (:func:`histo.train.reviews.train_from_reviews`) in a
worker thread, with progress and Cancel; a cancelled or interrupted run continues from its
checkpoint when started again. The logic is in :mod:`histo.train.reviews`; this module lays out
controls and calls it.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from histo.errors import HistoInputError
from napari_histo._worker import Cancelled, start_job

#: Training steps offered by default (a few minutes on a laptop CPU).
DEFAULT_STEPS = 300


def train_job(*, slide_dirs, out_path, base_model, steps: int, options: dict, report):
    """Fine-tune on reviews (worker thread); ``report(done, total, stage)`` raises when cancelled."""
    from histo.train.reviews import train_from_reviews  # torch loads here, only when training

    def progress(phase: str, done: int, total: int, info: dict) -> None:
        stage = {"prepare": "reading reviews", "evaluate": "measuring on held-out fibers",
                 "synth": "synthetic sections", "train": "training"}.get(phase, phase)
        report(done, total, stage)

    report(0, 1, "reading reviews")
    return train_from_reviews(slide_dirs, out_path, base_model=base_model, steps=steps, progress=progress,
                              **options)


class TrainPanel(QWidget):
    """Model picker and the Train button of a :class:`napari_histo._widget.MyofiberReviewWidget`.

    ``options`` are extra keyword arguments of ``train_from_reviews`` (tests use them to keep a
    run tiny).
    """

    def __init__(self, widget):
        super().__init__()
        self.widget = widget
        self.job = None
        self.options: dict = {}
        self.last_result = None
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Segmentation model used by 'Segment and score' and trained on by "
                                    "'Train on my reviews'")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip("Choose a model file (.safetensors with its .json beside it)")
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.browse_button)
        form.addRow("Model", row)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setToolTip("Training steps (about 1-3 s each on a laptop CPU)")
        form.addRow("Steps", self.steps_spin)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train on my reviews")
        self.train_button.setToolTip(
            "Fine-tune the chosen model on the saved reviews of this results folder: edited, flagged and "
            "walked-past (Space) fibers are the truth, excluded objects are not fibers, unreviewed areas "
            "are ignored. Part of the "
            "reviewed fibers is held out to show before/after figures.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.train_button, 1)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        form.addRow(self.progress)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        form.addRow(self.result_label)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.browse_button.clicked.connect(self.browse)
        self._listed = False  # filled when first shown: listing models loads torch

    def showEvent(self, event):  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._listed:
            self.refresh_models()

    # -- the model picker ---------------------------------------------------------------------
    def refresh_models(self, select: str | Path | None = None) -> None:
        """List shipped and trained models, keeping (or setting) the choice."""
        from histo.train.reviews import list_models, user_models_dir

        self._listed = True
        current = str(select) if select is not None else self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        paths = list_models(user_models_dir())
        if current and Path(current) not in paths:
            paths.append(Path(current))
        for p in paths:
            self.model_combo.addItem(p.name, str(p))
        if current:
            i = self.model_combo.findData(str(current))
            if i >= 0:
                self.model_combo.setCurrentIndex(i)
        else:
            from histo.segment.net import DEFAULT_MODEL

            i = self.model_combo.findText(DEFAULT_MODEL)
            self.model_combo.setCurrentIndex(max(i, 0))
        self.model_combo.blockSignals(False)

    def model(self) -> str | None:
        """The chosen model's path (without suffix); None for the shipped default."""
        data = self.model_combo.currentData()
        if not data:
            return None
        from histo.segment.net import DEFAULT_MODEL, models_dir

        p = Path(data)
        return None if p == models_dir() / DEFAULT_MODEL else str(p)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", str(Path.home()), "histo models (*.safetensors)")
        if path:
            self.refresh_models(select=Path(path).with_suffix(""))

    # -- training -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def reviewed_slides(self) -> list[Path]:
        """The saved reviews to train on: every reviewed slide of the current results folder.

        Raises
        ------
        HistoInputError
            Without a saved review of the current slide (unsaved changes included).
        """
        from histo.train.reviews import find_reviewed

        session = self.widget.session
        if session is None or session.result_dir is None:
            raise HistoInputError("save a review first: Train learns from saved reviews (Save writes them)")
        if session.dirty:
            raise HistoInputError("this slide's review has unsaved changes; press Save first")
        return find_reviewed([Path(session.result_dir).parent])

    def output_path(self, slide_dirs: list[Path]) -> Path:
        """Where the trained model goes: the user models folder, named after base model and results."""
        from histo.train.reviews import user_models_dir

        base = Path(self.model() or self.model_combo.currentText() or "model").name
        return user_models_dir() / f"{base}-reviews-{slide_dirs[0].parent.name}"

    def train(self) -> None:
        """Start training on the saved reviews in a worker thread."""
        if self.running:
            return
        try:
            slides = self.reviewed_slides()
        except HistoInputError as err:
            self.widget.error("Cannot train", err)
            return
        out = self.output_path(slides)
        self.job = start_job(
            train_job, slide_dirs=slides, out_path=out, base_model=self.model(), steps=self.steps_spin.value(),
            options=dict(self.options), on_done=self._on_done, on_error=self._on_error,
            on_progress=self._on_progress, on_finished=self._update_buttons,
        )
        self.progress.setRange(0, 0)
        self.widget.status(f"Training on {len(slides)} reviewed slide(s) → {out.name}…")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop training at its next step (a later run continues from the checkpoint)."""
        if self.running:
            self.job.cancel()
            self.widget.status("Cancelling training…")

    def _on_progress(self, done: int, total: int, stage: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage} %v/%m")

    def _on_error(self, err: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if isinstance(err, Cancelled):
            self.widget.status("Training cancelled; Train again continues from the last checkpoint.")
        else:
            self.widget.error("Training failed", err)

    def _on_done(self, result) -> None:
        self.last_result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        model = result.weights.with_suffix("")
        self.refresh_models(select=model)
        if result.before is None:
            figures = "too few reviewed fibers to hold any out: no before/after figures"
        else:
            figures = f"held-out reviewed fibers, before: {result.before.text()}; after: {result.after.text()}"
        self.result_label.setText(f"{model.name}: {figures}. Model card: {result.card}")
        self.widget.status(f"Trained {model.name}; it is now the chosen model.")

    def _update_buttons(self) -> None:
        self.train_button.setEnabled(not self.running)
        self.cancel_button.setEnabled(self.running)


def add_train_panel(widget) -> TrainPanel:
    """Create the panel and add it to the widget's tabs (or under its other controls)."""
    panel = TrainPanel(widget)
    tabs = getattr(widget.ui, "tabs", None)
    if tabs is not None:
        tabs.addTab(panel, "Train")
    else:
        widget.layout().addWidget(panel)
    return panel
