"""Fiber typing and type grouping.

Two ways to a type per fiber:

* **Intensity levels** on ATPase, NADH-TR or SDH: the per-fiber mean optical density falls into
  2 or 3 levels. The number of levels is chosen by the Bayesian information criterion of a 1-D
  Gaussian mixture of log OD (1, 2 or 3 components; ``n_types`` fixes it), fitted on *all*
  counted fibers jointly with a stain gradient across the slide (a plane in log OD), and
  fibers are cut at the points where adjacent components' weighted densities cross
  (:func:`histo.measure.darkness.fit_type_levels`). On NADH/SDH a darkest component of small
  fibers (at most a quarter of them) is taken as atrophic fibers, not a type, and left out of
  the levels; its fibers are typed like the others. Typing works from 10 % to 90 % of either
  type (``benchmarks/bench_darkness.py``). Levels are named by stain (and
  ATPase pH): NADH/SDH type 1 darkest; ATPase pH 9.4 type 1 lightest; pH 4.3/4.6 type 1
  darkest (Brooke & Kaiser 1970; Dubowitz, *Muscle Biopsy*).
* **Type channels** on immunofluorescence (one channel per myosin isoform): a fiber is
  positive for a channel when its mean intensity is above the channel's threshold (Otsu on the
  slide's per-fiber means unless fixed); one positive channel gives that type, none gives
  ``negative_name``, several give ``hybrid_name``.

Then, on counted fibers: proportions, **enclosed fibers** per type (a fiber whose neighbours all
share its type; Jennekens et al. 1971), with the number expected if types were placed at
random on the same graph (Johnson et al. 1973 compared observed with expected counts), and the
join-count permutation test of type grouping (:func:`histo.score.grouping.category_join_test`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.stain import Stain
from histo.measure.darkness import fit_type_levels, level_cut_points, mixture_em
from histo.score.grouping import category_join_test, index_edges
from histo.score.settings import ScoringSettings

log = logging.getLogger(__name__)

INTENSITY_STAINS = ("atpase", "nadh", "sdh")
#: Stains on which a darkest component of small fibers is atrophy, not a fiber type.
OUTLIER_STAINS = ("nadh", "sdh")
_NEUTRAL = {1: ("uniform",), 2: ("light", "dark"), 3: ("light", "intermediate", "dark")}


def level_names(stain: str, n_levels: int, atpase_ph: float | None = None) -> tuple[str, ...]:
    """Type names of intensity levels, lightest first.

    Examples
    --------
    >>> level_names("nadh", 2)
    ('2', '1')
    >>> level_names("atpase", 2, atpase_ph=9.4)
    ('1', '2')
    >>> level_names("atpase", 3)
    ('light', 'intermediate', 'dark')
    """
    if stain in ("nadh", "sdh"):
        table = {2: ("2", "1"), 3: ("2B", "2A", "1")}
    elif stain == "atpase" and atpase_ph is not None and atpase_ph >= 9.0:
        table = {2: ("1", "2")}
    elif stain == "atpase" and atpase_ph is not None and 4.5 <= atpase_ph < 5.0:
        table = {2: ("2", "1"), 3: ("2A", "2B", "1")}
    elif stain == "atpase" and atpase_ph is not None and atpase_ph < 4.5:
        table = {2: ("2", "1"), 3: ("2", "2C", "1")}
    else:
        table = {}
    return table.get(n_levels, _NEUTRAL[n_levels])


# ---------------------------------------------------------------------- 1-D mixture
def _gmm_1d(x: np.ndarray, k: int, n_iter: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM fit of a k-component 1-D Gaussian mixture started from k equal slices of the sorted
    values (:func:`histo.measure.darkness.mixture_em` without a plane): (weights, means,
    variances, log-lik)."""
    x = np.sort(np.asarray(x, dtype=float))
    w, mu, var, _, ll, _ = mixture_em(x, None, np.array_split(np.arange(x.size), k), n_iter)
    return w, mu, var, ll


