"""The cohort report: ``RESULTS/report.html``, one self-contained page a pathologist can read.

Built from the result files alone (``cohort.csv`` and every ``<slide-id>/summary.json``,
``fibers.csv``/``fibers.parquet``, ``overlay.png``) and from reviews saved by the napari plugin
(:mod:`histo.review.state`): excluded fibers, confirmed or rejected SAD calls and edited labels are
applied and the slide's figures recomputed before anything is shown. Plots are embedded as
``data:`` URIs so the page can be mailed or archived alone. The HTML template is the package
resource ``histo/report/templates/report.html``.

Examples
--------
>>> import tempfile
>>> from histo.batch.pipeline import measure_file
>>> from histo.report.html import build_report
>>> from histo.sample_data import demo_image_path, demo_labels_path
>>> results = tempfile.TemporaryDirectory()
>>> _ = measure_file(demo_image_path(), demo_labels_path(), results.name)
>>> build_report(results.name).relative_to(results.name)
PosixPath('report.html')
>>> results.cleanup()
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from histo import __version__
from histo.errors import HistoInputError
from histo.io.atomic import atomic_write_text
from histo.report import plots
from histo.results.folder import check_root_file
from histo.results.tables import read_fiber_table
from histo.review.rescore import reviewed_result
from histo.review.state import load_review
from histo.score.classes import fiber_class

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
#: Figures left out of the cohort table (already a column of their own).
COHORT_SKIP = ("fibers counted",)
TEMPLATE = "report.html"


@dataclass
class SlideEntry:
    """Everything the report shows about one slide (failed slides carry only ``error``)."""

    slide_id: str
    path: str
    status: str
    error: str = ""
    result_dir: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    fibers: pd.DataFrame | None = None
    review: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "error" and bool(self.summary)


# --------------------------------------------------------------------------- loading
def load_cohort(results_dir: str | Path) -> pd.DataFrame:
    """The slides of a results folder: ``cohort.csv``, or every sub-folder with a summary.

    Folders written by ``histo measure`` (no ``cohort.csv``) are found by scanning.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise HistoInputError("no such results folder; pass the -o folder of histo score",
                              path=results_dir)
    csv = results_dir / "cohort.csv"
    listed = None
    if csv.is_file():
        try:
            listed = pd.read_csv(csv, dtype={"slide_id": str, "error": str}, keep_default_na=True)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise HistoInputError(f"cannot read the cohort table ({err}); rerun histo score",
                                  path=csv) from err
        if "slide_id" not in listed.columns:
            raise HistoInputError("is not a histo cohort table (no slide_id column); rerun histo "
                                  "score, or move it away to report every slide folder", path=csv)
    known = set() if listed is None else set(listed["slide_id"].astype(str))
    rows = [{"slide_id": d.name, "path": "", "status": "scored", "error": ""}
            for d in sorted(results_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and d.name not in known
            and (d / "summary.json").is_file()]
    if listed is not None:  # slide folders added since (histo measure) are reported too
        return pd.concat([listed, pd.DataFrame(rows)], ignore_index=True) if rows else listed
    if not rows:
        raise HistoInputError("no cohort.csv and no slide result folders here; pass the -o "
                              "folder of histo score or histo measure", path=results_dir)
    return pd.DataFrame(rows)


def _read_fibers(result_dir: Path) -> pd.DataFrame:
    return read_fiber_table(result_dir)


def load_slide(results_dir: Path, row: dict[str, Any]) -> SlideEntry:
    """One slide's results with its saved review applied (figures recomputed)."""
    entry = SlideEntry(slide_id=_text(row.get("slide_id")), path=_text(row.get("path")),
                       status=_text(row.get("status")) or "scored", error=_text(row.get("error")))
    if entry.status == "error":
        return entry
    if entry.slide_id in ("", ".", "..") or Path(entry.slide_id).name != entry.slide_id:
        entry.status = "error"
        entry.error = f"{entry.slide_id!r} in cohort.csv is not a slide folder name; rerun histo score"
        return entry
    entry.result_dir = results_dir / entry.slide_id
    try:
        entry.summary = json.loads((entry.result_dir / "summary.json").read_text())
        entry.fibers = _read_fibers(entry.result_dir)
    except (OSError, ValueError) as err:
        entry.status, entry.error = "error", f"result files missing or damaged ({err}); rerun"
        return entry
    problem = _summary_problem(entry.summary)
    if problem:
        entry.status, entry.summary, entry.fibers = "error", {}, None
        entry.error = (f"damaged summary.json ({problem}); rerun histo score for this slide "
                       "(with --force)")
        return entry
    entry.path = entry.path or str(entry.summary.get("slide", {}).get("path") or "")
    _apply_saved_review(entry)
    return entry


#: Keys of summary.json the report reads, with the JSON type each must have when present.
_SUMMARY_TYPES = {"slide": dict, "qc": dict, "settings": dict, "statistics": dict,
                  "evidence": dict, "warnings": list, "segmentation": dict, "fiber_types": dict,
                  "nuclei": dict, "grouping": dict, "model": dict, "software": dict}


def _summary_problem(summary: Any) -> str:
    """What is wrong with a (tampered) summary.json's structure, "" when nothing."""
    if not isinstance(summary, dict):
        return f"a JSON object was expected, got {type(summary).__name__}"
    for key, kind in _SUMMARY_TYPES.items():
        value = summary.get(key)
        if value is not None and not isinstance(value, kind):
            return f"{key!r} should be {'an object' if kind is dict else 'a list'}, got {type(value).__name__}"
    n = summary.get("n_fibers")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, float))):
        return f"'n_fibers' should be a number, got {n!r}"[:120]
    figures = (summary.get("evidence") or {}).get("figures")
    if figures is not None and (not isinstance(figures, list)
                                or not all(isinstance(f, dict) for f in figures)):
        return "'evidence.figures' should be a list of objects"
    return ""


