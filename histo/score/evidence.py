"""The evidence summary: each slide figure with its normal range, and one plain-language line.

It reports evidence, never a diagnosis: figures, their normal ranges and whether they are
outside, and whether small fibers or fiber types are grouped beyond chance. Words that name a
disease process (neurogenic, myopathic, ...) never appear; the pathologist draws conclusions.
When the slide's segmentation QC (``summary["qc"]``, :mod:`histo.score.qc`) is not ``ok``, the
text begins with :data:`QC_PREFIX` and the QC reasons, so nobody reads the figures without them.

Examples
--------
>>> format_p(0.0031)
'0.003'
>>> format_p(0.25)
'0.25'
>>> qc_preamble({"status": "warn", "reasons": ["N = 35 counted fibers"]})
'segmentation needs review: N = 35 counted fibers. '
"""

from __future__ import annotations

from typing import Any

from histo.score.settings import ScoringSettings

#: Words the evidence text must never contain (they would read as a diagnosis).
FORBIDDEN_WORDS = ("neurogenic", "myopathic", "myopathy", "neuropathy", "denervat",
                   "reinnervat", "diagnos", "dystroph", "disease")


#: How the evidence text begins when the segmentation QC is not ok.
QC_PREFIX = "segmentation needs review: "


def qc_preamble(qc: dict[str, Any] | None) -> str:
    """``QC_PREFIX`` + the QC reasons, or "" when the QC is ok or absent."""
    if not qc or qc.get("status", "ok") == "ok":
        return ""
    reasons = "; ".join(str(r) for r in qc.get("reasons") or []) or f"QC {qc['status']}"
    return f"{QC_PREFIX}{reasons}. "


def format_p(p: float) -> str:
    """A p-value with two significant digits."""
    return f"{p:.2g}" if p >= 0.01 else f"{p:.1g}"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.3g}"


def figure(name: str, value: Any, unit: str | None, normal_range: list | None,
           note: str | None = None) -> dict[str, Any]:
    """One figure: ``{"name", "value", "unit", "normal_range", "outside"}`` (+ ``note``).

    ``normal_range`` is ``[lo, hi]`` with None for an open end; ``outside`` is None when the
    value or the range is unknown.

    Examples
    --------
    >>> figure("atrophy factor", 420.0, None, [None, 150])["outside"]
    True
    """
    outside = None
    if value is not None and normal_range is not None:
        lo, hi = normal_range
        outside = bool((lo is not None and value < lo) or (hi is not None and value > hi))
    out = {"name": name, "value": value, "unit": unit, "normal_range": normal_range,
           "outside": outside}
    if note:
        out["note"] = note
    return out


def build_evidence(summary: dict[str, Any], settings: ScoringSettings) -> dict[str, Any]:
    """``{"figures": [...], "text": str}`` from the other parts of a slide summary.

    Parameters
    ----------
    summary : dict
        With ``statistics``, ``grouping``, ``fiber_types`` and ``nuclei`` as made by
        :func:`histo.score.scoring.score_slide`; a ``qc`` entry (:mod:`histo.score.qc`) that is
        not ok puts :func:`qc_preamble` at the head of the text.
    settings : histo.score.settings.ScoringSettings
    """
    stats = summary["statistics"]
    grouping = summary.get("grouping") or {}
    types = summary.get("fiber_types") or {}
    nuclei = summary.get("nuclei") or {}
    lo, hi = settings.normal_range
    figs: list[dict[str, Any]] = []
    n = stats["n_counted"]
    figs.append(figure("fibers counted", n, None, None))
    if stats.get("density_per_mm2") is not None:
        figs.append(figure("fiber density", stats["density_per_mm2"], "per mm2", None,
                           note=stats["area_basis"]["source"]))
    mf = stats.get("min_feret_um")
    if mf:
        figs.append(figure("mean min Feret", mf["mean"], "um", [lo, hi]))
    for key, name, limit in (("atrophy_factor", "atrophy factor", settings.af_normal_max),
                             ("hypertrophy_factor", "hypertrophy factor", settings.hf_normal_max),
                             ("variability_coefficient", "variability coefficient",
                              settings.vc_normal_max)):
        figs.append(figure(name, stats.get(key), None, [None, limit],
                           note=stats.get("reasons", {}).get(key)))
    thresholds = stats.get("thresholds", {})
    for key, name in (("small", "small fibers"), ("angular", "angular fibers"),
                      ("dark", "dark fibers"), ("sad", "small angular dark fibers")):
        c = stats["classes"][key]
        note = None
        if key in ("dark", "sad") and not thresholds.get("dark_applies", True):
            note = "darkness is not scored on this stain"
        figs.append(figure(name, None if c["fraction"] is None else 100 * c["fraction"], "%",
                           None, note=note))
    jc = grouping.get("join_count") or {}
    if jc.get("p_value") is not None:
        figs.append(figure(f"grouping of {grouping['on']} fibers (join-count p)", jc["p_value"],
                           None, [settings.alpha, None],
                           note=f"{jc['statistic']} joins, {jc['expected']:.1f} expected by chance"))
    if types.get("types"):
        for name, entry in types.get("per_type", {}).items():
            if entry.get("fraction") is not None:
                figs.append(figure(f"type {name} fibers", 100 * entry["fraction"], "%", None))
        if "n_enclosed" in types:
            figs.append(figure("enclosed fibers", types["n_enclosed"], None, None,
                               note=f"{types['expected_enclosed']:.1f} expected by chance"))
        tjc = (types.get("grouping") or {}).get("join_count") or {}
        if tjc.get("p_value") is not None:
            figs.append(figure("fiber type grouping (join-count p)", tjc["p_value"], None,
                               [settings.alpha, None],
                               note=f"{tjc['statistic']} same-type joins, "
                                    f"{tjc['expected']:.1f} expected by chance"))
    if nuclei.get("pct_centrally_nucleated") is not None:
        figs.append(figure("centrally nucleated fibers", nuclei["pct_centrally_nucleated"], "%",
                           [None, settings.central_nuclei_normal_max_pct]))
    text = qc_preamble(summary.get("qc")) + _text(stats, grouping, types, nuclei, settings)
    return {"figures": figs, "text": text}


