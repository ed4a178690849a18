"""Training the fiber network (``histo train``): data, targets, augmentation, loop, checkpoints.

Data, all brought to the canonical scale (a typical fiber ``canonical_diameter_px`` across,
randomised between ``diameter_range_px``):

* real images with instance labels from folders (``<stem>.<ext>`` + ``<stem>_labels.<ext>``),
  each prepared once at several scales;
* synthetic sections from :mod:`histo.synth` in every stain, a pool refreshed during training;
* membrane renderings of real and synthetic label geometry (:func:`render_membrane`), so the
  fluorescence path also sees real fiber shapes.

Targets per pixel (:func:`fiber_targets`): foreground, boundary (fiber pixels touching another
label or background) and the normalised distance to the fiber's edge (1 at its centre).
Checkpoints and the final model are safetensors + JSON (:mod:`histo.net`); optimizer state is
saved as tensors too, so ``resume`` never unpickles anything.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from histo import net as _net
from histo.errors import HistoInputError
from histo.scale import rescale

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a training run (saved in the model's JSON)."""

    name: str = _net.DEFAULT_MODEL
    steps: int = 5000
    batch_size: int = 8
    crop_px: int = 160
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    canonical_diameter_px: float = 32.0
    canonical_pixel_size_um: float = 1.5
    diameter_range_px: tuple[float, float] = (16.0, 64.0)
    real_scales: int = 7
    real_fraction: float = 0.3
    membrane_fraction: float = 0.2
    synth_pool: int = 200
    synth_shape_px: int = 256
    synth_refresh_every: int = 6
    stains: tuple[str, ...] = ("he", "nadh", "sdh", "atpase", "esterase", "if", "psr")
    checkpoint_every: int = 250
    channel: int | None = None
    bf16: bool = True
    # post-processing written into the model config; chosen by a sweep on the training image
    # and synthetic validation sections (best F1 with the smallest min-Feret bias)
    fg_threshold: float = 0.6
    fg_threshold_fluorescence: float = 0.4
    seed_threshold: float = 0.3


# ---------------------------------------------------------------------------- targets
def fiber_targets(labels: np.ndarray) -> np.ndarray:
    """(3, Y, X) float32 targets: foreground, boundary, per-fiber normalised distance.

    Examples
    --------
    >>> lab = np.zeros((7, 7), np.int32); lab[1:6, 1:6] = 1
    >>> t = fiber_targets(lab)
    >>> t[0].sum(), t[1][1, 1], t[2][3, 3], t[2][1, 3]
    (25.0, 1.0, 1.0, 0.3333333...)
    """
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    fg = labels > 0
    bd = find_boundaries(labels, mode="inner") & fg
    dist = ndi.distance_transform_edt(fg & ~bd) + fg  # border pixels at 1
    n = int(labels.max())
    if n:
        peak = ndi.maximum(dist, labels, index=np.arange(n + 1))
        peak = np.asarray(peak, dtype=np.float64)
        peak[peak <= 0] = 1
        dist = dist / peak[labels]
    dist[~fg] = 0
    return np.stack([fg, bd, dist]).astype(np.float32)


def median_diameter_px(labels: np.ndarray) -> float:
    """Median equivalent diameter of the labels not touching the image border."""
    areas = np.bincount(np.asarray(labels).ravel())
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.ones(areas.size, bool)
    keep[0] = False
    if (keep & ~np.isin(np.arange(areas.size), edge) & (areas > 0)).sum() >= 3:
        keep[edge] = False
    keep &= areas > 0
    if not keep.any():
        raise ValueError("no labels")
    return float(np.sqrt(4 * np.median(areas[keep]) / np.pi))


# ---------------------------------------------------------------------------- data
@dataclass
class Sample:
    """One prepared training image at (roughly) the canonical scale."""

    image: np.ndarray  # (Y, X, 3) uint8 brightfield or (Y, X) float32 fluorescence
    targets: np.ndarray  # (3, Y, X) float16
    kind: str
    labels: np.ndarray | None = None


def _read_pair(image_path: Path, labels_path: Path, channel: int | None):
    import tifffile
    from PIL import Image

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
        img = img.astype(np.float32)
        lo, hi = np.percentile(img, (1, 99.5))
        img = (img - lo) / max(hi - lo, 1e-6)
    return img, lab


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
    """One real image + labels at ``settings.real_scales`` fiber sizes across the range."""
    img, lab = _read_pair(Path(image_path), Path(labels_path), settings.channel)
    d = median_diameter_px(lab)
    lo, hi = settings.diameter_range_px
    out = []
    for target in np.geomspace(lo, hi, settings.real_scales):
        f = target / d
        shape = (max(16, round(lab.shape[0] * f)), max(16, round(lab.shape[1] * f)))
        lab_s = rescale(lab, shape, labels=True)
        img_s = rescale(img, shape)
        out.append(Sample(img_s, fiber_targets(lab_s).astype(np.float16), "real", lab_s))
    log.info("prepared %s: median diameter %.1f px, %d scales", Path(image_path).name, d, len(out))
    return out


