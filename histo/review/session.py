"""The slide under review, without Qt: labels, per-fiber table, summary, flags, saving.

:class:`ReviewSession` is the model behind the dock widget (the widget only lays out
controls and calls it). Every operation is a plain method on arrays and tables, so it is
tested without a display. The heavy steps are split into a pure *compute* part that a worker
thread runs on a snapshot (:func:`rescore_table`, :meth:`ReviewSession.compute_recompute`)
and a cheap *accept* part run on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from histo.errors import HistoError, HistoInputError
from histo.io.image import ImageLike, read_image
from histo.measure.adjacency import fiber_adjacency
from histo.results.writer import write_slide_outputs
from histo.review.flags import FLAGS, FlagHistory, apply_review, strip_review
from histo.review.options import with_pixel_size
from histo.review.recompute import changed_labels, recompute_changed
from histo.review.rescore import rescore_flags
from histo.review.state import save_review
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings
from histo.score.summary import rebuild_summary

log = logging.getLogger(__name__)


def rescore_table(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None, flags: dict[int, str], *,
                  settings: ScoringSettings, stain: str, edges: np.ndarray | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score a measured table again with a review: exclusions honoured, SAD calls overridden.

    Pure: runs in a worker thread on a snapshot. Returns the reviewed table and the scoring
    part of the summary (``settings``, ``statistics``, ``grouping``, ...).
    """
    base = strip_review(fibers)
    base["excluded"] = base["label"].isin([k for k, v in flags.items() if v == "excluded"]).to_numpy()
    base["review_flag"] = base["label"].map(flags).astype(object).fillna("").to_numpy(dtype=object)
    scored, part = score_slide(base, labels, image, settings, stain=stain, edges=edges)
    return apply_review(scored, flags), part