def fit_levels(values: np.ndarray, n_levels: int | None = None, max_levels: int = 3
               ) -> dict[str, Any]:
    """Intensity levels of per-fiber values: number (BIC or given), means and cut points.

    Parameters
    ----------
    values : (n,) float array
        Per-fiber mean optical density (larger = darker).
    n_levels : int, optional
        Force 1, 2 or 3 levels; None chooses by BIC among 1..``max_levels``.

    Returns
    -------
    dict with ``n_levels``, ``means``, ``sds``, ``weights``, ``thresholds`` (n_levels - 1 cut
    points, increasing) and ``bic`` ({k: BIC}).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = np.concatenate([rng.normal(0.2, 0.02, 60), rng.normal(0.5, 0.03, 40)])
    >>> fit = fit_levels(v)
    >>> fit["n_levels"], 0.25 < fit["thresholds"][0] < 0.45
    (2, True)
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 3:
        raise HistoInputError(f"fiber typing needs at least 3 fibers with a stain intensity, got {x.size}")
    ks = [n_levels] if n_levels else list(range(1, max_levels + 1))
    fits, bic = {}, {}
    for k in ks:
        k_eff = min(k, len(np.unique(x)))
        w, mu, var, ll = _gmm_1d(x, k_eff)
        fits[k] = (w, mu, var)
        bic[k] = -2 * ll + (3 * k_eff - 1) * math.log(x.size)
    best = n_levels or min(bic, key=bic.get)
    w, mu, var = fits[best]
    thresholds = level_cut_points(w, mu, var, x.min(), x.max())
    return {"n_levels": int(len(thresholds) + 1), "means": mu.tolist(),
            "sds": np.sqrt(var).tolist(), "weights": w.tolist(), "thresholds": thresholds,
            "bic": {str(k): float(v) for k, v in bic.items()}}


# ---------------------------------------------------------------------- per-fiber signals
def _planes(image: ImageLike | np.ndarray) -> tuple[np.ndarray, str]:
    pixels = getattr(image, "pixels", image)
    axes = getattr(image, "axes", None)
    pixels = np.asarray(pixels)
    if axes is None:
        axes = "YX" if pixels.ndim == 2 else ("YXS" if pixels.shape[-1] in (3, 4) else "CYX")
    return pixels, axes


def fiber_means(labels: np.ndarray, plane: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    """Mean of ``plane`` inside each label of ``label_ids``."""
    if plane.shape != labels.shape:
        raise HistoInputError(f"image plane {plane.shape} and labels {labels.shape} differ in shape")
    return np.asarray(ndimage.mean(plane.astype(float), labels=labels, index=label_ids), dtype=float)


def _intensity_signal(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None) -> np.ndarray | None:
    if "mean_od" in fibers and np.isfinite(fibers["mean_od"].to_numpy(float)).any():
        return fibers["mean_od"].to_numpy(float)
    if image is None:
        return None
    pixels, axes = _planes(image)
    if axes == "CYX":
        return None
    grey = pixels[..., :3].astype(float).mean(axis=-1) if axes == "YXS" else pixels.astype(float)
    top = 255.0 if pixels.dtype == np.uint8 else max(float(grey.max()), 1.0)
    od = -np.log10(np.clip(grey + 1.0, 1.0, None) / (top + 1.0))
    return fiber_means(labels, od, fibers["label"].to_numpy())


def _flag(fibers: pd.DataFrame, column: str) -> np.ndarray:
    return fibers[column].fillna(False).to_numpy(dtype=bool)


def type_fibers(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None, settings: ScoringSettings, *, stain: Stain
                ) -> tuple[pd.Series, dict[str, Any]]:
    """A type per fiber (str, or NA where none can be given) and how it was decided.

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table with ``label`` and ``counted`` (``mean_od`` used on intensity stains).
    labels : (Y, X) int array
    image : histo.io.image.ImageData, ndarray or None
        Needed for IF type channels (and intensity stains when the table lacks ``mean_od``).
    settings : histo.score.settings.ScoringSettings
    stain : str

    Returns
    -------
    (Series of object, dict)
    """
    opts = settings.fiber_types
    types = pd.Series(pd.NA, index=fibers.index, dtype=object, name="fiber_type")
    counted = fibers["counted"].to_numpy(dtype=bool)
    if not opts.enabled:
        return types, {"method": None, "reason": "fiber typing disabled in the settings"}
    if stain == "if":
        if not opts.type_channels:
            return types, {"method": None, "reason": "no type channels given "
                           "(fiber_types.type_channels, e.g. --type-channels I=1,IIa=2)"}
        return _type_by_channels(fibers, labels, image, opts, counted)
    if stain not in INTENSITY_STAINS:
        return types, {"method": None, "reason": f"stain {stain!r} does not show fiber types"}
    signal = _intensity_signal(fibers, labels, image)
    if signal is None or np.isfinite(signal[counted]).sum() < 10:
        return types, {"method": None, "reason": "fewer than 10 counted fibers with a stain "
                       "intensity: types not estimated"}
    # the levels are fitted on all counted fibers, with a stain gradient across the slide and
    # (on NADH/SDH) an outlier component of small dark atrophic fibers taken out
    # (histo.measure.darkness.fit_type_levels, the fit darkness is measured against); the
    # outlier fibers are then typed like the others (the darkest level)
    fit_on = counted & np.isfinite(signal)
    has_xy = {"centroid_y_px", "centroid_x_px"} <= set(fibers.columns)
    size_col = next((c for c in ("min_feret_um", "min_feret_px") if c in fibers), None)
    full = fit_type_levels(
        signal, reference=fit_on,
        y=fibers["centroid_y_px"].to_numpy(float) if has_xy else None,
        x=fibers["centroid_x_px"].to_numpy(float) if has_xy else None,
        size=(fibers[size_col].to_numpy(float) if size_col and stain in OUTLIER_STAINS else None),
        n_levels=opts.n_types)
    corrected = full["corrected"]
    fit = {k: full[k] for k in ("n_levels", "means", "weights", "thresholds", "bic")}
    fit["sds_log10"] = full["sds"]
    fit["gradient"] = full["gradient"]
    fit["outlier_component"] = full["outlier"]
    fit_on = fit_on & ~full["outlier_fiber"]
    k = fit["n_levels"]
    info: dict[str, Any] = {"method": "intensity levels", "signal": "mean optical density",
                            "n_levels_chosen_by": "given" if opts.n_types else "BIC",
                            "n_fibers_fitted": int(fit_on.sum()), **fit}
    if k == 1:
        info["reason"] = ("one intensity level: fiber types are not separable on this slide "
                          "(this is also what a single-type slide looks like)")
        info["types"] = []
        return types, info
    names = opts.level_names if opts.level_names and len(opts.level_names) == k else \
        level_names(stain, k, opts.atpase_ph)
    level = np.searchsorted(np.asarray(fit["thresholds"]), corrected, side="right")
    ok = np.isfinite(corrected)
    types[ok] = np.asarray(names, dtype=object)[level[ok]]
    info["level_names"] = list(names)
    info["types"] = list(names)
    return types, info


def otsu_1d(values: np.ndarray) -> float:
    """Otsu's threshold on a few values, exactly (no histogram bins).

    Every split between consecutive sorted values is tried; the one with the largest
    between-class variance wins and the threshold is the midpoint of its gap, so a value
    never sits on the threshold.

    Examples
    --------
    >>> otsu_1d(np.array([1.0, 2.0, 2.5, 10.0, 11.0]))
    6.25
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    if x.size < 2 or x[0] == x[-1]:
        raise HistoInputError("Otsu's threshold needs at least two different values")
    n = x.size
    k = np.arange(1, n)                      # size of the lower class
    csum = np.cumsum(x)[:-1]
    mean_lo = csum / k
    mean_hi = (x.sum() - csum) / (n - k)
    between = k * (n - k) * (mean_lo - mean_hi) ** 2
    between[x[1:] == x[:-1]] = -1            # cannot split between equal values
    i = int(np.argmax(between))
    return float(0.5 * (x[i] + x[i + 1]))


