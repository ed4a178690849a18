"""The "Segment and score" part of the dock widget: image choice, worker, progress, cancel.

:class:`RunController` fills the image / channel / pixel-size controls from the chosen
layer, runs :func:`napari_histo._worker.analyse_image` in a worker thread, and hands the
result to the widget as a new labels layer with its review session.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from napari.layers import Image

from histo.errors import HistoError
from histo.review.flags import apply_review
from histo.review.session import ReviewSession
from histo.score.settings import ScoringSettings
from napari_histo._images import image_from_layer, layer_channel, layer_n_channels, layer_pixel_size_um
from napari_histo._layers import METADATA_KEY
from napari_histo._worker import Cancelled, analyse_image, start_job


class RunController:
    """Runs the analysis of the chosen image layer for a :class:`MyofiberReviewWidget`."""

    def __init__(self, widget):
        self.widget = widget
        self.viewer = widget.viewer
        self.ui = widget.ui
        self.job = None
        self.ui.run_button.clicked.connect(self.run)
        self.ui.cancel_button.clicked.connect(self.cancel)
        self.ui.image_combo.currentTextChanged.connect(self.on_image_choice)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    # -- the image --------------------------------------------------------------------------
    def refresh_image_choices(self) -> None:
        """List the viewer's image layers, keeping the current choice."""
        combo = self.ui.image_combo
        current = combo.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if current in names:
            combo.setCurrentText(current)
        combo.blockSignals(False)
        self.on_image_choice(combo.currentText())

    def image_layer(self):
        name = self.ui.image_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def on_image_choice(self, _name: str = "") -> None:
        """Pre-fill pixel size and channel from the layer's metadata."""
        layer = self.image_layer()
        if layer is None:
            return
        self.ui.pixel_spin.setValue(layer_pixel_size_um(layer) or 0.0)
        n = layer_n_channels(layer)
        ch = layer_channel(layer)
        self.ui.channel_spin.setEnabled(n > 1)
        self.ui.channel_spin.setMaximum(max(n - 1, -1))
        self.ui.channel_spin.setValue(ch if ch is not None else -1)

    # -- the job ----------------------------------------------------------------------------
    def run(self) -> None:
        """Segment and score the chosen image layer in a worker thread."""
        if self.running:
            return
        layer = self.image_layer()
        if layer is None:
            self.widget.status("Add or open an image layer first.")
            return
        if not self.widget.confirm_discard("running the analysis again"):
            return

        channel = self.ui.channel_spin.value()
        channel = None if channel < 0 else channel
        try:
            image = image_from_layer(layer, pixel_size_um=self.ui.pixel_spin.value() or None, channel=channel)
            settings = ScoringSettings(sex=self.ui.sex_combo.currentText())
        except HistoError as err:
            self.widget.error("Cannot analyse", err)
            return
        self.job = start_job(
            analyse_image, image=image, stain=self.ui.stain_combo.currentText(), channel=channel,
            method=self.ui.method_combo.currentText(), settings=settings,
            on_done=partial(self._on_done, layer, image, settings), on_error=self._on_error,
            on_progress=self._on_progress, on_finished=self.widget.update_buttons,
        )
        self.ui.progress.setRange(0, 0)
        self.widget.status(f"Segmenting {layer.name}…")
        self.widget.update_buttons()

    def cancel(self) -> None:
        """Stop the running analysis at its next step."""
        if self.running:
            self.job.cancel()
            self.widget.status("Cancelling…")

    def _on_progress(self, done: int, total: int, stage: str) -> None:
        self.ui.progress.setRange(0, max(total, 1))
        self.ui.progress.setValue(done)
        self.ui.progress.setFormat(f"{stage} %v/%m" if stage else "%v/%m")

    def _on_error(self, err: BaseException) -> None:
        self.ui.progress.setRange(0, 1)
        self.ui.progress.setValue(0)
        if isinstance(err, Cancelled):
            self.widget.status("Analysis cancelled.")
        else:
            self.widget.error("Analysis failed", err)

    def _on_done(self, image_layer, image, settings, result) -> None:
        slide = result.summary.get("slide") or {}
        session = ReviewSession(
            labels=np.asarray(result.labels, dtype=np.uint32), fibers=apply_review(result.fibers, {}),
            summary=result.summary, image=image, stain=slide.get("stain") or "he",
            channel=slide.get("channel"), settings=settings, base=result,
        )
        name = f"{image_layer.name} fibers"
        old = self.viewer.layers[name] if name in self.viewer.layers else None
        self.widget.detach()
        if old is not None:
            self.viewer.layers.remove(old)
        layer = self.viewer.add_labels(
            session.labels.copy(), name=name, scale=image_layer.scale[-2:],
            translate=image_layer.translate[-2:], units=tuple(image_layer.units[-2:]), opacity=0.7,
            metadata={METADATA_KEY: {"session": session}},
        )
        layer.contour = 2
        self.widget.attach(layer, session)
        self.ui.progress.setRange(0, 1)
        self.ui.progress.setValue(1)
        self.widget.status(f"{len(session.fibers)} fibers. Click a row or a fiber; flag with the buttons "
                           "or Shift+X / S / N / C.")
