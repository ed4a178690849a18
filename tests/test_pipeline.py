"""The per-slide pipeline: measure an existing mask, segment + score, and write the contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo.batch.pipeline import analyze, default_channel, measure_file, score_file, slide_id
from histo.errors import HistoInputError
from histo.io.image import read_image

CONTRACT = ("labels.tif", "fibers.csv", "fibers.parquet", "summary.json", "fibers.geojson",
            "rois.zip", "overlay.png")


def test_slide_id_is_filesystem_safe():
    assert slide_id("/x/Biopsy 12 (NADH).ome.tif") == "Biopsy_12_NADH"
    assert slide_id("a/b/c.svs") == "c"
    assert slide_id("...") == "slide"


def test_measure_file_on_real_he_writes_the_output_contract(real_data, tmp_path):
    out_dir, result = measure_file(
        real_data / "he" / "cn_img01.tif", real_data / "he" / "cn_img01_labels.png", tmp_path,
        stain="he",
    )
    assert out_dir == tmp_path / "cn_img01"
    assert all((out_dir / name).is_file() for name in CONTRACT)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["n_fibers"] == 66 == len(result.fibers)
    assert summary["slide"]["stain"] == "he" and summary["slide"]["pixel_size_um"] is None
    assert len(summary["slide"]["sha256"]) == 64
    assert summary["warnings"] and "--pixel-size" in summary["warnings"][0]
    table = pd.read_csv(out_dir / "fibers.csv")
    assert table["label"].tolist() == result.fibers["label"].tolist()
    # the exported schema has both units; micrometres are empty without a pixel size
    assert table["min_feret_px"].notna().all() and table["min_feret_um"].isna().all()
    labels = tifffile.imread(out_dir / "labels.tif")
    assert labels.dtype == np.uint32 and labels.shape == (1002, 1002)


def test_pixel_size_override_gives_micrometre_columns(real_data, tmp_path):
    _, px = measure_file(real_data / "he" / "cn_img01.tif", real_data / "he" / "cn_img01_labels.png",
                         tmp_path / "a", stain="he")
    _, um = measure_file(real_data / "he" / "cn_img01.tif", real_data / "he" / "cn_img01_labels.png",
                         tmp_path / "b", stain="he", pixel_size_um=0.5)
    np.testing.assert_allclose(um.fibers["min_feret_um"], 0.5 * px.fibers["min_feret_px"])
    assert um.summary["statistics"]["atrophy_factor"] is not None
    assert not um.summary["warnings"]


def test_multichannel_without_channel_names_the_fix(real_data):
    image = read_image(real_data / "if" / "fs_rat.tif")
    with pytest.raises(HistoInputError, match="--channel"):
        default_channel(image, "if", None)
    assert default_channel(image, "if", 3) == 3


def test_bad_mask_leaves_no_output(real_data, tmp_path):
    bad = tmp_path / "wrong.tif"
    tifffile.imwrite(bad, np.ones((10, 10), np.uint16))
    with pytest.raises(HistoInputError, match="wrong.tif"):
        measure_file(real_data / "he" / "cn_img01.tif", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_excluded_fibers_are_measured_but_not_counted(real_data):
    image = read_image(real_data / "he" / "cn_img01.tif")
    from histo.io.masks import read_labels

    labels = read_labels(real_data / "he" / "cn_img01_labels.png")
    base = analyze(image, labels, stain="he")
    inner = base.fibers.loc[base.fibers["counted"], "label"].iloc[:5]
    flagged = analyze(image, labels, stain="he", excluded=pd.Series(True, index=inner.values))
    assert len(flagged.fibers) == 66
    assert flagged.fibers["counted"].sum() == base.fibers["counted"].sum() - 5


def test_score_file_classical_on_real_he(real_data, tmp_path):
    out_dir, result = score_file(real_data / "he" / "cn_img02.tif", tmp_path, stain="he",
                                 method="classical")
    assert all((out_dir / name).is_file() for name in CONTRACT)
    assert 40 <= result.summary["n_fibers"] <= 80  # the reference has 55
    assert result.summary["model"]["method"] == "classical"


def test_a_slide_without_fibers_is_a_clear_error_not_an_empty_mask_message(tmp_path):
    from histo.batch.pipeline import segment_and_analyze

    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.full((256, 256, 3), 245, np.uint8)).save(blank)
    image = read_image(blank)
    with pytest.raises(HistoInputError, match="--stain and --channel") as err:
        segment_and_analyze(image, stain="he", method="classical")
    assert "blank.png" in str(err.value) and "mask is empty" not in str(err.value)


def test_a_blank_slide_through_the_model_is_a_clear_error(tmp_path):
    """No pixel size: the model's scale search finds nothing at any scale -> HistoInputError."""
    from PIL import Image

    from histo.batch.pipeline import segment_and_analyze

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 245, np.uint8)).save(blank)
    with pytest.raises(HistoInputError, match="no fibers found") as err:
        segment_and_analyze(read_image(blank), stain="he", method="model")
    assert "blank.png" in str(err.value) and "--pixel-size" in str(err.value)
