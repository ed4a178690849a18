"""Batch scoring throughput: slides per hour on the real images, serial vs Dask workers.

Run: .venv/bin/python benchmarks/bench_batch.py [--method classical|model] [--repeat 2]
                                                [FOLDER ...]   (default: data/real)

Scores the folder with ``histo score`` three ways, each from scratch (``--force`` into a fresh
results folder), in subprocesses timed end to end (start-up, cluster start, report included):

* ``serial``: no ``--workers``, one slide after the other in the command's own process (the
  baseline);
* ``--workers 1``: a local Dask cluster of one worker process;
* ``--workers 2``: a local Dask cluster of two worker processes.

Prints slides per hour for each (scored slides only; failed slides are listed), the ratio
``--workers 2`` / ``--workers 1`` and each against the serial baseline, and checks that the
three runs produced the same fiber tables. Note: the machine's other load changes the figures;
``--repeat N`` keeps the best of N runs of each.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HISTO = str(Path(sys.executable).with_name("histo"))


def run(inputs: list[Path], out: Path, method: str, workers: int | None) -> tuple[float, pd.DataFrame]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [HISTO, "score", *map(str, inputs), "-o", str(out), "--method", method, "--force",
           "--no-progress"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"histo score failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, pd.read_csv(out / "cohort.csv")


def tables(out: Path, cohort: pd.DataFrame) -> dict[str, pd.DataFrame]:
    ok = cohort.loc[cohort["status"] != "error", "slide_id"]
    return {sid: pd.read_csv(out / sid / "fibers.csv") for sid in ok}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", type=Path, default=[ROOT / "data" / "real"])
    ap.add_argument("--method", default="classical", choices=("classical", "model"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    results = {}
    try:
        for name, workers in (("serial", None), ("--workers 1", 1), ("--workers 2", 2)):
            best = None
            for r in range(args.repeat):
                wall, cohort = run(args.inputs, work / name.replace(" ", "").strip("-"),
                                   args.method, workers)
                best = wall if best is None else min(best, wall)
            results[name] = (best, cohort)
        first = next(iter(results.values()))[1]
        n_ok = int((first["status"] != "error").sum())
        failed = first.loc[first["status"] == "error", ["slide_id", "error"]]
        print(f"{len(first)} slides found in {', '.join(map(str, args.inputs))}: {n_ok} scored, "
              f"{len(failed)} failed; method {args.method}")
        for _, row in failed.iterrows():
            print(f"  failed: {row['slide_id']}: {row['error'][:90]}")
        ref = tables(work / "serial", first)
        for name, (wall, cohort) in results.items():
            other = tables(work / name.replace(" ", "").strip("-"), cohort)
            same = ref.keys() == other.keys() and all(ref[k].equals(other[k]) for k in ref)
            print(f"{name:12s} {wall:7.1f} s   {3600 * n_ok / wall:7.0f} slides/hour   "
                  f"fibers tables equal to serial: {same}")
        s, w1, w2 = (results[k][0] for k in ("serial", "--workers 1", "--workers 2"))
        print(f"ratio --workers 2 / --workers 1 (throughput): {w1 / w2:.2f}x")
        print(f"ratio --workers 1 / serial: {s / w1:.2f}x; --workers 2 / serial: {s / w2:.2f}x")
        sizes = first.loc[first["status"] != "error", "slide_id"]
        print(f"scored slides: {', '.join(sizes)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
