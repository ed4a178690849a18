"""Training data for the fiber network: real pairs, synthetic sections, membrane renderings, batches.

Everything is brought to the canonical scale (a typical fiber ``canonical_diameter_px``
across, randomised between ``diameter_range_px``):

* real images with instance labels from folders (``<stem>.<ext>`` + ``<stem>_labels.<ext>``),
  each prepared once at several scales (:func:`prepare_real`);
* synthetic sections from :mod:`histo.synth` in every stain (:func:`synth_sample`);
* membrane renderings of real and synthetic label geometry (:func:`render_membrane`), so the
  fluorescence path also sees real fiber shapes.

Fluorescence samples (synthetic IF, membrane renderings) carry their targets in the membrane
convention (:func:`histo.segment.targets.membrane_labels`): neighbours meet at the membrane midline
(synthetic IF sections come that way from :mod:`histo.synth`).
:func:`make_batch` crops, rotates, flips and augments a batch (strong photometric
augmentation) and appends the modality channel when the network has one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from histo.segment import net as _net  # noqa: F401 (first: it sets OMP_WAIT_POLICY before torch loads)

# isort: split
import tifffile
import torch
from PIL import Image
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from histo.errors import HistoInputError
from histo.segment.scale import rescale
from histo.segment.targets import fiber_targets, median_diameter_px, membrane_labels, size_weights
from histo.synth import generate_section

if TYPE_CHECKING:
    from histo.train.loop import TrainSettings  # loop imports this module

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass
class Sample:
    """One prepared training image at (roughly) the canonical scale."""

    image: np.ndarray  # (Y, X, 3) uint8 brightfield or (Y, X) float32 fluorescence
    targets: np.ndarray  # (3, Y, X) float16, or (4, Y, X) with the loss weights last
    kind: str
    labels: np.ndarray | None = None  # geometry for membrane renderings (brightfield convention)


def _read_pair(image_path: Path, labels_path: Path, channel: int | None):
    def read(p):
        if p.suffix.lower() in (".tif", ".tiff"):
            return tifffile.imread(p)
        return np.asarray(Image.open(p))

    img, lab = read(image_path), read(labels_path).astype(np.int32)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3]
    elif img.ndim == 3:
        if channel is None:
            raise HistoInputError(f"{img.shape[0]} channels: pass --channel N for the membrane", path=image_path)
        img = img[channel]
    if img.shape[:2] != lab.shape:
        raise HistoInputError(f"labels {lab.shape} do not match the image {img.shape[:2]}", path=labels_path)
    if img.ndim == 2:
        img = _percentile_scaled(img)
    return img, lab


def targets_for(labels: np.ndarray, settings: TrainSettings) -> np.ndarray:
    """float16 targets of a label image: the three maps, plus size weights when the settings ask."""
    t = fiber_targets(labels)
    max_w = getattr(settings, "small_weight_max", 1.0)
    if max_w > 1:
        t = np.concatenate([t, size_weights(labels, max_w)[None]])
    return t.astype(np.float16)


def _percentile_scaled(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    lo, hi = np.percentile(img, (1, 99.5))
    return (img - lo) / max(hi - lo, 1e-6)


def find_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(image, labels) pairs: ``X.ext`` with ``X_labels.ext`` beside it, in a folder or for one file."""
    folder = Path(folder)
    if folder.is_file():
        candidates = [folder]
    elif folder.is_dir():
        candidates = sorted(folder.iterdir())
    else:
        raise HistoInputError("not a folder of image + labels pairs nor an image file", path=folder)
    pairs = []
    for p in candidates:
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.stem.endswith("_labels"):
            continue
        for ext in IMAGE_SUFFIXES:
            lab = p.with_name(f"{p.stem}_labels{ext}")
            if lab.exists():
                pairs.append((p, lab))
                break
        else:
            if folder.is_file():
                raise HistoInputError(f"no {p.stem}_labels.<ext> beside the image", path=p)
    return pairs


