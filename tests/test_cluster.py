"""Batch scoring on Dask: a local cluster (--workers) and a real scheduler with two workers
started as separate processes on 127.0.0.1 (--scheduler); results must equal a serial run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from histo.batch.run import ScoreParams, run_batch

TESTS = Path(__file__).resolve().parent
DASK = Path(sys.executable).with_name("dask")


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Terminate a process and its children (own session), then kill what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture
def dask_cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, free ports.

    Yields the scheduler address; everything is shut down in teardown, even on failure.
    """
    if not DASK.exists():
        pytest.skip("the dask command line is not installed in this environment")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    sched_file = tmp_path / "scheduler.json"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name, args):
        out = open(logs / f"{name}.log", "wb")
        procs.append(subprocess.Popen([str(DASK), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True, cwd=tmp_path))

    try:
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(sched_file), "--idle-timeout", "600"])
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
            assert procs[0].poll() is None, (logs / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            start(f"worker{i}", ["worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                 "--nworkers", "1", "--no-dashboard", "--name", f"w{i}",
                                 "--death-timeout", "60", "--memory-limit", "0"])
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            workers = client.scheduler_info(n_workers=-1)["workers"] \
                if "n_workers" in Client.scheduler_info.__code__.co_varnames \
                else client.scheduler_info()["workers"]
            assert len(workers) == 2
            pids = client.run(os.getpid)
            assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _copy_inputs(real_data: Path, dest: Path) -> Path:
    """A small mixed folder: three H&E crops (two with the same name in different folders)
    and a broken PNG."""
    import tifffile

    img = tifffile.imread(real_data / "he" / "cn_img01.tif")
    (dest / "sub").mkdir(parents=True)
    tifffile.imwrite(dest / "crop.tif", img[:400, :400])
    tifffile.imwrite(dest / "sub" / "crop.tif", img[400:800, :400])
    tifffile.imwrite(dest / "other.tif", img[:400, 500:900])
    (dest / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return dest


def _fibers_tables(results: Path, cohort: pd.DataFrame) -> dict[str, pd.DataFrame]:
    ok = cohort[cohort["status"] != "error"]["slide_id"]
    return {sid: pd.read_csv(results / sid / "fibers.csv") for sid in ok}


def _slide_tasks(address: str) -> int:
    """How many histo slide tasks the scheduler has seen (its transition log)."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return client.run_on_scheduler(lambda dask_scheduler: len(
            {str(t[0]) for t in dask_scheduler.transition_log if str(t[0]).startswith("histo-slide-")}))


@pytest.mark.slow
def test_scheduler_with_two_worker_processes_equals_serial(dask_cluster, real_data, tmp_path, monkeypatch, capsys):
    inputs = _copy_inputs(real_data, tmp_path / "slides")
    assert sorted(p.name for p in inputs.rglob("*")) == ["broken.png", "crop.tif", "crop.tif",
                                                         "other.tif", "sub"]
    params = ScoreParams(stain="he", method="classical", pixel_size_um=0.5)
    serial = run_batch([inputs], tmp_path / "serial", params=params, show_progress=False,
                       write_report=False)
    remote = run_batch([inputs], tmp_path / "remote", params=params, scheduler=dask_cluster,
                       show_progress=False)
    assert list(remote.cohort["slide_id"]) == list(serial.cohort["slide_id"])
    assert list(remote.cohort["status"]) == list(serial.cohort["status"])
    assert (remote.cohort["status"] == "error").sum() == 1  # the broken PNG, isolated
    a = _fibers_tables(tmp_path / "serial", serial.cohort)
    b = _fibers_tables(tmp_path / "remote", remote.cohort)
    assert a.keys() == b.keys() and len(a) == 3
    for sid in a:
        assert len(a[sid]) > 0
        pd.testing.assert_frame_equal(a[sid], b[sid])
    assert (tmp_path / "remote" / "report.html").is_file()
    # the workers wrote the slide folders: each summary names the same fingerprint as serial
    for sid in a:
        fa = json.loads((tmp_path / "serial" / sid / "summary.json").read_text())["batch"]
        fb = json.loads((tmp_path / "remote" / sid / "summary.json").read_text())["batch"]
        assert fa["fingerprint"] == fb["fingerprint"]

    # histo score finds the cluster as a cluster job tells it: $DASK_SCHEDULER_ADDRESS, or the
    # scheduler file written by `dask scheduler --scheduler-file` (issue 12)
    from histo.cli import main

    seen = _slide_tasks(dask_cluster)
    assert seen == 4
    options = ["--stain", "he", "--method", "classical", "--pixel-size", "0.5", "--permutations", "99"]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_cluster)
    assert main(["score", str(inputs), "-o", str(tmp_path / "env"), *options, "-q", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in doc["slides"]] == list(serial.cohort["status"])
    assert _slide_tasks(dask_cluster) == seen + 4  # scored on the cluster, not in this process
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert main(["score", str(inputs), "-o", str(tmp_path / "file"), *options,
                 "--scheduler-file", str(tmp_path / "scheduler.json")]) == 1
    err = capsys.readouterr().err
    assert _slide_tasks(dask_cluster) == seen + 8
    # not a terminal: one plain progress line per slide on stderr
    assert sorted(line.split("]")[0] for line in err.splitlines() if line.startswith("[")) == \
        ["[1/4", "[2/4", "[3/4", "[4/4"]


def test_local_cluster_equals_serial(tmp_path):
    from test_batch import _fake_slide_fn, _touch

    src = tmp_path / "in"
    for name, data in (("a.tif", b"aaaa"), ("b.tif", b"BAD"), ("c/d.png", b"dd")):
        _touch(src / name, data)
    kw = dict(slide_fn=_fake_slide_fn, show_progress=False, write_report=False)
    serial = run_batch([src], tmp_path / "serial", **kw)
    par = run_batch([src], tmp_path / "par", workers=2, **kw)
    cols = ["slide_id", "status", "error", "n_fibers"]
    pd.testing.assert_frame_equal(serial.cohort[cols], par.cohort[cols])
    # rerun through the cluster: everything unchanged
    again = run_batch([src], tmp_path / "par", workers=2, **kw)
    assert list(again.cohort["status"]) == ["unchanged", "error", "unchanged"]


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    from test_batch import _fake_slide_fn, _touch

    from histo.batch import parallel
    from histo.errors import HistoInputError

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", "2s")
    _touch(tmp_path / "in" / "a.tif")
    with pytest.raises(HistoInputError, match="Dask scheduler"):
        run_batch([tmp_path / "in"], tmp_path / "out", scheduler="tcp://127.0.0.1:1",
                  slide_fn=_fake_slide_fn, show_progress=False, params=ScoreParams())
