"""Instance label images: the one validity check, and small pure helpers on them.

A label image holds 0 for background and one positive whole number per object.
:func:`check_labels` is the core check every stage runs at its public edge (measuring,
adjacency, scoring, evaluation, reading masks); :func:`histo.io.masks.validate_labels` adds
the rules for masks made by other tools (shape against the image, binary masks, one huge
object) on top of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from histo.errors import HistoInputError

__all__ = ["check_labels", "relabel_consecutive", "touches_edge"]


def check_labels(labels, *, name: str = "labels", path: str | Path | None = None,
                 ndim: int | None = 2, floats: bool = True, booleans: bool = True) -> np.ndarray:
    """An instance label image as an integer array, or a HistoInputError naming ``name``.

    Parameters
    ----------
    labels : array-like
        Candidate label image: 0 = background, 1, 2, ... = objects.
    name : str, default "labels"
        What the caller calls the input, used in the messages (e.g. ``"gt"``).
    path : str or Path, optional
        File the labels came from, prefixed to the messages.
    ndim : int or None, default 2
        Required number of dimensions; None accepts any n-D image of at least 2 dimensions.
    floats : bool, default True
        Accept float arrays holding whole numbers (converted to ``int64``); False refuses
        every float array.
    booleans : bool, default True
        Accept a boolean mask as one object (converted to ``uint8``); False refuses it.

    Returns
    -------
    ndarray
        The input itself (no copy) when it is already an integer array; ``uint8`` for a
        boolean mask; ``int64`` for whole-number floats. Values are >= 0.

    Raises
    ------
    HistoInputError
        Wrong number of dimensions (an RGB rendering of labels is named as such), NaN or
        infinite values, fractional values, non-numeric dtypes, negative values, or a dtype
        refused by ``floats`` / ``booleans``.

    Examples
    --------
    >>> check_labels(np.array([[0, 1.0], [2, 2]])).dtype
    dtype('int64')
    >>> check_labels(np.array([[0, -1], [2, 2]]))
    Traceback (most recent call last):
    ...
    histo.errors.HistoInputError: labels contain negative values (min -1); use 0 for background and positive integers for objects
    """
    arr = np.asarray(labels)
    dims = "2-D" if ndim == 2 else f"{ndim}-D" if ndim is not None else "2-D (or n-D)"
    if ndim == 2 and arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise HistoInputError(
            f"{name} is a colour image {arr.shape}, not a 2-D label image: labels must be one "
            "channel of whole numbers (export the mask itself, e.g. Cellpose *_cp_masks.png, not "
            "a coloured rendering)", path=path)
    if (arr.ndim != ndim) if ndim is not None else (arr.ndim < 2):
        raise HistoInputError(f"{name} must be a {dims} label image, got shape {arr.shape}", path=path)
    kind = arr.dtype.kind
    if kind == "b":
        if not booleans:
            raise HistoInputError(
                f"{name} is a boolean mask, not instance labels; number the objects first "
                "(scipy.ndimage.label(mask)[0]) or pass a label image", path=path)
        return arr.astype(np.uint8)
    if kind == "f":
        if not floats:
            raise HistoInputError(
                f"{name} must be a {dims} integer label image, got dtype {arr.dtype} (convert "
                f"whole-number labels with {name}.astype(np.int32))", path=path)
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise HistoInputError(f"{name} contain {n_nan} NaN pixels; a label image holds whole "
                                  "numbers only (0 = background)", path=path)
        if not np.isfinite(arr).all():
            raise HistoInputError(f"{name} contain infinite values; a label image holds whole "
                                  "numbers only (0 = background)", path=path)
        frac = arr != np.floor(arr)
        if frac.any():
            example = float(arr[frac].flat[0])
            raise HistoInputError(
                f"{name} must hold integer labels, got fractional, non-integer values (e.g. "
                f"{example:g}): this looks like a probability map or a label image resized with "
                "interpolation; threshold and label it, or resize labels with nearest-neighbour "
                "only", path=path)
    elif kind not in "iu":
        raise HistoInputError(f"{name} must be a {dims} integer label image, got dtype {arr.dtype}",
                              path=path)
    if kind in "if" and arr.size:
        low = arr.min()
        if low < 0:
            raise HistoInputError(f"{name} contain negative values (min {low:g}); use 0 for "
                                  "background and positive integers for objects", path=path)
    return arr.astype(np.int64) if kind == "f" else arr


def relabel_consecutive(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to 1..n (0 stays 0).

    Returns
    -------
    ids : ndarray of int64, shape (n,)
        The original label of object ``i`` at position ``i - 1``.
    idx : ndarray of int64, same shape as ``arr``
        The index image (0 = background, 1..n = objects).

    Examples
    --------
    >>> ids, idx = relabel_consecutive(np.array([[0, 7], [7, 3]]))
    >>> ids.tolist(), idx.tolist()
    ([3, 7], [[0, 2], [2, 1]])
    """
    if arr.size == 0:
        return np.zeros(0, np.int64), np.zeros(arr.shape, np.int64)
    top = int(arr.max())
    if top <= max(4 * arr.size, 1 << 16):
        present = np.zeros(top + 1, bool)
        present[arr.ravel()] = True
        present[0] = False
        ids = np.flatnonzero(present)
        lut = np.zeros(top + 1, np.int64)
        lut[ids] = np.arange(1, len(ids) + 1)
        return ids.astype(np.int64), lut[arr]
    ids, inv = np.unique(arr, return_inverse=True)
    inv = inv.reshape(arr.shape)
    if ids[0] == 0:
        return ids[1:].astype(np.int64), inv.astype(np.int64)
    return ids.astype(np.int64), inv.astype(np.int64) + 1


def touches_edge(idx: np.ndarray, n: int) -> np.ndarray:
    """Boolean per object index 1..n (position 0 = background): touches any image face.

    Examples
    --------
    >>> touches_edge(np.array([[0, 0, 0], [0, 1, 0], [0, 0, 2]]), 2).tolist()
    [False, False, True]
    """
    edge = np.zeros(n + 1, bool)
    for axis in range(idx.ndim):
        edge[np.take(idx, 0, axis=axis).ravel()] = True
        edge[np.take(idx, -1, axis=axis).ravel()] = True
    edge[0] = False
    return edge
