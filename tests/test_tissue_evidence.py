"""Tissue mask on every input, per-object fiber evidence and score, the scale check against the metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from histo.segment.evidence import (
    FEATURES,
    appearance,
    canonical_labels,
    fiber_score,
    fit_logistic,
    network_evidence,
    relative_features,
)
from histo.segment.tissue import detect_tissue, objects_outside, tissue_mask


def _section(h=200, w=300, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 240, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    blob = (yy - h / 2) ** 2 / (0.35 * h) ** 2 + (xx - w / 2) ** 2 / (0.3 * w) ** 2 < 1
    img[blob] = np.clip(rng.normal((200, 90, 150), 20, (blob.sum(), 3)), 0, 255).astype(np.uint8)
    return img, blob


def test_black_fill_text_and_green_ink_are_not_tissue():
    img, blob = _section()
    img[:, 270:] = 0                       # black stitching fill along an edge
    img[180:192, 20:120] = 10              # a black scale bar on the glass
    img[10:14, 200:260] = (40, 200, 40)    # green pen
    m = detect_tissue(img)
    assert m[100, 150] and not m[:, 272:].any() and not m[182:190, 25:115].any()
    assert not m[10:14, 205:255].any()
    assert (m[blob & (np.arange(300)[None, :] < 260)]).mean() > 0.97


def test_tissue_mask_downsamples_and_objects_outside():
    img, blob = _section(1200, 1600)
    m, f = tissue_mask(img, max_side=400)
    assert m.shape == (300, 400) and f == 0.25
    labels = np.zeros((1200, 1600), np.int32)
    labels[590:610, 790:810] = 1           # in the tissue
    labels[20:40, 20:40] = 2               # on the glass
    labels[500:540, 700:730] = 3
    assert objects_outside(labels, m).tolist() == [2]


def test_membrane_if_interiors_stay_tissue():
    """Dark fiber interiors of a membrane stain, even cut by the border, are tissue."""
    img = np.full((300, 300), 30.0)
    for c in range(0, 300, 60):
        img[:, c:c + 4] = 900
        img[c:c + 4, :] = 900
    m, _ = tissue_mask(img.astype(np.uint16))
    assert m.mean() > 0.98


def test_canonical_labels_and_network_evidence():
    lab = np.zeros((10, 10), np.int32)
    lab[1:5, 1:5] = 1                      # closed: boundary all round
    lab[5:9, 5:10] = 2                     # a piece cut from a blob: foreground continues to its left
    maps = np.zeros((3, 10, 10), np.float32)
    maps[0][lab > 0] = 0.95
    maps[0, 5:9, 2:5] = 0.9                # the rest of the blob, no boundary
    maps[1, 0:6, 0:6] = 0.9
    maps[1][lab == 1] = 0.0
    maps[2, 2:4, 2:4] = 0.9
    maps[2, 6:8, 7:9] = 0.4
    ev = network_evidence(canonical_labels(lab, (10, 10), period=64), maps, 0.5)
    assert ev["fg_mean"][1] == pytest.approx(0.95, abs=1e-6)
    assert ev["dist_peak"][1] == pytest.approx(0.9) and ev["dist_peak"][2] == pytest.approx(0.4)
    assert ev["closure"][1] == 1.0 and ev["closure"][2] < 0.8


def test_appearance_texture_flags_a_sheet_of_nuclei():
    rng = np.random.default_rng(1)
    img = np.full((60, 200, 3), 230, np.uint8)
    labels = np.zeros((60, 200), np.int32)
    for i in range(10):                    # smooth pink fibers
        labels[10:50, 5 + 19 * i:20 + 19 * i] = i + 1
        img[10:50, 5 + 19 * i:20 + 19 * i] = (220, 120, 170)
    sheet = np.zeros((60, 200), bool)
    sheet[52:60, 0:200] = True             # a grainy strip of dark dots
    labels[sheet] = 11
    img[sheet] = (200, 140, 190)
    dots = sheet & (rng.random((60, 200)) < 0.3)
    img[dots] = (60, 30, 120)
    sums = appearance(labels, img)
    table = {"fg_mean": np.r_[np.ones(10), 0.9], "dist_peak": np.r_[np.ones(10), 0.9],
             "closure": np.r_[np.ones(10), 0.9], **{k: v[1:] for k, v in sums.items()}}
    rel = relative_features(table)
    assert rel["texture_z"][-1] > 3 and np.abs(rel["texture_z"][:10]).max() < 1
    assert rel["colour_z"][-1] > 3


def test_fit_logistic_separates_and_scores_between_0_and_1():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (200, len(FEATURES))), rng.normal(1.5, 1, (200, len(FEATURES)))]
    y = np.r_[np.zeros(200), np.ones(200)]
    w = fit_logistic(x, y)
    s = fiber_score({k: x[:, i] for i, k in enumerate(FEATURES)}, w)
    assert 0 <= s.min() and s.max() <= 1
    assert ((s >= 0.5) == y.astype(bool)).mean() > 0.9


def test_rejected_objects_are_listed_not_counted_unless_restored():
    from histo.review.flags import apply_review
    from histo.score.scoring import fiber_counts, not_fiber

    df = pd.DataFrame({"label": [1, 2, 3], "is_edge": [False] * 3, "counted": [True] * 3,
                       "rejected": [False, True, True], "fiber_score": [0.9, 0.1, 0.2]})
    out = apply_review(df, {3: "restored"})
    assert out["counted"].tolist() == [True, False, True]
    assert not_fiber(out).tolist() == [False, True, False]
    assert fiber_counts(out)["n_rejected"] == 1


# ---------------------------------------------------------------------------- real images
@pytest.fixture(scope="module")
def cn_img02(real_data):
    img = tifffile.imread(real_data / "he" / "cn_img02.tif")
    gt = np.asarray(Image.open(real_data / "he" / "cn_img02_labels.png")).astype(np.int32)
    return img, gt


def test_segmentation_record_and_fiber_scores(cn_img02):
    from histo.segment.segmenter import segment

    img, gt = cn_img02
    seg = segment(img)
    info = seg.info()
    assert info["scale"]["source"] == "estimated" and info["scale"]["image_diameter_px"] > 80
    assert info["tissue_area_px"] > 0.9 * img.shape[0] * img.shape[1]
    obj = seg.objects
    assert len(obj) == seg.labels.max() and obj["label"].tolist() == list(range(1, len(obj) + 1))
    assert set(FEATURES) <= set(obj.columns) and "rejected" in obj


@pytest.mark.parametrize("wrong", [0.5, 2.0])
def test_wrong_pixel_size_is_caught_and_segmented_at_the_image_scale(cn_img02, wrong):
    """cn_img02's fibers (~141 px) are ~48 µm at 0.34 µm/px; a stale pixel size 2x off either way."""
    from histo.segment.segmenter import segment
    from histo.train.evaluate import match_labels

    img, gt = cn_img02
    right = segment(img, pixel_size_um=0.34)
    bad = segment(img, pixel_size_um=0.34 * wrong)
    assert right.scale["warning"] is None
    assert bad.scale["warning"] and "pixel size" in bad.scale["warning"] and bad.scale["used"] == "image"
    f_right = match_labels(np.asarray(right.labels), gt, min_feret=False).at(0.5)["f1"]
    f_bad = match_labels(np.asarray(bad.labels), gt, min_feret=False).at(0.5)["f1"]
    assert f_bad >= f_right - 0.01


