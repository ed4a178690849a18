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

from histo.batch.parallel import Progress, resolve_scheduler, run_dask
from histo.batch.slides import ScoreParams, SlideJob, cohort_row, plan_jobs, process_slide, read_summary
from histo.errors import HistoInputError
from histo.io.atomic import atomic_write_text, partial_leftovers
from histo.report.cohort import cohort_frame
from histo.report.html import build_report
from histo.results.folder import check_inputs_outside, check_root_file, is_histo_result

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
    """Rows as a table: :data:`histo.report.cohort.COHORT_COLUMNS` first with their dtypes
    (counts stay integers when a failed slide's row is empty), then per-type figures and
    other statistics (:func:`histo.report.cohort.cohort_frame`)."""
    return cohort_frame(rows)


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
    inputs = list(inputs)
    results_dir = Path(results_dir).resolve()
    check_inputs_outside(inputs, results_dir)
    check_root_file(results_dir / "cohort.csv")
    if write_report:
        check_root_file(results_dir / "report.html")
    scheduler = resolve_scheduler(scheduler)
    jobs = plan_jobs(inputs, results_dir)
    if workers and not scheduler and jobs and workers > len(jobs):
        log.warning("--workers %d is more than the %d slide(s) to score; using %d", workers,
                    len(jobs), len(jobs))
        workers = len(jobs)
    _make_results_dir(results_dir)
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
        rows += earlier_slide_rows(results_dir, {job.slide_id for job in jobs})
        cohort = cohort_table(rows)
        atomic_write_text(results_dir / "cohort.csv", cohort.to_csv(index=False))
        result = BatchResult(cohort, results_dir)
        if write_report:
            result.report_path = build_report(results_dir, cohort=cohort)
    return result


def earlier_slide_rows(results_dir: Path, done: set[str]) -> list[dict[str, Any]]:
    """Cohort rows for the slide folders in ``results_dir`` that this run did not touch.

    ``cohort.csv`` and the report cover every slide of the results folder: slides scored by
    an earlier run on other inputs are listed as ``unchanged`` with a note saying so.
    """
    rows = []
    for folder in sorted(results_dir.iterdir()):
        if (folder.name in done or folder.name.startswith(".") or folder.is_symlink()
                or not folder.is_dir() or not is_histo_result(folder)):
            continue
        summary = read_summary(folder)
        if not isinstance(summary, dict) or not isinstance(summary.get("slide"), dict):
            continue
        job = SlideJob(Path(str(summary["slide"].get("path") or "")), folder.name, folder)
        rows.append(cohort_row(job, summary, status="unchanged",
                               note="not among this run's inputs: kept from an earlier run"))
    return rows


def _make_results_dir(results_dir: Path) -> None:
    """Create the results folder, or say in one line why it cannot be."""
    if results_dir.exists() and not results_dir.is_dir():
        raise HistoInputError("is a file, not a folder; choose another -o folder", path=results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HistoInputError(f"cannot create the results folder ({err.strerror or err}); choose "
                              "another -o folder", path=results_dir) from err
    if not os.access(results_dir, os.W_OK | os.X_OK):
        raise HistoInputError("the results folder is not writable (read-only disk or no "
                              "permission); choose another -o folder", path=results_dir)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class _ResultsLock:
    """Refuses a second ``histo score`` writing into the same results folder at once.

    The lock file holds host and pid; a lock left by a killed run (dead pid) is taken over.
    It is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a symbolic link in its place is
    refused, never followed (it could point at any file of the user's).
    """

    def __init__(self, results_dir: Path):
        self.path = results_dir / ".histo-lock"
        self.taken = False

    def _refuse_link(self) -> None:
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise HistoInputError("is a symbolic link or not a regular file; histo will not write "
                                  "through it: delete it and run again", path=self.path)

    def _holder(self) -> tuple[str, int]:
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
            with os.fdopen(fd) as fh:
                host, pid = fh.read().split()
            return host, int(pid)
        except (OSError, ValueError):
            return "", 0

    def __enter__(self):
        me = f"{socket.gethostname()} {os.getpid()}"
        for _attempt in range(3):
            self._refuse_link()
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            except FileExistsError:
                host, holder = self._holder()
                if host == socket.gethostname() and holder != os.getpid() and _pid_alive(holder):
                    raise HistoInputError(f"another histo run (pid {holder}) is writing here; wait "
                                          "for it or choose another -o folder",
                                          path=self.path.parent) from None
                self._refuse_link()
                self.path.unlink(missing_ok=True)  # a killed run's lock (or our own): take it over
                continue
            except OSError as err:
                raise HistoInputError(f"cannot create the lock file ({err.strerror or err}); "
                                      "check the folder's permissions", path=self.path) from err
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            self.taken = True
            return self
        raise HistoInputError("cannot take the lock file (another run keeps creating it); "
                              "wait for it or choose another -o folder", path=self.path)

    def __exit__(self, *exc):
        if self.taken and not self.path.is_symlink():
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
    (:func:`histo.io.atomic.partial_leftovers`) and old folders set aside during a swap.

    An old folder whose slide folder is missing (the run was killed between the two renames
    of a swap) is put back in place instead: it may hold a review.
    """
    old = []
    for p in results_dir.iterdir():
        if not (p.name.startswith(".") and ".old-" in p.name) or p.is_symlink():
            continue
        home = results_dir / p.name[1:].rsplit(".old-", 1)[0]
        if is_histo_result(p) and not home.exists() and not home.is_symlink():
            log.warning("restoring %s from %s left by an interrupted run", home, p)
            os.replace(p, home)
            continue
        old.append(p)
    for tmp in [*partial_leftovers(results_dir), *old]:
        log.info("removing %s left by an interrupted run", tmp)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
