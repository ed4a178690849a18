"""Per-fiber darkness: how much darker a fiber is than the fibers it should be compared with.

One function, :func:`fiber_darkness`, gives the ``darkness`` and ``darkness_ref`` columns of
the per-fiber table from its ``mean_od``; it is used by every path that fills them (a whole
image in :func:`histo.measure.morphometry.measure_fibers`, a whole slide re-referenced after
its tiles, a reviewed table after an edit), so they agree. The reference depends on the
stain (``docs/scoring.md``, "Darkness"):

* **NADH-TR, SDH, non-specific esterase** (:data:`TYPE_LEVEL_STAINS`): the stain intensity
  follows the fiber type (type 1 darker), so a fiber is compared with the **darkest normal
  type level**, not with all fibers. The type levels are fitted on all reference fibers by
  :func:`fit_type_levels` (a 1-D Gaussian mixture of log mean OD, 1 to 3 levels by BIC, with
  a multiplicative stain gradient across the slide fitted jointly as a plane in log OD); a
  darkest component of small fibers (a quarter of the slide at most) is an *outlier*
  component, atrophic fibers rather than a type, and is left out of the levels.
  ``darkness = (log mean_od - log level - log gradient) / level SD`` (a robust z within the
  darkest level, in log OD), and ``darkness_ref`` is that level's OD at the fiber's place.
* **H&E**: ``mean_od`` is the cytoplasmic optical density with nuclei masked
  (:func:`histo.io.stain.he_cytoplasm`); a fiber is compared with its **local neighbours**
  (the median log mean OD of the ``n_local`` nearest reference fibers), so a gradient of
  staining across the slide does not make one side dark; the scale is the slide's robust
  spread of these local differences. ``darkness_ref`` is the local median OD.
* **other stains** (ATPase, immunofluorescence, PSR): the robust z-score of ``mean_od``
  against all reference fibers (:func:`robust_z`); ``darkness_ref`` is their median. Darkness
  does not mean atrophy there (``ScoringSettings.dark_stains``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

#: Stains whose darkness is measured against the darkest fiber-type level.
TYPE_LEVEL_STAINS = ("nadh", "sdh", "esterase")
#: Stains whose darkness is measured against the local neighbours.
LOCAL_STAINS = ("he",)
#: Neighbours of the local reference (H&E).
N_LOCAL = 12
#: A darkest mixture component is an outlier (atrophic) component, not a type level, when it
#: holds at most this fraction of the fibers ...
OUTLIER_MAX_WEIGHT = 0.25
#: ... and the median size of its fibers is at most this fraction of the others' median.
OUTLIER_MAX_SIZE_RATIO = 0.75
#: Smallest within-level spread of log10 OD used as the darkness scale (1 % in OD).
MIN_LOG_SD = 0.0043
#: Adjacent type levels closer than this many SDs (of the wider) are not two levels.
MIN_SEPARATION_SD = 1.0
#: Smallest share of the fibers a level (or outlier component) holds.
MIN_LEVEL_FRACTION = 0.02
#: Fewest reference fibers for a gradient to be fitted.
MIN_FIBERS_TREND = 30
_LOG_FLOOR = 1e-3
#: Quantiles at which the EM starts split the sorted values.
_START_QUANTILES = (0.05, 0.15, 0.35, 0.65, 0.85, 0.95)


def robust_z(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Robust z-score ``(x - median) / (1.4826 * MAD)`` against the reference rows.

    Parameters
    ----------
    values : (N,) float array
        NaN stays NaN.
    reference : (N,) bool array, optional
        Rows that define the median and MAD (all finite rows when fewer than 3 are
        selected). A zero MAD falls back to the standard deviation; when that is zero too
        every finite value scores 0.

    Examples
    --------
    >>> robust_z(np.array([1.0, 2.0, 3.0, 10.0])).round(2).tolist()
    [-1.01, -0.34, 0.34, 5.06]
    """
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    ref = ok if reference is None else ok & np.asarray(reference, bool)
    if ref.sum() < 3:
        ref = ok
    out = np.full(x.shape, np.nan)
    if not ref.any():
        return out
    med = float(np.median(x[ref]))
    scale = 1.4826 * float(np.median(np.abs(x[ref] - med)))
    if not scale > 0:
        scale = float(np.std(x[ref]))
    out[ok] = (x[ok] - med) / scale if scale > 0 else 0.0
    return out