def rescore_snapshot(session: ReviewSession, fibers: pd.DataFrame, labels: np.ndarray, flags: dict[int, str], *,
                     summary: dict[str, Any], settings: ScoringSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score a snapshot (:meth:`ReviewSession.rescore_inputs`) again after flags or settings changed.

    Only what a flag can change is recomputed, without the slide's pixels
    (:func:`histo.review.rescore.rescore_flags`, the computation of ``histo report``); the
    adjacency of the labels is computed once per labels and cached. Runs in a worker thread.
    """
    edges = session.edges_for(labels)
    return rescore_flags(fibers, labels, flags, summary=summary, settings=settings, edges=edges)


@dataclass
class ReviewSession:
    """State of one slide under review.

    Attributes
    ----------
    labels : (Y, X) uint32 array or None
        The labels the table was measured on (a private copy; the canvas may be ahead of it
        after edits, until :meth:`recompute`). None for a whole slide shown as a pyramid:
        flags only, no edits.
    fibers : DataFrame
        The scored per-fiber table with the review applied (what the table view shows).
    summary : dict
        ``summary.json``-like dict: slide info, statistics, grouping, evidence, ...
    flags : dict of int to str
        Reviewer flags (:data:`histo.review.state.FLAGS`).
    image : histo.io.image.ImageData or None
        Pixels for re-measuring and scoring (None when the slide file is not available).
    stain, channel, settings
        As used for scoring.
    result_dir : Path or None
        ``RESULTS/<slide-id>/`` once the slide has one (opened from it or saved).
    base : histo.batch.pipeline.SlideResult or None
        The unreviewed result, written as the result folder on the first save.
    dirty : bool
        Unsaved flags or edits.
    seen : set of int
        Fibers the reviewer stepped past in the review walk (:meth:`mark_seen`); saved as
        ``seen_labels`` where still unflagged and unedited (:func:`histo.review.state.save_review`).
    """

    labels: np.ndarray | None
    fibers: pd.DataFrame
    summary: dict[str, Any]
    flags: dict[int, str] = field(default_factory=dict)
    image: Any = None
    stain: str = "he"
    channel: int | None = None
    settings: Any = None
    result_dir: Path | None = None
    base: Any = None
    dirty: bool = False
    edited: bool = False
    version: int = 0
    history: FlagHistory = field(default_factory=FlagHistory, repr=False)
    seen: set[int] = field(default_factory=set)
    _edges: np.ndarray | None = field(default=None, repr=False)
    _edges_of: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = ScoringSettings()
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
        self.flags = {int(k): v for k, v in self.flags.items()}
        self.seen = {int(k) for k in self.seen}

    # -- facts ----------------------------------------------------------------------------
    @property
    def pixel_size_um(self) -> float | None:
        ps = getattr(self.image, "pixel_size_um", None)
        if ps is None:
            ps = (self.summary.get("slide") or {}).get("pixel_size_um")
        return ps

    @property
    def slide_id(self) -> str:
        return str((self.summary.get("slide") or {}).get("id") or "slide")

    @property
    def can_score(self) -> bool:
        """True when pixels and labels are in memory, so figures can be recomputed.

        Whole slides opened as pyramids are reviewed with flags only (labels None).
        """
        return self.image is not None and self.labels is not None

    def normal_range_um(self) -> tuple[float, float] | None:
        """The normal min-Feret range in force, or None (no settings, or a reference without a
        published range such as mouse / rat)."""
        rng = getattr(self.settings, "normal_range", None)
        return None if rng is None else tuple(rng)

    def row(self, label: int) -> pd.Series | None:
        """The table row of a label (None when absent)."""
        hit = self.fibers.index[self.fibers["label"].to_numpy() == int(label)]
        return None if len(hit) == 0 else self.fibers.loc[hit[0]]

    def edges(self) -> np.ndarray:
        """The fiber adjacency graph of :attr:`labels` (cached until the labels change)."""
        return self.edges_for(self.labels)

    def edges_for(self, labels: np.ndarray) -> np.ndarray:
        """The adjacency of ``labels``; cached when they are still :attr:`labels` (safe from a worker)."""
        edges, for_labels = self._edges, self._edges_of
        if edges is not None and for_labels is labels:
            return edges
        edges = fiber_adjacency(labels, max_gap_px=self.settings.gap_px(self.pixel_size_um))
        if labels is self.labels:
            self._edges, self._edges_of = edges, labels
        return edges

    # -- flags ----------------------------------------------------------------------------
    def set_flag(self, label: int, flag: str | None) -> bool:
        """Flag a fiber (``None`` clears its flag); the table follows at once.

        The figures follow once the caller re-scores (:meth:`rescore`, or
        :func:`rescore_table` in a worker). One undo step (:meth:`undo_flags`).

        Returns
        -------
        bool
            True when the flag changed.
        """
        return bool(self.set_flags({label: flag}))

    def set_flags(self, changes: dict[int, str | None]) -> list[int]:
        """Flag several fibers as one undoable step (e.g. all fibers inside a drawn shape).

        Returns
        -------
        list of int
            The labels whose flag changed.

        Raises
        ------
        HistoInputError
            On an unknown flag or a label absent from the table.
        """
        changes = {int(k): v for k, v in changes.items()}
        bad = [f for f in changes.values() if f is not None and f not in FLAGS]
        if bad:
            raise HistoInputError(f"unknown flag {bad[0]!r}; use one of {', '.join(FLAGS)}")
        missing = sorted(set(changes) - set(self.fibers["label"].tolist()))
        if missing:
            raise HistoInputError(f"fiber {missing[0]} is not in the table (press Recompute after painting it)")
        before = dict(self.flags)
        self._take_flags(self.history.apply(self.flags, changes))
        return sorted(k for k in changes if before.get(k) != self.flags.get(k))

    def undo_flags(self) -> list[int]:
        """Undo the last flag step; returns the labels it changed (empty when nothing to undo)."""
        return self._step(self.history.undo)

    def redo_flags(self) -> list[int]:
        """Redo the last undone flag step; returns the labels it changed."""
        return self._step(self.history.redo)

    def _step(self, move) -> list[int]:
        before = dict(self.flags)
        present = set(self.fibers["label"].tolist())
        moved = move(self.flags)
        self._take_flags({k: v for k, v in moved.items() if k in present})  # erased fibers stay gone
        return sorted(k for k in set(before) | set(self.flags) if before.get(k) != self.flags.get(k))

    def _take_flags(self, flags: dict[int, str]) -> None:
        if flags == self.flags:
            return
        self.flags = flags
        self.fibers = apply_review(self.fibers, self.flags)
        self.dirty = True

    def mark_seen(self, label: int) -> bool:
        """Record that the reviewer moved on from a fiber in the walk, leaving it as outlined.

        Objects the fiber score rejected are not recorded (stepping past one confirms no
        outline). A flag or a label edit made later wins: such fibers are not saved as seen.
        Flags nothing, so the figures do not change; the session has unsaved changes.

        Returns
        -------
        bool
            True when the label was newly recorded.
        """
        label = int(label)
        row = self.row(label)
        if label in self.seen or row is None:
            return False
        rejected = row.get("rejected", False)
        if pd.notna(rejected) and bool(rejected):
            return False
        self.seen.add(label)
        self.dirty = True
        return True

    # -- scoring --------------------------------------------------------------------------
    def rescore_inputs(self) -> dict[str, Any]:
        """A snapshot for :func:`rescore_snapshot` (safe to hand to a worker thread: nothing
        is computed here, the table is replaced, never changed in place)."""
        return {
            "session": self,
            "fibers": self.fibers,
            "labels": self.labels,
            "flags": dict(self.flags),
            "summary": self.summary,
            "settings": self.settings,
        }

    def set_settings(self, settings: ScoringSettings) -> None:
        """Score with other settings (reference, age, ...); the figures follow on the next rescore."""
        self.settings = settings
        self.summary = {**self.summary, "settings": settings.to_dict()}
        self.version += 1
        self.dirty = True

    def set_pixel_size(self, pixel_size_um: float) -> None:
        """Give the slide another pixel size: the µm sizes of every fiber follow at once
        (:func:`histo.review.options.with_pixel_size`), the figures on the next rescore."""
        previous = self.pixel_size_um
        self.fibers = with_pixel_size(self.fibers, pixel_size_um, previous_um=previous)
        ps = float(pixel_size_um)
        if self.image is not None and dataclasses.is_dataclass(self.image):
            self.image = dataclasses.replace(self.image, pixel_size_um=ps, pixel_size_source="user")
        slide = dict(self.summary.get("slide") or {})
        slide.update(pixel_size_um=ps, pixel_size_source="user (napari review)")
        self.summary = {**self.summary, "slide": slide}
        self._edges = None  # the neighbour gap is in µm
        self.version += 1
        self.dirty = True

    def accept_rescore(self, fibers: pd.DataFrame, part: dict[str, Any], flags_used: dict[int, str],
                       version: int | None = None) -> bool:
        """Take a worker's result; False (and nothing changes) when it is out of date.

        Out of date: the flags moved on meanwhile, or the labels were recomputed since the
        snapshot was taken (``version`` is :attr:`version` at snapshot time).
        """
        if flags_used != self.flags or (version is not None and version != self.version):
            return False
        self.fibers = fibers
        self.summary = rebuild_summary(self.summary, part, n_fibers=len(fibers), fibers=fibers)
        return True

    def rescore(self) -> None:
        """Score again on the GUI thread (small slides, tests)."""
        if not self.can_score:
            return
        inputs = self.rescore_inputs()
        fibers, part = rescore_snapshot(**inputs)
        self.accept_rescore(fibers, part, inputs["flags"])

    # -- edits ----------------------------------------------------------------------------
    def pending_changes(self, labels_now: np.ndarray) -> np.ndarray:
        """Labels changed in the canvas since the last measurement."""
        if self.labels is None or labels_now is None:
            return np.zeros(0, dtype=np.int64)
        return changed_labels(self.labels, labels_now)

    def compute_recompute(self, labels_now: np.ndarray) -> dict[str, Any]:
        """Re-measure the changed fibers and score again (pure; runs in a worker).

        Returns a dict for :meth:`accept_recompute`.
        """
        if not self.can_score:
            raise HistoInputError(
                "the slide's pixels are not available (image file moved?), so edited fibers "
                "cannot be measured; open the slide file next to its results"
            )
        labels_now = np.array(labels_now, dtype=np.uint32, copy=True)
        changed = changed_labels(self.labels, labels_now)
        measured = recompute_changed(
            self.labels, labels_now, strip_review(self.fibers), self.image,
            pixel_size_um=self.pixel_size_um, stain=self.stain, channel=self.channel,
            max_gap_um=self.settings.adjacency_gap_um,
        )
        present = set(measured["label"].tolist())
        flags = {k: v for k, v in self.flags.items() if k in present}

        edges = fiber_adjacency(labels_now, max_gap_px=self.settings.gap_px(self.pixel_size_um))
        fibers, part = rescore_table(measured, labels_now, self.image, flags, settings=self.settings,
                                     stain=self.stain, edges=edges)
        return {"labels": labels_now, "fibers": fibers, "part": part, "flags": flags,
                "edges": edges, "changed": changed}

    def accept_recompute(self, result: dict[str, Any]) -> None:
        """Take the result of :meth:`compute_recompute`."""
        self.labels = result["labels"]
        self.version += 1
        self._edges = result["edges"]
        self.flags = result["flags"]
        self.seen -= {int(k) for k in result["changed"]}  # an edited fiber is edited, not seen
        self.fibers = result["fibers"]
        self.summary = rebuild_summary(self.summary, result["part"], n_fibers=len(self.fibers), fibers=self.fibers)
        if len(result["changed"]):
            self.edited = True
            self.dirty = True

    def recompute(self, labels_now: np.ndarray) -> np.ndarray:
        """Re-measure changed fibers on the GUI thread; returns the changed labels."""
        result = self.compute_recompute(labels_now)
        self.accept_recompute(result)
        return result["changed"]

    # -- saving ---------------------------------------------------------------------------
    def save(self, labels_now: np.ndarray, results_root: str | Path | None = None) -> Path:
        """Save the review into the result folder (writing the folder first if there is none).

        ``labels_now`` must have been recomputed (:meth:`pending_changes` empty): a saved
        review always pairs labels with their own measurements.
        """
        if len(self.pending_changes(labels_now)):
            raise HistoInputError("the labels were edited after the last Recompute; recompute before saving")
        if self.result_dir is None:
            if results_root is None:
                raise HistoInputError("choose a results folder to save the review into")
            self.result_dir = self._write_result_folder(Path(results_root))
        save_review(self.result_dir, self.labels, self.flags, fibers=self.fibers if self.edited else None,
                    seen=self.seen)
        self.dirty = False
        return self.result_dir

    def _write_result_folder(self, results_root: Path) -> Path:
        base = self.base
        if base is None:
            raise HistoInputError("no unreviewed result to write; run Segment and score first")
        out_dir = results_root / self.slide_id
        if out_dir.exists():
            raise HistoInputError(
                f"{out_dir} already exists; open that result folder to review it, or choose another folder",
                path=out_dir,
            )
        write_slide_outputs(out_dir, labels=base.labels, fibers=base.fibers, summary=base.summary,
                            image=self.image, pixel_size_um=self.pixel_size_um)
        return out_dir


def session_from_result(labels: np.ndarray | None, fibers: pd.DataFrame, meta: dict[str, Any]) -> ReviewSession:
    """A session for a result folder opened by the reader (``layer.metadata["histo"]``).

    The slide's pixels are read again (for re-scoring and re-measuring) when the slide file
    is where it was scored and the labels are on its full-resolution grid; otherwise the
    session reviews with flags only.
    """
    summary = meta.get("summary") or {}
    try:
        settings = ScoringSettings.from_dict(summary.get("settings") or {})
    except HistoError as err:
        log.warning("settings in summary.json not understood (%s); using the defaults", err)
        settings = ScoringSettings()
    image = None
    path = meta.get("image_path")
    if path and labels is not None and float(meta.get("analysis_downsample") or 1.0) == 1.0:
        try:
            image = read_image(path, pixel_size_um=meta.get("pixel_size_um"), channel=meta.get("channel"))
        except HistoError as err:
            log.warning("cannot read the slide %s again (%s): flags only", path, err)
    return ReviewSession(
        labels=None if labels is None else np.array(labels, dtype=np.uint32),
        fibers=fibers.drop(columns=["index", "fiber_class"], errors="ignore"),
        summary=summary, flags=meta.get("flags") or {}, image=image,
        stain=meta.get("stain") or "he", channel=meta.get("channel"), settings=settings,
        result_dir=Path(meta["result_dir"]) if meta.get("result_dir") else None,
        edited=bool(meta.get("edited")),
        seen=set(meta.get("seen_labels") or ()),
    )
