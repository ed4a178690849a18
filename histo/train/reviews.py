"""Learning from reviews: a pathologist's saved corrections as training data, and what they gain.

A reviewed slide (``RESULTS/<slide-id>/`` with a ``review.json`` saved by the napari plugin or
:func:`histo.save_review`) tells the truth only where the reviewer looked. :func:`review_truth`
turns it into a partial annotation (the convention of :mod:`histo.train.partial`: loss weight
0 on every pixel whose truth is unknown):

* **edited fibers** (labels painted, erased, split or merged: their pixels changed between
  ``labels.tif`` and the reviewed labels) are fibers exactly as the reviewer left them;
* **confirmed fibers** (flagged ``confirmed_sad``, ``not_sad`` or ``restored``: the reviewer
  looked at the object, called it a fiber and kept its outline) are fibers as labelled;
* **seen fibers** (``seen_labels``: the reviewer stepped past them in the review walk, Space,
  without a flag or an edit) are fibers as the model outlined them;
* **excluded objects** (flag ``excluded``) and pixels of predicted objects the reviewer
  erased are **negatives** (known background);
* a ring ``ring_px`` wide around each known fiber, where the reviewed labels hold no
  object, is known background (where the fiber stops);
* everything else, the unreviewed fibers included, is unknown and ignored by the loss.

:func:`split_holdout` keeps part of the reviewed fibers and negatives out of training (their
surroundings too), :func:`evaluate_holdout` scores a model on them (F1 at IoU 0.5 and the
precision of small objects), and :func:`train_from_reviews` fine-tunes a model on the rest
(:func:`histo.train.loop.train`), measures it before and after, and writes the weights and a
model card (:func:`model_card`). Loads torch (through :mod:`histo.train.loop`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.image import read_image
from histo.io.stain import image_layout
from histo.measure.morphometry import measure_fibers
from histo.review.recompute import changed_labels
from histo.review.state import REVIEW_FILE, file_sha256, load_review, reviewed_labels
from histo.score.settings import ScoringSettings
from histo.segment import net as _net
from histo.segment.inference import typical_diameter_px
from histo.segment.segmenter import segment, segment_image
from histo.segment.targets import median_diameter_px
from histo.train.evaluate import match_labels
from histo.train.loop import TrainSettings, train
from histo.train.partial import known_region_samples

log = logging.getLogger(__name__)

#: Flags that say the reviewer looked at an object and kept it as a fiber, outline included.
CONFIRMING_FLAGS = ("confirmed_sad", "not_sad", "restored")
#: The flag that makes an object a negative (known background).
NEGATIVE_FLAG = "excluded"


@dataclass(frozen=True, eq=False)
class ReviewTruth:
    """What a saved review says for certain about one slide.

    Attributes
    ----------
    slide_dir : Path
        The slide's result folder.
    pixels : ndarray
        The slide's pixels as segmented: (Y, X, 3) RGB or (Y, X) one fluorescence plane.
    labels : (Y, X) int32 array
        The known fibers, numbered 1..n (in label order of the reviewed labels); 0 elsewhere.
    negatives : (Y, X) bool array
        Excluded objects and erased predictions: certainly not a fiber.
    known : (Y, X) bool array
        Every pixel whose truth is known: ``labels > 0``, ``negatives`` and the background
        ring around the known fibers.
    n_edited, n_confirmed, n_seen, n_excluded : int
        Known fibers from label edits, from confirming flags, seen in the review walk (stepped
        past, left as outlined); objects flagged ``excluded``.
    fiber_diameter_px : float or None
        Typical fiber diameter the slide was segmented at (``summary.json``), px.
    stain : str
    channel : int or None
    review_sha256 : str
        Checksum of ``review.json`` (identifies the review a model learned from).
    """

    slide_dir: Path
    pixels: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    negatives: np.ndarray = field(repr=False)
    known: np.ndarray = field(repr=False)
    n_edited: int = 0
    n_confirmed: int = 0
    n_excluded: int = 0
    n_seen: int = 0
    fiber_diameter_px: float | None = None
    stain: str = "he"
    channel: int | None = None
    review_sha256: str = ""

    @property
    def n_fibers(self) -> int:
        """Number of known fibers."""
        return int(self.labels.max())

    def training_image(self) -> np.ndarray:
        """The pixels as training samples take them: uint8 RGB, or a float32 plane scaled to [0, ~1]."""
        img = self.pixels
        if img.ndim == 3:
            if img.dtype == np.uint8:
                return img
            top = max(float(np.percentile(img, 99.9)), 1.0)
            return np.clip(img.astype(np.float32) / top * 255, 0, 255).astype(np.uint8)
        img = img.astype(np.float32)
        lo, hi = np.percentile(img, (1, 99.5))
        return (img - lo) / max(float(hi - lo), 1e-6)


def find_reviewed(paths: Sequence[str | Path]) -> list[Path]:
    """Slide folders with a saved review: each path is one, or a results folder holding some.

    Raises
    ------
    HistoInputError
        For a path that is neither, or when no reviewed slide is found at all.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / REVIEW_FILE).is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(q.parent for q in p.glob(f"*/{REVIEW_FILE}"))
            if not found:
                raise HistoInputError(
                    f"no reviewed slide here (no {REVIEW_FILE} in it or its sub-folders); review the "
                    "slide in napari and press Save, or pass RESULTS/<slide-id>/", path=p)
            out.extend(found)
        else:
            raise HistoInputError("not a result folder; pass RESULTS/ or RESULTS/<slide-id>/ written by "
                                  "histo score and reviewed", path=p)
    return list(dict.fromkeys(q.resolve() for q in out))