# ---------------------------------------------------------------------- mixture + gradient
def _design(y: np.ndarray | None, x: np.ndarray | None, use: np.ndarray) -> np.ndarray | None:
    """(n, 2) centred, scaled coordinates (u, v) in [-1, 1] over the ``use`` rows, or None."""
    if y is None or x is None:
        return None
    yx = np.stack([np.asarray(y, float), np.asarray(x, float)], axis=1)
    ok = np.isfinite(yx).all(axis=1)
    if np.count_nonzero(use & ok) < MIN_FIBERS_TREND:
        return None
    lo, hi = yx[use & ok].min(axis=0), yx[use & ok].max(axis=0)
    half = np.where(hi > lo, (hi - lo) / 2, 1.0)
    out = (yx - (lo + hi) / 2) / half
    out[~ok] = 0.0
    return out


def _em(z: np.ndarray, uv: np.ndarray | None, k: int, n_iter: int = 300):
    """EM of a k-component 1-D Gaussian mixture of ``z - uv @ beta`` (beta fitted jointly),
    from the best of many starts.

    The starts split the sorted values at every choice of k - 1 cut points among the
    quantiles :data:`_START_QUANTILES` (so a small darkest or lightest component is among
    them); each is run for a few iterations on a subsample of at most 4000 fibers, and the
    two best are run to convergence on all of them.

    Returns (weights, means, variances, beta, log-likelihood, responsibilities), components
    sorted by mean.
    """
    if k == 1:
        return mixture_em(z, uv, [np.arange(z.size)], n_iter)
    n = z.size
    sub = (np.arange(n) if n <= 4000
           else np.sort(np.random.default_rng(0).choice(n, 4000, replace=False)))
    zs, uvs = z[sub], (uv[sub] if uv is not None else None)
    order = np.argsort(zs)
    trials = []
    for cuts in itertools.combinations(_START_QUANTILES, k - 1):
        edges = np.unique(np.round(np.r_[0.0, cuts, 1.0] * zs.size).astype(int))
        parts = [order[a:b] for a, b in zip(edges[:-1], edges[1:]) if b > a]
        if len(parts) != k:
            continue
        fit = mixture_em(zs, uvs, parts, 15)
        trials.append((fit[4], cuts))
    best = None
    order = np.argsort(z)
    for _, cuts in sorted(trials, key=lambda t: -t[0])[:2]:
        edges = np.unique(np.round(np.r_[0.0, cuts, 1.0] * n).astype(int))
        parts = [order[a:b] for a, b in zip(edges[:-1], edges[1:]) if b > a]
        if len(parts) != k:
            continue
        fit = mixture_em(z, uv, parts, n_iter)
        if best is None or fit[4] > best[4]:
            best = fit
    if best is None:  # fewer distinct values than starts need
        best = mixture_em(z, uv, np.array_split(np.argsort(z), k), n_iter)
    return best


def mixture_em(z: np.ndarray, uv: np.ndarray | None, parts: list[np.ndarray], n_iter: int):
    """EM of a 1-D Gaussian mixture of ``z - uv @ beta`` (``uv`` None: no plane) from the initial
    components ``parts`` (index arrays into ``z``).

    Returns (weights, means, variances, beta, log-likelihood, responsibilities), components
    sorted by mean.
    """
    n = z.size
    k = len(parts)
    beta = np.zeros(2)
    floor = max(1e-4 * float(np.var(z)), 1e-10)
    chunks = [z[p] for p in parts]
    w = np.array([len(c) / n for c in chunks])
    mu = np.array([c.mean() for c in chunks])
    var = np.array([max(c.var(), floor) for c in chunks])
    ll_old, ll, r = -np.inf, -np.inf, np.ones((n, k)) / k
    for _ in range(n_iter):
        res = z - (uv @ beta if uv is not None else 0.0)
        logp = (np.log(w)[None, :] - 0.5 * np.log(2 * np.pi * var)[None, :]
                - 0.5 * (res[:, None] - mu[None, :]) ** 2 / var[None, :])
        top = logp.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(logp - top).sum(axis=1))
        ll = float(lse.sum())
        r = np.exp(logp - lse[:, None])
        nk = r.sum(axis=0) + 1e-12
        w = np.maximum(nk / n, 1e-12)
        mu = (r * res[:, None]).sum(axis=0) / nk
        var = np.maximum((r * (res[:, None] - mu[None, :]) ** 2).sum(axis=0) / nk, floor)
        if uv is not None:  # weighted least squares of the plane given the components
            prec = r / var[None, :]
            wi = prec.sum(axis=1)
            target = z - (prec * mu[None, :]).sum(axis=1) / wi
            a = (uv * wi[:, None]).T @ uv
            b = (uv * wi[:, None]).T @ target
            try:
                beta = np.linalg.solve(a + 1e-9 * np.eye(2), b)
            except np.linalg.LinAlgError:
                beta = np.zeros(2)
        if abs(ll - ll_old) < 1e-7 * max(1.0, abs(ll)):
            break
        ll_old = ll
    order = np.argsort(mu)
    return w[order], mu[order], var[order], beta, ll, r[:, order]