def synth_sample(rng: np.random.Generator, settings: TrainSettings) -> Sample:
    """One synthetic section from histo.synth, random stain and fiber size."""
    from histo.synth import generate_section

    stain = str(rng.choice(settings.stains))
    lo, hi = settings.diameter_range_px
    d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    s = generate_section((settings.synth_shape_px,) * 2, stain=stain, fiber_diameter_px=d, rng=rng)
    img = np.asarray(s.image)
    if img.ndim == 2:
        img = img.astype(np.float32)
        p_lo, p_hi = np.percentile(img, (1, 99.5))
        img = (img - p_lo) / max(p_hi - p_lo, 1e-6)
    lab = np.asarray(s.labels).astype(np.int32)
    return Sample(img, fiber_targets(lab).astype(np.float16), f"synth-{stain}", lab)


def _smooth_noise(shape, rng, sigma) -> np.ndarray:
    """Unit-variance noise smooth over about ``sigma`` px (coarse noise upsampled: fast)."""
    h, w = shape
    step = max(1.0, sigma)
    small = rng.standard_normal((int(h / step) + 2, int(w / step) + 2)).astype(np.float32)
    n = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (n - n.mean()) / (n.std() + 1e-6)


def render_membrane(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A membrane-immunofluorescence-like (Y, X) float32 image of a label geometry.

    The labels follow the convention of membrane-stain reference masks: each fiber's label
    includes its own bright membrane (a band of uneven thickness and brightness inside the
    label edge); the endomysium between nearby fibers is bright too, wide background regions
    are dark with faint texture; dark interiors with faint texture; blur, noise, uneven light.
    """
    from skimage.segmentation import find_boundaries

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
    lo, hi = np.percentile(img, (1, 99.5))
    return ((img - lo) / max(hi - lo, 1e-6)).astype(np.float32)


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


def _batch(samples: list[Sample], rng: np.random.Generator, crop: int):
    xs, ys = [], []
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
        y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        x = x[y0:y0 + crop, x0:x0 + crop]
        t = t[:, y0:y0 + crop, x0:x0 + crop].astype(np.float32)
        k = int(rng.integers(4))
        x, t = np.rot90(x, k, (0, 1)), np.rot90(t, k, (1, 2))
        if rng.random() < 0.5:
            x, t = x[:, ::-1], t[:, :, ::-1]
        x = _augment_colour(np.ascontiguousarray(x), rng, is_rgb)
        lo = np.percentile(x.reshape(-1, 3), 1.0, axis=0)
        hi = np.percentile(x.reshape(-1, 3), 99.5, axis=0)
        span = np.maximum(hi - lo, 1e-3) * np.exp(rng.normal(0, 0.1, 3))
        x = np.clip((x - lo - rng.normal(0, 0.03, 3) * span) / span, -0.2, 1.2)
        xs.append(x.transpose(2, 0, 1))
        ys.append(t)
    return torch.from_numpy(np.ascontiguousarray(np.stack(xs), dtype=np.float32)), \
        torch.from_numpy(np.ascontiguousarray(np.stack(ys), dtype=np.float32))


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on foreground, boundary (weighted x3 positives) and the soft normalised distance."""
    fg = F.binary_cross_entropy_with_logits(logits[:, 0], target[:, 0])
    w = 1 + 2 * target[:, 1]
    bd = F.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1], weight=w)
    dist = F.binary_cross_entropy_with_logits(logits[:, 2], target[:, 2])
    return fg + bd + 2 * dist


# ---------------------------------------------------------------------------- the loop
class _Pool:
    """Where training samples come from: real, synthetic (refreshed), membrane renderings."""

    def __init__(self, settings: TrainSettings, real: list[Sample], rng: np.random.Generator,
                 use_synth: bool, progress=None):
        self.settings, self.real, self.rng = settings, real, rng
        self.synth: list[Sample] = []
        self.use_synth = use_synth
        if use_synth:
            for i in range(settings.synth_pool):
                self.synth.append(synth_sample(rng, settings))
                if progress and (i + 1) % 20 == 0:
                    progress("synth", i + 1, settings.synth_pool, {})
        self.geometries = [s.labels for s in real + self.synth if s.labels is not None]

    def refresh(self):
        if self.use_synth and self.synth:
            self.synth[int(self.rng.integers(len(self.synth)))] = synth_sample(self.rng, self.settings)
            self.geometries = [s.labels for s in self.real + self.synth if s.labels is not None]

    def draw(self) -> Sample:
        s, r = self.settings, self.rng.random()
        if self.real and (r < s.real_fraction or not self.synth):
            return self.real[int(self.rng.integers(len(self.real)))]
        if self.geometries and r < s.real_fraction + s.membrane_fraction:
            lab = self.geometries[int(self.rng.integers(len(self.geometries)))]
            return Sample(render_membrane(lab, self.rng), fiber_targets(lab), "membrane")
        return self.synth[int(self.rng.integers(len(self.synth)))]