def test_score_cli_fiber_diameter_and_scale_warning(tmp_path, cn_img02, capsys):
    """histo score: --fiber-diameter sets the scale; a pixel size 2x off is said in summary, cohort and CLI."""
    import json

    from histo.cli import main

    img, _ = cn_img02
    tifffile.imwrite(tmp_path / "stale.tif", img, imagej=True, resolution=(1 / 0.68, 1 / 0.68),
                     metadata={"unit": "micron"})
    assert main(["score", str(tmp_path / "stale.tif"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "stale" / "summary.json").read_text())
    scale = summary["segmentation"]["scale"]
    assert scale["source"] == "pixel_size" and scale["used"] == "image" and "pixel size" in scale["warning"]
    assert summary["qc"]["status"] != "ok" and any("pixel size" in r for r in summary["qc"]["reasons"])
    assert summary["evidence"]["text"].startswith("segmentation needs review")
    cohort = pd.read_csv(tmp_path / "out" / "cohort.csv")
    assert cohort.loc[0, "qc_status"] != "ok" and "pixel size" in cohort.loc[0, "qc_reasons"]
    assert "segmentation needs review" in capsys.readouterr().err
    fibers = pd.read_csv(tmp_path / "out" / "stale" / "fibers.csv")
    assert {"fiber_score", "rejected"} <= set(fibers.columns)

    assert main(["score", str(tmp_path / "stale.tif"), "-o", str(tmp_path / "out2"), "--no-progress",
                 "--fiber-diameter", "140"]) == 0
    scale = json.loads((tmp_path / "out2" / "stale" / "summary.json").read_text())["segmentation"]["scale"]
    assert scale["source"] == "fiber_diameter" and scale["diameter_segmented_px"] == pytest.approx(140, rel=0.03)
