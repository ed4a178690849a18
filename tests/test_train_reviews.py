"""Learning from reviews: the public save_review re-measures, what a review says for certain,
and a few steps of ``histo train --from-reviews`` (weights, card, held-out figures, resume)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import tifffile
from PIL import Image

import histo
from histo.batch.pipeline import measure_file
from histo.errors import HistoInputError
from histo.measure.morphometry import measure_fibers, table_columns
from histo.review.state import load_review
from histo.segment.net import DEFAULT_MODEL, models_dir
from histo.train.reviews import find_reviewed, review_truth, split_holdout, train_from_reviews

#: the tiny runs of these tests: small crops and batches, no synthetic sections
TINY = {"batch_size": 2, "crop_px": 64, "synth_pool": 0, "review_fraction": 1.0, "holdout_fraction": 0.3,
        "min_calibration_fibers": 3}


@pytest.fixture
def scored(tmp_path, real_data):
    """A real H&E crop (cn_img02, halved) measured on its reference mask: RESULTS/crop/."""
    img = tifffile.imread(real_data / "he" / "cn_img02.tif")[:600, :600][::2, ::2]
    lab = np.asarray(Image.open(real_data / "he" / "cn_img02_labels.png"))[:600, :600][::2, ::2]
    tifffile.imwrite(tmp_path / "crop.tif", np.ascontiguousarray(img))
    tifffile.imwrite(tmp_path / "crop_labels.tif", np.ascontiguousarray(lab).astype(np.uint16))
    out, _ = measure_file(tmp_path / "crop.tif", tmp_path / "crop_labels.tif", tmp_path / "results", stain="he")
    return out


def _interior_ids(labels: np.ndarray) -> list[int]:
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return [int(i) for i in np.unique(labels) if i and i not in edge]


def _review(slide):
    """Grow 3 fibers by a pixel, erase one, confirm two, exclude one; save without a table."""
    labels = tifffile.imread(slide / "labels.tif").astype(np.uint32)
    ids = _interior_ids(labels)
    assert len(ids) >= 8
    edited = labels.copy()
    from scipy import ndimage as ndi

    for k in ids[:3]:
        grown = ndi.binary_dilation(labels == k) & (labels == 0)
        edited[grown] = k
    edited[labels == ids[3]] = 0
    flags = {ids[4]: "confirmed_sad", ids[5]: "not_sad", ids[6]: "excluded"}
    return labels, edited, ids, flags


def test_save_review_remeasures_edited_fibers_without_a_table(scored):
    labels, edited, ids, flags = _review(scored)
    saved = histo.save_review(scored, edited, flags)
    assert saved.edited_labels and saved.fibers is not None
    full = measure_fibers(edited, tifffile.imread(scored.parent.parent / "crop.tif"), stain="he")
    got = saved.fibers.set_index("label")
    assert ids[3] not in got.index  # the erased fiber is gone
    for k in ids[:3]:  # the grown fibers are re-measured: their area is the new one
        assert got.loc[k, "area_px"] == (edited == k).sum() > (labels == k).sum()
    # geometry and neighbours equal a full measurement (the stain columns are recompute.py's business)
    cols = [c for c in table_columns(False) if c in got and c in full and c.endswith(("_px", "ratio", "ity", "bors"))]
    assert {"area_px", "min_feret_px", "n_neighbors"} <= set(cols)
    np.testing.assert_allclose(got.loc[full["label"], cols].to_numpy(float), full[cols].to_numpy(float),
                               rtol=1e-6, equal_nan=True)
    back = load_review(scored)
    assert back.edited_labels and back.flags == {k: v for k, v in flags.items()}


def test_save_review_without_the_image_is_a_one_line_error(scored):
    _, edited, _, flags = _review(scored)
    (scored.parent.parent / "crop.tif").rename(scored.parent.parent / "moved.tif")
    with pytest.raises(HistoInputError, match="not where it was scored"):
        histo.save_review(scored, edited, flags)


def test_review_truth_knows_only_what_was_reviewed(scored):
    labels, edited, ids, flags = _review(scored)
    histo.save_review(scored, edited, flags)
    truth = review_truth(scored)
    assert (truth.n_edited, truth.n_confirmed, truth.n_excluded) == (3, 2, 1)
    assert truth.n_fibers == 5
    assert truth.negatives[labels == ids[3]].all()  # erased prediction
    assert truth.negatives[edited == ids[6]].all()  # excluded object
    for k in ids[7:]:  # unreviewed fibers: unknown, never background
        assert not truth.known[edited == k].any()
    for k in ids[:3]:  # edited fibers exactly as the reviewer left them
        assert np.unique(truth.labels[edited == k]).size == 1 and truth.labels[edited == k][0] > 0
    h = split_holdout(truth, 0.4, seed=0)
    assert h.n_test_fibers == 2
    assert not (h.train_known & h.test_known).any()
    assert not ((h.train_labels > 0) & (h.test_labels > 0)).any()
    assert find_reviewed([scored.parent]) == [scored.resolve()]
    with pytest.raises(HistoInputError, match="no reviewed slide"):
        find_reviewed([scored.parent.parent])


def test_review_truth_counts_fibers_seen_in_the_walk_as_outlined(scored):
    labels, edited, ids, flags = _review(scored)
    # stepped past: an edited fiber, a flagged one, an excluded one and two left as outlined
    saved = histo.save_review(scored, edited, flags, seen=[ids[0], ids[4], ids[6], ids[7], ids[8]])
    assert saved.seen_labels == tuple(sorted(ids[7:9]))
    truth = review_truth(scored)
    assert (truth.n_edited, truth.n_confirmed, truth.n_seen, truth.n_excluded) == (3, 2, 2, 1)
    assert truth.n_fibers == 7
    for k in ids[7:9]:  # seen fibers: known, exactly as the model outlined them
        assert truth.known[labels == k].all()
        assert np.unique(truth.labels[labels == k]).size == 1 and truth.labels[labels == k][0] > 0
    for k in ids[9:]:  # the fibers never visited stay unknown
        assert not truth.known[edited == k].any()
    assert truth.negatives[edited == ids[6]].all()  # excluded stays a negative
    # a review of fibers only stepped past (no flag, no edit) is something to learn from
    histo.save_review(scored, labels, {}, seen=[ids[7]])
    only = review_truth(scored)
    assert (only.n_fibers, only.n_seen, only.n_edited) == (1, 1, 0)
    assert only.known[labels == ids[7]].all() and only.known.sum() < (labels == ids[7]).sum() * 2


class _Stop(Exception):
    pass


def test_train_from_reviews_writes_model_card_and_resumes(scored, tmp_path, caplog):
    _, edited, ids, flags = _review(scored)
    flags.update({k: "not_sad" for k in ids[7:]})  # the other fibers confirmed: enough to re-calibrate
    histo.save_review(scored, edited, flags)
    out = tmp_path / "models" / "mine"

    def stop_at_10(phase, done, total, info):
        if phase == "train" and done == 10:
            raise _Stop()

    with pytest.raises(_Stop):  # interrupted after the checkpoint of step 5
        train_from_reviews([scored], out, steps=20, checkpoint_every=5, progress=stop_at_10, **TINY)
    ckpt = json.loads((tmp_path / "models" / "mine.ckpt.json").read_text())
    assert ckpt["extra"]["step"] == 5
    with caplog.at_level(logging.INFO, logger="histo.train.loop"):
        res = train_from_reviews([scored], out, steps=20, checkpoint_every=5, **TINY)
    assert "resumed from step 5" in caplog.text
    assert res.weights == out.with_suffix(".safetensors") and res.weights.is_file()
    config = json.loads(out.with_suffix(".json").read_text())
    base = json.loads((models_dir() / "fibernet_v3.json").read_text())
    cal = config["extra"]["from_reviews"]["recalibration"]
    assert cal is not None and cal["n_fibers"] >= 1  # re-set on the reviewed training fibers
    assert config["fiber_score"]["coef"] == base["fiber_score"]["coef"]  # the base model's score is kept
    assert config["fiber_score"]["threshold"] == cal["threshold"] <= base["fiber_score"]["threshold"]
    assert config["fiber_score"]["diameter_ratio"] == cal["diameter_ratio"]
    assert "Fiber score re-set on the" in res.card.read_text()
    assert config["name"] == "mine" and config["extra"]["step"] == 20
    rec = config["extra"]["from_reviews"]["held_out"]
    assert rec["fibers"] >= 1 and rec["before"] is not None and rec["after"] is not None
    card = res.card.read_text()
    assert res.card == out.with_suffix(".md")
    assert f"| F1 at IoU 0.5 | {rec['before']['f1']:.3f} | {rec['after']['f1']:.3f} |" in card
    assert "small-fiber precision" in card and "fibernet_v3" in card
    # the shipped model is untouched and still the default
    assert DEFAULT_MODEL == "fibernet_v3"


def test_cli_train_from_reviews_prints_held_out_figures(scored, tmp_path, capsys):
    from histo.cli import main

    _, edited, _, flags = _review(scored)
    histo.save_review(scored, edited, flags)
    out = tmp_path / "cli_model"
    code = main(["train", "--from-reviews", str(scored.parent), "-o", str(out), "--steps", "2",
                 "--batch-size", "2", "--crop", "64", "--synth-pool", "2", "--holdout", "0.3"])
    text = capsys.readouterr().out
    assert code == 0
    assert "before (fibernet_v3): F1" in text and "after  (cli_model): F1" in text
    assert "small-fiber precision" in text
    assert "(3 edited, 2 confirmed by a flag, 0 seen in the review walk) and 1 excluded objects" in text
    assert "0 seen)" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".safetensors").is_file() and out.with_suffix(".md").is_file()
    assert main(["train", "--from-reviews", str(scored.parent)]) == 2
    assert "needs -o" in capsys.readouterr().err
    # histo score --model uses it (and records it, so it enters the resume fingerprint)
    crop = scored.parent.parent / "crop.tif"
    assert main(["score", str(crop), "-o", str(tmp_path / "rescored"), "--no-progress", "--model", str(out)]) in (0, 1)
    summary = json.loads((tmp_path / "rescored" / "crop" / "summary.json").read_text())
    assert summary["model"]["name"] == "cli_model"
