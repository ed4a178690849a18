"""histo: myofiber morphometry for muscle biopsies.

Pure functions over arrays and tables; no Qt or napari is imported here.
The public API grows as modules land; see ``docs/architecture.md``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from histo.errors import HistoError, HistoInputError

try:
    __version__ = version("histo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["HistoError", "HistoInputError", "__version__"]
