"""The fiber segmentation network and its weights on disk.

A compact U-Net (:class:`FiberNet`) maps a 3-channel image at the canonical scale to three
maps: fiber foreground, fiber boundary and the per-fiber normalised distance to the fiber
edge (1 at each fiber's centre). :mod:`histo.segment.segmenter` turns them into instance labels.

Weights are stored with safetensors (no pickle: loading never executes code) next to a JSON
config that fixes the architecture, the input convention and the post-processing thresholds:
``models/<name>.safetensors`` + ``models/<name>.json``.

Input convention (:mod:`histo.segment.netinput`): brightfield RGB is scaled to [0, 1] with per-channel
percentiles computed once per image (so tiles of one image share them);
a fluorescence membrane channel is percentile-normalised the same way and replicated to three
channels (bright membrane on a dark background, as the network saw it in training). Models
with ``in_channels=4`` also get a constant modality channel (0 brightfield, 1 fluorescence):
the two kinds of reference outline differ (a brightfield fiber ends at its own edge, a
membrane-stained one includes its membrane, see :mod:`histo.segment.targets`), and a grey
fluorescence plane alone does not say which one is wanted.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# OpenMP threads that spin while waiting for work steal the CPU from everything else on a busy
# machine (measured here: a 256 px tile took 0.58 s instead of 0.03 s with two other jobs
# running). Sleep instead; read once, when torch loads its OpenMP runtime, so it must be set
# before the first `import torch` of the process. A value set by the user is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from histo.errors import HistoInputError

log = logging.getLogger(__name__)

#: Outputs of the network, in channel order.
OUTPUTS = ("foreground", "boundary", "distance")
#: Default shipped model name (``models/<name>.safetensors``).
DEFAULT_MODEL = "fibernet_v3"
#: Total down-sampling of the network: inputs are padded to a multiple of it.
_PAD_MULTIPLE_DEFAULT = 16


@dataclass(frozen=True)
class NetConfig:
    """Architecture, input convention and post-processing thresholds of a model.

    Attributes
    ----------
    name : str
        Model name (file stem in ``models/``).
    version : str
        Model version recorded in every result.
    channels : tuple of int
        Feature channels per U-Net level, coarsest last.
    canonical_diameter_px : float
        Typical fiber diameter, in pixels, at which the network runs.
    canonical_pixel_size_um : float
        Micrometres per pixel of the canonical scale (used when the pixel size is known).
    fg_threshold : float
        Foreground probability above which a pixel belongs to a fiber (brightfield RGB).
    fg_threshold_fluorescence : float or None
        The same for a single fluorescence channel (``None``: ``fg_threshold``). Reference masks
        of membrane stains run to the middle of the membrane, where the network is less sure.
    seed_threshold : float
        Normalised distance above which a pixel is a fiber seed.
    min_area_frac : float
        Objects smaller than this fraction of a canonical fiber's area are dropped.
    percentiles : tuple of float
        Low / high percentiles of the input normalisation.
    in_channels : int
        3 (image only) or 4 (image + modality channel, see :func:`histo.segment.netinput.network_input`).
    fiber_score : dict or None
        Weights and threshold of the per-object fiber score (:mod:`histo.segment.evidence`),
        calibrated on validation data; None: every object is taken as a fiber.
    extra : dict
        Free-form training record (data, steps, metrics), kept in the JSON.
    """

    name: str = DEFAULT_MODEL
    version: str = "1"
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    canonical_diameter_px: float = 32.0
    canonical_pixel_size_um: float = 1.5
    fg_threshold: float = 0.5
    fg_threshold_fluorescence: float | None = None
    seed_threshold: float = 0.5
    min_area_frac: float = 0.02
    percentiles: tuple[float, float] = (1.0, 99.5)
    in_channels: int = 3
    fiber_score: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pad_multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def fg_threshold_for(self, rgb: bool) -> float:
        """Foreground threshold for brightfield RGB (``rgb=True``) or a fluorescence channel."""
        if rgb or self.fg_threshold_fluorescence is None:
            return self.fg_threshold
        return self.fg_threshold_fluorescence

    def to_json(self) -> str:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["percentiles"] = list(self.percentiles)
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "channels" in kw:
            kw["channels"] = tuple(int(c) for c in kw["channels"])
        if "percentiles" in kw:
            kw["percentiles"] = tuple(float(p) for p in kw["percentiles"])
        return cls(**kw)


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class FiberNet(nn.Module):
    """Compact U-Net: one conv at full resolution, two per coarser level.

    Parameters
    ----------
    channels : sequence of int
        Feature channels per level; ``len(channels) - 1`` max-pool steps.
    in_channels : int
        Input channels (3, or 4 with the modality channel).

    Examples
    --------
    >>> net = FiberNet((8, 16, 32)).eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
    """

    def __init__(self, channels=(16, 32, 64, 96, 128), in_channels: int = 3):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.channels = channels
        self.in_channels = int(in_channels)
        self.enc = nn.ModuleList()
        prev = self.in_channels
        for level, c in enumerate(channels):
            layers = [_conv(prev, c)] + ([_conv(c, c)] if level > 0 else [])
            self.enc.append(nn.Sequential(*layers))
            prev = c
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in range(len(channels) - 2, -1, -1):
            c = channels[level]
            self.up.append(nn.Conv2d(prev, c, 1))
            layers = [_conv(2 * c, c)] + ([_conv(c, c)] if level > 0 else [])
            self.dec.append(nn.Sequential(*layers))
            prev = c
        self.head = nn.Conv2d(prev, len(OUTPUTS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.enc):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for up, block, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], 1))
        return self.head(x)


def fuse_batchnorm(net: FiberNet) -> nn.Module:
    """A copy of ``net`` for inference with every Conv+BatchNorm pair folded into one conv."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return net


