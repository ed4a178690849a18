"""Ragged arrays: many closed polygons stored end to end, described by start offsets.

``points`` is ``(P, 2)``; polygon ``i`` is ``points[offsets[i]:offsets[i + 1]]``; every
polygon has at least one vertex. These helpers let the geometry of thousands of fibers be
computed in a few vectorised numpy passes instead of a Python loop per fiber.
"""

from __future__ import annotations

import numpy as np


def offsets_from_lengths(lengths) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]`` as int64.

    Examples
    --------
    >>> offsets_from_lengths([3, 1, 2]).tolist()
    [0, 3, 4, 6]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """Polygon index of every vertex."""
    counts = np.diff(offsets)
    return np.repeat(np.arange(len(counts)), counts)


def next_index(offsets: np.ndarray) -> np.ndarray:
    """Index of the next vertex of the same closed polygon (the last wraps to the first).

    Examples
    --------
    >>> next_index(np.array([0, 3, 4])).tolist()
    [1, 2, 0, 3]
    """
    total = int(offsets[-1])
    nxt = np.arange(1, total + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    return nxt


def prev_index(offsets: np.ndarray) -> np.ndarray:
    """Index of the previous vertex of the same closed polygon (the first wraps to the last)."""
    total = int(offsets[-1])
    prv = np.arange(-1, total - 1)
    prv[offsets[:-1]] = offsets[1:] - 1
    return prv


def segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each polygon (all polygons non-empty)."""
    return np.add.reduceat(values, offsets[:-1]) if len(offsets) > 1 else np.zeros(0)