def _summary(slide_dir: Path) -> dict:
    path = slide_dir / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HistoInputError(f"cannot read the slide's summary ({err}); score the slide again", path=path) from err


def _slide_pixels(slide_dir: Path, summary: dict) -> tuple[np.ndarray, str, int | None]:
    slide = summary.get("slide") or {}
    path, channel = slide.get("path"), slide.get("channel")
    if not path or not Path(path).is_file():
        raise HistoInputError(
            f"the slide image {path!r} named in summary.json is not there; put it back where it "
            "was scored to train from this review", path=slide_dir)
    if float((summary.get("segmentation") or {}).get("analysis_downsample") or 1.0) != 1.0:
        raise HistoInputError("this slide was analysed at a reduced resolution (whole slide); "
                              "reviews of whole slides cannot be trained from yet", path=slide_dir)
    image = read_image(path, pixel_size_um=slide.get("pixel_size_um"), channel=channel)
    arr, axes = image_layout(image)
    if axes == "CYX":
        if channel is None:
            raise HistoInputError("multichannel slide without a membrane channel in summary.json; "
                                  "score it with --channel N", path=slide_dir)
        arr = arr[int(channel)]
    return np.asarray(arr), str(slide.get("stain") or "he"), channel


def review_truth(slide_dir: str | Path, *, ring_px: int = 2) -> ReviewTruth:
    """The known fibers, negatives and known pixels of a reviewed slide.

    Parameters
    ----------
    slide_dir : str or Path
        ``RESULTS/<slide-id>/`` with ``labels.tif``, ``summary.json`` and a saved review; the
        slide image must be where it was scored (``summary.json``).
    ring_px : int
        Width of the known-background ring around each known fiber (only where the reviewed
        labels hold no object).

    Returns
    -------
    ReviewTruth

    Raises
    ------
    HistoInputError
        When there is no review, it says nothing certain (no edits, no flags, no seen
        fibers), or the slide image cannot be read.
    """
    slide_dir = Path(slide_dir)
    review = load_review(slide_dir)
    if review.is_empty and not review.seen_labels:
        raise HistoInputError("no saved review here (nothing flagged, edited or stepped past in the "
                              "review walk); review the slide and press Save before training from it",
                              path=slide_dir)
    summary = _summary(slide_dir)
    pixels, stain, channel = _slide_pixels(slide_dir, summary)
    after = np.asarray(reviewed_labels(slide_dir, review))
    if pixels.shape[:2] != after.shape:
        raise HistoInputError(f"labels {after.shape} and slide image {pixels.shape[:2]} differ in shape; "
                              "score the slide again", path=slide_dir)
    negatives = np.zeros(after.shape, bool)
    edited = np.zeros(0, np.int64)
    if review.edited_labels:
        base = np.asarray(reviewed_labels(slide_dir, replace(review, edited_labels=False)))
        edited = changed_labels(base, after)
        edited = edited[np.isin(edited, after)]
        negatives |= (base > 0) & (after == 0)  # predictions the reviewer erased
    flags = review.flags
    confirmed = np.array(sorted(k for k, v in flags.items() if v in CONFIRMING_FLAGS), np.int64)
    excluded = np.array(sorted(k for k, v in flags.items() if v == NEGATIVE_FLAG), np.int64)
    confirmed = confirmed[~np.isin(confirmed, edited)]
    seen = np.array(review.seen_labels, np.int64)  # flagged ones are the flag's, edited ones edited
    seen = seen[~np.isin(seen, np.concatenate([edited, confirmed, excluded]))]
    fiber_ids = np.setdiff1d(np.concatenate([edited, confirmed, seen]), excluded)
    fiber_ids = fiber_ids[np.isin(fiber_ids, after)] if fiber_ids.size else fiber_ids
    lut = np.zeros(int(after.max()) + 1, np.int32)
    lut[fiber_ids] = np.arange(1, fiber_ids.size + 1, dtype=np.int32)
    labels = lut[after]
    if excluded.size:
        negatives |= np.isin(after, excluded)
    fg = labels > 0
    known = fg | negatives
    if ring_px > 0 and fg.any():
        known |= ndi.binary_dilation(fg, iterations=int(ring_px)) & (after == 0)
    scale = (summary.get("segmentation") or {}).get("scale") or {}
    diameter = scale.get("diameter_segmented_px")
    return ReviewTruth(
        slide_dir=slide_dir, pixels=pixels, labels=labels, negatives=negatives, known=known,
        n_edited=int(np.isin(edited, fiber_ids).sum()), n_confirmed=int(np.isin(confirmed, fiber_ids).sum()),
        n_excluded=int(np.isin(excluded, after).sum()), n_seen=int(np.isin(seen, fiber_ids).sum()),
        fiber_diameter_px=float(diameter) if diameter else None, stain=stain, channel=channel,
        review_sha256=file_sha256(slide_dir / REVIEW_FILE),
    )