# ---------------------------------------------------------------------------- weights on disk
def models_dir() -> Path:
    """Folder of the shipped models: ``$HISTO_MODELS_DIR``, else the ``histo_models`` package."""
    env = os.environ.get("HISTO_MODELS_DIR")
    if env:
        return Path(env)
    try:
        from histo_models import weights_dir
    except ImportError:  # running from a source tree that is not installed
        return Path(__file__).resolve().parents[2] / "models"
    return weights_dir()


def _model_paths(model: str | Path | None) -> tuple[Path, Path]:
    """(weights, config) paths of a model name or path (suffixes appended, never replaced)."""
    model = DEFAULT_MODEL if model is None else model
    p = Path(model)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    elif not p.parent.parts and not Path(f"{p}.safetensors").exists():  # a bare name: models/
        p = models_dir() / p.name
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_model(path: str | Path, net: FiberNet, config: NetConfig) -> Path:
    """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (config); return the former.

    Files are written to temporary names and renamed, so a reader never sees half a model.
    """
    from safetensors.torch import save_file

    weights, cfg = _model_paths(Path(path))
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp_w, tmp_c = weights.with_name(weights.name + ".tmp"), cfg.with_name(cfg.name + ".tmp")
    save_file(state, str(tmp_w), metadata={"name": config.name, "version": config.version})
    tmp_c.write_text(config.to_json() + "\n")
    os.chmod(tmp_w, 0o644)  # safetensors writes owner-only files; weights are package data
    os.replace(tmp_w, weights)
    os.replace(tmp_c, cfg)
    return weights


def load_model(model: str | Path | None = None, *, device: str | None = None) -> tuple[FiberNet, NetConfig]:
    """Load a model by name (``models/<name>``) or path, weights via safetensors only.

    Parameters
    ----------
    model : str or Path, optional
        A name in :func:`models_dir` or a path with or without suffix; default the shipped model.
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available.

    Returns
    -------
    (FiberNet, NetConfig)
        The network in eval mode on ``device`` and its config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, cfg = _model_paths(model)
    if not weights.exists() or not cfg.exists():
        raise HistoInputError(
            f"model files not found ({weights.name} and {cfg.name}); train one with `histo train` "
            f"or pass an existing model name from {models_dir()}",
            path=weights,
        )
    try:
        config = NetConfig.from_dict(json.loads(cfg.read_text()))
        state = load_file(str(weights), device="cpu")
        net = FiberNet(config.channels, config.in_channels)
        net.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError, OSError, SafetensorError) as err:
        raise HistoInputError(f"cannot load the model: {err}", path=weights) from err
    return net.eval().to(default_device(device)), config


def default_device(device: str | None = None) -> torch.device:
    """``device`` when given, else CUDA when available, else CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise HistoInputError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(device)


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 autocast is fast on ``device`` (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch builds
        return False


def predict_maps(net: nn.Module, x: np.ndarray, *, pad_multiple: int = _PAD_MULTIPLE_DEFAULT,
                 device: torch.device | None = None, precision: str = "float32") -> np.ndarray:
    """Run the network on one (C, Y, X) input; return (3, Y, X) float32 probabilities.

    The input is reflect-padded to a multiple of ``pad_multiple`` and the result cropped back.
    Channels are :data:`OUTPUTS` after a sigmoid. ``precision="bfloat16"`` runs the
    convolutions under bfloat16 autocast (about 2x faster on CPUs with AVX512-BF16).
    """
    device = device or next(net.parameters()).device
    _, h, w = x.shape
    ph, pw = (-h) % pad_multiple, (-w) % pad_multiple
    t = torch.from_numpy(x)[None]
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        t = F.pad(t, (0, pw, 0, ph), mode=mode)
    t = t.to(device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                enabled=precision == "bfloat16"):
        y = torch.sigmoid(net(t).float())[0, :, :h, :w]
    return y.cpu().numpy()
