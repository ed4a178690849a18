"""One slide of a batch: its job, resume fingerprint, scoring into its folder, cohort row.

:func:`process_slide` is what a batch runs per slide, in this process or on a Dask worker
(:mod:`histo.batch.parallel`): it skips a slide whose results are up to date (same
:func:`run_fingerprint`), otherwise scores it (:func:`score_slide_file`: whole slides tile by
tile through :mod:`histo.batch.wsi`, other images through :mod:`histo.batch.pipeline`), keeps a
saved review across the rewrite, and never raises: a failure is an error row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from histo.batch import wsi
from histo.batch.discovery import assign_slide_ids, find_slides
from histo.batch.pipeline import segment_and_analyze
from histo.errors import HistoError
from histo.io.atomic import atomic_directory, atomic_write_bytes, atomic_write_text
from histo.io.image import image_checksum, read_image
from histo.io.jsonable import to_jsonable
from histo.report.cohort import slide_figures
from histo.results.folder import check_result_dir
from histo.results.writer import write_slide_outputs
from histo.review.state import REVIEW_FILE, read_review_doc, rebase_review
from histo.score.cases import case_for
from histo.score.settings import ScoringSettings

log = logging.getLogger(__name__)

#: Files every complete slide folder holds (see ``histo.results.writer.write_slide_outputs``).
REQUIRED_OUTPUTS = ("summary.json", "fibers.csv", "labels.tif")
#: Cohort table columns that always come first (statistics follow, flattened). ``qc_status``
#: is the segmentation verdict (ok / warn / fail, :mod:`histo.score.qc`) and ``qc_reasons`` its
#: reasons joined by "; "; both are empty for a slide that failed (``status`` error) or whose
#: summary predates the QC, since there is no verdict to give.
COHORT_COLUMNS = ("slide_id", "path", "status", "error", "note", "qc_status", "qc_reasons",
                  "n_fibers", "stain", "pixel_size_um", "seconds")


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
    fiber_diameter_px: float | None = None
    #: the model's name or path (None: the shipped model); ``model`` identifies it in the fingerprint
    model_path: str | None = field(default=None, hash=False)
    #: ``--cases``: {slide: histo.score.cases.Case}; each slide's case sets its normal reference
    #: (:meth:`for_slide`), so it enters the slide's fingerprint through its settings
    cases: Any = field(default=None, hash=False, compare=False)

    def for_slide(self, job: SlideJob) -> ScoreParams:
        """These options with the slide's case (if any) applied to the settings."""
        if not self.cases:
            return self
        case = case_for(self.cases, job.slide_id, job.path)
        if case is None:
            return replace(self, cases=None)
        settings = (self.settings or ScoringSettings()).replace(**case.overrides())
        return replace(self, settings=settings, cases=None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, the part of the fingerprint that is not the input."""
        settings = self.settings
        if settings is not None and hasattr(settings, "to_dict"):
            settings = settings.to_dict()
        elif is_dataclass(settings):
            settings = asdict(settings)
        out = {"stain": self.stain, "channel": self.channel, "pixel_size_um": self.pixel_size_um,
               "method": self.method, "settings": settings, "model": self.model}
        if self.fiber_diameter_px is not None:  # only when given: earlier fingerprints stay valid
            out["fiber_diameter_px"] = self.fiber_diameter_px
        return out


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
                           "error": error, "note": note, "qc_status": "", "qc_reasons": "",
                           "n_fibers": None, "stain": None,
                           "pixel_size_um": None, "seconds": round(seconds, 2)}
    if summary:
        slide = summary.get("slide", {})
        qc = summary.get("qc") or {}
        row.update(n_fibers=summary.get("n_fibers"), stain=slide.get("stain"),
                   pixel_size_um=slide.get("pixel_size_um"), qc_status=qc.get("status") or "",
                   qc_reasons="; ".join(str(r) for r in qc.get("reasons") or []))
        for key, value in slide_figures(summary).items():  # histo.report.cohort.COHORT_COLUMNS
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
    start = time.perf_counter()
    try:
        params = params.for_slide(job)  # the slide's case (--cases) sets its reference
        check_result_dir(job.out_dir)  # a folder histo did not write is never touched
        sha = image_checksum(job.path)
        fingerprint = run_fingerprint(sha, params)
        if not force:
            summary = is_up_to_date(job.out_dir, fingerprint)
            if summary is not None:
                log.info("%s: unchanged, kept %s", job.slide_id, job.out_dir)
                stash = _review_stash_dir(job)  # left by a run killed before restoring it
                note = _restore_review(job, stash, sha) if stash.is_dir() else ""
                return cohort_row(job, summary, status="unchanged", note=_review_check(job, note))
        stash = _stash_review(job)
        batch_info = {"fingerprint": fingerprint, "input_sha256": sha, "slide_id": job.slide_id,
                      **params.as_dict()}
        summary = (slide_fn or score_slide_file)(job, params, batch_info, progress)
        note = _restore_review(job, stash, sha) if stash else ""
        _note_rereview(job, summary, note)
        return cohort_row(job, summary, status="scored", note=_review_check(job, note),
                          seconds=time.perf_counter() - start)
    except HistoError as err:
        reason = getattr(err, "reason", None) or str(err)
        where = getattr(err, "path", None)
        if where is not None and Path(where) != Path(job.path):  # name the folder or file at fault
            reason = str(err)
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
    if wsi.is_whole_slide(job.path):
        return wsi.score_wsi(job.path, job.out_dir, params=params, batch_info=batch_info,
                             progress=progress)

    image = read_image(job.path, pixel_size_um=params.pixel_size_um, channel=params.channel)
    result = segment_and_analyze(image, stain=params.stain, channel=params.channel,
                                 method=params.method, settings=params.settings,
                                 progress=progress, fiber_diameter_px=params.fiber_diameter_px,
                                 model=params.model_path)
    result.summary["slide"]["id"] = job.slide_id
    result.summary["batch"] = batch_info
    write_slide_outputs(job.out_dir, labels=result.labels, fibers=result.fibers,
                        summary=result.summary, image=image, pixel_size_um=image.pixel_size_um)
    return result.summary


# --------------------------------------------------------------------------- reviews
REVIEW_STASH = ".histo-review-stash"
#: The slide's labels.tif before the rescore, kept in the stash beside its review.
PREVIOUS_LABELS = "previous-labels.tif"


def _review_stash_dir(job: SlideJob) -> Path:
    return job.out_dir.parent / REVIEW_STASH / job.slide_id


def _stash_review(job: SlideJob) -> Path | None:
    """Copy a slide's saved review (napari) aside before its folder may be replaced.

    The copy lives in ``RESULTS/.histo-review-stash/<slide-id>/`` until
    :func:`_restore_review` has put it back, so even a run killed in between keeps it.
    """
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
        if (job.out_dir / "labels.tif").is_file():  # what the flags point at, to carry them over
            _link_or_copy(job.out_dir / "labels.tif", tmp / PREVIOUS_LABELS)
        (tmp / "input_sha256").write_text(str(old_sha or ""))
    return stash


def _review_check(job: SlideJob, note: str) -> str:
    """``note``, or a note that the slide's saved review is damaged (kept, not applied)."""
    path = job.out_dir / REVIEW_FILE
    if not path.is_file():
        return note
    try:
        read_review_doc(path)
    except HistoError as err:
        return f"saved review damaged, kept but not applied: {err}"
    return note


def _restore_review(job: SlideJob, stash: Path, input_sha256: str) -> str:
    """Put a stashed review back into the slide folder; return a note for the cohort row.

    A review of the same input file goes back in place (the report then checks that its
    labels still match); a review of a file that has changed since is kept apart in
    ``<slide-id>/review-of-previous-input/`` and not applied.
    """
    same = (stash / "input_sha256").read_text().strip() in ("", input_sha256)
    if not job.out_dir.is_dir():
        return ""
    if same:
        if not (job.out_dir / "review.json").is_file():
            if (stash / "review").is_dir():
                shutil.copytree(stash / "review", job.out_dir / "review", dirs_exist_ok=True)
            atomic_write_bytes(job.out_dir / "review.json", (stash / "review.json").read_bytes())
        try:  # tie the review to the new labels.tif (same pixels, or flags carried by overlap)
            note = rebase_review(job.out_dir, stash / PREVIOUS_LABELS)
        except HistoError as err:
            note = f"saved review damaged, kept but not applied: {err}"
    elif not same:
        aside = job.out_dir / "review-of-previous-input"
        n = 1
        while aside.exists() or aside.is_symlink():  # never over an earlier set-aside review
            n += 1
            aside = job.out_dir / f"review-of-previous-input-{n}"
        shutil.copytree(stash, aside)
        # the writer carried the review into the new folder: it belongs to the old input
        (job.out_dir / "review.json").unlink(missing_ok=True)
        shutil.rmtree(job.out_dir / "review", ignore_errors=True)
        note = f"input changed: the saved review was set aside ({aside.name}/)"
    shutil.rmtree(stash, ignore_errors=True)
    return note


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _note_rereview(job: SlideJob, summary: dict[str, Any] | None, note: str) -> None:
    """Record flags that need re-review in the slide's summary.json (and ``summary``)."""
    if not summary or "need re-review" not in note:
        return
    try:
        lost = read_review_doc(job.out_dir / REVIEW_FILE).get("needs_rereview") or []
    except HistoError:
        return
    summary["review"] = {"note": note, "needs_rereview": lost}
    atomic_write_text(job.out_dir / "summary.json",
                      json.dumps(to_jsonable(summary), indent=2, ensure_ascii=False) + "\n")
