"""Folders of slides: discovery, unique slide ids, resume, failure isolation, Dask parallel.

``run_batch`` turns a list of files and folders into one result folder per slide plus
``cohort.csv`` (one row per slide, error rows included) and ``report.html``:

* **discovery** (:func:`find_slides`) recurses into folders, keeps image and whole-slide
  files, skips label files (``*_labels.*``, ``*_cp_masks.*``, ...) and result folders;
* **slide ids** (:func:`assign_slide_ids`) are the file stems, disambiguated by their folders
  when two inputs share a stem, so two slides never write into the same folder;
* **resume**: every ``summary.json`` carries a *fingerprint* of the input checksum, the
  analysis options, the scoring settings and the model version (:func:`run_fingerprint`); a
  rerun skips slides whose fingerprint is unchanged and whose folder is complete, and redoes
  the others (``force=True`` redoes all). Slide folders are written atomically by
  :func:`histo.results.writer.write_slide_outputs`, the cohort files by :mod:`histo.io.atomic`, so a run
  killed at any moment leaves only complete folders and a rerun finishes the job;
* **failure isolation**: :func:`process_slide` never raises; a corrupt, truncated, empty or
  unsupported slide becomes an error row with the reason, and a worker process that dies
  becomes an error row too;
* **parallel**: one task per slide, run in this process (``workers=None``), on a local Dask
  cluster of ``workers`` processes, or on an existing ``distributed`` scheduler
  (``scheduler="tcp://host:8786"``; workers must see the same paths). Workers write the slide
  folders; only this process writes ``cohort.csv`` and the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from histo.batch.discovery import assign_slide_ids, find_slides
from histo.errors import HistoError, HistoInputError

log = logging.getLogger(__name__)

#: Files every complete slide folder holds (see ``histo.results.writer.write_slide_outputs``).
REQUIRED_OUTPUTS = ("summary.json", "fibers.csv", "labels.tif")
#: Cohort table columns that always come first (statistics follow, flattened).
COHORT_COLUMNS = ("slide_id", "path", "status", "error", "note", "n_fibers", "stain",
                  "pixel_size_um", "seconds")


@dataclass(frozen=True)
class SlideJob:
    """One slide to score: its input file, its id and its result folder."""

    path: Path
    slide_id: str
    out_dir: Path


@dataclass(frozen=True)
class ScoreParams:
    """Analysis options shared by every slide of a run (they enter the fingerprint).

    ``settings`` is a :class:`histo.score.settings.ScoringSettings` (defaults when None);
    ``model`` is the segmentation model's ``{"name", "version"}`` (None for classical).
    """

    stain: str = "auto"
    channel: int | None = None
    pixel_size_um: float | None = None
    method: str = "model"
    settings: Any = None
    model: dict[str, Any] | None = field(default=None, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, the part of the fingerprint that is not the input."""
        settings = self.settings
        if settings is not None and hasattr(settings, "to_dict"):
            settings = settings.to_dict()
        elif is_dataclass(settings):
            settings = asdict(settings)
        return {"stain": self.stain, "channel": self.channel, "pixel_size_um": self.pixel_size_um,
                "method": self.method, "settings": settings, "model": self.model}


