"""Outline colours that stay legible on the image under them (H&E, enzyme, fluorescence).

The fixed class colours (:data:`histo.score.classes.CLASS_COLORS`) are chosen for meaning and
colour-blind safety, but a thin outline vanishes on a background of its own colour: violet
and blue on H&E's haematoxylin, cyan on a cyan membrane channel. :func:`outline_palette`
keeps each class's colour when it stands out from the image and otherwise takes the next
candidate of the same meaning (:data:`CANDIDATES`), measured as the CIELAB distance
(CIEDE2000, which tracks what the eye sees on thin lines better than plain Lab distance:
violet on haematoxylin scores 15, cyan on a white background 50) from the colours the
outline is drawn over (:func:`image_backgrounds`: the dark, middle and bright thirds of the
fiber outline pixels, and the fiber interiors). Chosen colours are also kept
apart from each other, so the legend still tells the classes apart. Pure: arrays in, colours
out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from histo.score.classes import CLASS_COLORS, CLASS_NAMES

RGB = tuple[int, int, int]

#: Candidate outline colours per class, preferred first (the first is the class colour).
CANDIDATES: dict[str, tuple[RGB, ...]] = {
    "sad": (CLASS_COLORS["sad"], (200, 0, 0), (255, 110, 0), (255, 0, 140)),
    "small": (CLASS_COLORS["small"], (190, 255, 0), (255, 150, 0)),
    "regenerating": (CLASS_COLORS.get("regenerating", (255, 130, 0)), (255, 170, 60), (150, 60, 0)),
    "dark": (CLASS_COLORS["dark"], (60, 160, 255), (0, 0, 140)),
    "angular": (CLASS_COLORS["angular"], (255, 0, 255), (255, 140, 255), (40, 0, 60)),
    "normal": (CLASS_COLORS["normal"], (0, 230, 0), (170, 255, 0), (255, 255, 255), (0, 90, 0)),
    "excluded": (CLASS_COLORS["excluded"], (200, 200, 200), (60, 60, 60)),
    "not_fiber": (CLASS_COLORS["not_fiber"], (0, 0, 0), (255, 230, 180)),
}

#: An outline this far (CIEDE2000) from every background colour reads at a glance. Set on the
#: trial's judgements: violet (15) and blue (23) on H&E and cyan (30) on a cyan membrane
#: channel were hard to see, cyan on H&E (50) was not.
MIN_CONTRAST = 35.0
#: Two classes' outlines at least this far apart (CIEDE2000) are told apart in the legend.
MIN_SEPARATION = 20.0
#: Classes choose in this order (the most important calls get their own colour first).
PRIORITY: tuple[str, ...] = tuple(dict.fromkeys(
    ("sad", "small", "normal", "regenerating", "dark", "angular", "excluded", "not_fiber", *CLASS_NAMES)))


def delta_e(rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between RGB colours (0-255), broadcast over leading axes.

    Examples
    --------
    >>> float(delta_e(np.array([255, 255, 255]), np.array([0, 0, 0])).round(1))
    100.0
    """
    a = rgb2lab(np.asarray(rgb_a, dtype=float)[..., None, :] / 255.0)[..., 0, :]
    b = rgb2lab(np.asarray(rgb_b, dtype=float)[..., None, :] / 255.0)[..., 0, :]
    return deltaE_ciede2000(*np.broadcast_arrays(a, b))