def _type_by_channels(fibers, labels, image: ImageLike | np.ndarray, opts, counted) -> tuple[pd.Series, dict[str, Any]]:
    types = pd.Series(pd.NA, index=fibers.index, dtype=object, name="fiber_type")
    if image is None:
        return types, {"method": None, "reason": "no image: type channels cannot be read"}
    pixels, axes = _planes(image)
    if axes != "CYX":
        raise HistoInputError("fiber type channels need a multichannel (C, Y, X) image",
                              path=getattr(image, "path", None))
    fixed = dict(opts.channel_thresholds)
    ids = fibers["label"].to_numpy()
    positive = np.zeros((len(fibers), len(opts.type_channels)), dtype=bool)
    channels = {}
    for j, (name, ch) in enumerate(opts.type_channels):
        if ch >= pixels.shape[0]:
            raise HistoInputError(f"type channel {ch} for {name!r} does not exist; the image has "
                                  f"{pixels.shape[0]} channels (0 to {pixels.shape[0] - 1})",
                                  path=getattr(image, "path", None))
        means = fiber_means(labels, pixels[ch], ids)
        ref = means[counted & np.isfinite(means)]
        if name in fixed:
            thr, how = fixed[name], "fixed"
        elif ref.size >= 2 and np.ptp(ref) > 0:
            thr, how = otsu_1d(ref), "otsu"
        else:
            thr, how = math.inf, "no contrast"
        positive[:, j] = means > thr
        channels[name] = {"channel": int(ch), "threshold": float(thr), "threshold_method": how,
                          "n_positive_counted": int(np.count_nonzero(positive[:, j] & counted))}
    n_pos = positive.sum(axis=1)
    names = np.array([n for n, _ in opts.type_channels], dtype=object)
    values = np.where(n_pos == 0, opts.negative_name,
                      np.where(n_pos > 1, opts.hybrid_name, names[np.argmax(positive, axis=1)]))
    types[:] = values
    present = [n for n in [*names, opts.negative_name, opts.hybrid_name]
               if np.any(values[counted] == n)]
    return types, {"method": "type channels", "channels": channels, "types": present}


