"""Fast smooth random fields for synthetic sections.

Every field here is built by upsampling a small grid of Gaussian random numbers with
bicubic interpolation (OpenCV), so a 512 x 512 field costs about a millisecond. The
*feature size* is the spacing, in pixels, of the random grid: the field varies on roughly
that length scale.
"""

from __future__ import annotations

import cv2
import numpy as np


def smooth_noise(shape: tuple[int, int], feature_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance random field varying on a length scale of ``feature_px``.

    Parameters
    ----------
    shape : (int, int)
        Output shape (Y, X).
    feature_px : float
        Approximate size of the field's blobs in pixels (>= 1).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        float32 array of ``shape``.

    Examples
    --------
    >>> f = smooth_noise((64, 64), 8.0, np.random.default_rng(0))
    >>> f.shape, f.dtype
    ((64, 64), dtype('float32'))
    """
    h, w = int(shape[0]), int(shape[1])
    step = max(float(feature_px), 1.0)
    if step <= 1.0:
        return rng.standard_normal((h, w)).astype(np.float32)
    gh = int(np.ceil(h / step)) + 3
    gw = int(np.ceil(w / step)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big_h = int(round(gh * step))
    big_w = int(round(gw * step))
    up = cv2.resize(grid, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, max(1, big_h - h - int(step)))) + int(step // 2)
    ox = int(rng.integers(0, max(1, big_w - w - int(step)))) + int(step // 2)
    out = up[oy : oy + h, ox : ox + w]
    if out.shape != (h, w):  # rounding at tiny sizes
        out = cv2.resize(up, (w, h), interpolation=cv2.INTER_LINEAR)
    sd = float(out.std())
    return ((out - float(out.mean())) / (sd if sd > 1e-6 else 1.0)).astype(np.float32)


def fractal_noise(
    shape: tuple[int, int],
    feature_px: float,
    rng: np.random.Generator,
    *,
    octaves: int = 3,
    persistence: float = 0.5,
) -> np.ndarray:
    """Sum of ``octaves`` smooth fields, each half the feature size of the previous one.

    Returns a float32 field normalised to zero mean and unit variance.
    """
    total = np.zeros(shape, np.float32)
    amp = 1.0
    size = float(feature_px)
    for _ in range(max(1, octaves)):
        total += amp * smooth_noise(shape, max(size, 1.0), rng)
        amp *= persistence
        size /= 2.0
    sd = float(total.std())
    return (total - float(total.mean())) / (sd if sd > 1e-6 else 1.0)


def sample_field(field: np.ndarray, yx: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``field`` at float coordinates ``yx`` (N, 2), clamped to the edges."""
    h, w = field.shape
    y = np.clip(yx[:, 0], 0, h - 1.001)
    x = np.clip(yx[:, 1], 0, w - 1.001)
    y0 = np.floor(y).astype(np.intp)
    x0 = np.floor(x).astype(np.intp)
    fy = (y - y0).astype(np.float32)
    fx = (x - x0).astype(np.float32)
    a = field[y0, x0]
    b = field[y0, x0 + 1]
    c = field[y0 + 1, x0]
    d = field[y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def ridge_network(shape: tuple[int, int], feature_px: float, rng: np.random.Generator) -> np.ndarray:
    """A fine reticular (mesh-like) pattern in [0, 1]: bright thin ridges between cells.

    Used for the intermyofibrillar network of oxidative enzyme stains: the zero crossings of
    a smooth field form a connected web of lines, ``1 - |f|`` makes them ridges.
    """
    f = smooth_noise(shape, feature_px, rng)
    r = 1.0 - np.minimum(np.abs(f), 1.0)
    return (r * r).astype(np.float32)


def streak_noise(
    shape: tuple[int, int],
    along_px: float,
    across_px: float,
    angle_deg: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Anisotropic smooth noise: streaks ``along_px`` long and ``across_px`` wide at an angle.

    Built on a larger canvas, stretched, rotated and cropped; zero mean, unit variance.
    """
    h, w = int(shape[0]), int(shape[1])
    side = int(np.ceil(np.hypot(h, w))) + 4
    gh = int(np.ceil(side / max(across_px, 1.0))) + 3
    gw = int(np.ceil(side / max(along_px, 1.0))) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    m = cv2.getRotationMatrix2D((side / 2, side / 2), float(angle_deg), 1.0)
    m[:, 2] -= [(side - w) / 2, (side - h) / 2]
    out = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    sd = float(out.std())
    return ((out - float(out.mean())) / (sd if sd > 1e-6 else 1.0)).astype(np.float32)


def collagen_fibres(shape: tuple[int, int], width_px: float, rng: np.random.Generator) -> np.ndarray:
    """Wavy, mostly parallel thin bright lines in [0, 1] (collagen bundles of connective tissue)."""
    angle = rng.uniform(0, 180)
    warp = streak_noise(shape, width_px * 30, width_px * 8, angle + 90, rng)
    base = streak_noise(shape, width_px * 25, width_px * 2.5, angle, rng)
    f = base + 0.5 * warp
    r = 1.0 - np.minimum(np.abs(f) / 0.6, 1.0)
    return (r * r).astype(np.float32)


def cell_mosaic(shape: tuple[int, int], cell_px: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A Voronoi mosaic of small cells: ``(outline in [0, 1], per-cell random value in [0, 1])``.

    Seeds are scattered at one per ``cell_px**2`` pixels; OpenCV's labelled distance
    transform gives the Voronoi cells; outlines are where 4-neighbours differ, softened.
    """
    h, w = int(shape[0]), int(shape[1])
    n = max(1, int(h * w / max(cell_px, 1.0) ** 2))
    src = np.ones((h, w), np.uint8)
    src[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
    _, lab = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    edge = np.zeros((h, w), np.float32)
    edge[:, 1:] += lab[:, 1:] != lab[:, :-1]
    edge[1:, :] += lab[1:, :] != lab[:-1, :]
    outline = np.clip(cv2.GaussianBlur(edge, (0, 0), 0.6) * 1.5, 0, 1)
    value = rng.random(int(lab.max()) + 1).astype(np.float32)[lab]
    return outline, value