def _plausible(w: np.ndarray, mu: np.ndarray, var: np.ndarray, n: int) -> bool:
    """Every component holds at least :data:`MIN_LEVEL_FRACTION` of the fibers and 5 of them
    (one stray fiber is not a level), and adjacent components are at least
    :data:`MIN_SEPARATION_SD` of the wider one's SD apart (a narrow and a wide component on
    the same level are one non-Gaussian level, not two)."""
    if len(mu) > 1 and (np.min(w) < MIN_LEVEL_FRACTION or np.min(w) * n < 5):
        return False
    sd = np.sqrt(var)
    return bool(np.all(np.diff(mu) >= MIN_SEPARATION_SD * np.maximum(sd[:-1], sd[1:])))


def _best_mixture(z: np.ndarray, uv: np.ndarray | None, ks: list[int]) -> dict[str, Any]:
    fits, bic = {}, {}
    n_unique = len(np.unique(z))
    for k in ks:
        k_eff = max(1, min(k, n_unique))
        w, mu, var, beta, ll, r = _em(z, uv, k_eff)
        fits[k] = (w, mu, var, beta, r)
        n_par = 3 * k_eff - 1 + (2 if uv is not None else 0)
        bic[k] = -2 * ll + n_par * math.log(z.size)
    ranked = sorted(bic, key=bic.get)
    best = next((k for k in ranked if _plausible(fits[k][0], fits[k][1], fits[k][2], z.size)),
                min(ks))
    w, mu, var, beta, r = fits[best]
    return {"k": len(mu), "weights": w, "means": mu, "vars": var, "beta": beta, "resp": r,
            "bic": {str(k): float(v) for k, v in bic.items()}}


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


def level_cut_points(w: np.ndarray, mu: np.ndarray, var: np.ndarray, lo: float, hi: float) -> list[float]:
    """Where the most probable component of a 1-D Gaussian mixture changes, on a fine grid
    from ``lo`` to ``hi`` (levels kept monotone); the thresholds between fiber-type levels."""
    if len(mu) == 1:
        return []
    grid = np.linspace(lo, hi, 4096)
    logp = np.log(w)[None, :] - 0.5 * np.log(var)[None, :] - 0.5 * (grid[:, None] - mu) ** 2 / var
    best = np.maximum.accumulate(np.argmax(logp, axis=1))
    cuts = []
    for level in range(1, len(mu)):
        hits = np.flatnonzero(best >= level)
        if hits.size and hits[0] > 0:
            cuts.append(float(0.5 * (grid[hits[0] - 1] + grid[hits[0]])))
    return sorted(set(cuts))


