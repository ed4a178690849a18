"""The dock on a laptop screen, opening results without a reader dialog, pixel size and Export.

Real napari viewer (``make_napari_viewer(show=True)``, Xvfb). The result folder is the bundled
sample measured with its reference labels (``histo measure``), so no segmentation runs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

napari = pytest.importorskip("napari")

from histo.review.export import EXPORT_DIR  # noqa: E402
from histo.review.state import load_review  # noqa: E402

pytestmark = pytest.mark.napari

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def sample_result(tmp_path_factory):
    from histo.batch.pipeline import measure_file
    from histo.sample_data import demo_image_path, demo_labels_path

    root = tmp_path_factory.mktemp("results")
    out, _ = measure_file(demo_image_path(), demo_labels_path(), root, stain="he")  # no pixel size
    return out


@pytest.fixture
def result_dir(sample_result, tmp_path):
    out = tmp_path / sample_result.name
    shutil.copytree(sample_result, out)
    return out


def _docked(make_napari_viewer, size=(1366, 768)):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*size)
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    return viewer, widget


def _open(qtbot, viewer, widget, path, monkeypatch=None):
    """Open a folder as File > Open Folder / drag and drop do (napari's reader choice); a reader
    dialog would fail the test."""
    import napari._qt.qt_viewer as qt_viewer

    def no_dialog(*args, **kwargs):
        raise AssertionError("napari asked which reader to use")

    original = qt_viewer.handle_gui_reading
    qt_viewer.handle_gui_reading = no_dialog
    try:
        n = len(viewer.layers)
        viewer.window._qt_viewer._qt_open([str(path)], stack=False)
    finally:
        qt_viewer.handle_gui_reading = original
    labels = viewer.layers[-1]
    assert len(viewer.layers) > n and labels.name.endswith("fibers")
    qtbot.waitUntil(lambda: widget.layer is labels and not widget.busy, timeout=TIMEOUT_MS)
    return labels


def test_dock_fits_a_laptop_screen(make_napari_viewer, qtbot, result_dir):
    viewer, widget = _docked(make_napari_viewer)
    _open(qtbot, viewer, widget, result_dir)
    qtbot.wait(200)
    assert widget.minimumSizeHint().height() <= 650
    dock = widget.parentWidget()
    while dock is not None and not hasattr(dock, "setFloating"):
        dock = dock.parentWidget()
    assert dock is not None and dock.minimumSizeHint().height() <= 680
    window = viewer.window._qt_window
    assert window.height() <= 768 and window.minimumSizeHint().height() <= 768
    assert widget.ui.tabs.currentIndex() == 1  # the review tab after opening
    table = widget.ui.table
    rows_visible = table.viewport().height() // table.verticalHeader().defaultSectionSize()
    assert rows_visible >= 12, rows_visible
    assert widget.model.rowCount() > 12


def test_result_folder_opens_without_reader_dialog(make_napari_viewer, qtbot, result_dir, tmp_path):
    from napari.settings import get_settings

    from napari_histo._reader import PREFERENCES

    viewer, widget = _docked(make_napari_viewer, size=(1200, 800))
    _open(qtbot, viewer, widget, result_dir)
    assert len(widget.session.fibers) == 55
    # from a script: plugin=None lets napari pick by the same preferences (napari >= 0.6
    # reads with its built-in reader unless told otherwise)
    layers = viewer.open(str(result_dir), plugin=None)
    assert isinstance(layers[-1], napari.layers.Labels) and "fibers" in layers[-1].name
    prefs = get_settings().plugins.extension2reader
    assert all(prefs.get(k) == v for k, v in PREFERENCES.items())
    # a folder that is no result folder still opens with napari's built-in reader
    plain = tmp_path / "pictures"
    plain.mkdir()
    from skimage.io import imsave

    imsave(plain / "a.png", np.zeros((8, 8), np.uint8), check_contrast=False)
    (image,) = viewer.open(str(plain))
    assert image.data.shape[-2:] == (8, 8)


def test_pixel_size_on_an_opened_result_sets_the_micrometre_columns(make_napari_viewer, qtbot, result_dir):
    viewer, widget = _docked(make_napari_viewer, size=(1200, 800))
    _open(qtbot, viewer, widget, result_dir)
    assert "min_feret_um" not in widget.session.fibers or widget.session.fibers["min_feret_um"].isna().all()
    widget.ui.pixel_spin.setValue(0.5)
    widget.ui.apply_pixel_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    fibers = widget.session.fibers
    np.testing.assert_allclose(fibers["min_feret_um"], fibers["min_feret_px"] * 0.5)
    np.testing.assert_allclose(fibers["area_um2"], fibers["area_px"] * 0.25)
    assert widget.model.column_of("min Feret µm") is not None
    assert widget.session.summary["slide"]["pixel_size_um"] == 0.5
    assert widget.session.dirty
    np.testing.assert_allclose(widget.layer.scale[-2:], (0.5, 0.5))


def test_export_writes_the_reviewed_outputs(make_napari_viewer, qtbot, result_dir):
    viewer, widget = _docked(make_napari_viewer, size=(1200, 800))
    _open(qtbot, viewer, widget, result_dir)
    fibers = widget.session.fibers
    label = int(fibers[fibers["counted"]]["label"].iloc[0])
    widget.selection.select_row(label)
    widget.layer.selected_label = label
    widget.flag_selected("excluded")
    widget.ui.reference_combo.setCurrentText("adult-female")
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    unreviewed = (result_dir / "fibers.csv").read_text()
    widget.ui.export_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    folder = result_dir / EXPORT_DIR
    assert "written to" in widget.ui.status.text(), widget.ui.status.text()
    assert load_review(result_dir).flags == {label: "excluded"}  # saved first
    table = pd.read_csv(folder / "fibers.csv").set_index("label")
    assert bool(table.loc[label, "excluded"]) and not bool(table.loc[label, "counted"])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["statistics"]["n_counted"] == widget.session.summary["statistics"]["n_counted"]
    assert summary["settings"]["normal_range_in_force_um"] == [30.0, 70.0]
    assert (folder / "fibers.geojson").is_file() and (result_dir / "fibers.csv").read_text() == unreviewed

    # a "reviewed" folder of the user's own is never overwritten
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    widget.flag_selected("confirmed_sad")
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    widget.export()
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    assert "Export failed" in widget.ui.status.text()
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
