"""Is this object a fiber? Per-object evidence from the network's maps and the slide's own fibers.

The watershed turns every foreground blob into objects, also where the network is unsure
(inflammatory infiltrates, capillaries, connective tissue between three fibers, fill). Each
object gets features (:data:`FEATURES`) and a **fiber score** in [0, 1], a logistic function
of them whose weights and threshold are calibrated on validation data
(``benchmarks/calibrate_fiber_score.py``) and stored with the model (``NetConfig.fiber_score``):

network evidence, on the canonical grid (:func:`network_evidence`)
    ``fg_mean`` mean foreground probability; ``dist_peak`` the highest normalised distance (a
    fiber's centre reaches ~1, a fragment of a blob does not); ``closure`` the fraction of the
    ring just outside the object where the network sees a boundary or background (1 = closed
    all round, low = a piece cut out of a larger blob without a boundary).
appearance against the slide's own fibers, on the input grid (:func:`appearance`, :func:`relative_features`)
    ``colour_z`` how far the object's mean optical density (or intensity) is from the slide's
    confident fibers, ``texture_z`` how much more textured it is (a sheet of nuclei is grainy,
    cytoplasm smooth), ``log_area_rel`` its size against the typical fiber.

Objects under the threshold are *rejected*: kept in the results (a reviewer can restore one)
but not counted.

Examples
--------
>>> w = {"features": ["fg_mean"], "mean": [0.5], "scale": [0.1], "coef": [4.0], "intercept": 0.0,
...      "threshold": 0.5}
>>> fiber_score({"fg_mean": np.array([0.9, 0.5, 0.1])}, w).round(3).tolist()
[1.0, 0.5, 0.0]
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Features of the fiber score, in order.
FEATURES: tuple[str, ...] = ("fg_mean", "dist_peak", "closure", "colour_z", "texture_z", "log_area_rel")
#: Network features of an object, from :func:`network_evidence`.
NETWORK_FEATURES: tuple[str, ...] = ("fg_mean", "dist_peak", "closure")
#: Per-object appearance sums, from :func:`appearance`.
APPEARANCE_SUMS: tuple[str, ...] = ("n_px", "od_0", "od_1", "od_2", "tex_sum", "tex_sq")
#: A "confident" object, used as the slide's reference fibers.
CONFIDENT = {"fg_mean": 0.85, "dist_peak": 0.75, "closure": 0.85}
#: Boundary probability above which a ring pixel closes the object.
BOUNDARY_CLOSED = 0.5


def canonical_labels(labels: np.ndarray, maps_shape: tuple[int, int], period: int, unit_px: int = 64) -> np.ndarray:
    """Nearest-sample a region's input-grid labels onto its canonical grid.

    The canonical grid of a region ``h`` x ``w`` input px (rescaled by ``unit_px / period``) is
    ``maps_shape``; canonical pixels beyond the region (its padding) get label 0.

    Examples
    --------
    >>> canonical_labels(np.array([[1, 2], [3, 4]]), (4, 4), period=2, unit_px=4).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    """
    h, w = labels.shape
    hc, wc = maps_shape
    f = period / unit_px
    yi = np.floor((np.arange(hc) + 0.5) * f).astype(np.intp)
    xi = np.floor((np.arange(wc) + 0.5) * f).astype(np.intp)
    out = np.zeros((hc, wc), labels.dtype)
    vy, vx = yi < h, xi < w
    out[np.ix_(vy, vx)] = labels[np.ix_(yi[vy], xi[vx])]
    return out


def network_evidence(labels_c: np.ndarray, maps: np.ndarray, fg_threshold: float) -> dict[str, np.ndarray]:
    """Network features of every label of a canonical-grid label image.

    Parameters
    ----------
    labels_c : (Y, X) int array
        Labels on the maps' grid (see :func:`canonical_labels`).
    maps : (3, Y, X) float array
        Foreground, boundary, normalised distance.
    fg_threshold : float
        The foreground threshold the labels were made with.

    Returns
    -------
    dict of (n + 1,) float arrays indexed by label (index 0 unused): ``fg_mean``, ``dist_peak``,
    ``closure``. Labels with no canonical pixel (smaller than one) get 0.

    Examples
    --------
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 1
    >>> maps = np.zeros((3, 5, 5), np.float32); maps[0][lab > 0] = 1; maps[2, 2, 2] = 1
    >>> ev = network_evidence(lab, maps, 0.5)
    >>> float(ev["fg_mean"][1]), float(ev["dist_peak"][1]), float(ev["closure"][1])
    (1.0, 1.0, 1.0)
    """
    fg, bd, dist = maps[0], maps[1], maps[2]
    lab = np.asarray(labels_c)
    n = int(lab.max()) + 1
    flat = lab.ravel()
    count = np.bincount(flat, minlength=n).astype(np.float64)
    fg_mean = np.bincount(flat, weights=fg.ravel(), minlength=n) / np.maximum(count, 1)
    dist_peak = np.zeros(n)
    if n > 1:
        dist_peak[1:] = ndi.maximum(dist, lab, index=np.arange(1, n))
        dist_peak[count == 0] = 0
    closed = (bd > BOUNDARY_CLOSED) | (fg <= fg_threshold)
    ring_n = np.zeros(n)
    ring_closed = np.zeros(n)
    h, w = lab.shape
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        # pixel p (in the ring of label L) has neighbour p + (dy, dx) in L and is not in L itself
        ys = slice(max(0, -dy), h - max(0, dy))
        xs = slice(max(0, -dx), w - max(0, dx))
        ys2 = slice(max(0, dy), h - max(0, -dy))
        xs2 = slice(max(0, dx), w - max(0, -dx))
        here, there = lab[ys, xs], lab[ys2, xs2]
        ring = (there > 0) & (there != here)
        ring_n += np.bincount(there[ring], minlength=n)
        ring_closed += np.bincount(there[ring], weights=closed[ys, xs][ring], minlength=n)
    closure = np.where(ring_n > 0, ring_closed / np.maximum(ring_n, 1), 0.0)
    return {"fg_mean": fg_mean, "dist_peak": dist_peak, "closure": closure}


def appearance(labels: np.ndarray, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label sums of the pixels (optical density for RGB, intensity for one channel).

    Sums (not means) so that tiles can be added up; :func:`relative_features` turns them
    into features. ``tex_*`` sum the local contrast (absolute Laplacian of the summed OD),
    which is high on a sheet of nuclei and low on cytoplasm.

    Returns
    -------
    dict of (n + 1,) float arrays, keys :data:`APPEARANCE_SUMS`.
    """
    lab = np.asarray(labels)
    n = int(lab.max()) + 1
    px = np.asarray(pixels)
    if px.ndim == 3:
        rgb = px[..., :3].astype(np.float32)
        top = 255.0 if px.dtype == np.uint8 else max(float(rgb.max()), 1.0)
        od = -np.log10(np.clip((rgb + 1.0) / (top + 1.0), 1e-3, 1.0))
    else:
        plane = px.astype(np.float32)
        lo, hi = np.percentile(plane[:: max(1, plane.shape[0] // 256), :: max(1, plane.shape[1] // 256)], (1, 99.5))
        od = ((plane - lo) / max(hi - lo, 1e-6))[..., None].repeat(3, -1)
    total = od.sum(-1)
    tex = np.abs(ndi.laplace(ndi.gaussian_filter(total, 0.7)))
    flat = lab.ravel()
    out = {"n_px": np.bincount(flat, minlength=n).astype(np.float64)}
    for c in range(3):
        out[f"od_{c}"] = np.bincount(flat, weights=od[..., c].ravel(), minlength=n)
    out["tex_sum"] = np.bincount(flat, weights=tex.ravel(), minlength=n)
    out["tex_sq"] = np.bincount(flat, weights=(tex * tex).ravel(), minlength=n)
    return out


def _robust_z(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    spread = max(mad, 0.05 * abs(med), 1e-3)
    return (x - med) / spread


def relative_features(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Appearance and size features of each object against the slide's confident fibers.

    ``table`` holds, per object (same length), the :data:`NETWORK_FEATURES` and the
    :data:`APPEARANCE_SUMS`. The reference fibers are the confident objects (:data:`CONFIDENT`)
    when there are at least 10, else all objects.

    Returns
    -------
    dict with ``colour_z``, ``texture_z`` and ``log_area_rel`` (float arrays).

    Examples
    --------
    >>> t = {"fg_mean": np.ones(12), "dist_peak": np.ones(12), "closure": np.ones(12),
    ...      "n_px": np.r_[np.full(11, 100.0), 10.0], "od_0": np.r_[np.full(11, 20.0), 8.0],
    ...      "od_1": np.r_[np.full(11, 20.0), 8.0], "od_2": np.r_[np.full(11, 20.0), 8.0],
    ...      "tex_sum": np.r_[np.full(11, 5.0), 5.0], "tex_sq": np.ones(12)}
    >>> f = relative_features(t)
    >>> bool(f["colour_z"][-1] > 5), bool(f["texture_z"][-1] > 1), round(float(f["log_area_rel"][-1]), 2)
    (True, True, -2.3)
    """
    n_px = np.maximum(np.asarray(table["n_px"], np.float64), 1)
    od = np.stack([np.asarray(table[f"od_{c}"]) / n_px for c in range(3)], -1)
    tex = np.log(np.asarray(table["tex_sum"]) / n_px + 1e-4)
    conf = np.ones(n_px.size, bool)
    for k, v in CONFIDENT.items():
        conf &= np.asarray(table[k]) >= v
    ref = conf if conf.sum() >= 10 else np.ones(n_px.size, bool)
    if not ref.any():
        zeros = np.zeros(n_px.size)
        return {"colour_z": zeros, "texture_z": zeros, "log_area_rel": zeros}
    z = np.stack([_robust_z(od[:, c], od[ref, c]) for c in range(3)], -1)
    colour_z = np.sqrt((z ** 2).mean(-1))
    texture_z = _robust_z(tex, tex[ref])
    typical = np.median(n_px[ref])
    return {"colour_z": colour_z, "texture_z": texture_z, "log_area_rel": np.log(n_px / typical)}


def feature_matrix(features: dict[str, np.ndarray], names=FEATURES) -> np.ndarray:
    """(n, k) float64 matrix of the named features, non-finite values replaced by 0 and clipped."""
    x = np.stack([np.asarray(features[k], np.float64) for k in names], -1)
    x = np.where(np.isfinite(x), x, 0.0)
    return np.clip(x, -20, 20)


def fiber_score(features: dict[str, np.ndarray], weights: dict) -> np.ndarray:
    """Fiber score in [0, 1] of each object: ``sigmoid(coef . (x - mean) / scale + intercept)``."""
    x = feature_matrix(features, weights["features"])
    z = (x - np.asarray(weights["mean"])) / np.asarray(weights["scale"])
    return 1.0 / (1.0 + np.exp(-(z @ np.asarray(weights["coef"]) + float(weights["intercept"]))))


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, sample_weight: np.ndarray | None = None,
                 names=FEATURES, iterations: int = 50) -> dict:
    """Fit the fiber-score weights by L2-regularised logistic regression (Newton steps).

    Returns the ``weights`` dict :func:`fiber_score` takes (``threshold`` 0.5 until calibrated).

    Examples
    --------
    >>> x = np.r_[np.zeros(50), np.ones(50)][:, None] + np.random.default_rng(0).normal(0, 0.3, (100, 1))
    >>> y = np.r_[np.zeros(50), np.ones(50)]
    >>> w = fit_logistic(x, y, names=("a",))
    >>> s = fiber_score({"a": np.array([0.0, 1.0])}, w); bool(s[0] < 0.2 and s[1] > 0.8)
    True
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    mean = x.mean(0)
    scale = np.where(x.std(0) > 1e-6, x.std(0), 1.0)
    z = np.c_[(x - mean) / scale, np.ones(len(y))]
    beta = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2 * sw.sum())
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(z @ beta)))
        grad = z.T @ (sw * (p - y)) + reg * beta
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"features": list(names), "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": beta[:-1].tolist(), "intercept": float(beta[-1]), "threshold": 0.5}
