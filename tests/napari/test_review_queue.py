"""The review walk in a real viewer: keyboard round, undo / redo, exclude in shape, legend.

Runs ``make_napari_viewer(show=True)`` under Xvfb (pytest-xvfb) on the bundled H&E sample,
segmented with the shipped model as a reviewer would (once per module: each test's "Segment
and score" run gets a copy of that result through the widget's worker). Keys are real Qt key events sent to
napari's canvas (``qtbot.keyClick`` on the vispy canvas widget, after activating the window),
so they go through napari's own key handling; every event is counted.

``test_keyboard_round`` is also the benchmark of ``benchmarks/bench_review_keys.py``: with
``HISTO_BENCH_OUT`` set it writes its figures there as JSON.
"""

from __future__ import annotations

import copy
import json
import os
import time

import numpy as np
import pytest

napari = pytest.importorskip("napari")
from qtpy.QtCore import Qt  # noqa: E402

from histo.review.flags import flag_label  # noqa: E402
from histo.review.queue import QUEUE_REASONS  # noqa: E402
from napari_histo import _dialogs  # noqa: E402
from napari_histo._layers import _camera  # noqa: E402
from napari_histo._queue import FOCUS_LAYER  # noqa: E402

pytestmark = pytest.mark.napari

TIMEOUT_MS = 180_000
#: The reviewer's decision for each queue reason (one key each, no modifier, in the canvas).
DECISION = {"sad": ("confirmed_sad", Qt.Key.Key_S), "small": ("not_sad", Qt.Key.Key_N),
            "low_score": ("excluded", Qt.Key.Key_Delete), "not_fiber": ("restored", Qt.Key.Key_R)}


def _wait(qtbot, widget, condition=None):
    qtbot.waitUntil(lambda: not widget.busy and (condition is None or condition()), timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def sample_result():
    """The sample segmented and scored by the shipped model (as the widget's run does)."""
    from histo.batch import pipeline
    from histo.io.image import read_image
    from histo.sample_data import demo_image_path

    return pipeline.segment_and_analyze(read_image(demo_image_path()), stain="he", method="model")


@pytest.fixture
def reviewed(make_napari_viewer, qtbot, monkeypatch, sample_result):
    """A laptop-sized viewer with the sample segmented by the shipped model."""
    from histo.batch import pipeline

    monkeypatch.setattr(_dialogs, "ask_unsaved", lambda parent, action: "discard")  # no modal dialog
    monkeypatch.setattr(pipeline, "segment_and_analyze", lambda *a, **k: copy.deepcopy(sample_result))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample("histo", "he_sample")
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    widget.ui.method_combo.setCurrentText("model")
    widget.ui.stain_combo.setCurrentText("he")
    widget.run()
    _wait(qtbot, widget, lambda: widget.session is not None)
    if hasattr(widget.ui, "tabs"):
        widget.ui.tabs.setCurrentIndex(1)  # the Review page
    return viewer, widget


class Keyboard:
    """Real key events to napari's canvas, counted."""

    def __init__(self, qtbot, viewer):
        self.qtbot = qtbot
        self.canvas = viewer.window._qt_viewer.canvas.native
        viewer.window._qt_window.activateWindow()
        self.canvas.setFocus()
        qtbot.waitUntil(self.canvas.hasFocus, timeout=5000)
        self.presses = 0  # physical keys (a Shift chord is 2)
        self.events = 0  # key events
        self.times_s: list[float] = []  # how long each key event took on the GUI thread

    def press(self, key, shift: bool = False) -> None:
        """One key event; Shift+key counts as two physical presses."""
        mod = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
        t0 = time.perf_counter()
        self.qtbot.keyClick(self.canvas, key, mod)
        self.times_s.append(time.perf_counter() - t0)
        self.events += 1
        self.presses += 2 if shift else 1


def test_keyboard_round(reviewed, qtbot):
    viewer, widget = reviewed
    session, layer = widget.session, widget.layer
    keys = Keyboard(qtbot, viewer)
    queue = widget.walk.current_queue()
    items = list(zip(queue.labels.tolist(), queue.reasons.tolist()))
    fibers = session.fibers.set_index("label")
    must = set(fibers.index[(fibers["is_sad"] | fibers["is_small"]) & ~fibers["is_edge"]])
    assert must and must <= {k for k, _ in items}  # every SAD candidate and small fiber is queued
    order = [QUEUE_REASONS.index(r) for _, r in items]
    assert order == sorted(order)  # SAD candidates first, then small fibers, then doubtful objects

    zooms = []
    keys.press(Qt.Key.Key_Space)  # the first fiber of the queue
    for i, (label, reason) in enumerate(items):
        # the step selected it, centred it at the fixed zoom, outlined it, shows its figures
        assert widget.selected_label() == label and layer.selected_label == label
        row = session.row(label)
        world = layer.data_to_world([row["centroid_y_px"], row["centroid_x_px"]])
        np.testing.assert_allclose(_camera(viewer).center[-2:], world[-2:], atol=1e-6)
        zooms.append(_camera(viewer).zoom)
        focus = viewer.layers[FOCUS_LAYER]
        assert focus.nshapes >= 1
        info = widget.walk.panel.info.text()
        assert info.startswith(f"Queue {i + 1}/{len(items)}: fiber {label}") and "min Feret" in info
        flag, key = DECISION[reason]
        keys.press(key)  # flag it with one key: the walk moves on by itself
        assert session.flags[label] == flag
    assert "End of the review queue" in widget.walk.panel.info.text()
    assert viewer.layers.selection.active.name == layer.name  # the focus layer never took the keys

    n = len(items)
    per_fiber = keys.presses / n
    assert keys.presses == keys.events == n + 1 and per_fiber <= 2.0
    assert np.allclose(zooms, zooms[0])  # a fixed zoom, never ever-increasing
    assert {k for k, v in session.flags.items() if v in ("confirmed_sad", "not_sad")} >= must
    # the table reads flags in words
    col = widget.model.column_of("flag")
    texts = {widget.model.data(widget.model.index(r, col)) for r in range(widget.model.rowCount())}
    assert {flag_label(v) for v in session.flags.values()} <= texts
    assert not any("_" in t for t in texts)  # never "confirmed_sad" / "not_sad"
    _wait(qtbot, widget)  # the figures follow the flags
    assert widget.session.summary["statistics"]["classes"]["sad"]["n"] == sum(
        1 for v in session.flags.values() if v == "confirmed_sad")

    out = os.environ.get("HISTO_BENCH_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"queue_items": n, "reasons": {r: sum(1 for _, x in items if x == r) for r in DECISION},
                       "key_presses": keys.presses, "key_events": keys.events, "presses_per_fiber": per_fiber,
                       "sad_or_small_fibers": len(must), "zoom": float(zooms[0]),
                       "key_ms": [round(1000 * t, 1) for t in keys.times_s],
                       "n_objects": len(session.fibers)}, fh, indent=2)