def run_fingerprint(input_sha256: str, params: ScoreParams) -> str:
    """Hash of everything a slide's results depend on: input bytes, options, settings, model.

    Examples
    --------
    >>> a = run_fingerprint("ab" * 32, ScoreParams(stain="he"))
    >>> a == run_fingerprint("ab" * 32, ScoreParams(stain="he"))
    True
    >>> a == run_fingerprint("ab" * 32, ScoreParams(stain="nadh"))
    False
    """
    blob = json.dumps({"input_sha256": input_sha256, **params.as_dict()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_jobs(inputs: Iterable[str | Path], results_dir: str | Path) -> list[SlideJob]:
    """Find the slides in ``inputs`` and give each its id and result folder."""
    results_dir = Path(results_dir).resolve()
    paths = find_slides(inputs, exclude=[results_dir])
    return [SlideJob(p, sid, results_dir / sid) for p, sid in zip(paths, assign_slide_ids(paths))]


# --------------------------------------------------------------------------- one slide
def read_summary(out_dir: Path) -> dict[str, Any] | None:
    """The slide folder's ``summary.json``, or None when missing or unreadable."""
    try:
        return json.loads((Path(out_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(out_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The folder's summary when it is complete and was made with ``fingerprint``, else None."""
    if not all((Path(out_dir) / name).is_file() for name in REQUIRED_OUTPUTS):
        return None
    summary = read_summary(out_dir)
    if summary and summary.get("batch", {}).get("fingerprint") == fingerprint:
        return summary
    return None


def cohort_row(job: SlideJob, summary: dict[str, Any] | None, *, status: str,
               error: str = "", note: str = "", seconds: float = 0.0) -> dict[str, Any]:
    """One ``cohort.csv`` row: identity, status and the slide's statistics, flattened."""
    row: dict[str, Any] = {"slide_id": job.slide_id, "path": str(job.path), "status": status,
                           "error": error, "note": note, "n_fibers": None, "stain": None,
                           "pixel_size_um": None, "seconds": round(seconds, 2)}
    if summary:
        slide = summary.get("slide", {})
        row.update(n_fibers=summary.get("n_fibers"), stain=slide.get("stain"),
                   pixel_size_um=slide.get("pixel_size_um"))
        for key, value in (summary.get("statistics") or {}).items():
            if isinstance(value, (int, float, str, bool)) or value is None:
                row.setdefault(key, value)
    return row


def process_slide(job: SlideJob, params: ScoreParams, *, force: bool = False,
                  slide_fn: Callable | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Score one slide unless its results are up to date; never raises, returns its row.

    ``slide_fn(job, params, batch_info, progress) -> summary`` does the work and writes
    ``job.out_dir`` (default :func:`score_slide_file`); ``batch_info`` must be stored as the
    summary's ``"batch"`` entry so that a rerun recognises the folder.
    """
    from histo.io.image import image_checksum

    start = time.perf_counter()
    try:
        sha = image_checksum(job.path)
        fingerprint = run_fingerprint(sha, params)
        if not force:
            summary = is_up_to_date(job.out_dir, fingerprint)
            if summary is not None:
                log.info("%s: unchanged, kept %s", job.slide_id, job.out_dir)
                stash = _review_stash_dir(job)  # left by a run killed before restoring it
                note = _restore_review(job, stash, sha) if stash.is_dir() else ""
                return cohort_row(job, summary, status="unchanged", note=note)
        stash = _stash_review(job)
        batch_info = {"fingerprint": fingerprint, "input_sha256": sha, "slide_id": job.slide_id,
                      **params.as_dict()}
        summary = (slide_fn or score_slide_file)(job, params, batch_info, progress)
        note = _restore_review(job, stash, sha) if stash else ""
        return cohort_row(job, summary, status="scored", note=note,
                          seconds=time.perf_counter() - start)
    except HistoError as err:
        reason = getattr(err, "reason", None) or str(err)
    except MemoryError:
        reason = "out of memory while scoring this slide; try fewer --workers"
    except Exception as err:  # noqa: BLE001 - one bad slide must not stop a cohort
        log.exception("%s: unexpected failure", job.path)
        reason = f"{type(err).__name__}: {err}"
    log.warning("%s: %s", job.path, reason)
    return cohort_row(job, None, status="error", error=reason, seconds=time.perf_counter() - start)


def score_slide_file(job: SlideJob, params: ScoreParams, batch_info: dict[str, Any],
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Segment, measure and score one slide into ``job.out_dir``; return its summary.

    Whole-slide images (pyramidal or larger than :data:`histo.batch.wsi.WSI_MIN_PIXELS`) go through
    :func:`histo.batch.wsi.score_wsi` tile by tile; other images are read whole.
    """
    from histo.batch import wsi

    if wsi.is_whole_slide(job.path):
        return wsi.score_wsi(job.path, job.out_dir, params=params, batch_info=batch_info,
                             progress=progress)
    from histo.results.writer import write_slide_outputs
    from histo.io.image import read_image
    from histo.batch.pipeline import segment_and_analyze

    image = read_image(job.path, pixel_size_um=params.pixel_size_um, channel=params.channel)
    result = segment_and_analyze(image, stain=params.stain, channel=params.channel,
                                 method=params.method, settings=params.settings,
                                 progress=progress)
    result.summary["slide"]["id"] = job.slide_id
    result.summary["batch"] = batch_info
    write_slide_outputs(job.out_dir, labels=result.labels, fibers=result.fibers,
                        summary=result.summary, image=image, pixel_size_um=image.pixel_size_um)
    return result.summary


# --------------------------------------------------------------------------- reviews
REVIEW_STASH = ".histo-review-stash"


def _review_stash_dir(job: SlideJob) -> Path:
    return job.out_dir.parent / REVIEW_STASH / job.slide_id


def _stash_review(job: SlideJob) -> Path | None:
    """Copy a slide's saved review (napari) aside before its folder may be replaced.

    The copy lives in ``RESULTS/.histo-review-stash/<slide-id>/`` until
    :func:`_restore_review` has put it back, so even a run killed in between keeps it.
    """
    import shutil

    from histo.io.atomic import atomic_directory

    stash = _review_stash_dir(job)
    if stash.is_dir():  # left by a killed run: it is the newest copy
        return stash
    review = job.out_dir / "review.json"
    if not review.is_file():
        return None
    old = read_summary(job.out_dir) or {}
    old_sha = old.get("batch", {}).get("input_sha256") or old.get("slide", {}).get("sha256")
    with atomic_directory(stash) as tmp:
        shutil.copy2(review, tmp / "review.json")
        if (job.out_dir / "review").is_dir():
            shutil.copytree(job.out_dir / "review", tmp / "review")
        (tmp / "input_sha256").write_text(str(old_sha or ""))
    return stash


def _restore_review(job: SlideJob, stash: Path, input_sha256: str) -> str:
    """Put a stashed review back into the slide folder; return a note for the cohort row.

    A review of the same input file goes back in place (the report then checks that its
    labels still match); a review of a file that has changed since is kept apart in
    ``<slide-id>/review-of-previous-input/`` and not applied.
    """
    import shutil

    from histo.io.atomic import atomic_write_bytes

    same = (stash / "input_sha256").read_text().strip() in ("", input_sha256)
    if not job.out_dir.is_dir():
        return ""
    if same and not (job.out_dir / "review.json").is_file():
        if (stash / "review").is_dir():
            shutil.copytree(stash / "review", job.out_dir / "review", dirs_exist_ok=True)
        atomic_write_bytes(job.out_dir / "review.json", (stash / "review.json").read_bytes())
        note = "saved review kept"
    elif not same:
        shutil.copytree(stash, job.out_dir / "review-of-previous-input", dirs_exist_ok=True)
        note = "input changed: the saved review was set aside (review-of-previous-input/)"
    else:
        note = "saved review kept"
    shutil.rmtree(stash, ignore_errors=True)
    return note


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
    from histo.io.atomic import atomic_write_text
    from histo.batch.parallel import Progress, run_dask

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
            from histo.report.html import build_report

            result.report_path = build_report(results_dir, cohort=cohort)
    return result


class _ResultsLock:
    """Refuses a second ``histo score`` writing into the same results folder at once.

    The lock file holds host and pid; a lock left by a killed run (dead pid) is taken over.
    """

    def __init__(self, results_dir: Path):
        self.path = results_dir / ".histo-lock"

    def __enter__(self):
        import os
        import socket

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
    import os

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
    import shutil

    from histo.io.atomic import partial_leftovers

    old = [p for p in results_dir.iterdir() if p.name.startswith(".") and ".old-" in p.name]
    for tmp in [*partial_leftovers(results_dir), *old]:
        log.info("removing %s left by an interrupted run", tmp)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
