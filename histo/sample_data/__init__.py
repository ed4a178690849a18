"""Bundled sample slide (see ATTRIBUTION.md): used by ``make demo`` and the napari sample."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def demo_image_path() -> Path:
    """Path of the bundled H&E sample image (``cn_img02.tif``)."""
    return Path(str(files(__name__) / "cn_img02.tif"))


def demo_labels_path() -> Path:
    """Path of the reference labels of the bundled sample (Cellpose cyto3, checked by eye)."""
    return Path(str(files(__name__) / "cn_img02_labels.png"))