def _shown(entry: SlideEntry, view: Callable[[SlideEntry], Any]) -> Any:
    """``view(entry)``; a slide whose files cannot be shown (tampered) becomes an error row."""
    try:
        return view(entry)
    except Exception as err:  # noqa: BLE001 - one damaged slide must not stop the report
        log.warning("%s: cannot show this slide: %s", entry.result_dir, err)
        entry.status, entry.summary, entry.fibers = "error", {}, None
        entry.error = (f"damaged result files ({type(err).__name__}: {err}); rerun histo score "
                       "for this slide (with --force)")
        return None


def _note_rereview(entry: SlideEntry, review) -> None:
    """A note for flags a rescore could not carry over to the new labels (never dropped silently)."""
    lost = [x for x in review.needs_rereview if isinstance(x, dict)]
    if lost:
        shown = ", ".join(f"{x.get('previous_label')} ({x.get('flag')})" for x in lost[:10])
        entry.notes.append(f"{len(lost)} review flag(s) need re-review: the labels changed when the "
                           f"slide was scored again (previous fibers {shown}"
                           f"{', ...' if len(lost) > 10 else ''})")


def _apply_saved_review(entry: SlideEntry) -> None:
    try:
        review = load_review(entry.result_dir)
        _note_rereview(entry, review)
        if review.is_empty:
            return
        entry.fibers, entry.summary, notes = reviewed_result(entry.result_dir, entry.summary,
                                                             entry.fibers, review)
    except HistoInputError as err:
        entry.notes.append(f"saved review not applied: {err}")
        return
    except Exception as err:  # noqa: BLE001 - a tampered review file must not stop the report
        log.warning("%s: saved review not applied: %s", entry.result_dir, err)
        entry.notes.append(f"saved review not applied: damaged review files ({type(err).__name__}: "
                           f"{err}); fix them or delete review.json")
        return
    entry.review = review
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in review.counts().items() if n)
    edited = "labels edited" if review.edited_labels else ""
    when = f" {review.saved_at[:16].replace('T', ' ')}" if review.saved_at else ""
    entry.notes += [f"reviewed{when}: " + ", ".join(x for x in (counts, edited) if x), *notes]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


# --------------------------------------------------------------------------- building
def build_report(results_dir: str | Path, *, cohort: pd.DataFrame | None = None,
                 out_path: str | Path | None = None) -> Path:
    """Write ``report.html`` for a results folder and return its path.

    Parameters
    ----------
    results_dir : path
        Folder written by ``histo score`` (or ``histo measure``).
    cohort : DataFrame, optional
        The cohort table; read from ``cohort.csv`` (or by scanning) when omitted.
    out_path : path, optional
        Where to write; ``results_dir/report.html`` by default. Written atomically.
    """
    results_dir = Path(results_dir)
    cohort = load_cohort(results_dir) if cohort is None else cohort
    entries = [load_slide(results_dir, row) for row in cohort.to_dict("records")]
    html = render_report(entries, results_dir=results_dir)
    out = check_root_file(Path(out_path) if out_path is not None else results_dir / REPORT_FILE)
    atomic_write_text(out, html)
    log.info("report written to %s", out)
    return out