def prepare_real(image_path, labels_path, settings: TrainSettings) -> list[Sample]:
    """One real image + labels at ``settings.real_scales`` fiber sizes across the range.

    A single-channel image is fluorescence and its labels are taken as they are (a membrane-
    stain reference already follows the membrane convention); RGB labels serve membrane
    renderings too.
    """
    img, lab = _read_pair(Path(image_path), Path(labels_path), settings.channel)
    d = median_diameter_px(lab)
    lo, hi = settings.diameter_range_px
    out = []
    fluorescence = img.ndim == 2
    for target in np.geomspace(lo, hi, settings.real_scales):
        f = target / d
        shape = (max(16, round(lab.shape[0] * f)), max(16, round(lab.shape[1] * f)))
        lab_s = rescale(lab, shape, labels=True)
        img_s = rescale(img, shape)
        kind = "real-if" if fluorescence else "real"
        out.append(Sample(img_s, targets_for(lab_s, settings), kind, None if fluorescence else lab_s))
    log.info("prepared %s: median diameter %.1f px, %d scales", Path(image_path).name, d, len(out))
    return out


def synth_sample(rng: np.random.Generator, settings: TrainSettings) -> Sample:
    """One synthetic section from histo.synth, random stain and fiber size."""
    stain = str(rng.choice(settings.stains))
    lo, hi = settings.diameter_range_px
    d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    lo_g, hi_g = getattr(settings, "planted_groups", (0, 0))
    extra = {"planted_groups": int(rng.integers(lo_g, hi_g + 1))} if hi_g > 0 else {}
    s = generate_section((settings.synth_shape_px,) * 2, stain=stain, fiber_diameter_px=d, rng=rng, **extra)
    img = np.asarray(s.image)
    lab = np.asarray(s.labels).astype(np.int32)
    if img.ndim == 2:  # membrane IF: its labels already follow the membrane convention
        img = _percentile_scaled(img)
    return Sample(img, targets_for(lab, settings), f"synth-{stain}", lab)


def _smooth_noise(shape, rng, sigma) -> np.ndarray:
    """Unit-variance noise smooth over about ``sigma`` px (coarse noise upsampled: fast)."""
    h, w = shape
    step = max(1.0, sigma)
    small = rng.standard_normal((int(h / step) + 2, int(w / step) + 2)).astype(np.float32)
    n = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (n - n.mean()) / (n.std() + 1e-6)


