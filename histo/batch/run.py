"""Folders of slides: discovery, unique slide ids, resume, failure isolation, Dask parallel.

``run_batch`` turns a list of files and folders into one result folder per slide plus
``cohort.csv`` (one row per slide, error rows included) and ``report.html``:

* **discovery** (:func:`histo.batch.discovery.find_slides`) recurses into folders, keeps image and whole-slide
  files, skips label files (``*_labels.*``, ``*_cp_masks.*``, ...) and result folders;
* **slide ids** (:func:`histo.batch.discovery.assign_slide_ids`) are the file stems, disambiguated by their folders
  when two inputs share a stem, so two slides never write into the same folder;
* **resume**: every ``summary.json`` carries a *fingerprint* of the input checksum, the
  analysis options, the scoring settings and the model version (:func:`histo.batch.slides.run_fingerprint`); a
  rerun skips slides whose fingerprint is unchanged and whose folder is complete, and redoes
  the others (``force=True`` redoes all). Slide folders are written atomically by
  :func:`histo.results.writer.write_slide_outputs`, the cohort files by :mod:`histo.io.atomic`, so a run
  killed at any moment leaves only complete folders and a rerun finishes the job;
* **failure isolation**: :func:`histo.batch.slides.process_slide` never raises; a corrupt, truncated, empty or
  unsupported slide becomes an error row with the reason, and a worker process that dies
  becomes an error row too;
* **parallel**: one task per slide, run in this process (``workers=None``), on a local Dask
  cluster of ``workers`` processes, or on an existing ``distributed`` scheduler
  (``scheduler="tcp://host:8786"``; workers must see the same paths; :mod:`histo.batch.parallel`).
  Workers write the slide folders; only this process writes ``cohort.csv`` and the report.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from histo.batch.parallel import Progress, run_dask
from histo.batch.slides import COHORT_COLUMNS, ScoreParams, plan_jobs, process_slide
from histo.errors import HistoInputError
from histo.io.atomic import atomic_write_text, partial_leftovers
from histo.report.html import build_report

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the run
@dataclass
class BatchResult:
    """What :func:`run_batch` returns: the cohort table and where things were written."""

    cohort: pd.DataFrame
    results_dir: Path
    report_path: Path | None = None

    @property
    def n_failed(self) -> int:
        return int((self.cohort["status"] == "error").sum())


def cohort_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a table: :data:`COHORT_COLUMNS` first, then statistics in first-seen order."""
    table = pd.DataFrame(list(rows))
    extra = [c for c in table.columns if c not in COHORT_COLUMNS]
    return table.reindex(columns=[*COHORT_COLUMNS, *extra])


def run_batch(inputs: Iterable[str | Path], results_dir: str | Path, *,
              params: ScoreParams | None = None, workers: int | None = None,
              scheduler: str | None = None, force: bool = False, show_progress: bool = True,
              slide_fn: Callable | None = None, write_report: bool = True) -> BatchResult:
    """Score every slide in ``inputs`` into ``results_dir``; write ``cohort.csv`` and the report.

    Parameters
    ----------
    inputs : files and folders
        Folders are searched recursively (:func:`find_slides`).
    results_dir : path
        ``<slide-id>/`` per slide, ``cohort.csv`` and ``report.html``.
    params : ScoreParams
        Options for every slide; defaults when None.
    workers : int, optional
        Run on a local Dask cluster of this many processes; None scores in this process.
    scheduler : str, optional
        Address of a running ``distributed`` scheduler (wins over ``workers``).
    force : bool
        Redo slides whose results are up to date.
    show_progress : bool
        tqdm bars on stderr (slides, and tiles of big slides).
    slide_fn : callable, optional
        Replaces :func:`score_slide_file` (see :func:`process_slide`).
    write_report : bool
        Build ``report.html`` at the end.

    Returns
    -------
    BatchResult
        ``cohort`` has one row per slide, in input order; ``status`` is ``scored``,
        ``unchanged`` or ``error`` (with ``error`` saying why).
    """
    params = params or ScoreParams()
    results_dir = Path(results_dir).resolve()
    jobs = plan_jobs(inputs, results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    with _ResultsLock(results_dir):
        _remove_stale_temporaries(results_dir)
        log.info("%d slide(s) to score into %s", len(jobs), results_dir)
        progress = Progress(len(jobs), enabled=show_progress)
        try:
            if scheduler or workers:
                rows = run_dask(jobs, params, force, slide_fn, progress, workers, scheduler)
            else:
                rows = []
                for job in jobs:
                    rows.append(process_slide(job, params, force=force, slide_fn=slide_fn,
                                              progress=progress.tiles_callback(job.slide_id)))
                    progress.slide_done(rows[-1])
        finally:
            progress.close()
        cohort = cohort_table(rows)
        atomic_write_text(results_dir / "cohort.csv", cohort.to_csv(index=False))
        result = BatchResult(cohort, results_dir)
        if write_report:
            result.report_path = build_report(results_dir, cohort=cohort)
    return result


class _ResultsLock:
    """Refuses a second ``histo score`` writing into the same results folder at once.

    The lock file holds host and pid; a lock left by a killed run (dead pid) is taken over.
    """

    def __init__(self, results_dir: Path):
        self.path = results_dir / ".histo-lock"

    def __enter__(self):
        me = f"{socket.gethostname()} {os.getpid()}"
        try:
            host, pid = self.path.read_text().split()
            holder = int(pid)
        except (OSError, ValueError):
            host, holder = "", 0
        if host == socket.gethostname() and holder != os.getpid() and _pid_alive(holder):
            raise HistoInputError(f"another histo run (pid {holder}) is writing here; wait for "
                                  "it or choose another -o folder", path=self.path.parent)
        self.path.write_text(me)
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(results_dir: Path) -> None:
    """Delete what a killed run left behind: half-written files and folders
    (:func:`histo.io.atomic.partial_leftovers`) and old folders set aside during a swap."""
    old = [p for p in results_dir.iterdir() if p.name.startswith(".") and ".old-" in p.name]
    for tmp in [*partial_leftovers(results_dir), *old]:
        log.info("removing %s left by an interrupted run", tmp)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