def user_models_dir() -> Path:
    """Where models trained from reviews are kept by default (the napari plugin writes there).

    ``$HISTO_USER_MODELS_DIR`` when set, else ``~/.histo/models``; never the installed package.
    """
    env = os.environ.get("HISTO_USER_MODELS_DIR")
    return Path(env) if env else Path.home() / ".histo" / "models"


def list_models(*folders: str | Path) -> list[Path]:
    """Models (paths without suffix) shipped in ``models/`` and found in ``folders``.

    A model is ``X.safetensors`` with ``X.json`` beside it; checkpoints (``*.ckpt``) are left
    out. Shipped models come first, each group sorted by name.
    """
    out: list[Path] = []
    for folder in (_net.models_dir(), *folders):
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for w in sorted(folder.glob("*.safetensors")):
            stem = w.with_suffix("")
            if stem.name.endswith((".ckpt", ".ckpt.opt")) or not stem.with_name(stem.name + ".json").is_file():
                continue
            if stem not in out:
                out.append(stem)
    return out


# ----------------------------------------------------------------------------- held-out part
@dataclass(frozen=True, eq=False)
class Holdout:
    """A review split into what is trained on and what is held out (pixels of the same slide)."""

    truth: ReviewTruth
    train_labels: np.ndarray = field(repr=False)
    train_known: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    test_known: np.ndarray = field(repr=False)
    n_test_fibers: int = 0
    n_test_negatives: int = 0


