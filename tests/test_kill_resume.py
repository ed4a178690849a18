"""`histo score` killed with SIGKILL at several moments, then rerun: the results must be
complete and valid, finished slides kept, and no half-written file or temporary folder left."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo.results.folder import MARKER

HISTO = Path(sys.executable).with_name("histo")


def _make_slides(real_data: Path, dest: Path) -> list[str]:
    """Eight small H&E slides (crops of the two real images) in two sub-folders."""
    names = []
    for name in ("cn_img01", "cn_img02"):
        img = tifffile.imread(real_data / "he" / f"{name}.tif")
        for i, (y, x) in enumerate(((0, 0), (0, 500), (500, 0), (500, 500))):
            folder = dest / name
            folder.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(folder / f"crop{i}.tif", img[y:y + 500, x:x + 500])
            names.append(f"{name}__crop{i}")
    return names


def _start_args(inputs: Path, out: Path) -> list[str]:
    return [str(HISTO), "score", str(inputs), "-o", str(out), "--method", "classical",
            "--stain", "he", "--pixel-size", "0.5", "--no-progress", "--permutations", "99"]


def _start(inputs: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(_start_args(inputs, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _slide_dirs(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if out.is_dir() else []


def _hidden(out: Path) -> list[Path]:
    """Hidden leftovers: temporary folders, partial files, the lock (not histo's result marker)."""
    return [p for p in out.rglob(".*") if p.name != MARKER] if out.is_dir() else []


def _kill_when(proc: subprocess.Popen, out: Path, condition, timeout: float = 300) -> bool:
    """SIGKILL ``proc`` as soon as ``condition(out)`` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition(out):
            proc.kill()
            proc.wait(30)
            return True
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("histo score neither finished nor reached the kill point")


def _assert_complete(folder: Path) -> None:
    """A visible slide folder is always whole: every file present and readable."""
    names = {p.name for p in folder.iterdir()}
    assert {"summary.json", "fibers.csv", "fibers.parquet", "labels.tif", "overlay.png",
            "fibers.geojson", "rois.zip"} <= names, (folder, names)
    summary = json.loads((folder / "summary.json").read_text())
    fibers = pd.read_csv(folder / "fibers.csv")
    assert len(fibers) == summary["n_fibers"] > 0
    labels = tifffile.imread(folder / "labels.tif")
    assert labels.shape == (500, 500) and labels.max() > 0
    assert set(np.unique(labels[labels > 0])) == set(fibers["label"])
    json.loads((folder / "fibers.geojson").read_text())


@pytest.mark.slow
def test_sigkill_at_several_moments_then_resume(real_data, tmp_path):
    inputs, out = tmp_path / "slides", tmp_path / "results"
    expected = _make_slides(real_data, inputs)
    moments = {
        "while the first slide folder is being written":
            lambda o: any(".partial-" in p.name for p in _hidden(o)),
        "just after the first slide folder appeared": lambda o: len(_slide_dirs(o)) >= 1,
        "half-way": lambda o: len(_slide_dirs(o)) >= len(expected) // 2 + 2,
    }
    killed_at = []
    for name, condition in moments.items():
        done_before = {p.name for p in _slide_dirs(out)}
        proc = _start(inputs, out)
        if _kill_when(proc, out, condition):
            killed_at.append(name)
        # whatever is visible after a kill is complete; the cohort file is whole or absent
        for folder in _slide_dirs(out):
            _assert_complete(folder)
        assert done_before <= {p.name for p in _slide_dirs(out)}
        if (out / "cohort.csv").exists():
            pd.read_csv(out / "cohort.csv")
    assert killed_at == list(moments), killed_at  # every kill really happened mid-run

    n_done = len(_slide_dirs(out))
    proc = subprocess.run(_start_args(inputs, out), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cohort = pd.read_csv(out / "cohort.csv")
    assert sorted(cohort["slide_id"]) == sorted(expected)
    assert (cohort["status"] == "unchanged").sum() >= n_done - 1  # finished slides were kept
    assert set(cohort["status"]) <= {"scored", "unchanged"}
    for folder in _slide_dirs(out):
        _assert_complete(folder)
    assert sorted(p.name for p in _slide_dirs(out)) == sorted(expected)
    assert _hidden(out) == [], _hidden(out)  # no temp folder, partial file or lock left
    assert (out / "report.html").is_file()