def fit_type_levels(mean_od: np.ndarray, *, reference: np.ndarray | None = None,
                    y: np.ndarray | None = None, x: np.ndarray | None = None,
                    size: np.ndarray | None = None, n_levels: int | None = None,
                    max_levels: int = 3) -> dict[str, Any]:
    """Fiber-type intensity levels of a slide, robust to a stain gradient and to atrophic fibers.

    A Gaussian mixture of ``log10(mean_od)`` over the reference fibers, with 1 to
    ``max_levels`` components chosen by BIC (``n_levels`` fixes it), is fitted jointly with a
    plane in the fiber centroids ``(y, x)`` (a stain gradient multiplies every OD by the same
    factor at one place). When ``size`` is given, a darkest component holding at most
    :data:`OUTLIER_MAX_WEIGHT` of the fibers whose median size is at most
    :data:`OUTLIER_MAX_SIZE_RATIO` of the others' is an **outlier component** (small dark
    atrophic fibers, not a fiber type): its fibers are set aside and the levels refitted on
    the rest (once more if the refit has such a component again).

    Parameters
    ----------
    mean_od : (n,) float array
        Per-fiber mean optical density (> 0; larger = darker).
    reference : (n,) bool array, optional
        Fibers the levels are fitted on (default: all finite).
    y, x : (n,) float arrays, optional
        Fiber centroids; without them (or with fewer than :data:`MIN_FIBERS_TREND` reference
        fibers) no gradient is fitted.
    size : (n,) float array, optional
        A fiber size (min Feret) for the outlier test; None = no outlier test.
    n_levels : int, optional
        Fix the number of type levels.

    Returns
    -------
    dict
        ``n_levels``; ``means`` / ``sds`` (OD and log10-OD SD of each level at the slide's
        centre, lightest first), ``weights``, ``thresholds`` (cut points on the
        gradient-corrected OD); ``trend`` ((n,) factor each fiber's OD was multiplied by
        through the gradient, 1 without one); ``corrected`` ((n,) ``mean_od / trend``);
        ``top_log_mean`` / ``top_log_sd`` (robust centre and spread, log10, of the darkest
        level); ``outlier`` (``{"n", "od"}`` or None); ``outlier_fiber`` ((n,) bool);
        ``gradient`` (largest / smallest trend factor over the reference fibers); ``bic``;
        ``n_fitted``.

    Examples
    --------
    Thirty type-1 fibers (OD 0.4) among seventy type-2 (0.28), and five small very dark
    fibers:

    >>> rng = np.random.default_rng(0)
    >>> od = np.r_[rng.normal(0.28, 0.02, 70), rng.normal(0.40, 0.02, 30), rng.normal(0.9, 0.05, 5)]
    >>> size = np.r_[np.full(100, 50.0), np.full(5, 15.0)]
    >>> fit = fit_type_levels(od, size=size)
    >>> fit["n_levels"], [round(m, 2) for m in fit["means"]], fit["outlier"]["n"]
    (2, [0.28, 0.4], 5)
    """
    od = np.asarray(mean_od, dtype=float)
    n = od.size
    ok = np.isfinite(od)
    ref = ok if reference is None else ok & np.asarray(reference, bool)
    if ref.sum() < 3:
        ref = ok
    z_all = np.log10(np.clip(od, _LOG_FLOOR, None))
    uv_all = _design(y, x, ref)
    ks = [n_levels] if n_levels else list(range(1, max_levels + 1))
    outlier = np.zeros(n, bool)
    fit_on = ref.copy()
    info_outlier = None
    for _ in range(3):
        uv = uv_all[fit_on] if uv_all is not None else None
        extra = [max(ks) + 1] if size is not None else []  # room for an outlier component
        fitted_on = fit_on.copy()
        fit = _best_mixture(z_all[fit_on], uv, ks + extra)
        if size is None or fit["k"] < 2 or fit["weights"][-1] > OUTLIER_MAX_WEIGHT:
            break
        member = np.zeros(n, bool)
        member[fit_on] = np.argmax(fit["resp"], axis=1) == fit["k"] - 1
        sz = np.asarray(size, float)
        mine, rest = sz[member & np.isfinite(sz)], sz[fit_on & ~member & np.isfinite(sz)]
        if not (mine.size and rest.size
                and np.median(mine) <= OUTLIER_MAX_SIZE_RATIO * np.median(rest)):
            break
        outlier |= member
        fit_on &= ~member
        info_outlier = {"n": int(outlier.sum()),
                        "od": float(10 ** np.median(z_all[outlier]))}
        if fit_on.sum() < 3:
            break
    if fit["k"] > max(ks) or not np.array_equal(fitted_on, fit_on):
        # the extra component was not an outlier, or outliers were set aside after the fit
        fit = _best_mixture(z_all[fit_on], uv_all[fit_on] if uv_all is not None else None, ks)
    beta = fit["beta"] if uv_all is not None else np.zeros(2)
    shift = uv_all @ beta if uv_all is not None else np.zeros(n)
    corrected_log = z_all - shift
    w, mu, var = fit["weights"], fit["means"], fit["vars"]
    top = fit["resp"][:, -1]
    zt = corrected_log[fit_on]
    if top.sum() > 0:
        centre = _weighted_median(zt, top)
        spread = 1.4826 * _weighted_median(np.abs(zt - centre), top)
    else:
        centre, spread = float(mu[-1]), float(np.sqrt(var[-1]))
    if not spread > 0:
        spread = float(np.sqrt(var[-1]))
    spread = max(spread, MIN_LOG_SD)
    lo, hi = float(corrected_log[fit_on].min()), float(corrected_log[fit_on].max())
    cuts_log = level_cut_points(w, mu, var, lo, hi)
    trend = 10.0 ** shift
    return {
        "n_levels": int(len(mu)), "means": (10.0 ** mu).tolist(), "sds": np.sqrt(var).tolist(),
        "weights": w.tolist(), "thresholds": [float(10.0 ** c) for c in cuts_log],
        "trend": trend, "corrected": np.where(ok, od / trend, np.nan),
        "top_log_mean": float(centre), "top_log_sd": float(spread),
        "outlier": info_outlier, "outlier_fiber": outlier,
        "gradient": (float(trend[ref].max() / trend[ref].min()) if ref.any() else 1.0),
        "bic": fit["bic"], "n_fitted": int(fit_on.sum()),
    }


