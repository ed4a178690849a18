"""histo.review.export and histo.review.options: reviewed outputs beside the result, widget choices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from histo.batch.pipeline import measure_file
from histo.errors import HistoInputError
from histo.results.tables import read_fiber_table
from histo.review.export import EXPORT_DIR, export_review
from histo.review.options import parse_type_channels, settings_from_choices, with_pixel_size
from histo.review.rescore import reviewed_result
from histo.review.state import load_review, save_review
from histo.sample_data import demo_image_path, demo_labels_path


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    out, result = measure_file(demo_image_path(), demo_labels_path(), root, stain="he", pixel_size_um=0.5)
    return out, result


def test_export_writes_the_reviewed_slide_as_histo_report_computes_it(scored, tmp_path):
    import shutil

    out = tmp_path / "slide"
    shutil.copytree(scored[0], out)
    fibers = read_fiber_table(out)
    counted = fibers[fibers["counted"]]["label"].tolist()
    flags = {counted[0]: "excluded", counted[1]: "confirmed_sad"}
    labels = np.asarray(scored[1].labels, dtype=np.uint32)
    save_review(out, labels, flags)
    unreviewed_csv = (out / "fibers.csv").read_text()

    folder = export_review(out)
    assert folder == out / EXPORT_DIR
    assert {"fibers.csv", "fibers.parquet", "summary.json", "fibers.geojson", "labels.tif", ".histo-result"} <= {
        p.name for p in folder.iterdir()}
    assert (out / "fibers.csv").read_text() == unreviewed_csv  # the unreviewed output stays
    table = pd.read_csv(folder / "fibers.csv")
    row = table.set_index("label")
    assert bool(row.loc[counted[0], "excluded"]) and not bool(row.loc[counted[0], "counted"])
    assert bool(row.loc[counted[1], "is_sad"])
    summary = json.loads((folder / "summary.json").read_text())
    stored = json.loads((out / "summary.json").read_text())
    _, report, _ = reviewed_result(out, stored, fibers, load_review(out))
    assert summary["statistics"]["n_counted"] == report["statistics"]["n_counted"] == stored["statistics"]["n_counted"] - 1
    assert summary["review_export"]["flags"]["excluded"] == 1
    geo = json.loads((folder / "fibers.geojson").read_text())
    assert len(geo["features"]) == len(table)

    again = export_review(out)  # histo's own folder: replaced
    assert again == folder and (folder / "fibers.csv").is_file()


def test_export_never_overwrites_a_folder_histo_did_not_write(scored, tmp_path):
    import shutil

    out = tmp_path / "slide"
    shutil.copytree(scored[0], out)
    mine = out / EXPORT_DIR
    mine.mkdir()
    (mine / "fibers.csv").write_text("my own table\n")
    with pytest.raises(HistoInputError):
        export_review(out)
    assert (mine / "fibers.csv").read_text() == "my own table\n"
    with pytest.raises(HistoInputError, match="summary.json"):
        export_review(tmp_path / "not-a-result")


def test_pixel_size_recomputes_the_micrometre_sizes():
    df = pd.DataFrame({"label": [1, 2], "area_px": [400.0, 100.0], "min_feret_px": [20.0, 8.0],
                       "centroid_y_px": [10.0, 30.0]})
    out = with_pixel_size(df, 0.25)
    np.testing.assert_allclose(out["min_feret_um"], [5.0, 2.0])
    np.testing.assert_allclose(out["area_um2"], [25.0, 6.25])
    np.testing.assert_allclose(out["centroid_y_um"], [2.5, 7.5])
    um_only = out.drop(columns=["area_px", "min_feret_px", "centroid_y_px"])
    np.testing.assert_allclose(with_pixel_size(um_only, 0.5, previous_um=0.25)["min_feret_um"], [10.0, 4.0])
    with pytest.raises(HistoInputError):
        with_pixel_size(um_only, 0.5)
    with pytest.raises(HistoInputError):
        with_pixel_size(df, 0)


def test_widget_choices_are_the_cli_settings():
    s = settings_from_choices(reference="adult-female", type_channels="I=1, IIa=2", nuclei_channel=3)
    assert s.normal_range == (30.0, 70.0)
    assert dict(s.fiber_types.type_channels) == {"I": 1, "IIa": 2} and s.nuclei.channel == 3
    assert parse_type_channels("") == {}
    with pytest.raises(HistoInputError):
        parse_type_channels("I:1")
    with pytest.raises(HistoInputError):
        settings_from_choices(reference="martian")