def split_holdout(truth: ReviewTruth, fraction: float = 0.2, *, seed: int = 0, guard_px: int | None = None) -> Holdout:
    """Hold out ``fraction`` of the known fibers and negative objects, chosen at random.

    The held-out fibers and negatives, with their rings, are the test part. A guard band
    around them (``guard_px``, default a quarter of the fiber diameter, at least 4 px) is left
    out of training where it is background or a negative, so no training pixel carries a
    held-out label; neighbouring training fibers stay whole (their pixels are their own truth,
    only their shared edge tells where a held-out fiber begins).

    Examples
    --------
    >>> lab = np.zeros((40, 100), np.int32)
    >>> for i in range(5): lab[10:30, 2 + 20 * i:17 + 20 * i] = i + 1
    >>> t = ReviewTruth(Path("."), np.zeros((40, 100, 3), np.uint8), lab, np.zeros((40, 100), bool),
    ...                 lab > 0, n_edited=5)
    >>> h = split_holdout(t, 0.4, seed=1)
    >>> h.n_test_fibers, int(h.train_labels.max() > 0), bool((h.train_labels > 0)[h.test_labels > 0].any())
    (2, 1, False)
    """
    if not 0 < fraction < 1:
        raise HistoInputError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    n = truth.n_fibers
    n_test = int(round(n * fraction)) if n >= 2 else 0
    n_test = min(max(n_test, 1 if n >= 2 else 0), n - 1) if n >= 2 else 0
    test_ids = np.sort(rng.choice(np.arange(1, n + 1), size=n_test, replace=False)) if n_test else np.zeros(0, int)
    neg_lab, n_neg = ndi.label(truth.negatives)
    k = int(round(n_neg * fraction)) if n_neg >= 2 else 0
    test_neg = rng.choice(np.arange(1, n_neg + 1), size=k, replace=False) if k else np.zeros(0, int)
    test_fg = np.isin(truth.labels, test_ids)
    test_negatives = np.isin(neg_lab, test_neg) if k else np.zeros_like(truth.negatives)
    try:
        d = truth.fiber_diameter_px or median_diameter_px(truth.labels)
    except ValueError:
        d = 32.0
    guard = int(guard_px if guard_px is not None else max(4, round(d / 4)))
    ring = ndi.binary_dilation(test_fg, iterations=3) & truth.known & (truth.labels == 0) & ~truth.negatives
    test_known = test_fg | test_negatives | ring
    test_zone = ndi.binary_dilation(test_known, iterations=guard) if test_known.any() else test_known
    train_labels = np.where(test_fg, 0, truth.labels).astype(np.int32)
    train_known = (truth.known & ~test_zone) | (train_labels > 0)
    test_labels = np.where(test_fg, truth.labels, 0).astype(np.int32)
    return Holdout(truth, train_labels, train_known, test_labels, test_known,
                   n_test_fibers=int(test_ids.size), n_test_negatives=int(len(test_neg)))


@dataclass(frozen=True)
class HoldoutScore:
    """A model on held-out reviewed fibers: F1 at IoU 0.5 and the precision of small objects.

    Objects are predicted objects with at least half their pixels on held-out known pixels
    (the rest of the slide is unknown). ``small`` objects have a minimum Feret diameter below
    ``small_median_fraction`` (:class:`histo.score.settings.ScoringSettings`, relative rule) times
    the median of the reviewed fibers'; ``small_precision`` is the share of them matching a
    held-out fiber (None without small objects).
    """

    f1: float
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    n_small: int
    small_precision: float | None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def text(self) -> str:
        sp = "n/a (no small objects)" if self.small_precision is None else (
            f"{self.small_precision:.3f} ({round(self.small_precision * self.n_small)}/{self.n_small})")
        return (f"F1 {self.f1:.3f} (P {self.precision:.3f} R {self.recall:.3f}; TP {self.tp} FP {self.fp} "
                f"FN {self.fn}), small-fiber precision {sp}")


def small_cutoff_px(labels: np.ndarray) -> float:
    """Min-Feret cutoff (px) below which an object is small: the relative rule of scoring."""
    table = measure_fibers(labels, None)
    ref = table.loc[~table["is_edge"], "min_feret_px"] if (~table["is_edge"]).sum() >= 3 else table["min_feret_px"]
    return ScoringSettings().small_median_fraction * float(np.median(ref)) if len(ref) else math.nan


def score_holdout(pred: np.ndarray, holdout: Holdout, cutoff_px: float) -> HoldoutScore:
    """Score predicted labels (same grid as the slide) on the held-out part of a review."""
    pred = np.asarray(pred).astype(np.int64)
    n = int(pred.max())
    area = np.bincount(pred.ravel(), minlength=n + 1)
    inside = np.bincount(pred[holdout.test_known].ravel(), minlength=n + 1)
    keep = (inside * 2 >= area) & (area > 0)
    keep[0] = False
    kept = np.where(keep[pred], pred, 0)
    r = match_labels(kept, holdout.test_labels, exclude_edge=False, min_feret=False)
    a = r.at(0.5)
    matched = set(int(x) for x in r.pairs[:, 0]) if len(r.pairs) else set()
    small_ids: list[int] = []
    if kept.any() and math.isfinite(cutoff_px):
        table = measure_fibers(kept, None)
        small_ids = table.loc[table["min_feret_px"] < cutoff_px, "label"].astype(int).tolist()
    hits = sum(i in matched for i in small_ids)
    return HoldoutScore(f1=float(a["f1"]), precision=float(a["precision"]), recall=float(a["recall"]),
                        tp=int(a["tp"]), fp=int(a["fp"]), fn=int(a["fn"]), n_small=len(small_ids),
                        small_precision=hits / len(small_ids) if small_ids else None)


