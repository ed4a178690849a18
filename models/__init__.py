"""Shipped segmentation weights (safetensors) with their config (JSON) and model card (Markdown).

Installed as the import package ``histo_models``; :mod:`histo.segment.net` loads from here with
:func:`weights_dir`. Weights are tensors only (no pickle), so loading runs no code.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def weights_dir() -> Path:
    """Folder holding ``<name>.safetensors``, ``<name>.json`` and ``<name>.md``."""
    return Path(str(files(__name__)))