def render_report(entries: list[SlideEntry], *, results_dir: Path) -> str:
    """The report page for loaded slides (see :func:`load_slide`)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("histo.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["num"] = format_number
    env.filters["unit"] = pretty_unit
    for e in entries:
        if e.ok:
            _shown(e, lambda x: _cohort_row(x, _figure_names([x])))
    views = [(e, _shown(e, _slide_view)) for e in entries if e.ok]
    good = [e for e in entries if e.ok]
    figure_names = _figure_names(good)
    context = {
        "title": f"histo cohort report: {results_dir.resolve().name}",
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": __version__,
        "results_dir": str(results_dir.resolve()),
        "n_slides": len(entries),
        "n_ok": len(good),
        "failures": [e for e in entries if not e.ok],
        "figure_names": figure_names,
        "rows": [_cohort_row(e, figure_names) for e in entries],
        "slides": [v for e, v in views if e.ok],
        "settings": _settings_view(good),
        "cohort_plot": _cohort_plot(good),
    }
    return env.get_template(TEMPLATE).render(**context)


def pretty_unit(unit: str) -> str:
    """Units as people write them.

    Examples
    --------
    >>> pretty_unit("um"), pretty_unit("per mm2"), pretty_unit("um2")
    ('µm', 'per mm²', 'µm²')
    """
    unit = re.sub(r"\bum", "µm", str(unit))
    return re.sub(r"([µm]m)2\b", r"\1²", unit)


def format_number(value: Any, digits: int = 3) -> str:
    """A figure for people: integers as is, others to ``digits`` significant digits.

    Examples
    --------
    >>> format_number(1234.5678), format_number(0.012345), format_number(None)
    ('1235', '0.0123', '–')
    """
    if value is None or isinstance(value, str):
        return "–" if value in (None, "") else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    if abs(v) >= 10 ** digits:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _figures(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return list((summary.get("evidence") or {}).get("figures") or [])


def _figure_names(entries: list[SlideEntry]) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for e in entries:
        for f in _figures(e.summary):
            if str(f.get("name")) not in COHORT_SKIP:
                seen.setdefault(str(f.get("name")), str(f.get("unit") or ""))
    return [{"name": n, "unit": u} for n, u in seen.items()]


def _range_text(rng: Any) -> str:
    if not rng:
        return ""
    lo, hi = (list(rng) + [None, None])[:2]
    if lo is None:
        return f"≤ {format_number(hi)}"
    if hi is None:
        return f"≥ {format_number(lo)}"
    return f"{format_number(lo)}–{format_number(hi)}"


def _figure_range_text(f: dict[str, Any]) -> str:
    """The normal range of a figure with its reference and note, e.g. "≤ 150 (adult male,
    Dubowitz; too few to test: 35 fibers < 200)"."""
    text = _range_text(f.get("normal_range"))
    extra = "; ".join(str(x) for x in (f.get("reference") if text else None, f.get("note")) if x)
    return f"{text} ({extra})" if text and extra else (text or extra)


def _cohort_row(e: SlideEntry, figure_names: list[dict[str, str]]) -> dict[str, Any]:
    by_name = {str(f.get("name")): f for f in _figures(e.summary)}
    cells = []
    for fn in figure_names:
        f = by_name.get(fn["name"])
        cells.append({"value": format_number(f.get("value")) if f else "–",
                      "outside": bool(f and f.get("outside")),
                      "range": _range_text(f.get("normal_range")) if f else ""})
    counted = None
    if e.fibers is not None and "counted" in e.fibers:
        counted = int(e.fibers["counted"].fillna(False).astype(bool).sum())
    slide = e.summary.get("slide", {}) if e.summary else {}
    qc = _qc_view(e.summary)
    return {"id": e.slide_id, "ok": e.ok, "status": e.status, "error": e.error,
            "stain": slide.get("stain") or "", "n_fibers": e.summary.get("n_fibers", ""),
            "counted": counted, "cells": cells, "reviewed": e.review is not None,
            "n_outside": sum(c["outside"] for c in cells), "qc": qc}


