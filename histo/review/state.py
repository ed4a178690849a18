"""The reviewed state of a slide: per-fiber flags and edited labels, saved beside the results.

A pathologist reviewing a slide (in napari, see ``plugins/napari_histo``) may

* flag fibers: ``"excluded"`` (measured but not counted), ``"confirmed_sad"`` (a small dark
  angular fiber the classifier missed or doubted) or ``"not_sad"`` (a false SAD call);
* edit the instance labels (paint, erase, merge, split), after which only the changed fibers
  are re-measured (:func:`histo.review.recompute.recompute_changed`);
* step past fibers in the review walk without changing them: these *seen* fibers
  (``seen_labels``) are confirmed as the model outlined them (``histo train --from-reviews``
  learns from them; the figures are unchanged).

The review is stored inside the slide's result folder (the output contract of ``histo score``)::

    <slide-id>/review.json               flags, seen fibers, what was edited, checksums: the commit point
    <slide-id>/review/labels-<sha>.tif   edited labels (only when the labels were edited)
    <slide-id>/review/fibers-<sha>.parquet   their re-measured per-fiber table

:func:`save_review` writes the data files under content-addressed names first and replaces
``review.json`` last (:mod:`histo.io.atomic`: temporary file, fsync, rename), so a crash at any
moment leaves either the old review or the new one, never a mixture. :func:`load_review` gives the same state back, and
:func:`histo.review.flags.apply_review` turns it into the ``excluded`` column and the confirmed / rejected SAD
calls that every report honours.

No Qt, no napari: this module is used by the plugin, ``histo report`` and the batch alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tifffile

from histo import __version__
from histo.errors import HistoError, HistoInputError
from histo.io.atomic import atomic_path, atomic_write_text
from histo.io.image import read_image
from histo.results.tables import read_fiber_table
from histo.review.flags import FLAGS, strip_review, validate_flags
from histo.review.recompute import changed_labels, recompute_changed
from histo.score.settings import ScoringSettings

log = logging.getLogger(__name__)

REVIEW_FILE = "review.json"
REVIEW_DIR = "review"
LABELS_FILE = "labels.tif"
FORMAT = "histo-review"
FORMAT_VERSION = 1

@dataclass(frozen=True)
class Review:
    """What a reviewer decided about one slide.

    Attributes
    ----------
    flags : dict of int to str
        Fiber label -> one of :data:`FLAGS`. Fibers without a flag are absent.
    edited_labels : bool
        True when the reviewer changed the instance labels; ``labels`` and ``fibers`` then
        hold the edited labels and their re-measured table.
    labels : (Y, X) uint32 array or None
        The edited labels (None when not edited).
    fibers : DataFrame or None
        Per-fiber table of the edited labels (None when not edited), without review columns.
    base_labels_sha256 : str or None
        Checksum of the ``labels.tif`` the review was made on.
    saved_at : str or None
        ISO 8601 time of the save (None for a review never saved).
    software : str or None
        histo version that saved it.
    needs_rereview : tuple of dict
        Flags of an earlier review that could not be carried over to re-scored labels
        (:func:`rebase_review`): ``{"previous_label", "flag"}`` each; shown in the report.
    seen_labels : tuple of int
        Fibers the reviewer stepped past in the review walk and left as the model outlined
        them: unflagged, and not changed by a label edit (sorted). Truth for training
        (:func:`histo.train.reviews.review_truth`), no change to any figure.

    Examples
    --------
    >>> r = Review(flags={3: "excluded", 7: "not_sad"})
    >>> r.counts()
    {'excluded': 1, 'confirmed_sad': 0, 'not_sad': 1, 'restored': 0}
    >>> r.is_empty
    False
    >>> Review(seen_labels=[9, 4]).seen_labels
    (4, 9)
    """

    flags: dict[int, str] = field(default_factory=dict)
    edited_labels: bool = False
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    fibers: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    base_labels_sha256: str | None = None
    saved_at: str | None = None
    software: str | None = None
    needs_rereview: tuple = field(default=(), compare=False)
    seen_labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", validate_flags(self.flags))
        object.__setattr__(self, "seen_labels", validate_seen(self.seen_labels))
        if self.edited_labels and (self.labels is None or self.fibers is None):
            raise HistoInputError("a review with edited labels needs the labels and their fibers table")

    @property
    def is_empty(self) -> bool:
        """True when nothing was flagged or edited (seen fibers change no figure)."""
        return not self.flags and not self.edited_labels

    def counts(self) -> dict[str, int]:
        """Number of fibers per flag (every flag listed, zero included)."""
        values = list(self.flags.values())
        return {flag: values.count(flag) for flag in FLAGS}


def validate_seen(labels: Any) -> tuple[int, ...]:
    """Seen fiber labels as a sorted tuple of distinct positive ints.

    Raises
    ------
    HistoInputError
        For anything but a list of positive integers.

    Examples
    --------
    >>> validate_seen([5, 2, 5])
    (2, 5)
    """
    if labels is None:
        return ()
    if isinstance(labels, (str, bytes, Mapping)):
        raise HistoInputError(f"seen labels must be a list of fiber labels, got {type(labels).__name__}")
    out = set()
    for k in labels:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or int(k) <= 0:
            raise HistoInputError(f"seen label {k!r} is not a fiber label (a positive integer)")
        out.add(int(k))
    return tuple(sorted(out))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def labels_sha256(labels: np.ndarray) -> str:
    """SHA-256 of a label image's content (shape and uint32 values), independent of file format."""
    arr = np.ascontiguousarray(labels, dtype="<u4")
    digest = hashlib.sha256(repr(arr.shape).encode())
    digest.update(arr.data)
    return digest.hexdigest()