def predict_region(truth: ReviewTruth, region: np.ndarray, model, *, margin_px: int | None = None,
                   device: str | None = None) -> np.ndarray:
    """Labels of a model on the bounding box of ``region`` plus a margin, pasted on the slide grid.

    Run at the scale the slide was segmented at (``truth.fiber_diameter_px``), so models are
    compared at the same scale; objects the fiber score rejects are left out.
    """
    out = np.zeros(region.shape, np.uint32)
    if not region.any():
        return out
    d = truth.fiber_diameter_px or 64.0
    m = int(margin_px if margin_px is not None else max(32, round(1.5 * d)))
    ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    y0, y1 = max(0, ys[0] - m), min(region.shape[0], ys[-1] + 1 + m)
    x0, x1 = max(0, xs[0] - m), min(region.shape[1], xs[-1] + 1 + m)
    crop = np.ascontiguousarray(truth.pixels[y0:y1, x0:x1])
    lab = segment_image(crop, model=model, stain=truth.stain, fiber_diameter_px=truth.fiber_diameter_px,
                        device=device)
    out[y0:y1, x0:x1] = np.asarray(lab)
    return out


#: Fewest matched training fibers to re-set the fiber score and diameter ratio from.
MIN_CALIBRATION_FIBERS = 8


def recalibrate(holdouts: Sequence[Holdout], model, *, device: str | None = None,
                keep: float = 0.99, min_fibers: int = MIN_CALIBRATION_FIBERS) -> dict | None:
    """The fiber-score threshold and diameter ratio of a fine-tuned model, from the *training* fibers.

    The base model's fiber score (:mod:`histo.segment.evidence`) was calibrated on its own
    outputs; fine-tuning shifts them, so the score may reject fibers the model now outlines
    well, and the scale estimate drifts. Like the shipped calibration, the threshold becomes the
    highest one keeping ``keep`` of the fibers (here: the reviewed fibers used for training,
    matched at IoU >= 0.5; never the held-out ones), and never rises above the base threshold;
    ``diameter_ratio`` becomes the median reviewed fiber diameter over the area-weighted typical
    diameter of the accepted objects found on them. None (keep the base model's) when fewer than
    ``min_fibers`` training fibers were matched.

    Returns
    -------
    dict or None
        ``{"threshold", "diameter_ratio", "n_fibers"}``.
    """
    net, config = model
    weights = dict(config.fiber_score or {})
    if not weights:
        return None
    scores, ref_d, found_areas = [], [], []
    for h in holdouts:
        region = h.train_labels > 0
        if not region.any():
            continue
        t = h.truth
        ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
        m = int(max(32, round(1.5 * (t.fiber_diameter_px or 64.0))))
        y0, y1 = max(0, ys[0] - m), min(region.shape[0], ys[-1] + 1 + m)
        x0, x1 = max(0, xs[0] - m), min(region.shape[1], xs[-1] + 1 + m)
        seg = segment(np.ascontiguousarray(t.pixels[y0:y1, x0:x1]), model=model, stain=t.stain,
                      fiber_diameter_px=t.fiber_diameter_px, device=device)
        lab = np.asarray(seg.labels).astype(np.int64)
        truth = h.train_labels[y0:y1, x0:x1]
        r = match_labels(lab, truth, exclude_edge=False, min_feret=False)
        if not len(r.pairs) or seg.objects is None:
            continue
        obj = seg.objects.set_index("label")
        matched = r.pairs[:, 0]
        scores.extend(obj.loc[matched, "fiber_score"].to_numpy(float))
        found_areas.extend(obj.loc[matched, "area_px"].to_numpy(float))
        ref_d.append(median_diameter_px(truth))
    if len(scores) < min_fibers:
        return None
    scores = np.asarray(scores)
    base_thr = float(weights["threshold"])
    thr = min(base_thr, float(np.quantile(scores, 1 - keep, method="lower")) * 0.999)
    ratio = float(np.median(ref_d)) / typical_diameter_px(np.asarray(found_areas), weighted=True)
    return {"threshold": thr, "diameter_ratio": round(ratio, 4), "n_fibers": int(scores.size),
            "base_threshold": base_thr, "base_diameter_ratio": weights.get("diameter_ratio")}


