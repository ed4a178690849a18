"""Dubowitz size figures of a set of fibers: atrophy and hypertrophy factors, variability.

The figures a neuromuscular pathologist reads off the lesser (minimum Feret) diameter
distribution (Brooke & Engel; Dubowitz, *Muscle Biopsy: A Practical Approach*), as pure
functions of arrays of diameters in µm, and :func:`size_figures`, which bundles them with
the size distribution of a slide or of one fiber type. :func:`histo.score.scoring.score_slide`
decides which fibers count; ``docs/scoring.md`` gives the normal ranges.

Dubowitz and Brooke & Engel read these figures **per fiber type** as well as pooled (a
selective type 2 atrophy hides in a pooled atrophy factor): :func:`type_figures` gives them
per type with the min-Feret histogram, the type proportions with predominance
(:func:`predominance`), the types of the SAD fibers and central nuclei per type. Figures from
fewer than :data:`MIN_FIBERS_FOR_FACTORS` fibers are kept and marked *too few*.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from histo.score.reference import PREDOMINANCE_PCT, Reference, type_family

#: Brooke & Engel's histograms and Dubowitz's factors are read on about 200 fibers; below
#: that AF / HF / VC are kept but marked "too few to test".
MIN_FIBERS_FOR_FACTORS = 200
#: Bin width of the min-Feret histograms in µm (pixels: 20 bins over the range).
HISTOGRAM_BIN_UM = 5.0


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
                 pixel_size_um: float | None, normal_range_um: tuple[float, float] | None,
                 *, min_feret_um: np.ndarray | None = None,
                 area_um2: np.ndarray | None = None,
                 reference: Reference | None = None) -> dict[str, Any]:
    """Size distribution and Dubowitz figures of a set of fibers (a slide or one fiber type).

    Sizes in µm come from ``min_feret_um`` / ``area_um2`` when given, else from the pixel
    values times the pixel size; without either, µm figures are None with a reason. Without
    a normal range (``normal_range_um`` None: a reference with a relative criterion) the
    atrophy and hypertrophy factors are None with a reason. ``too_few`` is True below
    :data:`MIN_FIBERS_FOR_FACTORS` fibers (the figures are kept).
    """
    if min_feret_um is None and min_feret_px is not None and pixel_size_um is not None:
        min_feret_um = np.asarray(min_feret_px, dtype=float) * pixel_size_um
    if area_um2 is None and area_px is not None and pixel_size_um is not None:
        area_um2 = np.asarray(area_px, dtype=float) * pixel_size_um ** 2
    lo, hi = normal_range_um if normal_range_um is not None else (None, None)
    d = None if min_feret_um is None else np.asarray(min_feret_um, dtype=float)
    dr = d if lo is not None else None
    out: dict[str, Any] = {
        "n": int(len(d) if d is not None else len(min_feret_px) if min_feret_px is not None else 0),
        "min_feret_um": None if d is None else describe_sizes(d),
        "area_um2": None if area_um2 is None else describe_sizes(area_um2),
        "min_feret_px": None if min_feret_px is None else describe_sizes(min_feret_px),
        "area_px": None if area_px is None else describe_sizes(area_px),
        "normal_range_um": None if lo is None else [lo, hi],
        "reference": None if reference is None else reference.tag,
        "atrophy_factor": None if dr is None else atrophy_factor(dr, lo),
        "hypertrophy_factor": None if dr is None else hypertrophy_factor(dr, hi),
        "variability_coefficient": variability_coefficient(
            d if d is not None else (min_feret_px if min_feret_px is not None else [])),
        "n_atrophic": None if dr is None else int(np.count_nonzero(dr < lo)),
        "n_hypertrophic": None if dr is None else int(np.count_nonzero(dr >= hi)),
        "reasons": {},
    }
    n = out["n"]
    out["too_few"] = bool(n < MIN_FIBERS_FOR_FACTORS)
    if out["too_few"]:
        out["too_few_note"] = (f"too few to test: {n} fibers < {MIN_FIBERS_FOR_FACTORS} (value "
                               "kept, read with care)")
    if d is None:
        for key in ("min_feret_um", "atrophy_factor", "hypertrophy_factor"):
            out["reasons"][key] = ("no pixel size: sizes are in pixels and the figures in µm "
                                   "need one (--pixel-size UM)")
    elif lo is None:
        name = reference.tag if reference is not None else "this reference"
        for key in ("atrophy_factor", "hypertrophy_factor"):
            out["reasons"][key] = (f"no published normal range ({name}); give one with "
                                   "--normal-range LO HI to compute it")
    if out["variability_coefficient"] is None:
        out["reasons"]["variability_coefficient"] = "fewer than 2 counted fibers"
    return out


def histogram_edges(values: np.ndarray, unit: str) -> np.ndarray:
    """Common bin edges for min-Feret histograms: 5 µm bins from 0, or 20 pixel bins.

    Examples
    --------
    >>> histogram_edges(np.array([12.0, 31.0]), "um").tolist()
    [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    top = float(v.max()) if v.size else 1.0
    if unit == "um":
        return np.arange(0.0, (np.floor(top / HISTOGRAM_BIN_UM) + 2) * HISTOGRAM_BIN_UM,
                         HISTOGRAM_BIN_UM)
    return np.linspace(0.0, top * 1.0001 if top > 0 else 1.0, 21)


def predominance(type_pct: dict[str, float], *, human: bool) -> dict[str, Any]:
    """Type 1 and type 2 percentages and Dubowitz's predominance call.

    ``type_pct`` maps type names (``1``, ``2A``, ``I``, ``IIa``, ...) to percent of typed
    fibers; subtypes add up into their family. Dubowitz: type 1 predominance above 55 %,
    type 2 above 80 % (adult human limb muscle). Types that name no family (``light``,
    ``negative``, ``hybrid``) leave the call undecided.

    Examples
    --------
    >>> predominance({"1": 62.0, "2A": 20.0, "2B": 18.0}, human=True)["predominance"]
    'type 1'
    >>> predominance({"1": 40.0, "2": 60.0}, human=True)["predominance"] is None
    True
    """
    fam: dict[str, float] = {"1": 0.0, "2": 0.0}
    unknown = []
    for name, pct in type_pct.items():
        f = type_family(name)
        if f is None:
            unknown.append(name)
        else:
            fam[f] += float(pct)
    out: dict[str, Any] = {"type_1_pct": fam["1"], "type_2_pct": fam["2"], "predominance": None,
                           "criterion": "Dubowitz: type 1 > 55 %, type 2 > 80 % (adult human)"}
    if unknown and fam["1"] + fam["2"] == 0:
        out.update(type_1_pct=None, type_2_pct=None,
                   reason=f"type names {', '.join(map(str, unknown))} name no type 1 / 2")
    elif not human:
        out["reason"] = "no predominance criterion for this species (Dubowitz's are human)"
    else:
        for f in ("1", "2"):
            if fam[f] > PREDOMINANCE_PCT[f]:
                out["predominance"] = f"type {f}"
        if unknown:
            out["note"] = f"not in type 1 or 2: {', '.join(map(str, unknown))}"
    return out


def type_figures(min_feret: np.ndarray, types: np.ndarray, *, unit: str,
                 normal_range_um: tuple[float, float] | None, reference: Reference | None,
                 area: np.ndarray | None = None, is_sad: np.ndarray | None = None,
                 is_central: np.ndarray | None = None) -> dict[str, Any]:
    """Dubowitz figures per fiber type of the counted fibers.

    Parameters
    ----------
    min_feret : (n,) float array
        Min Feret of the counted fibers, in ``unit`` (``"um"`` or ``"px"``).
    types : (n,) object array
        Fiber type per fiber (None / NaN = untyped, left out).
    unit : str
        ``"um"``: AF / HF against ``normal_range_um``; ``"px"``: VC and histogram only.
    normal_range_um, reference
        The range in force and its reference (None range: relative criterion, no AF / HF).
    area : (n,) float array, optional
        Area in ``unit`` squared.
    is_sad, is_central : (n,) bool arrays, optional
        SAD call and centrally nucleated call (None entries = not counted).

    Returns
    -------
    dict ``{"per_type": {type: {"n", "fraction", "sizes", "histogram", "n_sad",
    "n_centrally_nucleated", "pct_centrally_nucleated"}}, "histogram_edges", "histogram_unit",
    "sad_types", "predominance"}``.
    """
    d = np.asarray(min_feret, dtype=float)
    t = np.asarray(types, dtype=object)
    typed = np.array([v is not None and v == v for v in t], dtype=bool)  # NaN != NaN
    names = sorted({str(v) for v in t[typed]})
    edges = histogram_edges(d[typed], unit)
    per_type: dict[str, dict[str, Any]] = {}
    n_typed = int(typed.sum())
    sad = np.zeros(len(d), bool) if is_sad is None else np.asarray(is_sad, dtype=bool)
    for name in names:
        m = typed & (t.astype(str) == name)
        a = None if area is None else np.asarray(area, dtype=float)[m]
        sizes = size_figures(None if unit == "um" else d[m], None if unit == "um" else a, None,
                             normal_range_um, min_feret_um=d[m] if unit == "um" else None,
                             area_um2=a if unit == "um" else None, reference=reference)
        entry: dict[str, Any] = {
            "n": int(m.sum()), "fraction": float(m.sum() / n_typed) if n_typed else None,
            "sizes": sizes,
            "histogram": np.histogram(d[m][np.isfinite(d[m])], bins=edges)[0].tolist(),
            "n_sad": int(np.count_nonzero(sad & m)),
        }
        if is_central is not None:
            cn = np.asarray(is_central, dtype=object)[m]
            known = np.array([v is not None and v == v for v in cn], dtype=bool)
            n_cn = int(sum(bool(v) for v in cn[known]))
            entry["n_centrally_nucleated"] = n_cn if known.any() else None
            entry["pct_centrally_nucleated"] = (100.0 * n_cn / int(known.sum())
                                                if known.any() else None)
        per_type[name] = entry
    pct = {k: 100.0 * v["fraction"] for k, v in per_type.items() if v["fraction"] is not None}
    return {
        "per_type": per_type,
        "histogram_edges": edges.tolist(),
        "histogram_unit": unit,
        "sad_types": {k: v["n_sad"] for k, v in per_type.items() if v["n_sad"]},
        "n_sad_untyped": int(np.count_nonzero(sad & ~typed)),
        "predominance": predominance(pct, human=reference.human if reference else True),
    }