def _read_tif(path: Path) -> np.ndarray:
    try:
        return np.asarray(tifffile.imread(path))
    except Exception as err:  # tifffile raises several types for damaged files
        raise HistoInputError(f"cannot read the label image ({err}); re-run histo score for this slide", path=path) from err


def _result_labels_path(result_dir: Path) -> Path:
    path = result_dir / LABELS_FILE
    if not path.is_file():
        raise HistoInputError(
            f"no {LABELS_FILE} here; pass a slide's result folder written by histo score (RESULTS/<slide-id>/)",
            path=result_dir,
        )
    return path


def load_review(result_dir: str | Path) -> Review:
    """The saved review of a slide's result folder (an empty :class:`Review` when none).

    Parameters
    ----------
    result_dir : str or Path
        ``RESULTS/<slide-id>/`` as written by ``histo score``.

    Returns
    -------
    Review

    Raises
    ------
    HistoInputError
        When ``review.json`` is damaged, its files are missing or altered, or a flags-only
        review was made on a different ``labels.tif`` (the slide was re-scored afterwards:
        its labels no longer mean the same fibers).
    """
    result_dir = Path(result_dir)
    path = result_dir / REVIEW_FILE
    if not path.is_file():
        return Review()
    doc = read_review_doc(path)
    flags = validate_flags(doc.get("flags") or {})
    base_sha = doc.get("base_labels_sha256")
    edited = bool(doc.get("edited_labels"))
    labels = fibers = None
    if edited:
        labels, fibers = _load_edited(result_dir, doc, path)
    else:
        base_path = _result_labels_path(result_dir)
        if not _same_base(doc, base_path):
            raise HistoInputError(
                f"this review was made on other labels than {LABELS_FILE} (the slide was scored again "
                "after the review and its fibers changed), so its flags may point at other fibers; "
                f"review the slide again or delete {REVIEW_FILE}",
                path=path,
            )
    return Review(
        flags=flags,
        edited_labels=edited,
        labels=labels,
        fibers=fibers,
        base_labels_sha256=base_sha,
        saved_at=doc.get("saved_at"),
        software=(doc.get("software") or {}).get("histo"),
        needs_rereview=tuple(doc.get("needs_rereview") or ()),
        seen_labels=validate_seen(doc.get("seen_labels")),
    )