def evaluate_holdout(holdouts: Sequence[Holdout], model, *, device: str | None = None) -> HoldoutScore | None:
    """Pooled :class:`HoldoutScore` of a model over the held-out parts of several reviews."""
    tot = {"tp": 0, "fp": 0, "fn": 0, "n_small": 0, "small_hits": 0}
    any_test = False
    for h in holdouts:
        if not h.test_known.any():
            continue
        any_test = True
        pred = predict_region(h.truth, h.test_known, model, device=device)
        s = score_holdout(pred, h, small_cutoff_px(h.truth.labels))
        tot["tp"] += s.tp
        tot["fp"] += s.fp
        tot["fn"] += s.fn
        tot["n_small"] += s.n_small
        tot["small_hits"] += round((s.small_precision or 0) * s.n_small)
    if not any_test:
        return None
    tp, fp, fn = tot["tp"], tot["fp"], tot["fn"]
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    ns = tot["n_small"]
    return HoldoutScore(f1=f1, precision=p, recall=r, tp=tp, fp=fp, fn=fn, n_small=ns,
                        small_precision=tot["small_hits"] / ns if ns else None)


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class ReviewTraining:
    """What :func:`train_from_reviews` made: the model files and its figures."""

    weights: Path
    card: Path
    before: HoldoutScore | None
    after: HoldoutScore | None
    record: dict


def _base_name(model) -> str:
    return _net.DEFAULT_MODEL if model is None else str(model)


