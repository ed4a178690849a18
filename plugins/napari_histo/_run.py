"""The "Segment and score" part of the dock widget: image choice, worker, progress, cancel.

:class:`RunController` fills the image / channel / pixel-size controls from the chosen
layer, runs :func:`_run_job` in a worker thread (reading the slide file again, segmenting,
scoring and preparing the table and figures, all off the GUI thread), and hands the result
to the widget as a new labels layer with its review session.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from napari.layers import Image

from histo.errors import HistoError
from histo.review.flags import apply_review
from histo.review.session import ReviewSession
from napari_histo._images import image_from_layer, layer_channel, layer_n_channels, layer_pixel_size_um
from napari_histo._layers import METADATA_KEY
from napari_histo._views import prepare_views
from napari_histo._worker import Cancelled, analyse_image, start_job


def _run_job(report, *, layer, pixel_size_um, channel, stain, method, settings, histogram_size_px, **kwargs):
    """Worker: read the image (the slide file again, when it has one), segment and score it,
    and prepare the views of the result."""
    report(0, 1, "reading the image")
    image = image_from_layer(layer, pixel_size_um=pixel_size_um, channel=channel)
    result = analyse_image(image, stain=stain, channel=channel, method=method, settings=settings,
                           report=report, **kwargs)
    fibers = apply_review(result.fibers, {})
    session = ReviewSession(
        labels=np.asarray(result.labels, dtype=np.uint32), fibers=fibers,
        summary=result.summary, image=image, stain=(result.summary.get("slide") or {}).get("stain") or "he",
        channel=(result.summary.get("slide") or {}).get("channel"), settings=settings, base=result,
    )
    report(1, 1, "preparing the table")
    views = prepare_views(session.fibers, session.summary, session.normal_range_um(),
                          histogram_size_px=histogram_size_px, stamp=(id(session), id(session.fibers)))
    return session, views


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
            settings = self.widget.scoring_settings()
        except HistoError as err:
            self.widget.error("Cannot analyse", err)
            return
        self.job = start_job(
            _run_job, layer=layer, pixel_size_um=self.ui.pixel_spin.value() or None, channel=channel,
            stain=self.ui.stain_combo.currentText(), method=self.ui.method_combo.currentText(),
            settings=settings, histogram_size_px=self.widget.ui.histogram.size_px(), model=self.widget.train_panel.model(), 
            on_done=partial(self._on_done, layer), on_error=self._on_error,
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

    def _on_done(self, image_layer, result) -> None:
        session, views = result
        name = f"{image_layer.name} fibers"
        old = self.viewer.layers[name] if name in self.viewer.layers else None
        self.widget.detach()
        if old is not None:
            self.viewer.layers.remove(old)
        layer = self.viewer.add_labels(
            session.labels.copy(), name=name, scale=image_layer.scale[-2:],
            translate=image_layer.translate[-2:], units=tuple(image_layer.units[-2:]), opacity=0.7,
        )
        layer.metadata[METADATA_KEY] = {"session": session}  # after the insert: attached once, below
        layer.contour = 2
        self.widget.attach(layer, session, views)
        self.ui.progress.setRange(0, 1)
        self.ui.progress.setValue(1)
        self.ui.progress.setFormat("done")
        self.widget.status(f"{len(session.fibers)} fibers. Click a row or a fiber; flag with the buttons "
                           "or Shift+X / S / N / C.")
