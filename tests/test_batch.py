"""Batch scoring: discovery, slide ids, resume fingerprints, failure isolation, cohort, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from histo.batch.discovery import assign_slide_ids, find_slides
from histo.batch.run import cohort_table, run_batch
from histo.batch.slides import ScoreParams, SlideJob, plan_jobs, process_slide, run_fingerprint
from histo.errors import HistoInputError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- discovery
def test_find_slides_recurses_and_skips_labels_results_and_hidden(tmp_path):
    root = tmp_path / "slides"
    keep = [_touch(root / "a.tif"), _touch(root / "sub" / "b.ome.tiff"), _touch(root / "c.SVS"),
            _touch(root / "sub" / "deep" / "d.jpg"), _touch(root / "e.czi")]
    for skip in ("a_labels.png", "a_cp_masks.png", "notes.txt", ".hidden.tif",
                 ".cache/x.tif", "old_results/s1/overlay.png", "old_results/cohort.csv",
                 "old_results/s1/summary.json", "old_results/s1/labels.tif"):
        _touch(root / skip)
    found = find_slides([root])
    assert found == sorted(p.resolve() for p in keep)


def test_find_slides_excludes_the_results_folder_and_keeps_explicit_files(tmp_path):
    root = tmp_path / "in"
    a = _touch(root / "a.png")
    _touch(root / "out" / "x.png")  # a results folder inside the input folder, not yet marked
    label = _touch(tmp_path / "b_labels.tif")
    found = find_slides([root, label, a], exclude=[root / "out"])
    assert found == sorted([a.resolve(), label.resolve()])


def test_find_slides_errors_name_the_input(tmp_path):
    with pytest.raises(HistoInputError, match="no such file"):
        find_slides([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(HistoInputError, match="no slide files"):
        find_slides([tmp_path / "empty"])


def test_slide_ids_unique_for_same_stems():
    paths = [Path("/d/caseA/s1.tif"), Path("/d/caseB/s1.tif"), Path("/d/x/y/s2.png"),
             Path("/e/x/y/s2.png"), Path("/d/caseA/s1.png"), Path("/d/caseA/S1.jpg")]
    ids = assign_slide_ids(paths)
    assert len({i.lower() for i in ids}) == len(ids)
    assert ids[2] == "d__x__y__s2" and ids[3] == "e__x__y__s2"
    assert assign_slide_ids([Path("/a/one.tif"), Path("/a/two.tif")]) == ["one", "two"]
    # stable: the same inputs give the same ids in any order
    assert assign_slide_ids(paths[::-1]) == ids[::-1]


def test_plan_jobs_puts_each_slide_in_its_own_folder(tmp_path):
    _touch(tmp_path / "in" / "p1" / "s.tif")
    _touch(tmp_path / "in" / "p2" / "s.tif")
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "res")
    assert [j.slide_id for j in jobs] == ["p1__s", "p2__s"]
    assert {j.out_dir.parent for j in jobs} == {(tmp_path / "res").resolve()}


# ----------------------------------------------------------------------------- fingerprints
def test_fingerprint_changes_with_every_input():
    from histo.score.settings import ScoringSettings

    base = ScoreParams(stain="he", settings=ScoringSettings(), model={"name": "m", "version": "1"})
    fp = run_fingerprint("0" * 64, base)
    variants = [
        run_fingerprint("1" * 64, base),
        run_fingerprint("0" * 64, ScoreParams(stain="nadh", settings=base.settings, model=base.model)),
        run_fingerprint("0" * 64, ScoreParams(stain="he", settings=ScoringSettings(sex="female"),
                                              model=base.model)),
        run_fingerprint("0" * 64, ScoreParams(stain="he", settings=base.settings,
                                              model={"name": "m", "version": "2"})),
        run_fingerprint("0" * 64, ScoreParams(stain="he", settings=base.settings, model=base.model,
                                              pixel_size_um=0.5)),
        run_fingerprint("0" * 64, ScoreParams(stain="he", settings=base.settings, model=base.model,
                                              method="classical")),
    ]
    assert fp == run_fingerprint("0" * 64, base)
    assert len(set(variants + [fp])) == len(variants) + 1


# ----------------------------------------------------------------------------- the runner
def _fake_slide_fn(job, params, batch_info, progress):
    """A per-slide function with the contract of score_slide_file, without segmentation:
    'fails' on files whose bytes start with b'BAD', counts the bytes as fibers."""
    from histo.io.atomic import atomic_directory

    data = job.path.read_bytes()
    if data.startswith(b"BAD"):
        raise HistoInputError("not an image (test)", path=job.path)
    if data.startswith(b"BUG"):
        raise RuntimeError("boom")
    summary = {"slide": {"id": job.slide_id, "path": str(job.path), "stain": params.stain},
               "n_fibers": len(data), "statistics": {"n_counted": len(data) - 1},
               "batch": batch_info}
    with atomic_directory(job.out_dir) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary))
        (tmp / "fibers.csv").write_text("label\n" + "\n".join(str(i + 1) for i in range(len(data))))
        (tmp / "labels.tif").write_bytes(b"not really a tiff")
    if progress is not None:
        progress(1, 1)
    return summary


def _run(inputs, out, **kw):
    kw.setdefault("slide_fn", _fake_slide_fn)
    kw.setdefault("show_progress", False)
    kw.setdefault("write_report", False)
    return run_batch(inputs, out, **kw)


def test_run_batch_isolates_failures_and_writes_every_row(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.tif", b"aaaa")
    _touch(src / "b.tif", b"BAD")
    _touch(src / "c.png", b"BUG!")
    _touch(src / "d.png", b"dd")
    _touch(src / "e.czi", b"")  # empty file: checksum fine, but the per-slide function fails
    res = _run([src], tmp_path / "out")
    cohort = pd.read_csv(tmp_path / "out" / "cohort.csv")
    assert list(cohort["slide_id"]) == ["a", "b", "c", "d", "e"]
    assert list(cohort["status"]) == ["scored", "error", "error", "scored", "error"]
    assert cohort.loc[1, "error"] == "not an image (test)"
    assert "RuntimeError: boom" in cohort.loc[2, "error"]
    assert list(cohort["n_fibers"][[0, 3]]) == [4, 2]
    assert res.n_failed == 3
    assert not (tmp_path / "out" / "b").exists()


def test_rerun_skips_unchanged_redoes_changed_and_force(tmp_path):
    src = tmp_path / "in"
    a = _touch(src / "a.tif", b"aaaa")
    _touch(src / "b.tif", b"bbb")
    out = tmp_path / "out"
    _run([src], out)
    first = json.loads((out / "a" / "summary.json").read_text())
    assert list(_run([src], out).cohort["status"]) == ["unchanged", "unchanged"]
    a.write_bytes(b"aaaaaa")  # input changed
    assert list(_run([src], out).cohort["status"]) == ["scored", "unchanged"]
    assert json.loads((out / "a" / "summary.json").read_text())["n_fibers"] == 6
    # settings changed: every slide is redone
    assert list(_run([src], out, params=ScoreParams(stain="nadh")).cohort["status"]) == ["scored"] * 2
    assert list(_run([src], out, params=ScoreParams(stain="nadh"), force=True).cohort["status"]) \
        == ["scored"] * 2
    # an incomplete folder (a file deleted by hand) is redone
    (out / "b" / "fibers.csv").unlink()
    assert list(_run([src], out, params=ScoreParams(stain="nadh")).cohort["status"]) \
        == ["unchanged", "scored"]
    assert first["batch"]["input_sha256"] != json.loads((out / "a" / "summary.json").read_text())[
        "batch"]["input_sha256"]


def test_run_removes_leftovers_of_a_killed_run_and_refuses_a_live_lock(tmp_path):
    import os

    _touch(tmp_path / "in" / "a.tif", b"aaaa")
    out = tmp_path / "out"
    (out / ".a.partial-123-abcdef").mkdir(parents=True)
    (out / ".a.partial-123-abcdef" / "fibers.csv").write_text("half")
    (out / ".cohort.partial-9-1234.csv").write_text("half")
    (out / ".a.old-12345678").mkdir()
    (out / ".histo-lock").write_text("nohost 999999")  # a lock of a dead run elsewhere
    _run([tmp_path / "in"], out)
    assert sorted(p.name for p in out.iterdir()) == ["a", "cohort.csv"]
    import socket

    (out / ".histo-lock").write_text(f"{socket.gethostname()} {os.getppid()}")  # alive
    with pytest.raises(HistoInputError, match="another histo run"):
        _run([tmp_path / "in"], out)


def test_process_slide_reports_unreadable_input_as_error_row(tmp_path):
    job = SlideJob(tmp_path / "gone.tif", "gone", tmp_path / "out" / "gone")
    row = process_slide(job, ScoreParams(), slide_fn=_fake_slide_fn)
    assert row["status"] == "error" and "not found" in row["error"]
    assert row["path"].endswith("gone.tif")


def test_review_survives_a_rescore_and_is_set_aside_when_the_input_changed(tmp_path):
    src = tmp_path / "in"
    a = _touch(src / "a.tif", b"aaaa")
    out = tmp_path / "out"
    _run([src], out)
    (out / "a" / "review.json").write_text('{"format": "histo-review", "flags": {"1": "excluded"}}')
    (out / "a" / "review").mkdir()
    (out / "a" / "review" / "labels-x.tif").write_bytes(b"edited")
    res = _run([src], out, params=ScoreParams(stain="he"))  # settings changed: rescored
    assert res.cohort.loc[0, "status"] == "scored"
    assert res.cohort.loc[0, "note"] == "saved review kept"
    assert (out / "a" / "review.json").is_file() and (out / "a" / "review" / "labels-x.tif").is_file()
    a.write_bytes(b"new bytes")
    res = _run([src], out, params=ScoreParams(stain="he"))
    assert "set aside" in res.cohort.loc[0, "note"]
    assert not (out / "a" / "review.json").exists()
    assert (out / "a" / "review-of-previous-input" / "review.json").is_file()
    assert not (out / ".histo-review-stash" / "a").exists()


def test_cohort_table_puts_identity_columns_first():
    t = cohort_table([{"n_other": 3, "n_counted": 3, "slide_id": "x", "status": "scored"}])
    assert list(t.columns[:4]) == ["slide_id", "path", "status", "error"]
    assert t.columns[-1] == "n_other" and str(t["n_counted"].dtype) == "Int64"


# ----------------------------------------------------------------------------- the command
def test_score_command_end_to_end_exit_codes_and_resume(real_data, tmp_path, capsys):
    """Real pipeline (classical segmentation) on two small real images and a truncated file."""
    import shutil

    from histo.cli import main

    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    (src / "y").mkdir()
    shutil.copy(real_data / "he" / "fs_he_patch.tif", src / "x" / "patch.tif")
    shutil.copy(real_data / "psr" / "fs_psr_patch.tif", src / "y" / "patch.tif")
    (src / "y" / "patch_labels.tif").write_bytes(b"skipped: a label file")
    broken = src / "broken.tif"
    broken.write_bytes((real_data / "he" / "fs_he_patch.tif").read_bytes()[:3000])
    out = tmp_path / "out"
    args = ["score", str(src), "-o", str(out), "--method", "classical", "--pixel-size", "0.5",
            "--no-progress", "--permutations", "99"]
    assert main(args) == 1  # one slide failed
    printed = capsys.readouterr().out
    assert "2 of 3 slide(s) scored" in printed and "x__patch" in printed
    cohort = pd.read_csv(out / "cohort.csv")
    assert list(cohort["slide_id"]) == ["broken", "x__patch", "y__patch"]
    assert list(cohort["status"]) == ["error", "scored", "scored"]
    assert "truncated" in cohort.loc[0, "error"] or "corrupt" in cohort.loc[0, "error"]
    summary = json.loads((out / "x__patch" / "summary.json").read_text())
    assert summary["batch"]["method"] == "classical" and len(summary["batch"]["fingerprint"]) == 64
    assert summary["slide"]["id"] == "x__patch"
    assert (out / "report.html").is_file()
    broken.unlink()
    assert main(args) == 0
    assert list(pd.read_csv(out / "cohort.csv")["status"]) == ["unchanged", "unchanged"]
    assert main([*args, "--sex", "female"]) == 0  # settings changed: scored again
    assert list(pd.read_csv(out / "cohort.csv")["status"]) == ["scored", "scored"]