def _opt_state_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return out


def _load_opt_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        i, k = key.split(".", 1)
        state.setdefault(int(i), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def _lr_at(step: int, settings: TrainSettings) -> float:
    warm = max(1, settings.steps // 30)
    if step < warm:
        return settings.lr * (step + 1) / warm
    t = (step - warm) / max(1, settings.steps - warm)
    return settings.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def train(
    settings: TrainSettings,
    out_path: str | Path,
    *,
    data_dirs=(),
    use_synth: bool = True,
    resume: bool = False,
    device: str | None = None,
    progress: Callable[[str, int, int, dict], None] | None = None,
) -> Path:
    """Train a :class:`histo.net.FiberNet` and save it as ``out_path`` (.safetensors + .json).

    Parameters
    ----------
    settings : TrainSettings
    out_path : str or Path
        Model path without suffix, e.g. ``models/fibernet_v1``. Checkpoints are written
        beside it as ``<out_path>.ckpt.*`` every ``settings.checkpoint_every`` steps.
    data_dirs : sequence of folders
        Folders of real ``X.ext`` + ``X_labels.ext`` pairs.
    use_synth : bool
        Draw synthetic sections from :mod:`histo.synth`.
    resume : bool
        Continue from the checkpoint beside ``out_path`` when there is one.
    device : {"cpu", "cuda"}, optional
    progress : callable(phase, done, total, info), optional
        Called for the synthetic pool (``"synth"``) and every 10 training steps (``"train"``,
        info has the running loss and learning rate).

    Returns
    -------
    Path of the saved weights.
    """
    from safetensors.torch import load_file, save_file

    out_path = Path(out_path).with_suffix("") if Path(out_path).suffix == ".safetensors" else Path(out_path)
    ckpt = out_path.with_name(out_path.name + ".ckpt")
    ckpt_json, ckpt_weights, ckpt_opt = (ckpt.with_name(ckpt.name + s) for s in (".json", ".safetensors", ".opt.safetensors"))
    dev = _net.default_device(device)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    pairs = [p for d in data_dirs for p in find_pairs(d)]
    if not pairs and not use_synth:
        raise HistoInputError("no training data: give --data folders with image + _labels pairs or use synthetic data")
    real = [s for img, lab in pairs for s in prepare_real(img, lab, settings)]
    t0 = time.perf_counter()
    pool = _Pool(settings, real, rng, use_synth, progress)
    log.info("data: %d real pairs (%d scaled samples), %d synthetic; %.0f s", len(pairs), len(real),
             len(pool.synth), time.perf_counter() - t0)
    net = _net.FiberNet(settings.channels).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    start, history = 0, []
    if resume and ckpt_json.exists():
        meta = json.loads(ckpt_json.read_text())
        net.load_state_dict(load_file(str(ckpt_weights)))
        _load_opt_state(opt, load_file(str(ckpt_opt)))
        start, history = int(meta["extra"]["step"]), list(meta["extra"].get("history", []))
        rng = np.random.default_rng([settings.seed, start])
        pool.rng = rng
        log.info("resumed from step %d", start)
    config = _net.NetConfig(
        name=settings.name, channels=tuple(settings.channels),
        canonical_diameter_px=settings.canonical_diameter_px,
        canonical_pixel_size_um=settings.canonical_pixel_size_um,
        fg_threshold=settings.fg_threshold,
        fg_threshold_fluorescence=settings.fg_threshold_fluorescence,
        seed_threshold=settings.seed_threshold,
    )
    data_record = {"real": [str(p[0]) for p in pairs], "synthetic": use_synth}
    net.train()
    t_start, running = time.perf_counter(), None
    for step in range(start, settings.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, settings)
        x, y = _batch([pool.draw() for _ in range(settings.batch_size)], rng, settings.crop_px)
        x = x.to(dev).contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=settings.bf16):
            logits = net(x)
        loss = loss_fn(logits.float(), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if settings.synth_refresh_every and step % settings.synth_refresh_every == 0:
            pool.refresh()
        if (step + 1) % 10 == 0 and progress:
            progress("train", step + 1, settings.steps, {"loss": running, "lr": opt.param_groups[0]["lr"]})
        if (step + 1) % 100 == 0:
            history.append([step + 1, round(running, 5), round(time.perf_counter() - t_start, 1)])
        last = step + 1 == settings.steps
        if (step + 1) % settings.checkpoint_every == 0 or last:
            extra = {"step": step + 1, "history": history, "settings": _settings_dict(settings),
                     "data": data_record}
            _net.save_model(ckpt, net, replace(config, extra=extra))
            save_file(_opt_state_tensors(opt), str(ckpt_opt))
    extra = {"step": settings.steps, "history": history, "settings": _settings_dict(settings),
             "data": data_record, "train_seconds": round(time.perf_counter() - t_start, 1)}
    net.eval()
    return _net.save_model(out_path, net, replace(config, extra=extra))


def _settings_dict(settings: TrainSettings) -> dict:
    d = asdict(settings)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