def _damaged(path: Path, what: str) -> HistoInputError:
    return HistoInputError(f"damaged review file: {what}; fix it, or delete {REVIEW_FILE} (and "
                           f"{REVIEW_DIR}/) to start the review again", path=path)


def read_review_doc(path: str | Path) -> dict[str, Any]:
    """``review.json`` parsed and schema-checked (types of every key histo reads).

    Raises
    ------
    HistoInputError
        One line naming the file, what is wrong and the fix, for unreadable JSON, another
        format, a newer version or a key of the wrong type.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise _damaged(path, f"not readable as JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HistoInputError(f"not a histo review file (expected format {FORMAT!r}); move it "
                              "away or delete it", path=path)
    version = doc.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _damaged(path, f"'version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise HistoInputError(
            f"review format version {version} is newer than this histo understands "
            f"({FORMAT_VERSION}); upgrade histo",
            path=path,
        )
    kinds = {"flags": dict, "saved_at": str, "software": dict, "base_labels_sha256": str,
             "base_labels_pixels_sha256": str, "labels_sha256": str, "files": dict,
             "edited_labels": bool, "counts": dict, "needs_rereview": list, "seen_labels": list}
    for key, kind in kinds.items():
        value = doc.get(key)
        if value is not None and not isinstance(value, kind):
            expected = {dict: "an object", str: "a string", bool: "true or false", list: "a list"}[kind]
            raise _damaged(path, f"{key!r} must be {expected}, got {type(value).__name__} "
                                 f"{str(value)[:40]!r}")
    try:
        validate_flags(doc.get("flags") or {})
        validate_seen(doc.get("seen_labels"))
    except HistoInputError as err:
        raise _damaged(path, err.reason) from err
    if doc.get("software") is not None and not isinstance(doc["software"].get("histo", ""), str):
        raise _damaged(path, "'software.histo' must be a string")
    return doc


#: Label files larger than this (uint32 bytes) are compared by file checksum only.
PIXEL_HASH_MAX_BYTES = 256 << 20


def _pixels_sha256(path: Path) -> str | None:
    """:func:`labels_sha256` of a label TIFF, None when too large to read whole."""
    try:
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape
    except Exception:  # noqa: BLE001 - _read_tif below gives the readable error
        shape = ()
    if shape and int(np.prod(shape)) * 4 > PIXEL_HASH_MAX_BYTES:
        return None
    return labels_sha256(_read_tif(path).astype(np.uint32, copy=False))


def _same_base(doc: dict, base_path: Path) -> bool:
    """True when ``labels.tif`` holds the labels the (flags-only) review was made on.

    The file checksum decides when it matches; otherwise the *pixels* do (the OME header of
    a rewritten ``labels.tif`` holds a new random UUID, so the same labels give another file).
    A review saved before pixel checksums existed matches only by file checksum.
    """
    base_sha = doc.get("base_labels_sha256")
    if base_sha is None or file_sha256(base_path) == base_sha:
        return True
    pixels = doc.get("base_labels_pixels_sha256")
    return pixels is not None and _pixels_sha256(base_path) == pixels


def _load_edited(result_dir: Path, doc: dict, path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    files = doc.get("files") or {}
    try:
        labels_path = result_dir / files["labels"]
        fibers_path = result_dir / files["fibers"]
    except (KeyError, TypeError) as err:
        raise HistoInputError("review.json says the labels were edited but names no files", path=path) from err
    for p in (labels_path, fibers_path):
        if not p.is_file():
            raise HistoInputError(f"review file {p.name} is missing; the review folder was altered", path=p)
    labels = _read_tif(labels_path).astype(np.uint32, copy=False)
    if labels_sha256(labels) != doc.get("labels_sha256"):
        raise HistoInputError("edited labels do not match their checksum in review.json; the file was altered", path=labels_path)
    try:
        fibers = pd.read_parquet(fibers_path)
    except Exception as err:  # pyarrow raises its own error types
        raise HistoInputError(f"cannot read the reviewed fibers table ({err})", path=fibers_path) from err
    return labels, fibers


def reviewed_labels(result_dir: str | Path, review: Review | None = None) -> np.ndarray:
    """The labels a report should use: the edited labels when there are any, else ``labels.tif``."""
    result_dir = Path(result_dir)
    review = load_review(result_dir) if review is None else review
    if review.edited_labels:
        return review.labels
    return _read_tif(_result_labels_path(result_dir)).astype(np.uint32, copy=False)


def save_review(
    result_dir: str | Path,
    labels: np.ndarray | None,
    flags: Mapping[Any, str],
    *,
    fibers: pd.DataFrame | None = None,
    seen: Iterable[int] | None = None,
) -> Review:
    """Save a review into a slide's result folder, atomically.

    Parameters
    ----------
    result_dir : str or Path
        ``RESULTS/<slide-id>/`` holding ``labels.tif``.
    labels : (Y, X) integer array or None
        The labels as reviewed; an array equal to ``labels.tif`` means not edited. None saves
        the flags only: the edited labels of an earlier saved review are kept, and otherwise
        ``labels.tif`` is not even read (whole slides reviewed with flags only).
    flags : mapping of int to str
        Fiber label -> one of :data:`FLAGS`. Flags of labels absent from ``labels`` are dropped
        (with a log message): a fiber erased during review cannot stay flagged.
    fibers : DataFrame, optional
        Per-fiber table of the edited labels (from :func:`recompute_changed`); ignored when the
        labels were not edited. When the labels were edited and no table is passed, the edited
        fibers are re-measured here (:func:`remeasure_edited`: the folder's ``fibers.parquet``
        and, for the darkness of re-measured fibers, the slide image named in
        ``summary.json``). Stored without the review applied (:func:`strip_review`), so
        :func:`apply_review` on load gives the same table back.
    seen : iterable of int, optional
        Fibers the reviewer stepped past in the review walk (saved as ``seen_labels``). Kept
        only where the fiber is still as the model outlined it: labels with a flag, absent
        from ``labels`` or changed by an edit (pixels differing from ``labels.tif``) are
        dropped. None or empty: no seen fibers.

    Returns
    -------
    Review
        The state as saved, equal to what :func:`load_review` will return.

    Raises
    ------
    HistoInputError
        On a folder without ``labels.tif``, labels of another shape or bad flags; for edited
        labels without their ``fibers`` table, when the folder's table or slide image cannot be
        read to re-measure them.

    Examples
    --------
    Erase fiber 3 and exclude fiber 5 of a slide scored by ``histo score``; the erased fiber's
    neighbours are re-measured:

    >>> import histo, tifffile
    >>> labels = tifffile.imread("RESULTS/slide/labels.tif")            # doctest: +SKIP
    >>> labels[labels == 3] = 0                                          # doctest: +SKIP
    >>> histo.save_review("RESULTS/slide", labels, {5: "excluded"})      # doctest: +SKIP
    Review(flags={5: 'excluded'}, edited_labels=True, ...)
    """
    result_dir = Path(result_dir)
    base_path = _result_labels_path(result_dir)
    flags = validate_flags(flags)
    if labels is None:  # flags only: keep the labels of the saved review, edited or not
        prior = _saved_review_or_none(result_dir)
        if prior is not None and prior.edited_labels:
            labels, fibers = prior.labels, prior.fibers if fibers is None else fibers
    edited = False
    if labels is not None:  # compare with labels.tif (not read at all for a flags-only save)
        labels = np.asarray(labels)
        base = _read_tif(base_path)
        if labels.shape != base.shape:
            raise HistoInputError(
                f"reviewed labels have shape {labels.shape} but {LABELS_FILE} has {base.shape}; "
                "the review must keep the slide's pixel grid",
                path=result_dir,
            )
        if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
            raise HistoInputError("reviewed labels must be non-negative integers", path=result_dir)
        edited = not np.array_equal(labels, base)
        flags = _drop_missing(flags, labels)
    seen_labels = _seen_as_outlined(seen, flags, labels, base if edited else None)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "software": {"histo": __version__},
        "base_labels_sha256": file_sha256(base_path),
        "edited_labels": edited,
        "flags": {str(k): v for k, v in flags.items()},
        "counts": Review(flags=flags).counts(),
    }
    pending = _pending_rereview(result_dir)
    if pending:  # flags a rescore could not carry over stay listed until the file is deleted
        doc["needs_rereview"] = pending
    if seen_labels:
        doc["seen_labels"] = list(seen_labels)
    keep: set[str] = set()
    labels32 = table = None
    if edited:
        if fibers is None:
            fibers = remeasure_edited(result_dir, base, labels)
        labels32 = labels.astype(np.uint32, copy=False)
        sha = labels_sha256(labels32)
        table = strip_review(fibers).reset_index(drop=True)
        names = {"labels": f"{REVIEW_DIR}/labels-{sha[:16]}.tif", "fibers": f"{REVIEW_DIR}/fibers-{sha[:16]}.parquet"}
        (result_dir / REVIEW_DIR).mkdir(exist_ok=True)
        with atomic_path(result_dir / names["labels"]) as tmp:
            _write_tif(tmp, labels32)
        with atomic_path(result_dir / names["fibers"]) as tmp:
            table.to_parquet(tmp, index=False)
        doc["labels_sha256"] = sha
        doc["files"] = names
        keep = {Path(n).name for n in names.values()}
    base_pixels = labels_sha256(base) if labels is not None else _pixels_sha256(base_path)
    if base_pixels is not None:
        doc["base_labels_pixels_sha256"] = base_pixels
    text = json.dumps(doc, indent=2)
    atomic_write_text(result_dir / REVIEW_FILE, text)
    _remove_stale(result_dir / REVIEW_DIR, keep)
    log.info("saved review of %s: %s, %d seen, labels edited: %s", result_dir, doc["counts"],
             len(seen_labels), edited)
    return Review(
        flags=flags,
        edited_labels=edited,
        labels=labels32,
        fibers=table,
        base_labels_sha256=doc["base_labels_sha256"],
        saved_at=doc["saved_at"],
        software=__version__,
        needs_rereview=tuple(pending),
        seen_labels=seen_labels,
    )


def _seen_as_outlined(seen: Iterable[int] | None, flags: dict[int, str], labels: np.ndarray | None,
                      base: np.ndarray | None) -> tuple[int, ...]:
    """The seen labels still as the model outlined them: unflagged, present in ``labels`` (when
    given) and unchanged from ``base`` (the unreviewed labels, when the labels were edited)."""
    keys = np.array([k for k in validate_seen(seen) if k not in flags], dtype=np.int64)
    if keys.size and labels is not None:
        keys = keys[np.isin(keys, labels)]
    if keys.size and base is not None:
        keys = keys[~np.isin(keys, changed_labels(base, labels))]
    return tuple(int(k) for k in keys)


def remeasure_edited(result_dir: str | Path, base_labels: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """The per-fiber table of edited labels: the folder's table with the changed fibers re-measured.

    Uses :func:`histo.review.recompute.recompute_changed` against ``labels.tif`` and its
    ``fibers.parquet``, with the pixel size, stain, channel and adjacency gap of the slide's
    ``summary.json`` and the slide image it names (for ``mean_od`` and ``darkness``).

    Raises
    ------
    HistoInputError
        When the table, the summary or the slide image cannot be read (one line naming the
        file and the fix: put the image back, or pass ``fibers=`` to :func:`save_review`).
    """
    result_dir = Path(result_dir)
    summary_path = result_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HistoInputError(f"cannot read the slide's summary to re-measure the edited fibers ({err}); "
                              "pass fibers=... to save_review", path=summary_path) from err
    slide = summary.get("slide") or {}
    image_path = slide.get("path")
    if not image_path or not Path(image_path).is_file():
        raise HistoInputError(f"the slide image {image_path!r} is not where it was scored, so the edited "
                              "fibers cannot be re-measured; put it back or pass fibers=... to save_review",
                              path=result_dir)
    try:
        settings = ScoringSettings.from_dict(summary.get("settings") or {})
    except HistoError:
        settings = ScoringSettings()
    image = read_image(image_path, pixel_size_um=slide.get("pixel_size_um"), channel=slide.get("channel"))
    table = strip_review(read_fiber_table(result_dir))
    return recompute_changed(base_labels, labels, table, image, pixel_size_um=slide.get("pixel_size_um"),
                             stain=slide.get("stain"), channel=slide.get("channel"),
                             max_gap_um=settings.adjacency_gap_um)


def _pending_rereview(result_dir: Path) -> list:
    try:
        return list(read_review_doc(result_dir / REVIEW_FILE).get("needs_rereview") or [])
    except HistoInputError:
        return []


def _saved_review_or_none(result_dir: Path) -> Review | None:
    try:
        return load_review(result_dir)
    except HistoInputError as err:
        log.warning("ignoring the saved review of %s: %s", result_dir, err)
        return None


def _drop_missing(flags: dict[int, str], labels: np.ndarray) -> dict[int, str]:
    if not flags:
        return flags
    keys = np.fromiter(flags, dtype=np.int64, count=len(flags))
    present = np.isin(keys, labels)
    if not present.all():
        log.info("dropping review flags of fibers no longer in the labels: %s", keys[~present].tolist())
    return {int(k): flags[int(k)] for k in keys[present]}


def _write_tif(path: Path, labels: np.ndarray) -> None:
    tifffile.imwrite(path, labels, compression="zlib", photometric="minisblack")


def _remove_stale(folder: Path, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.is_file() and p.name not in keep:
            p.unlink(missing_ok=True)
    if not keep:
        try:
            folder.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- re-scored labels
#: A fiber of the re-scored labels takes the flag of a reviewed fiber it overlaps this much.
CARRY_MIN_IOU = 0.8


def _on_grid(previous: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``previous`` labels of the same slide on a coarser or finer grid, resampled to ``shape``
    by nearest neighbour (pixel centres, as whole slides' labels.tif is upsampled to level 0);
    None when the two grids are not one image at two scales."""
    (h, w), (big_h, big_w) = previous.shape, shape
    if not h or not w or abs(big_h / h - big_w / w) > 0.02 * max(big_h / h, big_w / w):
        return None
    rows = np.minimum(((np.arange(big_h) + 0.5) * h / big_h).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(big_w) + 0.5) * w / big_w).astype(np.int64), w - 1)
    return previous[np.ix_(rows, cols)]


