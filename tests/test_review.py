"""histo.review.state and histo.review.recompute: flags, atomic save / load round trip, apply_review, recompute_changed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo.errors import HistoInputError
from histo.review.flags import FLAGS, apply_review, validate_flags
from histo.review.recompute import changed_labels, recompute_changed
from histo.review.state import REVIEW_FILE, Review, load_review, reviewed_labels, save_review


def _labels() -> np.ndarray:
    lab = np.zeros((40, 60), np.uint32)
    lab[2:12, 2:14] = 1
    lab[2:12, 20:34] = 2
    lab[20:36, 5:25] = 3
    lab[20:30, 40:55] = 4
    return lab


@pytest.fixture
def result_dir(tmp_path):
    d = tmp_path / "slide"
    d.mkdir()
    tifffile.imwrite(d / "labels.tif", _labels())
    return d


def _fibers(labels: np.ndarray) -> pd.DataFrame:
    ids = np.unique(labels[labels > 0])
    return pd.DataFrame(
        {
            "label": ids,
            "area_px": [int((labels == i).sum()) for i in ids],
            "is_edge": [False] * len(ids),
            "counted": [True] * len(ids),
            "is_sad": [i == 2 for i in ids],
        }
    )


# -- flags ---------------------------------------------------------------------------------
def test_validate_flags_normalises_keys_and_rejects_bad_input():
    assert validate_flags({"3": "excluded", 1: "not_sad"}) == {1: "not_sad", 3: "excluded"}
    with pytest.raises(HistoInputError, match="unknown review flag"):
        validate_flags({1: "maybe"})
    with pytest.raises(HistoInputError, match="positive integer"):
        validate_flags({0: "excluded"})
    with pytest.raises(HistoInputError, match="not a fiber label"):
        validate_flags({"a": "excluded"})
    with pytest.raises(HistoInputError, match="positive integer"):
        validate_flags({2.5: "excluded"})


def test_review_counts_and_empty():
    assert Review().is_empty
    r = Review(flags={1: "excluded", 2: "excluded", 5: "confirmed_sad"})
    assert r.counts() == {"excluded": 2, "confirmed_sad": 1, "not_sad": 0, "restored": 0}
    assert set(r.counts()) == set(FLAGS)


# -- apply_review ----------------------------------------------------------------------------
def test_apply_review_sets_excluded_sad_overrides_and_counted():
    df = pd.DataFrame(
        {
            "label": [1, 2, 3, 4],
            "is_sad": [True, True, False, False],
            "is_edge": [False, False, False, True],
            "counted": [True, True, True, False],
        }
    )
    out = apply_review(df, {1: "not_sad", 3: "confirmed_sad", 2: "excluded"})
    assert out["is_sad"].tolist() == [False, True, True, False]
    assert out["is_sad_auto"].tolist() == [True, True, False, False]
    assert out["excluded"].tolist() == [False, True, False, False]
    assert out["counted"].tolist() == [True, False, True, False]
    assert out["review_flag"].tolist() == ["not_sad", "excluded", "confirmed_sad", ""]
    # input untouched, idempotent, and clearing the flags restores the classifier's calls
    assert "excluded" not in df
    assert apply_review(out, {1: "not_sad", 3: "confirmed_sad", 2: "excluded"}).equals(out)
    cleared = apply_review(out, {})
    assert cleared["is_sad"].tolist() == [True, True, False, False]
    assert cleared["counted"].tolist() == [True, True, True, False]


def test_apply_review_ignores_flags_of_unknown_labels_and_needs_label_column():
    out = apply_review(pd.DataFrame({"label": [1]}), Review(flags={9: "excluded"}))
    assert out["excluded"].tolist() == [False]
    with pytest.raises(HistoInputError, match="label"):
        apply_review(pd.DataFrame({"x": [1]}), {})


# -- save / load -----------------------------------------------------------------------------
def test_no_review_loads_empty(result_dir):
    assert load_review(result_dir).is_empty
    assert np.array_equal(reviewed_labels(result_dir), _labels())


def test_flags_only_round_trip(result_dir):
    saved = save_review(result_dir, _labels(), {2: "not_sad", 4: "excluded"})
    assert not saved.edited_labels
    loaded = load_review(result_dir)
    assert loaded == saved
    assert loaded.flags == {2: "not_sad", 4: "excluded"}
    assert not (result_dir / "review").exists()
    doc = json.loads((result_dir / REVIEW_FILE).read_text())
    assert doc["counts"] == {"excluded": 1, "confirmed_sad": 0, "not_sad": 1, "restored": 0}


def test_edited_labels_round_trip_and_stale_files_removed(result_dir):
    lab = _labels()
    lab[lab == 4] = 0  # erase fiber 4
    lab[2:12, 20:27][lab[2:12, 20:27] == 2] = 7  # split fiber 2
    fibers = apply_review(_fibers(lab), {1: "excluded"})
    saved = save_review(result_dir, lab, {1: "excluded", 4: "confirmed_sad"}, fibers=fibers)
    assert saved.edited_labels
    assert saved.flags == {1: "excluded"}  # fiber 4 was erased: its flag is dropped
    loaded = load_review(result_dir)
    assert loaded == saved
    assert np.array_equal(loaded.labels, lab) and loaded.labels.dtype == np.uint32
    assert "excluded" not in loaded.fibers and "review_flag" not in loaded.fibers
    pd.testing.assert_frame_equal(loaded.fibers, _fibers(lab))
    assert np.array_equal(reviewed_labels(result_dir), lab)
    first_files = sorted(p.name for p in (result_dir / "review").iterdir())
    assert len(first_files) == 2

    # A second, different edit replaces the files; going back to the original labels
    # removes them all.
    lab2 = lab.copy()
    lab2[30:35, 30:35] = 9
    save_review(result_dir, lab2, {}, fibers=_fibers(lab2))
    second_files = sorted(p.name for p in (result_dir / "review").iterdir())
    assert len(second_files) == 2 and set(second_files).isdisjoint(first_files)
    save_review(result_dir, _labels(), {3: "excluded"})
    assert not (result_dir / "review").exists()
    assert load_review(result_dir) == Review(
        flags={3: "excluded"}, base_labels_sha256=load_review(result_dir).base_labels_sha256,
        saved_at=load_review(result_dir).saved_at, software=load_review(result_dir).software,
    )


def test_save_validates_inputs(result_dir, tmp_path):
    lab = _labels()
    lab[0, 0] = 5
    with pytest.raises(HistoInputError, match="fibers="):
        save_review(result_dir, lab, {})
    with pytest.raises(HistoInputError, match="shape"):
        save_review(result_dir, lab[:10], {})
    with pytest.raises(HistoInputError, match="labels.tif"):
        save_review(tmp_path, lab, {})
    assert not (result_dir / REVIEW_FILE).exists()


def test_failed_write_keeps_previous_review(result_dir, monkeypatch):
    save_review(result_dir, None, {1: "excluded"})
    lab = _labels()
    lab[30:35, 30:35] = 9

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        save_review(result_dir, lab, {2: "excluded"}, fibers=_fibers(lab))
    assert load_review(result_dir).flags == {1: "excluded"}
    assert not any(p.name.startswith(".") for p in result_dir.rglob("*"))


def test_load_detects_rescored_labels_and_damage(result_dir):
    save_review(result_dir, None, {1: "excluded"})
    lab = _labels()
    lab[lab == 3] = 0
    tifffile.imwrite(result_dir / "labels.tif", lab)
    with pytest.raises(HistoInputError, match="scored again"):
        load_review(result_dir)
    (result_dir / REVIEW_FILE).write_text("{not json")
    with pytest.raises(HistoInputError, match="damaged"):
        load_review(result_dir)


def test_load_detects_altered_edited_labels(result_dir):
    lab = _labels()
    lab[30:35, 30:35] = 9
    save_review(result_dir, lab, {}, fibers=_fibers(lab))
    stored = next((result_dir / "review").glob("labels-*.tif"))
    tifffile.imwrite(stored, _labels())
    with pytest.raises(HistoInputError, match="checksum"):
        load_review(result_dir)


# -- changed labels ----------------------------------------------------------------------------
def test_changed_labels_finds_painted_erased_and_new():
    before = _labels()
    after = before.copy()
    after[2:5, 2:5] = 0  # erase part of 1
    after[20:36, 5:10] = 4  # paint 4 over part of 3
    after[38:40, 58:60] = 11  # a new fiber
    assert changed_labels(before, after).tolist() == [1, 3, 4, 11]
    assert changed_labels(before, before.copy()).tolist() == []


# -- recompute_changed ---------------------------------------------------------------------
def _edits(labels: np.ndarray) -> np.ndarray:
    """Erase, split, merge, grow and draw fibers: every kind of edit napari's tools make."""
    from skimage.draw import disk

    out = labels.copy()
    ids = [int(i) for i in np.unique(labels) if i]
    sizes = {i: int((labels == i).sum()) for i in ids}
    big = sorted(ids, key=sizes.get)[-4:]
    out[out == big[0]] = 0  # erase
    ys, xs = np.nonzero(labels == big[1])  # split along the row through the centroid
    cy = int(ys.mean())
    out[(labels == big[1]) & (np.arange(labels.shape[0])[:, None] > cy)] = max(ids) + 1
    out[cy, xs.min():xs.max() + 1][labels[cy, xs.min():xs.max() + 1] == big[1]] = 0
    # merge big[2] into its most-touching neighbour
    from histo.measure.adjacency import fiber_adjacency

    pairs = fiber_adjacency(labels, max_gap_px=3)
    nb = [int(b if a == big[2] else a) for a, b in pairs if big[2] in (a, b) and big[0] not in (a, b)
          and big[1] not in (a, b)]
    if nb:
        out[out == big[2]] = nb[0]
    rr, cc = disk((20, 20), 9, shape=labels.shape)  # a new fiber painted in a corner
    out[rr, cc] = max(ids) + 2
    return out