def test_undo_redo_back_and_filtered_list_keeps_its_place(reviewed, qtbot):
    viewer, widget = reviewed
    session = widget.session
    keys = Keyboard(qtbot, viewer)
    keys.press(Qt.Key.Key_Space)
    first = widget.selected_label()
    keys.press(Qt.Key.Key_X, shift=True)  # exclude, move on
    second = widget.selected_label()
    assert session.flags == {first: "excluded"} and second != first
    keys.press(Qt.Key.Key_U)
    assert session.flags == {}
    assert not session.fibers.set_index("label").loc[first, "excluded"]
    keys.press(Qt.Key.Key_U, shift=True)
    assert session.flags == {first: "excluded"}
    keys.press(Qt.Key.Key_Space, shift=True)  # back to the first
    assert widget.selected_label() == first
    keys.press(Qt.Key.Key_C)  # clear its flag with the one-key C (and move on)
    assert session.flags == {} and widget.selected_label() == second

    # a flag in a filtered list (the fiber leaves the class filtered on): the list keeps its place
    widget.ui.class_combo.setCurrentText("normal")
    model = widget.model
    assert model.rowCount() > 3
    widget.ui.table.selectRow(1)
    flagged, following = model.label_at(1), model.label_at(2)
    widget.ui.table.setFocus()
    qtbot.keyClick(widget.ui.table, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)
    assert session.flags[flagged] == "excluded"
    row = widget.ui.table.currentIndex().row()
    assert row == 1 and model.label_at(row) in (flagged, following)  # the row stays or the next takes it
    assert widget.selected_label() == model.label_at(row)
    _wait(qtbot, widget)


def test_exclude_in_shape_is_one_undo_step(reviewed, qtbot):
    viewer, widget = reviewed
    session, layer = widget.session, widget.layer
    fibers = session.fibers
    cy, cx = fibers["centroid_y_px"], fibers["centroid_x_px"]
    box = np.array([[0, 0], [0, 500], [500, 500], [500, 0]], dtype=float)  # the top-left quarter
    expected = set(fibers.loc[(cy < 500) & (cx < 500), "label"])
    assert 3 <= len(expected) < len(fibers)
    shapes = viewer.add_shapes([box], shape_type="rectangle", name="fold", scale=layer.scale)
    widget.walk.panel.exclude_button.click()
    assert {k for k, v in session.flags.items() if v == "excluded"} == expected
    assert viewer.layers.selection.active.name == layer.name
    assert "Excluded" in widget.ui.status.text()
    keys = Keyboard(qtbot, viewer)
    keys.press(Qt.Key.Key_U)  # one step undoes the whole exclusion
    assert session.flags == {}
    widget.walk.panel.buttons["redo"].click()
    assert set(session.flags) == expected
    # an ellipse in another layer: its inside only
    shapes.data = []
    viewer.add_shapes([np.array([[600, 600], [600, 1000], [1000, 1000], [1000, 600]], float)],
                      shape_type="ellipse", name="tear")
    changed = widget.walk.exclude_in_shapes()
    r = np.hypot((cy - 800) / 200, (cx - 800) / 200)
    assert set(changed) == set(fibers.loc[r < 1, "label"]) - expected
    _wait(qtbot, widget)