def train_from_reviews(
    slide_dirs: Sequence[str | Path],
    out_path: str | Path,
    *,
    base_model: str | Path | None = None,
    steps: int = 300,
    lr: float = 3e-4,
    batch_size: int = 8,
    crop_px: int = 160,
    holdout_fraction: float = 0.2,
    review_fraction: float = 0.75,
    synth_pool: int = 24,
    seed: int = 0,
    checkpoint_every: int = 50,
    min_calibration_fibers: int = MIN_CALIBRATION_FIBERS,
    resume: bool = True,
    device: str | None = None,
    progress: Callable[[str, int, int, dict], None] | None = None,
    command: str | None = None,
) -> ReviewTraining:
    """Fine-tune a model on reviewed slides; measure it on held-out reviewed fibers before and after.

    Parameters
    ----------
    slide_dirs : sequence of path
        Reviewed slide folders (or results folders holding them; :func:`find_reviewed`).
    out_path : str or Path
        Model path without suffix: writes ``<out>.safetensors``, ``<out>.json`` and the model
        card ``<out>.md``; checkpoints ``<out>.ckpt.*`` beside them.
    base_model : str or Path, optional
        Model to start from (name in ``models/`` or path); default the shipped model. Its
        configuration (thresholds, fiber score, scale) is kept.
    steps, lr, batch_size, crop_px, seed
        Training run (:class:`histo.train.loop.TrainSettings`).
    holdout_fraction : float
        Share of the reviewed fibers (and negatives) held out for the before/after figures.
    review_fraction : float
        Share of each batch drawn from the reviews; the rest are synthetic sections (a pool of
        ``synth_pool``, refreshed), so the model keeps what it knew about other stains.
    checkpoint_every : int
        Steps between checkpoints (what an interrupted run continues from).
    min_calibration_fibers : int
        Fewest matched training fibers to re-set the fiber score threshold and diameter ratio
        (:func:`recalibrate`); fewer keep the base model's.
    resume : bool
        Continue from the checkpoint of an interrupted run of the same settings and reviews.
    progress : callable(phase, done, total, info), optional
        Phases ``"prepare"``, ``"evaluate"``, ``"synth"``, ``"train"``.
    command : str, optional
        The command line, written in the model card.

    Returns
    -------
    ReviewTraining
    """
    t0 = time.perf_counter()
    dirs = find_reviewed(slide_dirs)
    out_path = Path(out_path)
    if out_path.suffix in (".safetensors", ".json", ".md"):
        out_path = out_path.with_suffix("")
    base = _base_name(base_model)
    base_net, base_config = _net.load_model(base, device="cpu")
    truths, holdouts, samples = [], [], []
    settings = TrainSettings(name=out_path.name, steps=int(steps), lr=float(lr), batch_size=int(batch_size),
                             crop_px=int(crop_px), seed=int(seed), init_from=str(base),
                             channels=tuple(base_config.channels), in_channels=base_config.in_channels,
                             canonical_diameter_px=base_config.canonical_diameter_px,
                             partial_fraction=float(review_fraction), real_fraction=0.0,
                             membrane_fraction=0.0, synth_pool=int(synth_pool), freeze_batchnorm=True,
                             checkpoint_every=int(checkpoint_every))
    for i, d in enumerate(dirs):
        if progress:
            progress("prepare", i, len(dirs), {"slide": str(d)})
        truth = review_truth(d)
        if truth.n_fibers == 0 and not truth.negatives.any():
            raise HistoInputError("the review holds no edited, confirmed or seen fiber and no excluded "
                                  "object: nothing certain to learn from", path=d)
        h = split_holdout(truth, holdout_fraction, seed=seed)
        truths.append(truth)
        holdouts.append(h)
        try:
            diam = median_diameter_px(truth.labels)
        except ValueError:
            diam = truth.fiber_diameter_px
        if not diam:
            raise HistoInputError("the fiber size of this slide is unknown (no known fiber, no scale in "
                                  "summary.json)", path=d)
        samples += known_region_samples(truth.training_image(), h.train_labels, h.train_known, settings,
                                        diameter_px=diam, outside_ring_px=0)
    if not samples:
        raise HistoInputError("after holding out part of the reviews nothing is left to train on; review "
                              "more fibers or lower --holdout")
    if progress:
        progress("prepare", len(dirs), len(dirs), {"samples": len(samples)})
        progress("evaluate", 0, 2, {"model": str(base)})
    before = evaluate_holdout(holdouts, (base_net.to(_net.default_device(device)), base_config), device=device)
    reviews_record = [{"slide_dir": str(t.slide_dir), "review_sha256": t.review_sha256,
                       "fibers": t.n_fibers, "edited": t.n_edited, "confirmed": t.n_confirmed,
                       "seen": t.n_seen, "excluded": t.n_excluded} for t in truths]
    record = {"reviews": reviews_record, "holdout_fraction": holdout_fraction, "base_model": str(base)}
    weights = train(settings, out_path, use_synth=review_fraction < 1 and synth_pool > 0, resume=resume, device=device,
                    progress=progress, samples=samples, data_record=record, keep_base_config=True)
    if progress:
        progress("evaluate", 1, 2, {"model": str(out_path)})
    after_net, after_config = _net.load_model(out_path, device=device)
    calibration = recalibrate(holdouts, (after_net, after_config), device=device,
                              min_fibers=min_calibration_fibers)
    if calibration is not None:
        score = {**after_config.fiber_score, "threshold": calibration["threshold"],
                 "diameter_ratio": calibration["diameter_ratio"]}
        _set_config(out_path, {"fiber_score": score})
        after_net, after_config = _net.load_model(out_path, device=device)
    after = evaluate_holdout(holdouts, (after_net, after_config), device=device)
    result_record = {
        **record, "base_model_version": base_config.version,
        "held_out": {"fibers": sum(h.n_test_fibers for h in holdouts),
                     "negative_regions": sum(h.n_test_negatives for h in holdouts),
                     "before": None if before is None else before.to_dict(),
                     "after": None if after is None else after.to_dict()},
        "samples": len(samples), "seconds": round(time.perf_counter() - t0, 1), "command": command,
        "recalibration": calibration,
    }
    _add_to_config(out_path, {"from_reviews": result_record})
    card = write_model_card(out_path, result_record, after_config, settings)
    if progress:
        progress("evaluate", 2, 2, {})
    return ReviewTraining(weights, card, before, after, result_record)


def _add_to_config(out_path: Path, extra: dict) -> None:
    _, cfg = _net._model_paths(out_path)
    doc = json.loads(cfg.read_text())
    doc.setdefault("extra", {}).update(extra)
    _write_config(cfg, doc)


def _set_config(out_path: Path, fields: dict) -> None:
    _, cfg = _net._model_paths(out_path)
    doc = json.loads(cfg.read_text())
    doc.update(fields)
    _write_config(cfg, doc)