def carry_flags(previous: np.ndarray, labels: np.ndarray, flags: Mapping[int, str], *,
                min_iou: float = CARRY_MIN_IOU) -> tuple[dict[int, str], dict[int, str]]:
    """Move review flags from ``previous`` labels to new ``labels`` of the same grid, by overlap.

    A new fiber gets the flag of the flagged previous fiber it overlaps with IoU >= ``min_iou``
    (above 0.5 the match is unique both ways). Returns ``(carried, lost)``: the new flags by
    new label, and the previous label -> flag of those that found no match. Previous labels
    on another grid of the same slide (a whole slide's folder written before issue 12 holds
    analysis-level labels, now level 0's) are first resampled to the new grid.

    Examples
    --------
    >>> old = np.array([[1, 1, 1, 1, 2, 2, 2, 2]])
    >>> new = np.array([[7, 7, 7, 7, 8, 8, 9, 9]])     # fiber 1 renamed 7, fiber 2 split
    >>> carry_flags(old, new, {1: "excluded", 2: "confirmed_sad"})
    ({7: 'excluded'}, {2: 'confirmed_sad'})
    >>> carry_flags(np.array([[1, 1, 2, 2]]), np.repeat(new, 2, axis=0), {1: "excluded"})  # 2x grid
    ({7: 'excluded'}, {})
    """
    return _carry_by_overlap(previous, labels, validate_flags(flags), min_iou)


