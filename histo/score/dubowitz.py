"""Dubowitz size figures of a set of fibers: atrophy and hypertrophy factors, variability.

The figures a neuromuscular pathologist reads off the lesser (minimum Feret) diameter
distribution (Brooke & Engel; Dubowitz, *Muscle Biopsy: A Practical Approach*), as pure
functions of arrays of diameters in µm, and :func:`size_figures`, which bundles them with
the size distribution of a slide or of one fiber type. :func:`histo.score.scoring.score_slide`
decides which fibers count; ``docs/scoring.md`` gives the normal ranges.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def atrophy_factor(min_feret_um: np.ndarray, lo_um: float) -> float | None:
    """Atrophy factor (Brooke & Engel; Dubowitz): weighted count of fibers below ``lo``.

    AF = 1000 * (1 n(lo-10 <= d < lo) + 2 n(lo-20 <= d < lo-10) + 3 n(lo-30 <= d < lo-20)
    + 4 n(d < lo-30)) / N; normal < 150.

    Examples
    --------
    >>> atrophy_factor(np.array([35.0, 25.0, 50.0, 60.0]), 40.0)   # 1000 * (1 + 2) / 4
    750.0
    """
    d = np.asarray(min_feret_um, dtype=float)
    if d.size == 0:
        return None
    below = np.clip(np.ceil((lo_um - d) / 10.0), 0, 4)   # 1..4 per 10 µm band, 0 at/above lo
    return float(1000.0 * below.sum() / d.size)


def hypertrophy_factor(min_feret_um: np.ndarray, hi_um: float) -> float | None:
    """Hypertrophy factor: HF = 1000 * (1 n(hi <= d < hi+10) + 2 n(hi+10 <= d < hi+20)
    + 3 n(hi+20 <= d < hi+30) + 4 n(d >= hi+30)) / N; normal < 150.

    Examples
    --------
    >>> hypertrophy_factor(np.array([80.0, 95.0, 50.0, 120.0]), 80.0)   # 1000 * (1 + 2 + 4) / 4
    1750.0
    """
    d = np.asarray(min_feret_um, dtype=float)
    if d.size == 0:
        return None
    above = np.where(d >= hi_um, np.minimum(np.floor((d - hi_um) / 10.0) + 1, 4), 0)
    return float(1000.0 * above.sum() / d.size)


def variability_coefficient(min_feret: np.ndarray) -> float | None:
    """VC = 1000 * SD / mean of the lesser diameter (sample SD, ddof=1); unitless, normal < 250.

    Examples
    --------
    >>> variability_coefficient(np.array([40.0, 60.0]))   # SD 14.142..., mean 50
    282.842712474619
    """
    d = np.asarray(min_feret, dtype=float)
    if d.size < 2 or not np.mean(d) > 0:
        return None
    return float(1000.0 * np.std(d, ddof=1) / np.mean(d))


def describe_sizes(values: np.ndarray) -> dict[str, float] | None:
    """Mean, median, sample SD (None for one value), min and max of the finite values.

    None when no value is finite.

    Examples
    --------
    >>> describe_sizes(np.array([40.0, 60.0, np.nan]))
    {'mean': 50.0, 'median': 50.0, 'sd': 14.142135623730951, 'min': 40.0, 'max': 60.0}
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return {"mean": float(v.mean()), "median": float(np.median(v)),
            "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "min": float(v.min()), "max": float(v.max())}


def size_figures(min_feret_px: np.ndarray | None, area_px: np.ndarray | None,
                 pixel_size_um: float | None, normal_range_um: tuple[float, float],
                 *, min_feret_um: np.ndarray | None = None,
                 area_um2: np.ndarray | None = None) -> dict[str, Any]:
    """Size distribution and Dubowitz figures of a set of fibers (a slide or one fiber type).

    Sizes in µm come from ``min_feret_um`` / ``area_um2`` when given, else from the pixel
    values times the pixel size; without either, µm figures are None with a reason.
    """
    if min_feret_um is None and min_feret_px is not None and pixel_size_um is not None:
        min_feret_um = np.asarray(min_feret_px, dtype=float) * pixel_size_um
    if area_um2 is None and area_px is not None and pixel_size_um is not None:
        area_um2 = np.asarray(area_px, dtype=float) * pixel_size_um ** 2
    lo, hi = normal_range_um
    d = None if min_feret_um is None else np.asarray(min_feret_um, dtype=float)
    out: dict[str, Any] = {
        "n": int(len(d) if d is not None else len(min_feret_px) if min_feret_px is not None else 0),
        "min_feret_um": None if d is None else describe_sizes(d),
        "area_um2": None if area_um2 is None else describe_sizes(area_um2),
        "min_feret_px": None if min_feret_px is None else describe_sizes(min_feret_px),
        "area_px": None if area_px is None else describe_sizes(area_px),
        "normal_range_um": [lo, hi],
        "atrophy_factor": None if d is None else atrophy_factor(d, lo),
        "hypertrophy_factor": None if d is None else hypertrophy_factor(d, hi),
        "variability_coefficient": variability_coefficient(
            d if d is not None else (min_feret_px if min_feret_px is not None else [])),
        "n_atrophic": None if d is None else int(np.count_nonzero(d < lo)),
        "n_hypertrophic": None if d is None else int(np.count_nonzero(d >= hi)),
        "reasons": {},
    }
    if d is None:
        for key in ("min_feret_um", "atrophy_factor", "hypertrophy_factor"):
            out["reasons"][key] = ("no pixel size: sizes are in pixels and the figures in µm "
                                   "need one (--pixel-size UM)")
    if out["variability_coefficient"] is None:
        out["reasons"]["variability_coefficient"] = "fewer than 2 counted fibers"
    return out
