"""What the fiber network is fed: per-image input percentiles and the normalised input tensor.

The convention is described in :mod:`histo.segment.net` (percentile scaling of brightfield RGB or of
one fluorescence channel replicated to three, plus the modality channel of 4-channel models);
training follows it with jittered percentiles (:mod:`histo.train.trainset`).
"""

from __future__ import annotations

import numpy as np


def channel_percentiles(flat: np.ndarray, percentiles) -> np.ndarray:
    """(C, len(percentiles)) percentiles of each column of ``flat`` (numpy's linear method).

    8- and 16-bit images go through a histogram (exact, several times faster than sorting).

    Examples
    --------
    >>> channel_percentiles(np.array([[0], [10], [20], [30]], np.uint8), (50, 100)).tolist()
    [[15.0, 30.0]]
    """
    flat = np.asarray(flat)
    n = flat.shape[0]
    if not (flat.dtype.kind == "u" and flat.dtype.itemsize <= 2 and n):
        return np.percentile(flat.astype(np.float32), percentiles, axis=0).T.astype(np.float64)
    out = np.empty((flat.shape[1], len(percentiles)))
    for c in range(flat.shape[1]):
        cum = np.cumsum(np.bincount(flat[:, c]))
        for j, p in enumerate(percentiles):
            pos = float(p) / 100.0 * (n - 1)
            k = int(np.floor(pos))
            # order statistics k and k + 1 (0-based): the first levels with more than k (k + 1) values below or at
            v_lo, v_hi = np.searchsorted(cum, [k + 1, min(k + 2, n)])
            out[c, j] = v_lo + (pos - k) * (float(v_hi) - float(v_lo))
    return out


def input_stats(plane: np.ndarray, percentiles=(1.0, 99.5), max_samples: int = 2_000_000) -> np.ndarray:
    """Per-channel low/high percentiles of an image, from a strided subsample.

    Parameters
    ----------
    plane : (Y, X) or (Y, X, 3) array-like
        The whole image (numpy, dask or zarr: only a strided subsample is read).
    percentiles : (float, float)
        Low and high percentile.

    Returns
    -------
    (C, 2) float32 array of (low, high) per channel.
    """
    h, w = plane.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_samples))))
    sample = np.asarray(plane[::step, ::step])
    if sample.ndim == 2:
        sample = sample[..., None]
    flat = sample.reshape(-1, sample.shape[-1])
    lo_hi = channel_percentiles(flat, percentiles).astype(np.float32)
    lo_hi[:, 1] = np.maximum(lo_hi[:, 1], lo_hi[:, 0] + 1e-3 * max(1.0, float(np.abs(lo_hi).max())))
    return lo_hi


def network_input(tile: np.ndarray, stats: np.ndarray, in_channels: int = 3) -> np.ndarray:
    """Normalise a (Y, X) or (Y, X, 3) tile to the network's (C, Y, X) float32 input.

    A (Y, X) tile is a fluorescence channel (replicated to three channels); with
    ``in_channels=4`` a fourth, constant channel says which modality it is (1 fluorescence,
    0 brightfield RGB). The result is a channels-last view (its memory is (Y, X, C)), which
    the network reads without a copy.

    Examples
    --------
    >>> t = np.array([[0, 50], [100, 200]], dtype=np.uint16)
    >>> network_input(t, np.array([[0.0, 100.0]], np.float32))[0]
    array([[0. , 0.5],
           [1. , 1.2]], dtype=float32)
    >>> network_input(t, np.array([[0.0, 100.0]], np.float32), in_channels=4)[3]
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """
    if in_channels not in (3, 4):
        raise ValueError(f"in_channels must be 3 or 4, got {in_channels}")
    tile = np.asarray(tile)
    fluorescence = tile.ndim == 2
    h, w = tile.shape[:2]
    x = np.empty((h, w, in_channels), np.float32)  # channels-last buffer, filled in place
    lo, hi = stats[:, 0], stats[:, 1]
    if fluorescence:
        plane = x[..., 0]
        np.subtract(tile, lo[0], out=plane, casting="unsafe")
        plane *= 1.0 / (hi[0] - lo[0])
        np.clip(plane, -0.2, 1.2, out=plane)
        x[..., 1] = plane
        x[..., 2] = plane
    else:
        rgb = x[..., :3]
        np.subtract(tile[..., :3], lo, out=rgb, casting="unsafe")
        rgb *= (1.0 / (hi - lo)).astype(np.float32)
        np.clip(rgb, -0.2, 1.2, out=rgb)
    if in_channels == 4:
        x[..., 3] = 1.0 if fluorescence else 0.0
    # (C, Y, X) view of the (Y, X, C) buffer: exactly torch's channels_last layout, no copy
    return x.transpose(2, 0, 1)