def _qc_view(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The slide's segmentation QC for the page: status and reasons (None before QC existed)."""
    qc = (summary or {}).get("qc")
    if not isinstance(qc, dict) or qc.get("status") not in ("ok", "warn", "fail"):
        return None
    reasons = [str(r) for r in qc.get("reasons") or []]
    return {"status": qc["status"], "reasons": reasons, "title": "; ".join(reasons)}


def _unit(fibers: pd.DataFrame) -> str:
    return "um" if "min_feret_um" in fibers else "px"


def _slide_view(e: SlideEntry) -> dict[str, Any]:
    fibers = e.fibers if e.fibers is not None else pd.DataFrame()
    unit = _unit(fibers)
    settings = e.summary.get("settings") or {}
    normal = settings.get("normal_range_in_force_um")
    counted = (fibers["counted"].fillna(False).astype(bool) if "counted" in fibers
               else ~fibers.get("is_edge", pd.Series(False, index=fibers.index)).astype(bool))
    cf = fibers[counted.to_numpy()]
    col = f"min_feret_{unit}"
    ref_label = (settings.get("reference_in_force") or {}).get("label")
    hist = plots.min_feret_histogram(cf.get(col, pd.Series(dtype=float)), unit=unit,
                                     normal_range=normal, is_sad=cf.get("is_sad"),
                                     is_small=cf.get("is_small"), reference=ref_label)
    types = e.summary.get("fiber_types") or {}
    hist_types = None
    if types.get("histogram_edges") and isinstance(types.get("per_type"), dict):
        hist_types = plots.min_feret_histogram_by_type(
            types["histogram_edges"],
            {t: v.get("histogram") or [] for t, v in types["per_type"].items()},
            unit=types.get("histogram_unit", unit), normal_range=normal, reference=ref_label)
    area = fibers.get("area_um2" if unit == "um" else "area_px", pd.Series(dtype=float))
    scatter = plots.area_angularity_scatter(area, fibers.get("angularity", area * np.nan),
                                            classes=fiber_class(fibers), unit=unit,
                                            angular_min=settings.get("angular_min"))
    overlay = None
    if e.result_dir is not None and (e.result_dir / "overlay.png").is_file():
        overlay = plots.thumbnail_data_uri(e.result_dir / "overlay.png")
    slide = e.summary.get("slide", {})
    evidence = e.summary.get("evidence") or {}
    return {
        "id": e.slide_id, "path": e.path, "status": e.status, "notes": e.notes,
        "stain": slide.get("stain"), "channel": slide.get("channel"),
        "pixel_size": slide.get("pixel_size_um"),
        "pixel_size_source": slide.get("pixel_size_source"),
        "shape": slide.get("shape"), "n_fibers": e.summary.get("n_fibers"),
        "n_counted": int(counted.sum()), "model": e.summary.get("model"),
        "figures": [{**f, "range": _figure_range_text(f),
                     "value_text": format_number(f.get("value"))} for f in _figures(e.summary)],
        "evidence_text": evidence.get("text", ""),
        "qc": _qc_view(e.summary),
        "sections": _sections(e.summary),
        "warnings": list(e.summary.get("warnings") or []),
        "hist": hist, "hist_types": hist_types, "scatter": scatter, "overlay": overlay,
        "overlay_href": f"{e.slide_id}/overlay.png" if overlay else None,
    }


#: What each summary part shows a reader (dotted keys into the part), in this order.
SECTION_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "grouping": (("on", "groups made of"), ("n_groups", "groups"),
                 ("n_fibers_in_groups", "fibers in groups"), ("largest_group", "largest group"),
                 ("group_sizes", "group sizes"), ("join_count.z", "join count z"),
                 ("join_count.p_value", "join count p"), ("beyond_chance", "beyond chance"),
                 ("note", "note")),
    "fiber_types": (("method", "method"), ("reason", "why not"), ("types", "types"),
                    ("n_typed", "fibers typed"), ("n_enclosed", "enclosed fibers"),
                    ("expected_enclosed", "enclosed expected by chance"),
                    ("grouping.join_count.p_value", "type grouping p"),
                    ("grouping.beyond_chance", "type grouping beyond chance")),
    "nuclei": (("method", "method"), ("reason", "why not"),
               ("n_nuclei_detected", "nuclei detected"),
               ("n_centrally_nucleated", "centrally nucleated fibers"),
               ("pct_centrally_nucleated", "centrally nucleated (%)"),
               ("central_ratio", "central ratio")),
    "collagen": (("endomysial_fraction", "endomysial collagen (fraction of tissue)"),
                 ("perimysial_fraction", "perimysial collagen (fraction of tissue)"),
                 ("collagen_fraction", "all collagen (fraction of tissue)"),
                 ("tissue_area_mm2", "tissue area (mm²)"), ("septum_min_basis", "septum from")),
}
SECTION_TITLES = {"grouping": "Grouped atrophy", "fiber_types": "Fiber types", "nuclei": "Nuclei",
                  "collagen": "Collagen (picrosirius red)"}