# ---------------------------------------------------------------------- local reference
def local_reference(values: np.ndarray, y: np.ndarray, x: np.ndarray, reference: np.ndarray,
                    n_local: int = N_LOCAL) -> np.ndarray:
    """Median of ``values`` over each fiber's ``n_local`` nearest reference fibers (itself
    excluded); the median of all reference fibers when there are too few.

    Examples
    --------
    >>> v = np.array([1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    >>> yy = np.zeros(6); xx = np.array([0.0, 1, 2, 100, 101, 102])
    >>> local_reference(v, yy, xx, np.ones(6, bool), n_local=2).tolist()
    [1.0, 1.0, 1.0, 5.0, 5.0, 5.0]
    """
    v = np.asarray(values, float)
    pts = np.stack([np.asarray(y, float), np.asarray(x, float)], axis=1)
    ok = np.isfinite(v) & np.isfinite(pts).all(axis=1)
    ref = ok & np.asarray(reference, bool)
    out = np.full(v.shape, np.nan)
    if not ref.any():
        return out
    if ref.sum() <= n_local:
        out[ok] = float(np.median(v[ref]))
        return out
    ref_idx = np.flatnonzero(ref)
    tree = cKDTree(pts[ref_idx])
    _, nb = tree.query(pts[ok], k=n_local + 1)
    cand = ref_idx[nb]                                   # (m, n_local + 1)
    rows = np.flatnonzero(ok)
    self_hit = cand == rows[:, None]
    vals = v[cand]
    # drop the fiber itself when it is among its neighbours, else the farthest one
    drop = np.where(self_hit.any(axis=1), np.argmax(self_hit, axis=1), n_local)
    keep = np.ones_like(self_hit)
    keep[np.arange(len(rows)), drop] = False
    out[ok] = np.median(vals[keep].reshape(len(rows), n_local), axis=1)
    return out


