"""Plugin parts on their own (table model, summary, histogram, colours) and whole-slide results.

The whole-slide test writes a small pyramidal slide and its result folder and lowers the
reader's size threshold, so the multiscale code path runs in seconds.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
from qtpy.QtCore import Qt  # noqa: E402

from histo.score.classes import CLASS_COLORS  # noqa: E402
from napari_histo._histogram import histogram_data  # noqa: E402
from napari_histo._layers import class_color_dict, labels_pyramid  # noqa: E402
from napari_histo._summary import fiber_counts, summary_html  # noqa: E402
from napari_histo._table_model import FiberTableModel  # noqa: E402

pytestmark = pytest.mark.napari


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    small = rng.random(n) < 0.2
    return pd.DataFrame({
        "label": np.arange(1, n + 1),
        "min_feret_um": rng.uniform(10, 90, n),
        "area_um2": rng.uniform(100, 6000, n),
        "angularity": rng.random(n),
        "is_edge": rng.random(n) < 0.05,
        "counted": True,
        "is_small": small,
        "is_sad": small & (rng.random(n) < 0.3),
        "review_flag": np.where(rng.random(n) < 0.01, "excluded", ""),
    })


def test_table_model_sorts_filters_and_maps_rows_fast(qtbot):
    df = _table(50_000)
    model = FiberTableModel()
    t0 = time.perf_counter()
    model.set_fibers(df)
    col = model.column_of("min Feret µm")
    model.sort(col, Qt.SortOrder.DescendingOrder)
    elapsed = time.perf_counter() - t0
    expected = df.sort_values("min_feret_um", ascending=False)["label"].to_numpy()
    assert [model.label_at(r) for r in range(5)] == expected[:5].tolist()
    assert model.rowCount() == 50_000 and elapsed < 5.0  # typically ~0.2 s for 50k fibers
    assert model.data(model.index(0, col)) == f"{df['min_feret_um'].max():.1f}"

    model.set_filter("", "sad")
    assert model.rowCount() == int(df["is_sad"].sum())
    assert all(df.set_index("label").loc[model.label_at(r), "is_sad"] for r in range(model.rowCount()))
    model.set_filter("excl", "all")
    assert model.rowCount() == int((df["review_flag"] == "excluded").sum())
    model.set_filter("", "all")
    label = int(expected[123])
    assert model.label_at(model.row_of(label)) == label
    model.set_filter("", "flagged")
    assert model.row_of(int(df.loc[df["review_flag"] == "", "label"].iloc[0])) is None


def test_summary_counts_html_histogram_and_colours():
    df = pd.DataFrame({
        "label": [1, 2, 3, 4],
        "min_feret_px": [10.0, 20.0, 30.0, 40.0],
        "counted": [True, True, True, False],
        "is_edge": [False, False, False, True],
        "is_sad": [True, False, False, False],
        "excluded": [False, False, False, False],
        "review_flag": ["confirmed_sad", "", "", ""],
    })
    c = fiber_counts(df)
    assert (c["n_fibers"], c["n_counted"], c["n_edge"], c["n_sad"], c["n_flagged"]) == (4, 3, 1, 1, 1)
    assert abs(c["pct_sad"] - 100 / 3) < 1e-9
    summary = {"evidence": {"figures": [
        {"name": "variability coefficient", "value": 314.4, "unit": None, "normal_range": [None, 250], "outside": True},
        {"name": "atrophy factor", "value": None, "unit": None, "normal_range": [None, 150], "outside": None},
    ], "text": "x"}}
    text = summary_html(df, summary)
    assert "color:#ff6060'><td>variability coefficient</td><td align='right'>314" in text
    assert "&lt; 150" in text and "SAD (reviewed) <b>1</b>" in text
    edges, n_other, n_sad, unit = histogram_data(df, bins=3)
    assert unit == "px" and n_other.sum() == 2 and n_sad.sum() == 1
    colors = class_color_dict(df.assign(excluded=[False, True, False, False]))
    assert np.allclose(colors[1][:3], np.array(CLASS_COLORS["sad"]) / 255)
    assert np.allclose(colors[2][:3], np.array(CLASS_COLORS["excluded"]) / 255)
    assert colors[0][3] == 0 and colors[None][3] > 0
    big = np.zeros((9000, 10), np.uint32)
    levels = labels_pyramid(big, max_px=4096)
    assert isinstance(levels, list) and levels[1].shape == (4500, 5) and levels[-1].shape[0] <= 1024


def _pyramid_slide(path, pixels: np.ndarray) -> None:
    import tifffile

    with tifffile.TiffWriter(path) as tif:
        opts = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib"}
        tif.write(pixels, subifds=2, resolution=(1 / 0.5, 1 / 0.5), resolutionunit="MICROMETER",
                  metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, **opts)
        tif.write(pixels[::2, ::2], subfiletype=1, **opts)
        tif.write(pixels[::4, ::4], subfiletype=1, **opts)


def test_whole_slide_result_opens_multiscale_and_reviews_with_flags(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from histo.batch.pipeline import measure_file
    from histo.io.image import read_image
    from histo.review.state import load_review
    from histo.sample_data import demo_image_path, demo_labels_path
    from napari_histo import _reader

    sample = read_image(demo_image_path()).pixels
    slide = tmp_path / "wsi.ome.tif"
    _pyramid_slide(slide, sample)
    out_dir, _ = measure_file(slide, demo_labels_path(), tmp_path / "results", stain="he")

    monkeypatch.setattr(_reader, "MULTISCALE_MIN_PIXELS", 500 * 500)  # as if it were a whole slide
    monkeypatch.setattr(_reader, "MAX_EAGER_LABELS_PX", 500 * 500)  # labels.tif read lazily
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    layers = viewer.open(str(out_dir), plugin="histo")
    image, lab = layers
    assert image.multiscale and len(image.data) == 3 and image.rgb
    assert lab.multiscale and not lab.editable
    np.testing.assert_allclose(image.scale, (0.5, 0.5))
    np.testing.assert_allclose(lab.scale, (0.5, 0.5))
    qtbot.waitUntil(lambda: widget.layer is lab and not widget.busy, timeout=60_000)  # loaded in a worker
    # a pyramid (not a whole slide: labels on the slide's grid) loads its labels for rescoring,
    # but napari cannot paint on it: flags only
    assert widget.session.labels is not None and widget.session.labels.shape == (1002, 1002)
    assert not widget.ui.recompute_button.isEnabled()

    widget.ui.table.selectRow(0)
    label = widget.selected_label()
    widget.flag_selected("excluded")
    assert widget.ui.summary.counts["n_excluded"] == 1
    widget.save()
    assert load_review(out_dir).flags == {label: "excluded"}
    assert not widget.session.dirty


def test_result_folder_without_its_slide_opens_labels_for_flags_only(make_napari_viewer, qtbot, tmp_path):
    import shutil

    from histo.batch.pipeline import measure_file
    from histo.sample_data import demo_image_path, demo_labels_path

    slide = tmp_path / "moved.tif"
    shutil.copy(demo_image_path(), slide)
    out_dir, _ = measure_file(slide, demo_labels_path(), tmp_path / "results", stain="he")
    slide.unlink()
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("histo", "Myofiber review")
    (layer,) = viewer.open(str(out_dir), plugin="histo")
    qtbot.waitUntil(lambda: widget.layer is layer and not widget.busy, timeout=60_000)
    assert widget.layer is layer and not layer.editable and not widget.session.can_score
    assert "pixels not loaded" in widget.ui.status.text()
    assert len(widget.session.fibers) == 55 and not widget.ui.recompute_button.isEnabled()