def _dig(part: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(part, dict) or key not in part:
            return None
        part = part[key]
    return part


def _sections(summary: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The grouping, fiber type and nuclei parts as short (label, value) tables."""
    out = []
    for key, wanted in SECTION_KEYS.items():
        part = summary.get(key) or {}
        rows = []
        for dotted, label in wanted:
            value = _dig(part, dotted)
            if value is None or value == [] or (dotted == "method" and not value):
                continue
            if isinstance(value, (list, tuple)):
                value = ", ".join(format_number(v) for v in value[:20]) + (
                    " …" if len(value) > 20 else "")
            rows.append((label, format_number(value)))
        per_type = part.get("per_type") if isinstance(part.get("per_type"), dict) else {}
        for name, info in per_type.items():
            if isinstance(info, dict) and info.get("fraction") is not None:
                sizes = info.get("sizes") or {}
                dub = ", ".join(f"{abbr} {format_number(sizes[k])}" for k, abbr in (
                    ("atrophy_factor", "AF"), ("hypertrophy_factor", "HF"),
                    ("variability_coefficient", "VC")) if sizes.get(k) is not None)
                more = "".join(f"; {t}" for t in (
                    dub, f"{info['n_sad']} SAD" if info.get("n_sad") else "",
                    (f"{format_number(info['pct_centrally_nucleated'])}% centrally nucleated"
                     if info.get("pct_centrally_nucleated") is not None else "")) if t)
                rows.append((f"type {name}", f"{info.get('n')} fibers "
                                             f"({100 * info['fraction']:.0f}%){more}"))
        pred = part.get("predominance") if isinstance(part.get("predominance"), dict) else {}
        if pred.get("predominance"):
            rows.append(("predominance", f"{pred['predominance']} ({pred.get('criterion')})"))
        if rows:
            out.append((SECTION_TITLES[key], rows))
    return out


def _settings_view(entries: list[SlideEntry]) -> list[tuple[str, str]]:
    """Main settings of the run (from the first slide; they are shared by a batch)."""
    if not entries:
        return []
    s = entries[0].summary.get("settings") or {}
    out = []
    refs = {str(((e.summary.get("settings") or {}).get("reference_in_force") or {}).get(
        "range_text")) for e in entries if e.summary}
    if len(refs) > 1:
        out.append(("reference", "per slide (cases file): see each slide's evidence"))
    elif (s.get("reference_in_force") or {}).get("range_text"):
        out.append(("reference", s["reference_in_force"]["range_text"]))
    elif s.get("normal_range_in_force_um"):
        lo, hi = s["normal_range_in_force_um"]
        out.append(("normal min Feret", f"{format_number(lo)}–{format_number(hi)} µm"))
    for key, label in (("small_rule", "small rule"), ("angular_min", "angular from"),
                       ("dark_min_z", "dark from z"), ("group_on", "groups of"),
                       ("permutations", "permutations")):
        if key in s:
            out.append((label, format_number(s[key])))
    return out


def _cohort_plot(entries: list[SlideEntry]) -> str | None:
    if len(entries) < 2:
        return None
    units = {_unit(e.fibers) for e in entries if e.fibers is not None}
    unit = "um" if units == {"um"} else "px"
    per_slide = {}
    for e in entries:
        f = e.fibers
        if f is None or f"min_feret_{unit}" not in f:
            continue
        keep = f["counted"].fillna(False).astype(bool) if "counted" in f else slice(None)
        per_slide[e.slide_id] = f.loc[keep, f"min_feret_{unit}"].to_numpy()
    normal = (entries[0].summary.get("settings") or {}).get("normal_range_in_force_um")
    return plots.cohort_min_feret_boxplot(per_slide, unit=unit, normal_range=normal)