def _grouped(jc: dict[str, Any], alpha: float) -> str | None:
    p = jc.get("p_value")
    if p is None:
        return None
    return f"{'grouped' if p < alpha else 'not grouped'} beyond chance (p = {format_p(p)})"


def _text(stats, grouping, types, nuclei, settings: ScoringSettings) -> str:
    parts: list[str] = []
    n = stats["n_counted"]
    parts.append(f"{n} fibers counted")
    sad = stats["classes"]["sad"]
    grouped = _grouped(grouping.get("join_count") or {}, settings.alpha)
    if stats.get("thresholds", {}).get("dark_applies", True):
        pct = f" ({100 * sad['fraction']:.1f}%)" if sad["fraction"] is not None else ""
        lead = f"{sad['n']} small angular dark fiber{'s' if sad['n'] != 1 else ''}{pct}"
    else:
        small = stats["classes"]["small"]
        pct = f" ({100 * small['fraction']:.1f}%)" if small["fraction"] is not None else ""
        lead = f"{small['n']} small fiber{'s' if small['n'] != 1 else ''}{pct}"
    if grouped and grouping.get("on") == "sad":
        lead += f", {grouped}"
    elif grouped:
        lead += f"; {grouping['on']} fibers {grouped}"
    parts.append(lead)
    dubowitz = []
    for key, name, limit in (("atrophy_factor", "atrophy factor", settings.af_normal_max),
                             ("hypertrophy_factor", "hypertrophy factor", settings.hf_normal_max),
                             ("variability_coefficient", "variability coefficient",
                              settings.vc_normal_max)):
        value = stats.get(key)
        if value is not None:
            dubowitz.append(f"{name} {_fmt(value)} (normal < {_fmt(limit)})")
    if stats.get("atrophy_factor") is None:
        dubowitz.insert(0, "atrophy and hypertrophy factors not computed (no pixel size)")
    parts.append(", ".join(dubowitz))
    if types.get("types") and types.get("per_type"):
        plain = {"negative", "hybrid", "light", "intermediate", "dark", "uniform"}
        shares = " / ".join(f"{'' if k in plain else 'type '}{k} "
                            f"{100 * v['fraction']:.0f}%"
                            for k, v in types["per_type"].items() if v.get("fraction") is not None)
        t = f"fiber types {shares}"
        if "n_enclosed" in types:
            t += (f"; {types['n_enclosed']} enclosed fibers "
                  f"({types['expected_enclosed']:.1f} expected by chance)")
        tg = _grouped((types.get("grouping") or {}).get("join_count") or {}, settings.alpha)
        if tg:
            t += f", types {tg}"
        parts.append(t)
    if nuclei.get("pct_centrally_nucleated") is not None:
        parts.append(f"{nuclei['n_centrally_nucleated']} centrally nucleated fibers "
                     f"({nuclei['pct_centrally_nucleated']:.1f}%, normal < "
                     f"{settings.central_nuclei_normal_max_pct:g}%)")
    return "; ".join(p for p in parts if p) + "."