def render_membrane(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A membrane-immunofluorescence-like (Y, X) float32 image of a label geometry.

    Each fiber's own bright membrane is a band of uneven thickness and brightness inside its
    label edge; the endomysium between nearby fibers is bright too, wide background regions
    are dark with faint texture; dark interiors with faint texture; blur, noise, uneven light.
    Train it against ``membrane_labels(labels, ...)`` (the membrane convention).
    """
    h, w = labels.shape
    d = median_diameter_px(labels) if labels.max() else 30.0
    fg = labels > 0
    edge = find_boundaries(labels, mode="inner") & fg
    depth = ndi.distance_transform_edt(fg & ~edge) + fg  # 1 at each label's edge
    band = rng.uniform(1.0, max(1.5, 0.07 * d))
    mem = (fg & (depth <= band)).astype(np.float32)
    gap = ndi.distance_transform_edt(~fg)
    endo = ((gap > 0) & (gap <= rng.uniform(1.0, max(1.5, 0.1 * d)))).astype(np.float32)
    mem = np.maximum(mem, endo * rng.uniform(0.5, 1.0))
    mem = mem * np.clip(1 + 0.45 * _smooth_noise((h, w), rng, rng.uniform(2, 8)), 0.15, 2)
    interior = (fg & (depth > band)) * rng.uniform(0.02, 0.2) * np.clip(1 + 0.5 * _smooth_noise((h, w), rng, 1.5), 0, 3)
    inter = ((~fg) & (endo == 0)) * rng.uniform(0.0, 0.25) * np.clip(1 + _smooth_noise((h, w), rng, rng.uniform(1, 4)), 0, 3)
    img = mem + interior + inter
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.4, 1.2))
    img = img * np.exp(0.3 * _smooth_noise((h, w), rng, d * 3))  # uneven illumination
    img = img + rng.uniform(0.01, 0.06) * rng.standard_normal((h, w)).astype(np.float32)
    return _percentile_scaled(img).astype(np.float32)


def membrane_sample(labels: np.ndarray, rng: np.random.Generator, settings: TrainSettings) -> Sample:
    """A membrane rendering of ``labels`` with membrane-convention targets."""
    d = median_diameter_px(labels) if labels.max() else 30.0
    target = membrane_labels(labels, settings.membrane_gap_frac * d)
    return Sample(render_membrane(labels, rng), targets_for(target, settings), "membrane")


# ---------------------------------------------------------------------------- augmentation
def _augment_colour(x: np.ndarray, rng: np.random.Generator, is_rgb: bool) -> np.ndarray:
    """Strong photometric augmentation of a (Y, X, 3) float image in [0, 1]."""
    if is_rgb:
        if rng.random() < 0.8:  # stain colour: mix channels near identity, per-channel gain
            m = np.eye(3) + rng.normal(0, 0.12, (3, 3))
            x = x @ m.T.astype(np.float32)
        if rng.random() < 0.15:
            x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
    x = np.clip(x, 0, None)
    x = x ** np.float32(np.exp(rng.normal(0, 0.25)))
    x = x * np.float32(np.exp(rng.normal(0, 0.15))) + np.float32(rng.normal(0, 0.05))
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(0.005, 0.05), x.shape).astype(np.float32)
    return x


def make_batch(samples: list[Sample], rng: np.random.Generator, crop: int, in_channels: int = 3):
    """(x, y) tensors of a batch: random crops, rot90/flips, photometric augmentation.

    ``x`` is (B, in_channels, crop, crop) (the fourth channel: 1 for fluorescence samples),
    ``y`` the (B, 3 or 4, crop, crop) targets (loss weights last when present; when only some
    samples carry weights, the others get weight 1). A partially annotated sample
    (``kind="partial"``, weight 0 where nothing was drawn) is cropped around an annotated pixel.
    """
    xs, ys = [], []
    n_targets = max(s.targets.shape[0] for s in samples) if samples else 3
    for s in samples:
        img = s.image
        is_rgb = img.ndim == 3
        x = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
        if not is_rgb:
            x = np.repeat(x[..., None], 3, -1)
        t = s.targets
        h, w = x.shape[:2]
        if h < crop or w < crop:
            py, px = max(0, crop - h), max(0, crop - w)
            x = cv2.copyMakeBorder(x, 0, py, 0, px, cv2.BORDER_REFLECT)
            t = np.stack([cv2.copyMakeBorder(c.astype(np.float32), 0, py, 0, px, cv2.BORDER_REFLECT) for c in t])
            h, w = x.shape[:2]
        if s.kind == "partial" and t.shape[0] > 3:
            yy, xx = np.nonzero(t[3] > 0)
        else:
            yy = xx = ()
        if len(yy):  # centre the crop on a random annotated pixel (clipped to the image)
            i = int(rng.integers(len(yy)))
            y0 = int(np.clip(yy[i] - crop // 2, 0, h - crop))
            x0 = int(np.clip(xx[i] - crop // 2, 0, w - crop))
        else:
            y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        x = x[y0:y0 + crop, x0:x0 + crop]
        t = t[:, y0:y0 + crop, x0:x0 + crop].astype(np.float32)
        if t.shape[0] < n_targets:
            t = np.concatenate([t, np.ones((n_targets - t.shape[0],) + t.shape[1:], np.float32)])
        k = int(rng.integers(4))
        x, t = np.rot90(x, k, (0, 1)), np.rot90(t, k, (1, 2))
        if rng.random() < 0.5:
            x, t = x[:, ::-1], t[:, :, ::-1]
        x = _augment_colour(np.ascontiguousarray(x), rng, is_rgb)
        lo = np.percentile(x.reshape(-1, 3), 1.0, axis=0)
        hi = np.percentile(x.reshape(-1, 3), 99.5, axis=0)
        span = np.maximum(hi - lo, 1e-3) * np.exp(rng.normal(0, 0.1, 3))
        x = np.clip((x - lo - rng.normal(0, 0.03, 3) * span) / span, -0.2, 1.2)
        if not is_rgb:  # one fluorescence plane: the same values in the three channels
            x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
        if in_channels == 4:
            x = np.concatenate([x, np.full(x.shape[:2] + (1,), 0.0 if is_rgb else 1.0, np.float32)], -1)
        xs.append(x.transpose(2, 0, 1))
        ys.append(t)
    return torch.from_numpy(np.ascontiguousarray(np.stack(xs), dtype=np.float32)), \
        torch.from_numpy(np.ascontiguousarray(np.stack(ys), dtype=np.float32))