def carry_seen(previous: np.ndarray, labels: np.ndarray, seen: Iterable[int], *,
               min_iou: float = CARRY_MIN_IOU) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Move seen fiber labels to new ``labels`` by overlap, as :func:`carry_flags` moves flags.

    Returns ``(carried, lost)``: the new labels of the seen fibers that found a match
    (IoU >= ``min_iou``) and the previous labels of those that did not (unknown again).

    Examples
    --------
    >>> carry_seen(np.array([[1, 1, 1, 1, 2, 2, 2, 2]]), np.array([[7, 7, 7, 7, 8, 8, 9, 9]]), [1, 2])
    ((7,), (2,))
    """
    carried, lost = _carry_by_overlap(previous, labels, {k: True for k in validate_seen(seen)}, min_iou)
    return tuple(carried), tuple(lost)


def _carry_by_overlap(previous: np.ndarray, labels: np.ndarray, flags: dict[int, Any],
                      min_iou: float) -> tuple[dict[int, Any], dict[int, Any]]:
    """:func:`carry_flags` for any value per label."""
    if not flags:
        return {}, {}
    if previous.shape != labels.shape:
        previous = _on_grid(previous, labels.shape)
        if previous is None:
            return {}, dict(flags)
    keys = np.fromiter(flags, dtype=np.uint64, count=len(flags))
    inside = np.isin(previous, keys)
    old = previous[inside].astype(np.uint64)
    new = labels[inside].astype(np.uint64)
    pairs, inter = np.unique((old << np.uint64(32)) | new, return_counts=True)
    p_old, p_new = pairs >> np.uint64(32), pairs & np.uint64(0xFFFFFFFF)
    old_ids, old_area = np.unique(old, return_counts=True)
    touched = np.unique(p_new[p_new > 0])
    new_ids, new_area = np.unique(labels[np.isin(labels, touched)], return_counts=True)
    area_o = old_area[np.searchsorted(old_ids, p_old)]
    safe = np.minimum(np.searchsorted(new_ids, p_new), max(len(new_ids) - 1, 0))
    area_n = np.where(p_new > 0, new_area[safe] if len(new_ids) else 0, 0)
    iou = inter / (area_o + area_n - inter)
    carried: dict[int, str] = {}
    lost: dict[int, str] = {}
    for label, flag in flags.items():
        sel = (p_old == label) & (p_new > 0)
        best = int(np.argmax(np.where(sel, iou, -1.0))) if sel.any() else -1
        target = int(p_new[best]) if best >= 0 and iou[best] >= min_iou else 0
        if target and target not in carried:
            carried[target] = flag
        else:
            lost[label] = flag
    return dict(sorted(carried.items())), lost


def rebase_review(result_dir: str | Path, previous_labels_path: str | Path | None) -> str:
    """Tie a kept flags-only review to the folder's (re-written) ``labels.tif``; return a note.

    Called after a slide was scored again with its saved review kept. Same label pixels (a
    ``--force`` or a settings change that did not change the labels): the review is re-tied
    to the new file and applies as before. Changed labels: each flag moves to the new fiber
    overlapping its fiber with IoU >= :data:`CARRY_MIN_IOU` (:func:`carry_flags`); the others
    are listed under ``needs_rereview`` in ``review.json`` and in the note, never dropped
    silently. Seen fibers (``seen_labels``) move the same way (:func:`carry_seen`); those
    without a match are dropped (unknown again, so never trained on) and counted in the note.
    A review with edited labels keeps its own labels and is left as it is.

    Parameters
    ----------
    result_dir : path
        The slide folder with the new ``labels.tif`` and the kept ``review.json``.
    previous_labels_path : path or None
        A copy of the ``labels.tif`` the folder held before the rewrite; None when unknown
        (then only unchanged label pixels keep the review applied).

    Raises
    ------
    HistoInputError
        For a damaged ``review.json`` (:func:`read_review_doc`).
    """
    result_dir = Path(result_dir)
    path = result_dir / REVIEW_FILE
    if not path.is_file():
        return ""
    doc = read_review_doc(path)
    if doc.get("edited_labels"):
        return "saved review kept (edited labels)"
    if doc.get("base_labels_sha256") is None and doc.get("base_labels_pixels_sha256") is None:
        return "saved review kept"  # tied to no labels: it applies as it is
    base_path = _result_labels_path(result_dir)
    pixels = _pixels_sha256(base_path)
    if pixels is None:  # too large to compare: the file checksum decides (load_review)
        return "saved review kept" + ("" if _same_base(doc, base_path) else
                                      " but not applied: the labels changed; review again")
    old_pixels = doc.get("base_labels_pixels_sha256")
    previous = None
    if previous_labels_path is not None and Path(previous_labels_path).is_file():
        prev_path = Path(previous_labels_path)
        made_on_it = (file_sha256(prev_path) == doc.get("base_labels_sha256")
                      or (old_pixels is not None and _pixels_sha256(prev_path) == old_pixels)
                      or doc.get("base_labels_sha256") is None)
        if made_on_it:
            previous = _read_tif(prev_path).astype(np.uint32, copy=False)
    if old_pixels is not None and old_pixels == pixels:
        same = True
    elif previous is not None:
        labels = _read_tif(base_path).astype(np.uint32, copy=False)
        same = previous.shape == labels.shape and np.array_equal(previous, labels)
    else:
        return ("saved review kept but not applied: the labels changed since the review and the "
                "reviewed labels are gone; review the slide again")
    flags = validate_flags(doc.get("flags") or {})
    doc["base_labels_sha256"] = file_sha256(base_path)
    doc["base_labels_pixels_sha256"] = pixels
    if same:
        note = "saved review kept"
    else:
        carried, lost = carry_flags(previous, labels, flags)
        doc["flags"] = {str(k): v for k, v in carried.items()}
        doc["counts"] = Review(flags=carried).counts()
        doc["needs_rereview"] = [*(doc.get("needs_rereview") or []),
                                 *({"previous_label": k, "flag": v} for k, v in lost.items())]
        note = (f"labels changed: {len(carried)} of {len(flags)} review flag(s) carried over by "
                f"overlap (IoU >= {CARRY_MIN_IOU:g})")
        seen = validate_seen(doc.get("seen_labels"))
        if seen:
            seen_carried, _ = carry_seen(previous, labels, seen)
            seen_carried = tuple(k for k in seen_carried if k not in carried)
            doc["seen_labels"] = list(seen_carried)
            note += f"; {len(seen_carried)} of {len(seen)} seen fiber(s) carried over"
        if lost:
            shown = ", ".join(f"{k} ({v})" for k, v in list(lost.items())[:10])
            more = ", ..." if len(lost) > 10 else ""
            note += f"; {len(lost)} need re-review (previous fibers {shown}{more})"
    atomic_write_text(path, json.dumps(doc, indent=2))
    log.info("%s: %s", result_dir, note)
    return note
