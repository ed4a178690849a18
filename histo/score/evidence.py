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

from histo.score.dubowitz import MIN_FIBERS_FOR_FACTORS
from histo.score.grouping import MIN_EXPECTED_JOINS
from histo.score.reference import PREDOMINANCE_PCT, Reference
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
           note: str | None = None, reference: str | None = None) -> dict[str, Any]:
    """One figure: ``{"name", "value", "unit", "normal_range", "outside"}`` (+ ``note``,
    ``reference``).

    ``normal_range`` is ``[lo, hi]`` with None for an open end; ``outside`` is None when the
    value or the range is unknown. ``reference`` names where the range comes from
    (:attr:`histo.score.reference.Reference.tag`); every figure with a range carries one.

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
    if reference and normal_range is not None:
        out["reference"] = reference
    return out


def _notes(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


#: The Dubowitz figures: (key in a size-figures dict, name, settings field of the limit).
DUBOWITZ_FIGURES = (("atrophy_factor", "atrophy factor", "af_normal_max"),
                    ("hypertrophy_factor", "hypertrophy factor", "hf_normal_max"),
                    ("variability_coefficient", "variability coefficient", "vc_normal_max"))


def _limit(key: str, settings: ScoringSettings, ref: Reference) -> float | None:
    """The normal limit of a Dubowitz figure under ``ref``: the human limits only on human
    references; AF / HF need a range."""
    if not ref.human:
        return None
    return getattr(settings, dict((k, f) for k, _, f in DUBOWITZ_FIGURES)[key])


def _size_figures(sizes: dict[str, Any], settings: ScoringSettings, ref: Reference,
                  prefix: str = "") -> list[dict[str, Any]]:
    figs = []
    rng = ref.min_feret_um
    mf = sizes.get("min_feret_um")
    if mf:
        figs.append(figure(f"{prefix}mean min Feret", mf["mean"], "um",
                           None if rng is None else list(rng),
                           note=None if rng is not None else ref.range_text(), reference=ref.tag))
    too_few = sizes.get("too_few_note") if sizes.get("too_few") else None
    for key, name, _ in DUBOWITZ_FIGURES:
        limit = _limit(key, settings, ref)
        value = sizes.get(key)
        no_limit = (f"no normal limit for {ref.label} (Dubowitz's are human)"
                    if limit is None and value is not None else None)
        figs.append(figure(f"{prefix}{name}", value, None,
                           None if limit is None else [None, limit],
                           note=_notes((sizes.get("reasons") or {}).get(key), no_limit,
                                       too_few if value is not None else None),
                           reference=ref.tag))
    return figs


def _grouping_note(jc: dict[str, Any], joins: str) -> str:
    note = f"{jc['statistic']} {joins}, {jc['expected']:.1f} expected by chance"
    if jc.get("too_few_to_test"):
        note += f"; too few to test (< {MIN_EXPECTED_JOINS:g} expected), p kept"
    return note


def build_evidence(summary: dict[str, Any], settings: ScoringSettings) -> dict[str, Any]:
    """``{"figures": [...], "text": str, "reference": {...}}`` from the other parts of a
    slide summary.

    Parameters
    ----------
    summary : dict
        With ``statistics``, ``grouping``, ``fiber_types`` and ``nuclei`` as made by
        :func:`histo.score.scoring.score_slide`; a ``qc`` entry (:mod:`histo.score.qc`) that is
        not ok puts :func:`qc_preamble` at the head of the text.
    settings : histo.score.settings.ScoringSettings
        Its reference in force names every figure compared with a normal range.
    """
    stats = summary["statistics"]
    grouping = summary.get("grouping") or {}
    types = summary.get("fiber_types") or {}
    nuclei = summary.get("nuclei") or {}
    ref = settings.reference_in_force
    figs: list[dict[str, Any]] = []
    n = stats["n_counted"]
    figs.append(figure("fibers counted", n, None, None))
    if stats.get("density_per_mm2") is not None:
        figs.append(figure("fiber density", stats["density_per_mm2"], "per mm2", None,
                           note=stats["area_basis"]["source"]))
    figs.extend(_size_figures(stats, settings, ref))
    thresholds = stats.get("thresholds", {})
    for key, name in (("small", "small fibers"), ("angular", "angular fibers"),
                      ("dark", "dark fibers"), ("sad", "small angular dark fibers")):
        c = stats["classes"][key]
        note = None
        if key in ("dark", "sad") and not thresholds.get("dark_applies", True):
            note = "darkness is not scored on this stain"
        if key == "small":
            note = _small_rule_note(thresholds, ref)
        figs.append(figure(name, None if c["fraction"] is None else 100 * c["fraction"], "%",
                           None, note=note))
    if grouping.get("n_groups") is not None and grouping.get("expected_groups") is not None:
        figs.append(figure(f"groups of >= {grouping.get('min_group_size', 2)} {grouping['on']} "
                           "fibers", grouping["n_groups"], None, None,
                           note=f"{grouping['expected_groups']:.1f} expected by chance"))
    jc = grouping.get("join_count") or {}
    if jc.get("p_value") is not None:
        figs.append(figure(f"grouping of {grouping['on']} fibers (join-count p)", jc["p_value"],
                           None, [settings.alpha, None], note=_grouping_note(jc, "joins"),
                           reference=f"p < alpha = {settings.alpha:g}: grouped beyond chance"))
    if types.get("types"):
        figs.extend(_type_figures(types, settings, ref))
    if nuclei.get("pct_centrally_nucleated") is not None:
        cn_max = settings.central_nuclei_normal_max_pct if ref.human else None
        figs.append(figure("centrally nucleated fibers", nuclei["pct_centrally_nucleated"], "%",
                           None if cn_max is None else [None, cn_max],
                           note=None if ref.human else f"no normal limit for {ref.label} built in",
                           reference="adult human, Dubowitz"))
    text = qc_preamble(summary.get("qc")) + _text(stats, grouping, types, nuclei, settings, ref)
    return {"figures": figs, "text": text, "reference": ref.to_dict()}


def _small_rule_note(thresholds: dict[str, Any], ref: Reference) -> str | None:
    rule = thresholds.get("small_rule_used")
    if rule == "relative":
        return f"relative rule: {thresholds.get('small_relative', 'below a fraction of the median')}"
    if rule in ("absolute", "either", "both") and thresholds.get("small_max_um") is not None:
        return f"below {thresholds['small_max_um']:g} µm ({ref.tag})"
    return None


def _type_figures(types: dict[str, Any], settings: ScoringSettings,
                  ref: Reference) -> list[dict[str, Any]]:
    figs: list[dict[str, Any]] = []
    per_type = types.get("per_type", {})
    for name, entry in per_type.items():
        if entry.get("fraction") is not None:
            figs.append(figure(f"type {name} fibers", 100 * entry["fraction"], "%", None))
    pred = types.get("predominance") or {}
    for fam in ("1", "2"):
        pct = pred.get(f"type_{fam}_pct")
        if pct is None or len(per_type) < 2:
            continue
        limit = PREDOMINANCE_PCT[fam] if ref.human else None
        figs.append(figure(f"type {fam} proportion (all type {fam} fibers)", pct, "%",
                           None if limit is None else [None, limit],
                           note=pred.get("reason") or f"above: type {fam} predominance",
                           reference="adult human, Dubowitz"))
    for name, entry in per_type.items():
        sizes = entry.get("sizes")
        if sizes:
            figs.extend(f for f in _size_figures(sizes, settings, ref, prefix=f"type {name} ")
                        if f["value"] is not None and not f["name"].endswith("mean min Feret"))
        if entry.get("pct_centrally_nucleated") is not None:
            cn_max = settings.central_nuclei_normal_max_pct if ref.human else None
            figs.append(figure(f"type {name} centrally nucleated", entry["pct_centrally_nucleated"],
                               "%", None if cn_max is None else [None, cn_max],
                               reference="adult human, Dubowitz"))
    if types.get("sad_types") is not None and any(e.get("n_sad") for e in per_type.values()):
        for name, entry in per_type.items():
            figs.append(figure(f"SAD fibers of type {name}", entry.get("n_sad", 0), None, None))
    if "n_enclosed" in types:
        figs.append(figure("enclosed fibers", types["n_enclosed"], None, None,
                           note=f"{types['expected_enclosed']:.1f} expected by chance"))
    tjc = (types.get("grouping") or {}).get("join_count") or {}
    if tjc.get("p_value") is not None:
        figs.append(figure("fiber type grouping (join-count p)", tjc["p_value"], None,
                           [settings.alpha, None], note=_grouping_note(tjc, "same-type joins"),
                           reference=f"p < alpha = {settings.alpha:g}: grouped beyond chance"))
    return figs


def _grouped(jc: dict[str, Any], alpha: float) -> str | None:
    p = jc.get("p_value")
    if p is None:
        return None
    if p >= alpha and jc.get("too_few_to_test"):
        return (f"too few to test for grouping ({jc['expected']:.1f} joins expected by chance, "
                f"< {MIN_EXPECTED_JOINS:g})")
    return f"{'grouped' if p < alpha else 'not grouped'} beyond chance (p = {format_p(p)})"


def _factor_text(sizes: dict[str, Any], settings: ScoringSettings, ref: Reference) -> list[str]:
    out = []
    for key, name, _ in DUBOWITZ_FIGURES:
        value = sizes.get(key)
        if value is None:
            continue
        limit = _limit(key, settings, ref)
        bits = [f"normal < {_fmt(limit)}" if limit is not None
                else f"no normal limit for {ref.label}"]
        if sizes.get("too_few"):
            bits.append(f"too few to test: {sizes.get('n')} fibers < {MIN_FIBERS_FOR_FACTORS}")
        out.append(f"{name} {_fmt(value)} ({'; '.join(bits)})")
    return out


def _text(stats, grouping, types, nuclei, settings: ScoringSettings, ref: Reference) -> str:
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
    if grouping.get("expected_groups") is not None and grouping.get("n_groups") is not None:
        lead += (f"; {grouping['n_groups']} group{'s' if grouping['n_groups'] != 1 else ''} of "
                 f">= {grouping.get('min_group_size', 2)} ({grouping['expected_groups']:.1f} "
                 "expected by chance)")
    parts.append(lead)
    dubowitz = _factor_text(stats, settings, ref)
    if stats.get("atrophy_factor") is None:
        reason = (stats.get("reasons") or {}).get("atrophy_factor") or ""
        why = "no pixel size" if "pixel size" in reason or not reason else "no published normal range"
        dubowitz.insert(0, f"atrophy and hypertrophy factors not computed ({why})")
    parts.append(f"{ref.range_text()}: " + ", ".join(dubowitz))
    if types.get("types") and types.get("per_type"):
        parts.append(_types_text(types, settings, ref))
    if nuclei.get("pct_centrally_nucleated") is not None:
        limit = (f"normal < {settings.central_nuclei_normal_max_pct:g}%, adult human" if ref.human
                 else f"no normal limit for {ref.label} built in")
        parts.append(f"{nuclei['n_centrally_nucleated']} centrally nucleated fibers "
                     f"({nuclei['pct_centrally_nucleated']:.1f}%, {limit})")
    return "; ".join(p for p in parts if p) + "."


_PLAIN = {"negative", "hybrid", "light", "intermediate", "dark", "uniform"}


def _type_name(name: str) -> str:
    return name if name in _PLAIN else f"type {name}"


def _types_text(types: dict[str, Any], settings: ScoringSettings, ref: Reference) -> str:
    per_type = types["per_type"]
    shares = " / ".join(f"{_type_name(k)} {100 * v['fraction']:.0f}%"
                        for k, v in per_type.items() if v.get("fraction") is not None)
    t = f"fiber types {shares}"
    pred = types.get("predominance") or {}
    if pred.get("predominance"):
        t += f" ({pred['predominance']} predominance; {pred['criterion']})"
    if "n_enclosed" in types:
        t += (f"; {types['n_enclosed']} enclosed fibers "
              f"({types['expected_enclosed']:.1f} expected by chance)")
    tg = _grouped((types.get("grouping") or {}).get("join_count") or {}, settings.alpha)
    if tg:
        t += f", types {tg}"
    per = []
    for k, v in per_type.items():
        sizes = v.get("sizes") or {}
        bits = [f"{abbr} {_fmt(sizes[key])}" for key, abbr in
                (("atrophy_factor", "AF"), ("hypertrophy_factor", "HF"),
                 ("variability_coefficient", "VC")) if sizes.get(key) is not None]
        if bits:
            few = f", {sizes.get('n')} fibers: too few" if sizes.get("too_few") else ""
            per.append(f"{_type_name(k)} {' '.join(bits)}{few}")
    if per:
        t += "; per type " + ", ".join(per)
    sad_types = types.get("sad_types") or {}
    if sad_types:
        t += "; SAD fibers by type " + ", ".join(f"{_type_name(k)} {v}"
                                                  for k, v in sad_types.items())
    cn = [f"{_type_name(k)} {v['pct_centrally_nucleated']:.1f}%" for k, v in per_type.items()
          if v.get("pct_centrally_nucleated") is not None]
    if cn:
        t += "; centrally nucleated by type " + ", ".join(cn)
    return t
