"""What the network learns: per-pixel targets from instance labels, and the label conventions.

:func:`fiber_targets` turns instance labels into the three maps the network predicts
(foreground, boundary, normalised distance; see :data:`histo.segment.net.OUTPUTS`).

Two outline conventions meet in the training data. Brightfield references outline each fiber
at its own edge and leave the endomysium between fibers out. Membrane-immunofluorescence
references (laminin, dystrophin, WGA; e.g. ``data/real/if/fs_rat_labels.tif``) include the
bright membrane: neighbouring fibers meet at the midline of the membrane they share, and a
free edge runs along the outside of its membrane. :func:`membrane_labels` brings a brightfield-
style label image (gaps between fibers) to the membrane convention by splitting every narrow
gap between its two fibers; the network, told which modality it sees, learns both.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from histo.io.labels import touches_edge


def fiber_targets(labels: np.ndarray) -> np.ndarray:
    """(3, Y, X) float32 targets: foreground, boundary, per-fiber normalised distance.

    Examples
    --------
    >>> lab = np.zeros((7, 7), np.int32); lab[1:6, 1:6] = 1
    >>> t = fiber_targets(lab)
    >>> [round(float(v), 3) for v in (t[0].sum(), t[1][1, 1], t[2][3, 3], t[2][1, 3])]
    [25.0, 1.0, 1.0, 0.333]
    """
    labels = np.asarray(labels)
    fg = labels > 0
    bd = find_boundaries(labels, mode="inner") & fg
    dist = ndi.distance_transform_edt(fg & ~bd) + fg  # border pixels at 1
    n = int(labels.max())
    if n:
        peak = ndi.maximum(dist, labels, index=np.arange(n + 1))
        peak = np.asarray(peak, dtype=np.float64)
        peak[peak <= 0] = 1
        dist = dist / peak[labels]
    dist[~fg] = 0
    return np.stack([fg, bd, dist]).astype(np.float32)


def median_diameter_px(labels: np.ndarray) -> float:
    """Median equivalent diameter of the labels not touching the image border."""
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel())
    edge = touches_edge(labels, areas.size - 1)
    keep = np.ones(areas.size, bool)
    keep[0] = False
    if (keep & ~edge & (areas > 0)).sum() >= 3:
        keep[edge] = False
    keep &= areas > 0
    if not keep.any():
        raise ValueError("no labels")
    return float(np.sqrt(4 * np.median(areas[keep]) / np.pi))


def membrane_labels(labels: np.ndarray, max_gap_px: float) -> np.ndarray:
    """Labels in the membrane-stain convention: gaps narrower than ``max_gap_px`` split.

    Background pixels that a disk of diameter ``max_gap_px`` cannot reach (the thin
    endomysium between neighbouring fibers) go to the nearest fiber, so that neighbours meet
    at the gap's midline; wider interstitium, free edges and the image border are unchanged.

    Parameters
    ----------
    labels : (Y, X) int array
        Instance labels, 0 = background.
    max_gap_px : float
        Widest gap that is split (px).

    Returns
    -------
    (Y, X) array of the same dtype.

    Examples
    --------
    Two fibers 2 px apart meet in the middle; a 9 px gap stays:

    >>> lab = np.zeros((11, 23), np.int32)
    >>> lab[:, :5], lab[:, 7:12], lab[:, 21:] = 1, 2, 3
    >>> membrane_labels(lab, 4)[5].tolist()
    [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3]
    """
    labels = np.asarray(labels)
    bg = labels == 0
    if not bg.any() or bg.all() or max_gap_px < 1:
        return labels.copy()
    r = max(1, int(np.ceil(max_gap_px / 2)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    padded = np.pad(bg, r + 1, constant_values=True).astype(np.uint8)  # the border is not a fiber
    reach = cv2.morphologyEx(padded, cv2.MORPH_OPEN, k)[r + 1:-(r + 1), r + 1:-(r + 1)].astype(bool)
    narrow = bg & ~reach
    if not narrow.any():
        return labels.copy()
    _, (iy, ix) = ndi.distance_transform_edt(bg, return_indices=True)
    out = labels.copy()
    out[narrow] = labels[iy[narrow], ix[narrow]]
    return out


def size_weights(labels: np.ndarray, max_weight: float = 3.0) -> np.ndarray:
    """(Y, X) float32 loss weights that let small fibers count: ``sqrt(median area / area)``.

    Every pixel of a fiber smaller than the image's median fiber gets
    ``min(max_weight, sqrt(median_area / area))``; larger fibers and the background get 1. A
    small angular fiber then weighs about as much in the loss as a normal one.

    Examples
    --------
    >>> lab = np.zeros((10, 10), np.int32); lab[:6, :6] = 1; lab[:6, 7:] = 2; lab[8:, 8:] = 3
    >>> w = size_weights(lab)
    >>> round(float(w[0, 0]), 3), round(float(w[9, 9]), 3), round(float(w[7, 0]), 3)
    (1.0, 2.121, 1.0)
    """
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel()).astype(np.float64)
    present = areas[1:] > 0
    if not present.any():
        return np.ones(labels.shape, np.float32)
    ref = np.median(areas[1:][present])
    w = np.ones_like(areas)
    w[1:][present] = np.clip(np.sqrt(ref / areas[1:][present]), 1.0, max_weight)
    return w.astype(np.float32)[labels]