# ---------------------------------------------------------------------- statistics
def enclosed_fibers(edges: np.ndarray, fibers: pd.DataFrame, *, min_neighbors: int = 3
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Which fibers are enclosed, and which could be (eligible).

    A counted, typed fiber with at least ``min_neighbors`` neighbours, all typed, is
    *eligible*; it is *enclosed* when all its neighbours share its type. Neighbours include
    edge fibers (they are real neighbours even if not counted).

    Returns
    -------
    (enclosed, eligible): two (n,) bool arrays aligned with ``fibers``.
    """
    labels = fibers["label"].to_numpy()
    ftype = fibers["fiber_type"].astype(object).to_numpy()
    typed = pd.notna(fibers["fiber_type"]).to_numpy()
    pairs = index_edges(edges, labels)
    u, v = pairs[:, 0], pairs[:, 1]
    degree = np.bincount(pairs.ravel(), minlength=len(labels))
    untyped_nb = np.zeros(len(labels), dtype=bool)
    np.logical_or.at(untyped_nb, u, ~typed[v])
    np.logical_or.at(untyped_nb, v, ~typed[u])
    differs = np.zeros(len(labels), dtype=bool)
    diff_edge = typed[u] & typed[v] & (ftype[u] != ftype[v])
    np.logical_or.at(differs, u, diff_edge)
    np.logical_or.at(differs, v, diff_edge)
    eligible = (fibers["counted"].to_numpy(dtype=bool) & typed & (degree >= min_neighbors)
                & ~untyped_nb)
    return eligible & ~differs, eligible


def type_statistics(fibers: pd.DataFrame, edges: np.ndarray, settings: ScoringSettings) -> dict[str, Any]:
    """Proportions, enclosed fibers (observed and expected) and the type-grouping test."""
    opts = settings.fiber_types
    counted = fibers["counted"].to_numpy(dtype=bool)
    typed = pd.notna(fibers["fiber_type"]).to_numpy()
    ftype = fibers["fiber_type"].astype(object).to_numpy()
    use = counted & typed
    n_typed = int(use.sum())
    enclosed, eligible = enclosed_fibers(edges, fibers, min_neighbors=opts.enclosed_min_neighbors)
    degree = np.bincount(index_edges(edges, fibers["label"].to_numpy()).ravel(),
                         minlength=len(fibers))
    n_all = int(typed.sum())
    per_type: dict[str, dict[str, Any]] = {}
    for name in sorted({str(t) for t in ftype[use]}):
        is_t = use & (ftype == name)
        k_all = int(np.count_nonzero(typed & (ftype == name)))
        # P(fiber and all d neighbours are this type) under random placement of the types
        expected = sum(_ratio(k_all, n_all, int(d) + 1) for d in degree[eligible])
        per_type[name] = {
            "n": int(is_t.sum()),
            "fraction": float(is_t.sum() / n_typed) if n_typed else None,
            "n_enclosed": int(np.count_nonzero(enclosed & is_t)),
            "expected_enclosed": float(expected),
        }
    test = category_join_test(edges, fibers["label"].to_numpy()[use], ftype[use].astype(str),
                              n_permutations=settings.permutations, seed=settings.seed)
    total = test["total"]
    return {
        "n_typed": n_typed,
        "per_type": per_type,
        "n_enclosed": int(np.count_nonzero(enclosed)),
        "n_eligible_for_enclosed": int(np.count_nonzero(eligible)),
        "expected_enclosed": float(sum(t["expected_enclosed"] for t in per_type.values())),
        "grouping": {"join_count": total.to_dict(),
                     "per_type": {k: r.to_dict() for k, r in test["per_class"].items()},
                     "beyond_chance": total.verdict(settings.alpha)},
    }


def _ratio(k: int, n: int, m: int) -> float:
    """k(k-1)...(k-m+1) / n(n-1)...(n-m+1): probability that m given fibers all have a type
    held by k of n fibers."""
    if m > n:
        return 0.0
    out = 1.0
    for i in range(m):
        out *= max(k - i, 0) / (n - i)
    return out