def _write_config(cfg: Path, doc: dict) -> None:
    tmp = cfg.with_name(cfg.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(cfg)


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def model_card(record: dict, config: _net.NetConfig, settings: TrainSettings) -> str:
    """Markdown model card of a model trained from reviews (the figures as measured)."""
    ho = record["held_out"]
    b, a = ho.get("before"), ho.get("after")
    rows = []
    for key, name in (("f1", "F1 at IoU 0.5"), ("precision", "precision"), ("recall", "recall"),
                      ("small_precision", "small-fiber precision")):
        rows.append(f"| {name} | {_fmt(b and b[key])} | {_fmt(a and a[key])} |")
    counts = (f"| objects: TP / FP / FN, small | {b['tp']} / {b['fp']} / {b['fn']}, {b['n_small']} | "
              f"{a['tp']} / {a['fp']} / {a['fn']}, {a['n_small']} |") if b and a else ""
    slides = "\n".join(f"| `{r['slide_dir']}` | {r['fibers']} ({r['edited']} edited, {r['confirmed']} confirmed, "
                       f"{r.get('seen', 0)} seen) | {r['excluded']} | `{r['review_sha256'][:12]}` |"
                       for r in record["reviews"])
    lines = [
        f"# Model card: {config.name}",
        "",
        f"Fine-tuned from **{record['base_model']}** (version {record.get('base_model_version')}) on "
        f"{len(record['reviews'])} reviewed slide(s) with `histo train --from-reviews`. Architecture, "
        "input convention, canonical scale, segmentation thresholds and fiber-score weights are the base "
        "model's.",
        "",
        "## What it learned from",
        "Edited fibers (label edits), fibers a reviewer confirmed by a flag (confirmed_sad, not_sad, "
        "restored) and fibers the reviewer stepped past in the review walk without a flag or an edit (seen) "
        "are fibers as outlined; excluded objects and erased predictions are not fibers; a thin "
        "ring around each known fiber is background; every other pixel was ignored by the loss (weight 0).",
        "",
        "| slide | known fibers | excluded | review.json sha256 |",
        "|---|---|---|---|",
        slides,
        "",
        f"Training: {settings.steps} steps, batch {settings.batch_size}, crop {settings.crop_px} px, "
        f"lr {settings.lr:g} (cosine), seed {settings.seed}; {round(settings.partial_fraction * 100)} % of each "
        f"batch from the reviews ({record['samples']} tiles), the rest synthetic sections; "
        f"{record['seconds'] / 60:.1f} min in all (evaluation included).",
    ]
    if record.get("command"):
        lines += ["```", record["command"], "```"]
    cal = record.get("recalibration")
    if cal:
        lines += ["", f"Fiber score re-set on the {cal['n_fibers']} reviewed training fibers (never the held-out "
                  f"ones): threshold {cal['base_threshold']:g} -> {cal['threshold']:.4g} (the highest keeping 99 % of "
                  f"them, never above the base), diameter_ratio {cal['base_diameter_ratio']} -> "
                  f"{cal['diameter_ratio']} (scale estimate)."]
    else:
        lines += ["", "Fiber score and diameter ratio: the base model's (too few reviewed training fibers "
                  "matched to re-set them)."]
    lines += [
        "",
        "## Held-out reviewed fibers (before = base model, after = this model)",
        f"{ho['fibers']} reviewed fibers and {ho['negative_regions']} negative regions (excluded objects, erased "
        "predictions) of the same slides were kept out "
        f"of training ({round(record['holdout_fraction'] * 100)} %, chosen at random, with a guard band around "
        "them). Objects scored: predicted objects lying at least half on held-out known pixels, run at the "
        "scale each slide was segmented at; small = min Feret below the relative small rule.",
        "",
        "| held out | before | after |",
        "|---|---|---|",
        *rows,
    ]
    if counts:
        lines.append(counts)
    lines += [
        "",
        "## Limitations",
        "* The held-out fibers come from the reviewed slides themselves: the figures say how well the "
        "model learned this reviewer's outlines on these slides, not how it does on other slides, stains "
        "or labs. Compare on slides of your own before using it for a cohort.",
        "* Few held-out fibers make the figures coarse (one fiber moves F1 by about 1/N).",
        "* The shipped default model is unchanged; use this one with `histo score --model PATH`.",
        "",
    ]
    if b is None:
        lines.insert(lines.index("## Limitations"), "No held-out figures: too few reviewed fibers to hold any out.\n")
    return "\n".join(lines)


def write_model_card(out_path: Path, record: dict, config: _net.NetConfig, settings: TrainSettings) -> Path:
    """Write :func:`model_card` to ``<out_path>.md``; return its path."""
    path = Path(out_path).with_name(Path(out_path).name + ".md")
    path.write_text(model_card(record, config, settings), encoding="utf-8")
    return path
