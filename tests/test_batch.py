"""Batch scoring: discovery, slide ids, resume fingerprints, failure isolation, cohort, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histo.batch import (
    ScoreParams,
    SlideJob,
    cohort_table,
    is_up_to_date,
    plan_jobs,
    process_slide,
    run_batch,
    run_fingerprint,
)
from histo.discovery import assign_slide_ids, find_slides
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
    from histo.settings import ScoringSettings

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
