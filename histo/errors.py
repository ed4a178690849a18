"""Errors raised at histo's public edge.

Every error a user can cause (a bad file, a wrong channel, a missing pixel size) is a
:class:`HistoInputError`: one readable message that names the input and the fix. The CLI
prints the message and exits with a non-zero code; a batch records it as the slide's error.
"""

from __future__ import annotations

from pathlib import Path


class HistoError(Exception):
    """Base class of every error histo raises on purpose."""


class HistoInputError(HistoError, ValueError):
    """Bad user input: an unreadable file, mismatched shapes, an empty mask, ...

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    path : str or Path, optional
        The offending file; it is prefixed to the message so the user sees which one.

    Examples
    --------
    >>> str(HistoInputError("no fibers in the mask", path="a/b.png"))
    'a/b.png: no fibers in the mask'
    """

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)


#: What to do when torch is missing (it is the optional ``model`` extra).
TORCH_MISSING = ("the segmentation model needs PyTorch, which is not installed: pip install "
                 "'histo[model]' (or torch>=2.2); --method classical and histo measure run without it")


class MissingDependencyError(HistoError, ImportError):
    """An optional dependency a feature needs is not installed; the message says how to get it.

    Examples
    --------
    >>> str(MissingDependencyError(TORCH_MISSING)).startswith("the segmentation model needs PyTorch")
    True
    """
