"""Per-slide segmentation QC: can this slide's figures be trusted?

A whole H&E section segmented into 24,604 objects, half of them under 50 px², gives figures
that look like any other slide's. :func:`segmentation_qc` measures the signs of such a failure
on the fiber table (and, when the segmentation step reports them, on its scale check and
tissue area) and returns a verdict ``ok`` / ``warn`` / ``fail`` with one short sentence per
sign, figure included. Every threshold is a module constant below with the reason for its
value. A check whose input is missing (no pixel size, no ``rejected`` column, no segmentation
report: a slide measured from a user's own mask) is skipped, and ``checks`` says so.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"area_px": [2000.0] * 30 + [20.0] * 10, "counted": True})
>>> qc = segmentation_qc(table, pixel_size_um=None)
>>> qc["status"]
'fail'
>>> qc["reasons"][0]
'25 % of counted objects are under 50 px² (fragments, not fibers)'
>>> qc["checks"]["n_counted"], qc["checks"]["scale"]
('warn', 'skipped')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Verdicts from best to worst; a slide's status is the worst of its checks.
QC_STATUSES = ("ok", "warn", "fail")

#: Dubowitz's atrophy / hypertrophy factors and variability coefficient are defined on samples
#: of at least 200 fibers; below that one or two fibers move them past their normal limits.
MIN_FIBERS_WARN = 200
#: Below 20 counted fibers no slide statistic (class fractions, grouping) means anything.
MIN_FIBERS_FAIL = 20

#: An object under this fraction of the typical fiber area (the median area of counted objects
#: of at least FRAGMENT_AREA_PX, so fragments do not drag it down) is a fragment: atrophic fibers
#: are about a third of a normal fiber's area (min Feret ~0.55x) and must not trip it. At 0.3x,
#: manual masks of real biopsies (shared/data, 2026-12) had 2-21 % of their fibers below it and
#: 3 of 6 warned; at 0.1x only the one with many genuinely tiny fibers (NCL-SM S11, 6 %) does.
TINY_AREA_FRACTION = 0.1
#: A few percent tiny objects happen (cut fiber ends, split fibers); a quarter is over-segmentation.
TINY_WARN, TINY_FAIL = 0.05, 0.25
#: Under 50 px² (a ~8 px disc) no outline, Feret diameter or angularity can be measured.
FRAGMENT_AREA_PX = 50.0
#: Fragments this small should almost never be counted; 10 % of them means a broken segmentation.
FRAGMENT_WARN, FRAGMENT_FAIL = 0.02, 0.10

#: Median min Feret (µm) of counted fibers plausible for muscle: from small paediatric or
#: rodent fibers (~10 µm) to hypertrophic adult fibers (~120 µm), with margin.
MIN_FERET_WARN_UM = (8.0, 150.0)
#: Outside this range the objects are not fibers at this pixel size (or the pixel size is wrong).
MIN_FERET_FAIL_UM = (3.0, 300.0)
#: Fibers under 10 px across: their outlines, Feret diameters and angularity are pixel noise.
MIN_EQUIVALENT_DIAMETER_PX = 10.0

#: The model may reject objects as not fibers; a third rejected means the image is mostly
#: not what the model expects (stain, scale, artefacts).
REJECTED_WARN, REJECTED_FAIL = 0.30, 0.60

#: Fibers fill most of a cross-section (~70-90 % with endomysium); under a quarter of the tissue
#: covered by fibers means much tissue without fibers (inflammation, fat, wrong stain) or missed fibers.
COVERAGE_WARN, COVERAGE_FAIL = 0.25, 0.08

#: The fiber size the pixel size implies and the size seen in the image may differ this much
#: (fibers vary about 2x in diameter between muscles); beyond, one of them is wrong.
SCALE_RATIO_WARN = 1.5

_CHECKS = ("n_counted", "tiny_objects", "fragments", "fiber_size", "fiber_diameter_px",
           "rejected", "coverage", "scale")


def segmentation_qc(fibers: pd.DataFrame | None, *, pixel_size_um: float | None,
                    segmentation: Mapping[str, Any] | None = None,
                    n_counted: int | None = None) -> dict[str, Any]:
    """A slide's segmentation verdict from measurable signs; JSON-able.

    Parameters
    ----------
    fibers : DataFrame or None
        The per-fiber table (:func:`histo.measure.morphometry.measure_fibers`, usually scored):
        ``area_px`` or ``area_um2``, ``min_feret_um``/``_px``, ``equivalent_diameter_um``/``_px``;
        ``counted`` (else not ``is_edge`` and not ``excluded``), and optionally ``rejected``
        (bool: objects the model scored as not fibers, never counted unless their
        ``review_flag`` is ``"restored"``) and ``fiber_score``.
        None skips every check that needs the table.
    pixel_size_um : float or None
        Micrometres per pixel; None skips the size check in µm.
    segmentation : mapping, optional
        The segmentation step's report: ``tissue_area_px`` (fiber coverage), ``n_rejected``
        (objects dropped before the table, used when the table has no ``rejected`` column) and
        ``scale`` ``{"pixel_size_um", "metadata_diameter_px", "image_diameter_px", "ratio",
        "used", "warning", ...}`` (the pixel size against the fiber size in the image).
    n_counted : int, optional
        Counted fibers when ``fibers`` is None (from the slide statistics).

    Returns
    -------
    dict
        ``{"status": "ok"|"warn"|"fail", "reasons": [str, ...] (worst first),
        "measures": {name: number}, "checks": {check: "ok"|"warn"|"fail"|"skipped"}}``.
    """
    if fibers is not None and not isinstance(fibers, pd.DataFrame):
        raise TypeError(f"fibers must be a pandas DataFrame or None, got {type(fibers).__name__}")
    if pixel_size_um is not None and not (isinstance(pixel_size_um, (int, float))
                                          and math.isfinite(pixel_size_um) and pixel_size_um > 0):
        pixel_size_um = None
    segmentation = segmentation or {}
    found: list[tuple[str, str, str]] = []  # (check, status, reason)
    checks = dict.fromkeys(_CHECKS, "skipped")
    measures: dict[str, Any] = {}

    def verdict(check: str, status: str, reason: str | None = None) -> None:
        checks[check] = status
        if status != "ok" and reason:
            found.append((check, status, reason))

    if fibers is not None:
        table = _table_measures(fibers, pixel_size_um)
        measures.update(table)
        n_counted = table["n_counted"]
    if n_counted is not None:
        n = int(n_counted)
        measures.setdefault("n_counted", n)
        level = _level(n < MIN_FIBERS_FAIL, n < MIN_FIBERS_WARN)
        need = (f"too few for any slide statistic (≥ {MIN_FIBERS_FAIL})" if level == "fail"
                else f"AF, HF and VC need ≥ {MIN_FIBERS_WARN} and are unreliable")
        verdict("n_counted", level, f"N = {n} counted fibers: {need}")

    tiny = measures.get("tiny_fraction")
    if tiny is not None:
        verdict("tiny_objects", _level(tiny > TINY_FAIL, tiny > TINY_WARN),
                f"{_pct(tiny)} % of counted objects are under {TINY_AREA_FRACTION:g}× the typical "
                f"fiber area of {measures['typical_area_px']:.0f} px² (fragments or very small fibers)")
    frag = measures.get("fragment_fraction")
    if frag is not None:
        verdict("fragments", _level(frag > FRAGMENT_FAIL, frag > FRAGMENT_WARN),
                f"{_pct(frag)} % of counted objects are under {FRAGMENT_AREA_PX:.0f} px² "
                "(fragments, not fibers)")

    _size_check(measures, verdict)

    rejected = measures.get("rejected_fraction")
    if rejected is None and segmentation.get("n_rejected") is not None and fibers is not None:
        n_rej = int(segmentation["n_rejected"])
        total = n_rej + len(fibers)
        rejected = n_rej / total if total else None
        if rejected is not None:
            measures["n_rejected"], measures["rejected_fraction"] = n_rej, rejected
    if rejected is not None:
        verdict("rejected", _level(rejected > REJECTED_FAIL, rejected > REJECTED_WARN),
                f"{_pct(rejected)} % of segmented objects were rejected as not fibers")

    tissue_px = _number(segmentation.get("tissue_area_px"))
    fiber_px = measures.get("fiber_area_px")
    if tissue_px and tissue_px > 0 and fiber_px is not None:
        coverage = fiber_px / tissue_px
        measures["tissue_area_px"], measures["fiber_coverage"] = tissue_px, coverage
        verdict("coverage", _level(coverage < COVERAGE_FAIL, coverage < COVERAGE_WARN),
                f"fibers cover only {_pct(coverage)} % of the tissue (inflammation, fat, "
                "a stain the model does not know, or missed fibers)")

    scale = segmentation.get("scale")
    if isinstance(scale, Mapping):
        level, reason = _scale_check(scale, pixel_size_um, measures)
        verdict("scale", level, reason)

    order = {s: i for i, s in enumerate(QC_STATUSES)}
    status = max(checks.values(), key=lambda s: order.get(s, -1))
    status = status if status in QC_STATUSES else "ok"
    found.sort(key=lambda item: -order[item[1]])  # stable: worst first, then check order
    return {"status": status, "reasons": [reason for _, _, reason in found],
            "measures": measures, "checks": checks}


def _level(fail: bool, warn: bool) -> str:
    return "fail" if fail else "warn" if warn else "ok"


def _pct(fraction: float) -> str:
    value = 100.0 * fraction
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _bool_column(fibers: pd.DataFrame, name: str, default: bool) -> np.ndarray:
    if name not in fibers:
        return np.full(len(fibers), default)
    return np.array(fibers[name].fillna(default).astype(bool).to_numpy(), dtype=bool)


def _sized(fibers: pd.DataFrame, name: str, ps: float | None, power: int) -> np.ndarray | None:
    """Column ``name`` in pixels (``<name>_px``, or ``<name>_um``/``_um2`` over the pixel size)."""
    if f"{name}_px" in fibers:
        return fibers[f"{name}_px"].to_numpy(float)
    um = f"{name}_um2" if power == 2 else f"{name}_um"
    if um in fibers and ps:
        return fibers[um].to_numpy(float) / ps ** power
    return None


def _table_measures(fibers: pd.DataFrame, ps: float | None) -> dict[str, Any]:
    rejected = _bool_column(fibers, "rejected", False)
    if "review_flag" in fibers:  # a reviewer may restore a rejected object as a fiber
        rejected &= fibers["review_flag"].fillna("").to_numpy(dtype=object) != "restored"
    excluded = _bool_column(fibers, "excluded", False)
    if "counted" in fibers:
        counted = _bool_column(fibers, "counted", False)
    else:
        counted = ~_bool_column(fibers, "is_edge", False) & ~excluded
    counted = counted & ~rejected
    out: dict[str, Any] = {"n_objects": int(len(fibers)), "n_counted": int(counted.sum())}
    if "rejected" in fibers:
        out["n_rejected"] = int(rejected.sum())
        out["rejected_fraction"] = float(rejected.mean()) if len(fibers) else None
        if out["rejected_fraction"] is None:
            del out["rejected_fraction"]
    if "fiber_score" in fibers and counted.any():
        out["median_fiber_score"] = float(np.nanmedian(fibers["fiber_score"].to_numpy(float)[counted]))

    area = _sized(fibers, "area", ps, 2)
    if area is not None:
        out["fiber_area_px"] = float(np.nansum(area[~rejected & ~excluded]))
        a = area[counted]
        a = a[np.isfinite(a)]
        if len(a):
            above = a[a >= FRAGMENT_AREA_PX]
            typical = float(np.median(above if len(above) else a))
            out["typical_area_px"] = typical
            out["tiny_fraction"] = float(np.mean(a < TINY_AREA_FRACTION * typical))
            out["fragment_fraction"] = float(np.mean(a < FRAGMENT_AREA_PX))
            out["median_area_px"] = float(np.median(a))
    diam = _sized(fibers, "equivalent_diameter", ps, 1)
    if diam is None and area is not None:
        diam = np.sqrt(4.0 * area / np.pi)
    if diam is not None:
        d = diam[counted]
        d = d[np.isfinite(d)]
        if len(d):
            out["median_equivalent_diameter_px"] = float(np.median(d))
    if ps:
        feret = (fibers["min_feret_um"].to_numpy(float) if "min_feret_um" in fibers
                 else _maybe_scaled(fibers, "min_feret_px", ps))
        if feret is not None:
            f = feret[counted]
            f = f[np.isfinite(f)]
            if len(f):
                out["median_min_feret_um"] = float(np.median(f))
    return out


def _maybe_scaled(fibers: pd.DataFrame, column: str, ps: float) -> np.ndarray | None:
    return fibers[column].to_numpy(float) * ps if column in fibers else None


def _size_check(measures: dict[str, Any], verdict) -> None:
    feret = measures.get("median_min_feret_um")
    if feret is not None:
        (wlo, whi), (flo, fhi) = MIN_FERET_WARN_UM, MIN_FERET_FAIL_UM
        verdict("fiber_size", _level(not flo <= feret <= fhi, not wlo <= feret <= whi),
                f"median min Feret {feret:.3g} µm is outside the {wlo:g}–{whi:g} µm of muscle "
                "fibers (check the pixel size)")
    diam = measures.get("median_equivalent_diameter_px")
    if diam is not None:
        verdict("fiber_diameter_px", _level(False, diam < MIN_EQUIVALENT_DIAMETER_PX),
                f"median fiber diameter {diam:.1f} px: outlines at this resolution are not "
                "measurable")


def _scale_check(scale: Mapping[str, Any], ps: float | None,
                 measures: dict[str, Any]) -> tuple[str, str | None]:
    ratio = _number(scale.get("ratio"))
    meta = _number(scale.get("metadata_diameter_px"))
    image = _number(scale.get("image_diameter_px"))
    if ratio is None and meta and image:
        ratio = image / meta
    warning = scale.get("warning")
    if ratio is not None:
        measures["scale_ratio"] = ratio
    off = ratio is not None and ratio > 0 and not 1 / SCALE_RATIO_WARN <= ratio <= SCALE_RATIO_WARN
    if not off and not warning:
        return "ok", None
    if meta and image:
        size = _number(scale.get("pixel_size_um")) or ps
        where = "the image's" if scale.get("used") == "image" else "the pixel size's"
        head = f"pixel size {size:g} µm/px implies" if size else "the pixel size implies"
        return "warn", (f"{head} fibers of {meta:.0f} px but the image shows ~{image:.0f} px "
                        f"({ratio:.1f}×): segmented at {where} scale; check the pixel size")
    return "warn", str(warning) if warning else f"scale ratio image / pixel size {ratio:.2g}×"
