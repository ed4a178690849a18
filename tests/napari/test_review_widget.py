"""The napari plugin end to end: sample, dock, segment, select, flag, edit, recompute, save, reopen.

Runs a real napari viewer (``make_napari_viewer(show=True)``) under Xvfb (pytest-xvfb).
Segmentation uses ``method="classical"`` on the bundled sample, so no model is needed.
The workflow test ends with the window screenshot of ``docs/napari_screenshot.png``; it is
rewritten only with ``HISTO_UPDATE_SCREENSHOT=1`` (or when missing), so test runs leave the
tree clean.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
from qtpy.QtCore import QPoint, Qt  # noqa: E402

from histo.review.state import load_review  # noqa: E402
from napari_histo import _dialogs  # noqa: E402
from napari_histo._layers import _camera  # noqa: E402
from napari_histo._reader import get_reader  # noqa: E402

pytestmark = pytest.mark.napari

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "napari_screenshot.png"
TIMEOUT_MS = 180_000


def _wait(qtbot, widget, condition=None):
    qtbot.waitUntil(lambda: not widget.busy and (condition is None or condition()), timeout=TIMEOUT_MS)


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    return widget


def _segment(qtbot, viewer, widget):
    widget.ui.method_combo.setCurrentText("classical")
    widget.ui.stain_combo.setCurrentText("he")
    widget.ui.run_button.click()
    assert widget.busy and widget.ui.cancel_button.isEnabled()
    _wait(qtbot, widget, lambda: widget.session is not None)
    return widget.layer


def _click_row(qtbot, widget, row: int) -> None:
    table = widget.ui.table
    rect = table.visualRect(widget.model.index(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _canvas_point(viewer, world_yx) -> QPoint:
    """Screen position (canvas widget pixels) of a 2-D world point."""
    h, w = viewer.canvas.size
    center = np.asarray(_camera(viewer).center[-2:], dtype=float)
    yx = (np.asarray(world_yx, dtype=float) - center) * _camera(viewer).zoom + np.array([h, w]) / 2
    return QPoint(int(round(yx[1])), int(round(yx[0])))


def _interior_label(widget) -> int:
    """A counted fiber far from the image border, good for clicks and edits."""
    df = widget.session.fibers
    df = df[df["counted"]].sort_values("area_px", ascending=False)
    return int(df["label"].iloc[0])


def test_manifest_validates_and_reader_dispatch(tmp_path):
    # Run outside the source tree: a stale histo.egg-info there would shadow the installed
    # distribution's entry points.
    npe2 = Path(sys.executable).with_name("npe2")
    proc = subprocess.run([str(npe2), "validate", "histo", "--imports"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout
    from napari_builtins.io import napari_get_reader

    # a folder that is no result folder goes on to napari's built-in reader
    assert get_reader(str(tmp_path)) is napari_get_reader(str(tmp_path))
    assert get_reader(str(tmp_path / "notes.txt")) is None


def test_review_workflow(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(_dialogs, "ask_results_folder", lambda parent: tmp_path)
    monkeypatch.setattr(_dialogs, "ask_unsaved", lambda parent, action: asked.append(action) or "cancel")

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1000)
    layers = viewer.open_sample("histo", "he_sample")
    assert layers[0].rgb and layers[0].data.shape == (1002, 1002, 3)
    from napari._app_model import get_app_model

    menu = [item.command.id for item in get_app_model().menus.get_menu("napari/plugins")
            if hasattr(item, "command")]
    assert "histo.review_widget" in menu  # Plugins > Myofiber review
    widget = _dock(viewer)
    assert widget.ui.image_combo.currentText() == layers[0].name
    assert widget.ui.pixel_spin.value() == 0.0  # no pixel size in the sample's metadata

    # -- segment and score in a worker -------------------------------------------------------
    layer = _segment(qtbot, viewer, widget)
    fibers = widget.session.fibers
    assert len(fibers) > 20 and layer.name.endswith("fibers")
    assert set(np.unique(layer.data)) - {0} == set(fibers["label"])
    assert list(layer.features["index"]) == list(fibers["label"])
    colors = layer.colormap.color_dict
    assert all(np.allclose(colors[int(lab)][:3], np.array((0, 200, 255)) / 255)
               for lab, cls in zip(layer.features["index"], layer.features["fiber_class"]) if cls == "normal")

    # -- table row -> selected label + camera centre ----------------------------------------
    widget.model.sort(0, Qt.SortOrder.DescendingOrder)
    target = _interior_label(widget)
    _click_row(qtbot, widget, widget.model.row_of(target))
    assert layer.selected_label == target
    row = widget.session.row(target)
    world = layer.data_to_world([row["centroid_y_px"], row["centroid_x_px"]])
    np.testing.assert_allclose(_camera(viewer).center[-2:], world[-2:], atol=1e-6)

    # -- canvas click -> table row -------------------------------------------------------------
    small = fibers[(fibers["label"] != target) & fibers["counted"]].sort_values("area_px")
    other = int(small["label"].iloc[0])  # the smallest counted fiber: confirmed SAD below
    orow = widget.session.row(other)
    viewer.layers.selection.active = layer
    layer.mode = "pan_zoom"
    _camera(viewer).center = tuple(layer.data_to_world([orow["centroid_y_px"], orow["centroid_x_px"]]))
    yx = np.argwhere(layer.data == other)
    inside = yx[np.argmin(((yx - yx.mean(0)) ** 2).sum(1))]  # the fiber's pixel nearest its centroid
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_canvas_point(viewer, layer.data_to_world(inside)))
    qtbot.waitUntil(lambda: widget.selected_label() == other, timeout=5000)

    # -- flag with the keyboard and the buttons; the summary follows ---------------------------
    _click_row(qtbot, widget, widget.model.row_of(target))
    counted_before = widget.ui.summary.counts["n_counted"]
    text_before = widget.ui.summary.text()
    viewer.window._qt_window.activateWindow()
    widget.ui.table.setFocus()
    qtbot.waitUntil(widget.ui.table.hasFocus, timeout=5000)
    qtbot.keyClick(widget.ui.table, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)
    assert widget.session.flags == {target: "excluded"}
    assert widget.ui.summary.counts["n_excluded"] == 1
    assert widget.ui.summary.counts["n_counted"] == counted_before - 1
    _wait(qtbot, widget)
    assert widget.session.summary["statistics"]["n_counted"] == counted_before - 1
    assert widget.ui.summary.text() != text_before
    excluded_rgb = widget.legend.palette.get("excluded", (128, 128, 128))  # chosen against the image
    assert np.allclose(layer.colormap.color_dict[target][:3], np.array(excluded_rgb) / 255)
    _click_row(qtbot, widget, widget.model.row_of(other))
    widget.ui.flag_buttons["confirmed_sad"].click()
    assert widget.session.fibers.set_index("label").loc[other, "is_sad"]
    assert widget.ui.summary.counts["n_sad"] >= 1
    canvas.setFocus()  # the same flags from the canvas: napari key bindings
    qtbot.keyClick(canvas, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert widget.session.flags[other] == "not_sad"
    assert not widget.session.fibers.set_index("label").loc[other, "is_sad"]
    qtbot.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert widget.session.flags[other] == "confirmed_sad"
    _wait(qtbot, widget)  # the SAD figures count the reviewer's call, as the report does
    sad = next(f for f in widget.session.summary["evidence"]["figures"] if f["name"] == "small angular dark fibers")
    assert sad["value"] == pytest.approx(100 * widget.ui.summary.counts["n_sad"] / widget.ui.summary.counts["n_counted"])

    # -- unsaved changes: re-running asks first, and "cancel" keeps everything -----------------
    widget.run()
    assert asked == ["running the analysis again"] and not widget.busy
    assert widget.session.flags == {target: "excluded", other: "confirmed_sad"}

    # -- edit with napari's label tools, then Recompute ----------------------------------------
    labels_before = layer.data.copy()
    erased = int(fibers[(~fibers["label"].isin([target, other])) & fibers["counted"]]["label"].iloc[0])
    ey, ex = np.argwhere(layer.data == erased)[0]
    layer.fill((ey, ex), 0)  # erase a whole fiber (fill with background)
    assert not (layer.data == erased).any()
    new_label = int(labels_before.max()) + 1
    layer.brush_size = 30
    layer.paint((15, 15), new_label)  # draw a new fiber in the (background-free) corner
    assert widget.session.dirty and not (layer.data == labels_before).all()
    widget.recompute()
    _wait(qtbot, widget)
    labels_table = set(widget.session.fibers["label"])
    assert erased not in labels_table and new_label in labels_table
    assert labels_table == set(np.unique(layer.data)) - {0}
    assert set(layer.features["index"]) == labels_table

    # -- save (asks for a folder: there is no result folder yet), reopen, compare --------------
    widget.save()
    _wait(qtbot, widget)
    result_dir = tmp_path / "cn_img02"
    saved = load_review(result_dir)
    assert saved.edited_labels and saved.flags == {target: "excluded", other: "confirmed_sad"}
    np.testing.assert_array_equal(saved.labels, layer.data)
    assert not widget.session.dirty
    # `histo report` recomputes the figures of the saved review: the same ones as on screen
    import json

    import pandas as pd

    from histo.results.tables import read_fiber_table
    from histo.review.rescore import reviewed_result

    stored = json.loads((result_dir / "summary.json").read_text())
    _, report, _ = reviewed_result(result_dir, stored, read_fiber_table(result_dir), saved)
    ours, theirs = widget.session.summary["statistics"], report["statistics"]
    assert theirs["n_counted"] == ours["n_counted"] == widget.ui.summary.counts["n_counted"]
    assert theirs["classes"]["sad"]["n"] == ours["classes"]["sad"]["n"] == widget.ui.summary.counts["n_sad"]
    assert theirs["variability_coefficient"] == pytest.approx(ours["variability_coefficient"])
    shown = widget.session.fibers.copy()
    summary_text = widget.ui.summary.text()

    asked.clear()
    viewer.open(str(result_dir), plugin="histo")
    _wait(qtbot, widget, lambda: widget.layer is not layer)
    assert asked == []  # everything was saved: no question
    _wait(qtbot, widget)
    reopened = widget.layer
    np.testing.assert_array_equal(reopened.data, layer.data)
    assert widget.session.flags == saved.flags
    cols = [c for c in shown.columns if c in widget.session.fibers.columns]
    assert set(cols) >= {"label", "area_px", "min_feret_px", "is_sad", "excluded", "counted"}
    def _plain(df):  # missing is missing (None from the file, NA in memory)
        df = df[cols].reset_index(drop=True).astype(object)
        return df.where(df.notna(), None)

    pd.testing.assert_frame_equal(_plain(widget.session.fibers), _plain(shown), check_dtype=False)
    assert widget.ui.summary.text() == summary_text

    # -- the screenshot the README shows ------------------------------------------------------
    viewer.layers.remove(layer)
    viewer.layers.remove(layers[0])
    widget.ui.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # small, sad, normal, excluded
    widget.ui.table.scrollTo(widget.model.index(widget.model.row_of(other), 0))
    _click_row(qtbot, widget, widget.model.row_of(other))
    assert widget.selected_label() == other
    viewer.reset_view()
    qtbot.wait(300)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.ndim == 3 and shot.shape[0] > 600 and shot[..., :3].std() > 10
    from skimage.io import imsave

    imsave(tmp_path / "screenshot.png", shot[..., :3], check_contrast=False)
    if os.environ.get("HISTO_UPDATE_SCREENSHOT") or not SCREENSHOT.exists():  # keep the tree clean
        SCREENSHOT.parent.mkdir(exist_ok=True)
        imsave(SCREENSHOT, shot[..., :3], check_contrast=False)


def test_worker_errors_cancel_and_close_guard(make_napari_viewer, qtbot, monkeypatch):
    import histo.batch.pipeline
    from histo.io.image import read_image
    from histo.sample_data import demo_image_path
    from napari_histo import _worker

    original = histo.batch.pipeline.segment_and_analyze
    viewer = make_napari_viewer(show=True)
    viewer.add_image(read_image(demo_image_path()).pixels[:400, :400], rgb=True, name="crop")
    widget = _dock(viewer)
    widget.ui.method_combo.setCurrentText("classical")

    # An error inside the worker is shown, not raised; the viewer lives on.
    def boom(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(histo.batch.pipeline, "segment_and_analyze", boom)
    widget.run()
    _wait(qtbot, widget)
    assert "model exploded" in widget.ui.status.text() and widget.session is None

    # Cancel stops the job at its next progress report.
    def slow(image, *, progress=None, **kwargs):
        import time

        for i in range(200):
            progress(i, 200)
            time.sleep(0.01)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(histo.batch.pipeline, "segment_and_analyze", slow)
    widget.run()
    qtbot.waitUntil(lambda: widget.ui.progress.maximum() == 200, timeout=10_000)
    widget.ui.cancel_button.click()
    _wait(qtbot, widget)
    assert widget.ui.status.text() == "Analysis cancelled."
    assert isinstance(_worker.Cancelled(), Exception)

    # Closing napari with an unsaved review asks; "cancel" keeps the window open.
    monkeypatch.setattr(histo.batch.pipeline, "segment_and_analyze", original)
    monkeypatch.setattr(_dialogs, "ask_unsaved", lambda parent, action: "cancel")
    layer = _segment(qtbot, viewer, widget)
    _click_row(qtbot, widget, 0)
    widget.flag_selected("not_sad")
    _wait(qtbot, widget)
    window = viewer.window._qt_window
    window.close()
    assert window.isVisible()
    monkeypatch.setattr(_dialogs, "ask_unsaved", lambda parent, action: "discard")
    assert layer in viewer.layers