def image_backgrounds(rgb: np.ndarray, labels: np.ndarray | None = None, *, max_pixels: int = 1_000_000) -> np.ndarray:
    """The colours outlines are drawn over: the fiber outlines' dark, middle and bright thirds
    (by lightness: a bright membrane channel and dark nuclei both count) and the interiors.

    Parameters
    ----------
    rgb : (Y, X, 3) array
        The image as displayed, 0-255 (uint8) or 0-1 (float).
    labels : (Y, X) int array, optional
        Instance labels on the same grid; without them the image's mean colour is returned.
    max_pixels : int
        Larger images are sampled on a regular grid (strided), so whole slides cost little.

    Returns
    -------
    (K, 3) float array, 0-255; K = 4 (outline thirds, interiors) with labels, else 1.

    Examples
    --------
    >>> img = np.zeros((6, 6, 3), np.uint8); img[:, 3:] = 200
    >>> lab = np.array([[0, 0, 0, 1, 1, 1]] * 6)
    >>> image_backgrounds(img, lab).round().tolist()[-1]
    [200.0, 200.0, 200.0]
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[-1] < 3:
        raise ValueError(f"rgb must be a (Y, X, 3) image, got shape {img.shape}")
    scale = 255.0 if img.dtype.kind == "f" and float(np.nanmax(img)) <= 1.0 else 1.0
    step = max(1, int(np.ceil(np.sqrt(img.shape[0] * img.shape[1] / max_pixels))))
    img = img[::step, ::step, :3].astype(float) * scale
    if labels is None:
        return img.reshape(-1, 3).mean(0)[None]
    lab = np.asarray(labels)[::step, ::step]
    if lab.shape != img.shape[:2]:
        raise ValueError(f"labels of shape {np.asarray(labels).shape} do not match the image {np.asarray(rgb).shape[:2]}")
    edge = np.zeros(lab.shape, bool)
    edge[:-1] |= lab[:-1] != lab[1:]
    edge[1:] |= lab[:-1] != lab[1:]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge[:, 1:] |= lab[:, :-1] != lab[:, 1:]
    fiber = lab > 0
    outline = img[edge & fiber]
    inner = img[fiber & ~edge]
    out = []
    if len(outline):
        lightness = rgb2lab(outline[None] / 255.0)[0, :, 0]
        rank = np.argsort(np.argsort(lightness, kind="stable"), kind="stable") * 3 // len(outline)
        out += [outline[rank == k].mean(0) for k in range(3) if (rank == k).any()]
    if len(inner):
        out.append(inner.mean(0))
    return np.array(out) if out else img.reshape(-1, 3).mean(0)[None]


def outline_palette(backgrounds: np.ndarray, *, classes: Sequence[str] = PRIORITY,
                    candidates: Mapping[str, Sequence[RGB]] = CANDIDATES,
                    min_contrast: float = MIN_CONTRAST, min_separation: float = MIN_SEPARATION) -> dict[str, RGB]:
    """An outline colour per class that stands out from the image and from the other classes.

    Each class (in ``classes`` order) takes its first candidate at least ``min_contrast`` from
    every background colour and ``min_separation`` from the colours already taken; when none
    qualifies, the candidate that misses both limits least (relative to each limit).

    Parameters
    ----------
    backgrounds : (K, 3) array
        Background colours, 0-255 (:func:`image_backgrounds`).

    Returns
    -------
    dict of class name to (r, g, b), 0-255.

    Examples
    --------
    >>> cyan_membrane = np.array([[0, 30, 30], [0, 50, 50], [0, 120, 120], [0, 50, 50]])
    >>> outline_palette(cyan_membrane)["normal"]
    (0, 230, 0)
    >>> he = np.array([[155, 88, 163], [196, 118, 174], [203, 138, 183], [203, 110, 170]])
    >>> p = outline_palette(he)   # H&E: cyan stays, violet and blue give way
    >>> p["normal"], p["angular"] != (170, 90, 255), p["dark"] != (0, 90, 255)
    ((0, 200, 255), True, True)
    """
    bg = np.atleast_2d(np.asarray(backgrounds, dtype=float))
    chosen: dict[str, RGB] = {}
    for name in classes:
        options = [tuple(int(v) for v in c) for c in candidates.get(name, (CLASS_COLORS.get(name, (255, 255, 255)),))]
        contrast = np.array([delta_e(np.array(c), bg).min() for c in options])
        taken = np.array(list(chosen.values()), dtype=float)
        separation = (np.array([delta_e(np.array(c), taken).min() for c in options])
                      if len(taken) else np.full(len(options), np.inf))
        good = np.flatnonzero((contrast >= min_contrast) & (separation >= min_separation))
        if len(good):
            pick = int(good[0])
        else:
            pick = int(np.argmax(np.minimum(contrast / min_contrast, separation / min_separation)))
        chosen[name] = options[pick]
    return chosen


def contrast_table(palette: Mapping[str, RGB], backgrounds: np.ndarray) -> dict[str, float]:
    """Worst-case ΔE*ab of each class colour against the backgrounds (for tests and legends)."""
    bg = np.atleast_2d(np.asarray(backgrounds, dtype=float))
    return {name: float(delta_e(np.array(rgb), bg).min()) for name, rgb in palette.items()}