def local_z(values: np.ndarray, y: np.ndarray, x: np.ndarray, reference: np.ndarray,
            n_local: int = N_LOCAL, min_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """How far each value is above its neighbours': ``(v - local median) / scale``.

    ``scale`` is the robust spread (1.4826 MAD) of ``v - local median`` over the reference
    fibers (the standard deviation when that is 0, at least ``min_scale``).

    Returns
    -------
    (z, local median, scale)

    Examples
    --------
    Two halves of a slide at different levels, one fiber well above its half:

    >>> rng = np.random.default_rng(1)
    >>> xx = np.r_[rng.uniform(0, 10, 40), rng.uniform(100, 110, 40)]
    >>> v = np.r_[rng.normal(1.0, 0.01, 40), rng.normal(2.0, 0.01, 40)]
    >>> v[5] = 1.1
    >>> z, ref, scale = local_z(v, np.zeros(80), xx, np.ones(80, bool))
    >>> bool(z[5] > 5), bool(np.abs(np.delete(z, 5)).max() < 4)
    (True, True)
    """
    v = np.asarray(values, float)
    local = local_reference(v, y, x, reference, n_local=n_local)
    resid = v - local
    r_ok = np.asarray(reference, bool) & np.isfinite(resid)
    scale = 0.0
    if r_ok.any():
        scale = 1.4826 * float(np.median(np.abs(resid[r_ok] - np.median(resid[r_ok]))))
        if not scale > 0:
            scale = float(np.std(resid[r_ok]))
    scale = max(scale, min_scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = resid / scale if scale > 0 else np.where(np.isfinite(resid), 0.0, np.nan)
    return z, local, scale


# ---------------------------------------------------------------------- the one function
def _size_of(table: pd.DataFrame) -> np.ndarray | None:
    for col in ("min_feret_um", "min_feret_px"):
        if col in table:
            return table[col].to_numpy(float)
    return None


def fiber_darkness(table: pd.DataFrame, *, stain: str | None, reference: np.ndarray | None = None,
                   n_local: int = N_LOCAL) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``darkness`` and ``darkness_ref`` of every fiber of a table, by stain (module docstring).

    Parameters
    ----------
    table : DataFrame
        Per-fiber table with ``mean_od``; ``centroid_y_px`` / ``centroid_x_px`` (gradient and
        local reference), a min Feret column (outlier component) and ``is_edge`` are used
        when present.
    stain : str or None
    reference : (n,) bool array, optional
        Fibers that define the reference (default: those not at an edge).
    n_local : int
        Neighbours of the local reference (H&E).

    Returns
    -------
    (darkness, darkness_ref, info)
        Two (n,) float arrays (NaN where ``mean_od`` is NaN) and a JSON-able description of
        the reference (``method`` and its figures).

    Examples
    --------
    >>> t = pd.DataFrame({"mean_od": [0.28, 0.29, 0.27, 0.28, 0.40, 0.41, 0.39, 0.40, 0.9]})
    >>> z, ref, info = fiber_darkness(t, stain="atpase")
    >>> info["method"], round(float(z[-1]), 1)
    ('robust z against all fibers', 3.4)
    """
    od = table["mean_od"].to_numpy(float) if "mean_od" in table else np.full(len(table), np.nan)
    n = len(table)
    if reference is None:
        reference = (~table["is_edge"].fillna(False).to_numpy(bool) if "is_edge" in table
                     else np.ones(n, bool))
    reference = np.asarray(reference, bool) & np.isfinite(od)
    if not np.isfinite(od).any():
        return np.full(n, np.nan), np.full(n, np.nan), {"method": None,
                                                        "reason": "no mean_od"}
    has_xy = {"centroid_y_px", "centroid_x_px"} <= set(table.columns)
    y = table["centroid_y_px"].to_numpy(float) if has_xy else None
    x = table["centroid_x_px"].to_numpy(float) if has_xy else None
    if stain in TYPE_LEVEL_STAINS and reference.sum() >= 10:
        fit = fit_type_levels(od, reference=reference, y=y, x=x, size=_size_of(table))
        logc = np.log10(np.clip(fit["corrected"], _LOG_FLOOR, None))
        z = (logc - fit["top_log_mean"]) / fit["top_log_sd"]
        z[~np.isfinite(od)] = np.nan
        ref_od = 10.0 ** fit["top_log_mean"] * fit["trend"]
        ref_od[~np.isfinite(od)] = np.nan
        info = {"method": "darkest fiber-type level", "n_levels": fit["n_levels"],
                "level_od": fit["means"], "darkest_level_od": float(10.0 ** fit["top_log_mean"]),
                "darkest_level_log_sd": fit["top_log_sd"], "gradient": fit["gradient"],
                "outlier_component": fit["outlier"], "n_fitted": fit["n_fitted"]}
        return z, ref_od, info
    if stain in LOCAL_STAINS and has_xy and reference.sum() >= 3:
        logv = np.where(np.isfinite(od), np.log10(np.clip(od, _LOG_FLOOR, None)), np.nan)
        z, local, scale = local_z(logv, y, x, reference, n_local=n_local, min_scale=MIN_LOG_SD)
        return z, 10.0 ** local, {"method": f"local: median of the {n_local} nearest fibers",
                                  "log_sd": scale}
    z = robust_z(od, reference)
    med = float(np.median(od[reference])) if reference.any() else float(np.nanmedian(od))
    ref_od = np.where(np.isfinite(od), med, np.nan)
    return z, ref_od, {"method": "robust z against all fibers", "median_od": med}
