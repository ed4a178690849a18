"""The Train tab in a real viewer: click **Train on my reviews** for a few steps, then segment with
the trained model chosen in the model picker.

Runs ``make_napari_viewer(show=True)`` under Xvfb (pytest-xvfb). The reviewed slide is a real H&E
crop (cn_img02, halved) measured on its reference mask and reviewed through ``histo.save_review``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

napari = pytest.importorskip("napari")
from scipy import ndimage as ndi  # noqa: E402

import histo  # noqa: E402
from histo.batch.pipeline import measure_file  # noqa: E402
from histo.segment.net import DEFAULT_MODEL  # noqa: E402

pytestmark = pytest.mark.napari

TIMEOUT_MS = 240_000
#: a tiny run: small crops and batches, no synthetic sections
TINY = {"batch_size": 2, "crop_px": 64, "synth_pool": 0, "review_fraction": 1.0, "holdout_fraction": 0.3}


@pytest.fixture
def reviewed(tmp_path, real_data):
    img = np.ascontiguousarray(tifffile.imread(real_data / "he" / "cn_img02.tif")[:600, :600][::2, ::2])
    lab = np.asarray(Image.open(real_data / "he" / "cn_img02_labels.png"))[:600, :600][::2, ::2]
    tifffile.imwrite(tmp_path / "crop.tif", img)
    tifffile.imwrite(tmp_path / "crop_labels.tif", np.ascontiguousarray(lab).astype(np.uint16))
    slide, _ = measure_file(tmp_path / "crop.tif", tmp_path / "crop_labels.tif", tmp_path / "results", stain="he")
    labels = tifffile.imread(slide / "labels.tif").astype(np.uint32)
    ids = [int(i) for i in np.unique(labels[1:-1, 1:-1]) if i]
    edited = labels.copy()
    for k in ids[:4]:  # the reviewer corrects four outlines
        edited[ndi.binary_dilation(labels == k) & (labels == 0)] = k
    histo.save_review(slide, edited, {ids[5]: "excluded", ids[6]: "not_sad"})
    return slide, img


def test_train_button_trains_and_the_run_uses_the_picked_model(make_napari_viewer, qtbot, reviewed, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("HISTO_USER_MODELS_DIR", str(tmp_path / "my_models"))
    slide, img = reviewed
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    panel = widget.train_panel
    panel.refresh_models()
    assert panel.model_combo.currentText() == DEFAULT_MODEL and panel.model() is None

    panel.train_button.click()  # no review open yet: a message, no crash
    assert not panel.running and "save a review first" in widget.ui.status.text()

    viewer.open(str(slide), plugin="histo")
    qtbot.waitUntil(lambda: widget.session is not None and not widget.busy, timeout=TIMEOUT_MS)
    assert widget.session.result_dir == slide
    panel.steps_spin.setValue(3)
    panel.options = dict(TINY)
    panel.train_button.click()
    assert panel.running and not panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT_MS)
    result = panel.last_result
    assert result is not None, widget.ui.status.text()
    trained = tmp_path / "my_models" / f"{DEFAULT_MODEL}-reviews-results"
    assert result.weights == trained.with_suffix(".safetensors") and result.weights.is_file()
    assert result.card.is_file() and "before" in panel.result_label.text()
    assert result.before is not None and result.after is not None
    assert panel.model_combo.currentText() == trained.name and panel.model() == str(trained)
    assert panel.train_button.isEnabled()

    # "Segment and score" uses the picked model
    viewer.add_image(img, rgb=True, name="crop")
    widget.ui.image_combo.setCurrentText("crop")
    widget.ui.method_combo.setCurrentText("model")
    widget.ui.stain_combo.setCurrentText("he")
    monkeypatch.setattr(widget, "confirm_discard", lambda action: True)
    widget.ui.run_button.click()
    qtbot.waitUntil(lambda: not widget.busy and widget.session is not None
                    and widget.session.result_dir is None, timeout=TIMEOUT_MS)
    assert widget.session.summary["model"]["name"] == trained.name
