"""Training the fiber network (``histo train``): settings, loss, the sample pool, the loop.

The data (real pairs, synthetic sections, membrane renderings, batches) is
:mod:`histo.train.trainset`; the targets and label conventions are :mod:`histo.segment.targets`.
Targets per pixel (:func:`fiber_targets`): foreground, boundary (fiber pixels touching another
label or background) and the normalised distance to the fiber's edge (1 at its centre).
Checkpoints and the final model are safetensors + JSON (:mod:`histo.segment.net`); optimizer state is
saved as tensors too, so ``resume`` never unpickles anything. ``init_from`` starts from an
existing model's weights (fine-tuning).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from histo.segment import net as _net  # first: it sets OMP_WAIT_POLICY before torch loads

# isort: split
import torch
import torch.nn.functional as F

from histo.errors import HistoInputError
from histo.segment.targets import fiber_targets, median_diameter_px, membrane_labels  # noqa: F401 (public here too)
from histo.train.partial import prepare_partial
from histo.train.trainset import (  # noqa: F401 (public here too)
    IMAGE_SUFFIXES,
    Sample,
    find_pairs,
    make_batch,
    membrane_sample,
    prepare_real,
    render_membrane,
    synth_sample,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a training run (saved in the model's JSON)."""

    name: str = "fibernet_v3"
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
    # membrane IF twice: the hardest modality gets a quarter of the synthetic sections
    stains: tuple[str, ...] = ("he", "nadh", "sdh", "atpase", "esterase", "if", "psr", "if")
    checkpoint_every: int = 250
    channel: int | None = None
    bf16: bool = True
    in_channels: int = 4
    # fluorescence targets: gaps narrower than this fraction of the fiber diameter are split
    # between their fibers (histo.segment.targets.membrane_labels)
    membrane_gap_frac: float = 0.16
    # loss weight of a small fiber's pixels: sqrt(median area / area), at most this (1 = off)
    small_weight_max: float = 3.0
    # planted small angular fiber groups per synthetic section, drawn uniformly (0, 0 = synth default)
    planted_groups: tuple[int, int] = (1, 6)
    # fine-tuning: start from this model's weights (name or path); None = random init
    init_from: str | None = None
    # post-processing written into the model config; chosen by benchmarks/bench_thresholds.py on
    # the training image and synthetic validation sections (best F1, then the smallest
    # min-Feret bias), never on the held-out images
    fg_threshold: float = 0.6
    fg_threshold_fluorescence: float = 0.6
    seed_threshold: float = 0.3
    # fine-tuning: keep the BatchNorm statistics of the init_from model (a small, narrow training
    # set would otherwise pull them towards itself)
    freeze_batchnorm: bool = False
    # partial annotations (histo.train.partial): (image, GeoJSON) pairs of hand-drawn "fiber" and
    # "no_fiber" polygons; their "train" polygons are learned, unannotated pixels carry loss weight 0
    partial: tuple[tuple[str, str], ...] = ()
    # share of batch samples drawn from the partial annotations (when there are any)
    partial_fraction: float = 0.15
    # fiber sizes each partially annotated image is prepared at (memory: tiles x scales)
    partial_scales: int = 4


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on foreground, boundary (weighted x3 positives) and the soft normalised distance.

    A fourth target channel, when present, weighs every pixel (``histo.segment.targets.size_weights``).
    """
    px = target[:, 3] if target.shape[1] > 3 else None
    fg = F.binary_cross_entropy_with_logits(logits[:, 0], target[:, 0], weight=px)
    w = 1 + 2 * target[:, 1]
    bd = F.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1], weight=w if px is None else w * px)
    dist = F.binary_cross_entropy_with_logits(logits[:, 2], target[:, 2], weight=px)
    return fg + bd + 2 * dist


# ---------------------------------------------------------------------------- the loop
class _Pool:
    """Where training samples come from: real, partial annotations, synthetic (refreshed), membrane renderings."""

    def __init__(self, settings: TrainSettings, real: list[Sample], rng: np.random.Generator,
                 use_synth: bool, progress=None, partial: list[Sample] | None = None):
        self.settings, self.real, self.rng = settings, real, rng
        self.partial: list[Sample] = list(partial or [])
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
        if self.partial:  # the first partial_fraction of [0, 1) draws a partial sample
            if r < s.partial_fraction or not (self.real or self.synth):
                return self.partial[int(self.rng.integers(len(self.partial)))]
            r -= s.partial_fraction
        if self.real and (r < s.real_fraction or not self.synth):
            return self.real[int(self.rng.integers(len(self.real)))]
        if self.geometries and r < s.real_fraction + s.membrane_fraction:
            lab = self.geometries[int(self.rng.integers(len(self.geometries)))]
            return membrane_sample(lab, self.rng, self.settings)
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
    samples: Sequence[Sample] = (),
    data_record: dict | None = None,
    keep_base_config: bool = False,
) -> Path:
    """Train a :class:`histo.segment.net.FiberNet` and save it as ``out_path`` (.safetensors + .json).

    Parameters
    ----------
    settings : TrainSettings
    out_path : str or Path
        Model path without suffix, e.g. ``models/fibernet_v2``. Checkpoints are written
        beside it as ``<out_path>.ckpt.*`` every ``settings.checkpoint_every`` steps.
    data_dirs : sequence of folders
        Folders of real ``X.ext`` + ``X_labels.ext`` pairs. Partially annotated images are
        ``settings.partial`` (:mod:`histo.train.partial`).
    use_synth : bool
        Draw synthetic sections from :mod:`histo.synth`.
    resume : bool
        Continue from the checkpoint beside ``out_path`` when there is one.
    device : {"cpu", "cuda"}, optional
    progress : callable(phase, done, total, info), optional
        Called for the synthetic pool (``"synth"``) and every 10 training steps (``"train"``,
        info has the running loss and learning rate).
    samples : sequence of Sample
        Prepared samples with a loss weight (``kind="partial"``, e.g. reviewed slides from
        :mod:`histo.train.reviews`), drawn like partial annotations (``settings.partial_fraction``).
    data_record : dict, optional
        More to record under ``extra["data"]`` (what ``samples`` came from). It is part of the
        checkpoint's identity: ``resume`` continues only a checkpoint of the same settings and
        data, and starts again (with a log message) otherwise.
    keep_base_config : bool
        With ``settings.init_from``: save the base model's configuration (thresholds, fiber
        score, canonical scale) under the new name instead of one built from ``settings``
        (fine-tuning that must not lose the base model's calibration).

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
    if not pairs and not use_synth and not settings.partial and not samples:
        raise HistoInputError("no training data: give --data folders with image + _labels pairs, "
                              "--partial annotations or use synthetic data")
    real = [s for img, lab in pairs for s in prepare_real(img, lab, settings)]
    partial = [s for img, ann in settings.partial for s in prepare_partial(img, ann, settings)]
    partial += list(samples)
    t0 = time.perf_counter()
    pool = _Pool(settings, real, rng, use_synth, progress, partial)
    log.info("data: %d real pairs (%d scaled samples), %d partial annotations (%d tiles), %d synthetic; %.0f s",
             len(pairs), len(real), len(settings.partial), len(partial), len(pool.synth), time.perf_counter() - t0)
    net = _net.FiberNet(settings.channels, settings.in_channels)
    base_config = None
    if settings.init_from:
        base, base_config = _net.load_model(settings.init_from, device="cpu")
        if tuple(base_config.channels) != tuple(settings.channels) or base_config.in_channels != settings.in_channels:
            raise HistoInputError(f"init_from model {settings.init_from} has another architecture "
                                  f"({base_config.channels}, {base_config.in_channels} inputs)")
        net.load_state_dict(base.state_dict())
        base_config = base_config if keep_base_config else None
        log.info("starting from the weights of %s", settings.init_from)
    net = net.to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    start, history = 0, []
    data_record = {"real": [str(p[0]) for p in pairs], "synthetic": use_synth,
                   "partial": [[str(img), str(ann)] for img, ann in settings.partial], **(data_record or {})}
    meta = json.loads(ckpt_json.read_text()) if resume and ckpt_json.exists() else None
    if meta is not None and not _same_run(meta.get("extra") or {}, settings, data_record):
        log.warning("checkpoint %s was made with other settings or data; starting again", ckpt_json)
        meta = None
    if meta is not None:
        net.load_state_dict(load_file(str(ckpt_weights)))
        _load_opt_state(opt, load_file(str(ckpt_opt)))
        start, history = int(meta["extra"]["step"]), list(meta["extra"].get("history", []))
        rng = np.random.default_rng([settings.seed, start])
        pool.rng = rng
        log.info("resumed from step %d", start)
    config = replace(base_config, name=settings.name, extra={}) if base_config is not None else _net.NetConfig(
        name=settings.name, channels=tuple(settings.channels),
        canonical_diameter_px=settings.canonical_diameter_px,
        canonical_pixel_size_um=settings.canonical_pixel_size_um,
        fg_threshold=settings.fg_threshold,
        fg_threshold_fluorescence=settings.fg_threshold_fluorescence,
        seed_threshold=settings.seed_threshold,
        in_channels=settings.in_channels,
    )
    # bfloat16 only where the hardware runs it natively: emulated, it is ~10x slower than float32
    use_bf16 = settings.bf16 and _net.bf16_supported(dev)
    net.train()
    if settings.freeze_batchnorm:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    t_start, running = time.perf_counter(), None
    for step in range(start, settings.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, settings)
        x, y = make_batch([pool.draw() for _ in range(settings.batch_size)], rng, settings.crop_px,
                          settings.in_channels)
        x = x.to(dev).contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
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


def _same_run(extra: dict, settings: TrainSettings, data_record: dict) -> bool:
    """True when a checkpoint's record says it was made with these settings and this data."""
    same_settings = json.dumps(extra.get("settings"), sort_keys=True) == json.dumps(_settings_dict(settings), sort_keys=True)
    return same_settings and json.dumps(extra.get("data"), sort_keys=True) == json.dumps(data_record, sort_keys=True)


def _settings_dict(settings: TrainSettings) -> dict:
    d = asdict(settings)
    return {k: [list(e) if isinstance(e, tuple) else e for e in v] if isinstance(v, tuple) else v
            for k, v in d.items()}