def test_recompute_changed_equals_full_measurement_on_real_image(real_data):
    from histo.io.image import read_image
    from histo.io.masks import read_labels
    from histo.measure.morphometry import measure_fibers

    image = read_image(real_data / "he" / "cn_img02.tif")
    labels = read_labels(real_data / "he" / "cn_img02_labels.png", shape=image.shape_yx)
    labels = np.asarray(labels)[:500, :600]
    from histo.io.image import ImageData

    crop = ImageData(pixels=image.pixels[:500, :600], axes="YXS", pixel_size_um=0.5)
    before = measure_fibers(labels, crop.pixels, pixel_size_um=0.5, stain="he")
    edited = _edits(labels)
    assert len(changed_labels(labels, edited)) >= 5
    fast = recompute_changed(labels, edited, before, crop, pixel_size_um=0.5, stain="he")
    full = measure_fibers(edited, crop.pixels, pixel_size_um=0.5, stain="he")
    pd.testing.assert_frame_equal(fast, full, check_exact=False, rtol=1e-6, atol=1e-9)


def test_recompute_changed_without_pixel_size_or_image_and_no_change():
    from histo.measure.morphometry import measure_fibers

    lab = _labels()
    before = measure_fibers(lab, None)
    edited = lab.copy()
    edited[2:12, 20:34] = 0
    edited[lab == 1] = 3  # fiber 1 relabelled as 3 (a merge of far-apart pieces)
    fast = recompute_changed(lab, edited, before, None)
    full = measure_fibers(edited, None)
    pd.testing.assert_frame_equal(fast, full, check_exact=False, rtol=1e-6)
    # scoring and review columns are dropped, measurements kept, when nothing changed
    scored = apply_review(before.assign(is_sad=False), {1: "excluded"})
    same = recompute_changed(lab, lab.copy(), scored, None)
    pd.testing.assert_frame_equal(same, before)
    with pytest.raises(HistoInputError, match="shape"):
        recompute_changed(lab, lab[:5], before, None)


