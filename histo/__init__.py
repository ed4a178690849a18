"""histo: myofiber morphometry for muscle biopsies.

Pure functions over arrays and tables; no Qt or napari is imported here. The public API is
listed in ``__all__`` and imported lazily, so ``import histo`` stays fast and does not load
torch until segmentation is used.

Examples
--------
>>> import histo
>>> image = histo.read_image("slide.tif", pixel_size_um=0.5)          # doctest: +SKIP
>>> labels = histo.segment_image(image, stain="he")                   # doctest: +SKIP
>>> fibers = histo.measure_fibers(labels, image.pixels, pixel_size_um=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from histo.errors import HistoError, HistoInputError

try:
    __version__ = version("histo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: public name -> module that defines it
_PUBLIC = {
    "ImageData": "histo.io.image",
    "ImageLike": "histo.io.image",
    "Stain": "histo.io.stain",
    "STAINS": "histo.io.stain",
    "read_image": "histo.io.image",
    "open_slide": "histo.io.slide",
    "read_labels": "histo.io.masks",
    "validate_labels": "histo.io.masks",
    "measure_fibers": "histo.measure.morphometry",
    "fiber_adjacency": "histo.measure.adjacency",
    "guess_stain": "histo.io.stain",
    "ScoringSettings": "histo.score.settings",
    "score_slide": "histo.score.scoring",
    "segment_image": "histo.segment.segmenter",
    "match_labels": "histo.train.evaluate",
    "write_slide_outputs": "histo.results.writer",
    "analyze": "histo.batch.pipeline",
    "measure_file": "histo.batch.pipeline",
    "score_file": "histo.batch.pipeline",
    "SlideResult": "histo.batch.pipeline",
    "ScoreParams": "histo.batch.slides",
    "run_batch": "histo.batch.run",
    "load_review": "histo.review.state",
    "save_review": "histo.review.state",
    "build_report": "histo.report.html",
}

__all__ = ["HistoError", "HistoInputError", "__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'histo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
