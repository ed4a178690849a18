"""Synthetic samples as datasets: on the fly (:class:`SynthStream`) or cached in .npz files.

Both classes are plain Python sequences (``len`` and integer indexing), so they plug into a
``torch.utils.data.DataLoader`` without importing torch here. Sample ``i`` of a stream with
seed ``s`` is always the same (its generator is seeded with ``[s, i]``), so a cached dataset
made with :func:`make_dataset` holds exactly the samples the stream would give.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from histo.errors import HistoInputError
from histo.io.stain import STAINS
from histo.synth.generate import SynthSample, generate_section

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def save_sample(path: str | Path, sample: SynthSample) -> Path:
    """Write ``sample`` to a compressed .npz file (atomically: temp file, then rename)."""
    path = Path(path)
    keys = np.array(sorted(sample.fiber_types), np.uint32)
    vals = np.array([sample.fiber_types[int(k)] for k in keys], dtype="U2")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        image=sample.image,
        labels=sample.labels,
        planted=sample.planted,
        type_labels=keys,
        type_names=vals,
        tissue=sample.tissue if sample.tissue is not None else np.ones(sample.labels.shape, bool),
        stain=np.array(sample.stain),
        info=np.array(json.dumps(sample.info)),
    )
    tmp.replace(path)
    return path


def load_sample(path: str | Path) -> SynthSample:
    """Read a sample written by :func:`save_sample`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            types = {int(k): str(v) for k, v in zip(z["type_labels"], z["type_names"])}
            return SynthSample(
                image=z["image"],
                labels=z["labels"],
                planted=z["planted"],
                fiber_types=types,
                stain=str(z["stain"]),
                info=json.loads(str(z["info"])),
                tissue=z["tissue"],
            )
    except (OSError, KeyError, ValueError) as err:
        raise HistoInputError(f"not a synthetic sample file ({err}); regenerate it with make_dataset", path=path) from err


class SynthStream:
    """``n`` synthetic samples generated on demand; sample ``i`` is deterministic.

    Parameters
    ----------
    n : int
        Length of the sequence (e.g. samples per epoch).
    seed : int
        Base seed; use a different seed per epoch for fresh data every epoch.
    shape : (int, int)
        Image shape.
    stains : sequence of str
        Stains cycled through (sample ``i`` gets ``stains[i % len(stains)]``).
    fiber_diameter_px : float or (float, float)
        Fixed diameter, or a range sampled log-uniformly per sample.
    **options
        Passed to :func:`histo.synth.generate_section`.

    Examples
    --------
    >>> s = SynthStream(4, seed=1, shape=(64, 64), stains=("if",), fiber_diameter_px=16,
    ...                 geometry="packing")
    >>> len(s), s[0].image.dtype
    (4, dtype('uint16'))
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        shape: tuple[int, int] = (512, 512),
        stains: Sequence[str] = STAINS,
        fiber_diameter_px: float | tuple[float, float] = (20.0, 60.0),
        **options,
    ):
        bad = [s for s in stains if s not in STAINS]
        if bad or not stains:
            raise HistoInputError(f"stains must be a non-empty subset of {STAINS}, got {list(stains)}")
        self.n = int(n)
        self.seed = int(seed)
        self.shape = tuple(int(v) for v in shape)
        self.stains = tuple(stains)
        self.fiber_diameter_px = fiber_diameter_px
        self.options = options

    def __len__(self) -> int:
        return self.n

    def params(self, i: int) -> tuple[np.random.Generator, str, float]:
        """Generator, stain and fiber diameter of sample ``i``."""
        rng = np.random.default_rng([self.seed, int(i)])
        stain = self.stains[int(i) % len(self.stains)]
        d = self.fiber_diameter_px
        if isinstance(d, (tuple, list)):
            lo, hi = float(d[0]), float(d[1])
            d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        return rng, stain, float(d)

    def __getitem__(self, i: int) -> SynthSample:
        if not -self.n <= i < self.n:
            raise IndexError(i)
        i = i % self.n
        rng, stain, d = self.params(i)
        sample = generate_section(self.shape, stain=stain, fiber_diameter_px=d, rng=rng, **self.options)
        sample.info["index"] = i
        sample.info["seed"] = self.seed
        return sample


def make_dataset(
    folder: str | Path,
    n: int,
    *,
    seed: int = 0,
    shape: tuple[int, int] = (512, 512),
    stains: Sequence[str] = STAINS,
    fiber_diameter_px: float | tuple[float, float] = (20.0, 60.0),
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> list[Path]:
    """Pre-generate ``n`` samples into ``folder`` as ``sample_00000.npz`` ... (resumable).

    Files already present are kept (a rerun completes an interrupted dataset); a
    ``manifest.json`` records the parameters. Returns the sample paths in order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stream = SynthStream(n, seed=seed, shape=shape, stains=stains, fiber_diameter_px=fiber_diameter_px, **options)
    manifest = {
        "n": int(n),
        "seed": int(seed),
        "shape": list(stream.shape),
        "stains": list(stream.stains),
        "fiber_diameter_px": fiber_diameter_px if np.isscalar(fiber_diameter_px) else list(fiber_diameter_px),
        "options": options,
    }
    mpath = folder / MANIFEST
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        if {k: old.get(k) for k in manifest} != json.loads(json.dumps(manifest)):
            raise HistoInputError(
                "folder holds a synthetic dataset made with other parameters; use an empty folder",
                path=folder,
            )
    mpath.write_text(json.dumps(manifest, indent=2))
    paths = []
    for i in range(n):
        p = folder / f"sample_{i:05d}.npz"
        if not p.is_file():
            save_sample(p, stream[i])
        paths.append(p)
        if progress is not None:
            progress(i + 1, n)
    logger.info("synthetic dataset in %s: %d samples", folder, n)
    return paths


class SynthDataset:
    """Samples cached by :func:`make_dataset`, read from ``folder`` on indexing."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob("sample_*.npz"))
        if not self.paths:
            raise HistoInputError("no sample_*.npz files; make them with histo.synth.make_dataset", path=self.folder)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> SynthSample:
        return load_sample(self.paths[i])