def test_histo_imports_no_qt_or_napari():
    import subprocess
    import sys

    code = ("import sys, histo, histo.review.state, histo.batch.pipeline; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'superqt')]; "
            "print(bad); raise SystemExit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flags_only_save_keeps_earlier_edited_labels(result_dir):
    lab = _labels()
    lab[30:35, 30:35] = 9
    save_review(result_dir, lab, {1: "excluded"}, fibers=_fibers(lab))
    again = save_review(result_dir, None, {9: "confirmed_sad"})
    assert again.edited_labels and again.flags == {9: "confirmed_sad"}
    loaded = load_review(result_dir)
    assert np.array_equal(loaded.labels, lab) and loaded.flags == {9: "confirmed_sad"}


# -- seen fibers (stepped past in the review walk) -----------------------------------------------
def test_seen_fibers_round_trip_only_where_still_as_outlined(result_dir):
    lab = _labels()
    lab[2:12, 2:8] = 0  # fiber 1 edited (half erased)
    saved = save_review(result_dir, lab, {3: "excluded"}, fibers=_fibers(lab), seen=[1, 2, 3, 4, 9])
    # 1 edited, 3 flagged, 9 absent: only 2 and 4 are still as the model outlined them
    assert saved.seen_labels == (2, 4)
    assert json.loads((result_dir / REVIEW_FILE).read_text())["seen_labels"] == [2, 4]
    assert load_review(result_dir) == saved and load_review(result_dir).seen_labels == (2, 4)
    assert Review(seen_labels=[2]).is_empty  # seen fibers change no figure
    save_review(result_dir, None, {3: "excluded"})  # without seen: none recorded
    assert load_review(result_dir).seen_labels == ()
    assert "seen_labels" not in json.loads((result_dir / REVIEW_FILE).read_text())


def test_old_review_files_load_and_bad_seen_labels_are_damage(result_dir):
    save_review(result_dir, None, {1: "excluded"}, seen=[2])
    doc = json.loads((result_dir / REVIEW_FILE).read_text())
    del doc["seen_labels"]  # a review saved before seen fibers existed
    (result_dir / REVIEW_FILE).write_text(json.dumps(doc))
    assert load_review(result_dir).seen_labels == () and load_review(result_dir).flags == {1: "excluded"}
    for bad in ("2", [2.5], [True], [-1], {"2": 1}):
        (result_dir / REVIEW_FILE).write_text(json.dumps({**doc, "seen_labels": bad}))
        with pytest.raises(HistoInputError, match="damaged review file.*seen"):
            load_review(result_dir)


def test_rescored_labels_carry_seen_fibers_by_overlap(result_dir, tmp_path):
    from histo.review.state import rebase_review

    save_review(result_dir, None, {1: "excluded"}, seen=[2, 3, 4])
    previous = tmp_path / "previous.tif"
    tifffile.imwrite(previous, _labels())
    new = _labels() * 10  # every fiber renamed ...
    new[20:36, 5:15] = 31  # ... and fiber 3 split in two
    tifffile.imwrite(result_dir / "labels.tif", new)
    note = rebase_review(result_dir, previous)
    assert "2 of 3 seen fiber(s) carried over" in note
    review = load_review(result_dir)
    assert review.flags == {10: "excluded"} and review.seen_labels == (20, 40)