def test_legend_colours_and_show_hide(reviewed, qtbot):
    viewer, widget = reviewed
    session, layer, legend = widget.session, widget.layer, widget.legend
    assert legend.backgrounds is not None  # chosen against the image
    palette = legend.palette
    assert palette["normal"] == (0, 200, 255)  # cyan reads on H&E
    assert palette["angular"] != (170, 90, 255) and palette["dark"] != (0, 90, 255)  # violet / blue do not
    classes = layer.features.set_index("index")["fiber_class"]
    normal = int(classes.index[classes == "normal"][0])
    assert np.allclose(layer.colormap.color_dict[normal][:3], np.array(palette["normal"]) / 255)
    model = widget.model  # the table's class swatches are the canvas's colours
    col = model.column_of("class")
    r = next(r for r in range(model.rowCount()) if model.data(model.index(r, col)) == "excluded") \
        if "excluded" in classes.values else 0
    swatch = model.data(model.index(r, col), Qt.ItemDataRole.DecorationRole)
    assert (swatch.red(), swatch.green(), swatch.blue()) == palette[model.data(model.index(r, col))]
    n_normal = int((classes == "normal").sum())
    assert legend.boxes["normal"].text().endswith(str(n_normal))
    legend.boxes["normal"].click()  # hide the normal fibers
    assert layer.colormap.color_dict[normal][3] == 0
    other = int(classes.index[classes != "normal"][0])
    assert layer.colormap.color_dict[other][3] == 1
    legend.boxes["normal"].click()
    assert layer.colormap.color_dict[normal][3] == 1
    assert session is widget.session


def test_walk_on_a_whole_slide_without_labels_in_memory(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import tifffile

    from histo.batch.pipeline import measure_file
    from histo.io.image import read_image
    from histo.sample_data import demo_image_path, demo_labels_path
    from napari_histo import _reader, _widget

    pixels = read_image(demo_image_path()).pixels
    slide = tmp_path / "wsi.ome.tif"
    with tifffile.TiffWriter(slide) as tif:
        opts = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib"}
        tif.write(pixels, subifds=2, resolution=(2.0, 2.0), resolutionunit="MICROMETER",
                  metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, **opts)
        tif.write(pixels[::2, ::2], subfiletype=1, **opts)
        tif.write(pixels[::4, ::4], subfiletype=1, **opts)
    out_dir, _ = measure_file(slide, demo_labels_path(), tmp_path / "results", stain="he")
    monkeypatch.setattr(_reader, "MULTISCALE_MIN_PIXELS", 500 * 500)  # as if it were a whole slide
    monkeypatch.setattr(_reader, "MAX_EAGER_LABELS_PX", 500 * 500)
    monkeypatch.setattr(_widget, "MAX_LOADED_LABELS_PX", 500 * 500)  # labels stay on disk
    monkeypatch.setattr(_dialogs, "ask_unsaved", lambda parent, action: "discard")
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    _, lab = viewer.open(str(out_dir), plugin="histo")
    qtbot.waitUntil(lambda: widget.layer is lab and not widget.busy, timeout=60_000)
    assert widget.session.labels is None  # flags only: the walk outlines the fiber's box
    keys = Keyboard(qtbot, viewer)
    keys.press(Qt.Key.Key_Space)
    label = widget.walk.queue.current
    assert label is not None and widget.selected_label() == label
    assert viewer.layers[FOCUS_LAYER].nshapes == 1
    keys.press(Qt.Key.Key_X, shift=True)
    assert widget.session.flags == {label: "excluded"} and widget.walk.queue.current != label
    keys.press(Qt.Key.Key_U)
    assert widget.session.flags == {}
    assert widget.session.seen == set()  # a flag moved on: the flag, not "seen", says what was decided

    # Space moves on from a fiber: it is recorded as seen (left as outlined) and saved in review.json
    stepped = []
    for _ in range(2):
        stepped.append(widget.walk.queue.current)
        keys.press(Qt.Key.Key_Space)
    assert widget.walk.queue.current not in stepped
    rejected = {k for k in stepped if bool(widget.session.row(k).get("rejected", False))}
    expected = sorted(set(stepped) - rejected)  # a rejected object stepped past confirms no outline
    assert expected and sorted(widget.session.seen) == expected and widget.session.dirty
    assert widget.actions.save_now() and not widget.session.dirty
    doc = json.loads((out_dir / "review.json").read_text())
    assert doc["seen_labels"] == expected and doc["flags"] == {}
    from histo.review.state import load_review

    assert list(load_review(out_dir).seen_labels) == expected
    meta = _reader.read_result_folder(out_dir)[-1][1]["metadata"]["histo"]  # reopened: they come back
    assert meta["seen_labels"] == expected
