"""Synthetic muscle sections with exact ground truth, for training and testing segmentation.

Public API
----------
generate_section(shape=(512, 512), *, stain="he", fiber_diameter_px=40.0, rng=None, **options)
    -> SynthSample(image, labels, planted, fiber_types, stain, info, tissue)
STAINS
    ("he", "nadh", "sdh", "atpase", "esterase", "if", "psr")
make_dataset(folder, n, ...) / SynthDataset(folder) / SynthStream(n, seed, ...)
    pre-generated samples in .npz files, and on-the-fly samples indexed like a dataset.

See ``docs/synth.md`` for how the geometry and the stains are made.
"""

from __future__ import annotations

from histo.io.stain import STAINS
from histo.synth.dataset import SynthDataset, SynthStream, load_sample, make_dataset, save_sample
from histo.synth.generate import GEOMETRIES, SynthSample, generate_section, make_geometry

__all__ = [
    "GEOMETRIES",
    "STAINS",
    "SynthDataset",
    "SynthSample",
    "SynthStream",
    "generate_section",
    "load_sample",
    "make_dataset",
    "make_geometry",
    "save_sample",
]
