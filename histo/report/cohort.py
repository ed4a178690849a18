"""The cohort table (``cohort.csv``): one row per slide, the same columns for every cohort.

:data:`COHORT_COLUMNS` lists the columns every ``cohort.csv`` starts with, with their dtypes
(nullable: a failed slide's row keeps integer counts integer, with empty cells);
:func:`slide_figures` takes them from a slide's ``summary.json`` (nested values included:
min Feret mean / median, the small / angular / dark / SAD and centrally nucleated
percentages, the grouping test); typed slides add ``pct_type_<T>``,
``atrophy_factor_type_<T>`` and ``hypertrophy_factor_type_<T>`` per fiber type, and any
other scalar statistic of the summaries follows. :func:`cohort_frame` makes the table.

Examples
--------
>>> rows = [{"slide_id": "a", "status": "scored", "n_fibers": 3, "n_counted": 2},
...         {"slide_id": "b", "status": "error", "error": "unreadable"}]
>>> t = cohort_frame(rows)
>>> t["n_fibers"].tolist(), str(t["n_counted"].dtype)
([3, <NA>], 'Int64')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: (column, pandas dtype, description) of every cohort.csv, in order.
COHORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("slide_id", "string", "slide id (its result folder)"),
    ("path", "string", "input file"),
    ("status", "string", "scored, unchanged (kept from an earlier run) or error"),
    ("error", "string", "why the slide failed"),
    ("note", "string", "what else to know (a saved review, an earlier run)"),
    ("qc_status", "string", "segmentation QC: ok, warn or fail; empty for a failed slide"),
    ("qc_reasons", "string", "the QC's reasons, joined by '; '"),
    ("n_fibers", "Int64", "objects in the fiber table"),
    ("stain", "string", "stain the slide was scored as"),
    ("pixel_size_um", "float64", "micrometres per pixel (empty: unknown)"),
    ("seconds", "float64", "time spent on the slide in this run"),
    ("n_counted", "Int64", "fibers entering the statistics (not edge, excluded or rejected)"),
    ("n_edge", "Int64", "fibers touching the image or tissue edge"),
    ("n_excluded", "Int64", "fibers excluded (outside the analysed region, a review)"),
    ("n_rejected", "Int64", "objects the fiber score rejected"),
    ("size_unit", "string", "um, or px when the pixel size is unknown"),
    ("mean_min_feret_um", "float64", "mean min Feret diameter of the counted fibers (µm)"),
    ("median_min_feret_um", "float64", "median min Feret diameter of the counted fibers (µm)"),
    ("sd_min_feret_um", "float64", "standard deviation of the min Feret diameter (µm)"),
    ("mean_min_feret_px", "float64", "mean min Feret diameter (px)"),
    ("median_min_feret_px", "float64", "median min Feret diameter (px)"),
    ("n_small", "Int64", "small counted fibers"),
    ("pct_small", "float64", "small fibers, % of counted"),
    ("n_angular", "Int64", "angular counted fibers"),
    ("pct_angular", "float64", "angular fibers, % of counted"),
    ("n_dark", "Int64", "dark counted fibers (0 on stains where darkness is not atrophy)"),
    ("pct_dark", "float64", "dark fibers, % of counted"),
    ("n_sad", "Int64", "small, angular and dark fibers"),
    ("pct_sad", "float64", "SAD fibers, % of counted"),
    ("n_centrally_nucleated", "Int64", "counted fibers with a central nucleus (empty: nuclei not counted)"),
    ("pct_centrally_nucleated", "float64", "centrally nucleated fibers, % of counted"),
    ("n_atrophic", "Int64", "counted fibers below the normal range"),
    ("n_hypertrophic", "Int64", "counted fibers above the normal range"),
    ("atrophy_factor", "float64", "Dubowitz atrophy factor (normal < 150)"),
    ("hypertrophy_factor", "float64", "Dubowitz hypertrophy factor (normal < 150)"),
    ("variability_coefficient", "float64", "Dubowitz variability coefficient (normal < 250)"),
    ("density_per_mm2", "float64", "counted fibers per mm² of fiber area"),
    ("too_few", "boolean", "fewer counted fibers than the Dubowitz figures need"),
    ("n_small_groups", "Int64", "groups of touching small fibers"),
    ("small_grouping_p", "float64", "permutation p-value of the small-fiber grouping test"),
    ("reference", "string", "reference range the sizes were judged against"),
    ("fiber_types", "string", "fiber types found, comma separated (empty: not typed)"),
)
COHORT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in COHORT_COLUMNS)
_DTYPES = {name: dtype for name, dtype, _ in COHORT_COLUMNS}
#: Per-type columns (one set per fiber type found): name pattern, dtype.
TYPE_COLUMNS = (("pct_type_{}", "float64"), ("atrophy_factor_type_{}", "float64"),
                ("hypertrophy_factor_type_{}", "float64"))


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _pct(fraction: Any) -> float | None:
    return None if fraction is None else 100.0 * float(fraction)


def _reference_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("name", "tag", "id"):
            if isinstance(value.get(key), str):  # histo.score.reference: "assumed" when none given
                return value[key] + (" (assumed)" if value.get("assumed") else "")
    return None


def slide_figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A slide's cohort figures from its ``summary.json`` (nested values flattened by name).

    Examples
    --------
    >>> s = {"statistics": {"n_counted": 4, "min_feret_um": {"mean": 50.0, "median": 48.0},
    ...      "classes": {"small": {"n": 1, "fraction": 0.25}}}}
    >>> f = slide_figures(s)
    >>> f["median_min_feret_um"], f["n_small"], f["pct_small"], f["pct_sad"]
    (48.0, 1, 25.0, None)
    """
    stats = summary.get("statistics") or {}
    out: dict[str, Any] = {}
    for key in ("n_counted", "n_edge", "n_excluded", "n_rejected", "size_unit", "n_atrophic", "n_hypertrophic",
                "atrophy_factor", "hypertrophy_factor", "variability_coefficient", "density_per_mm2",
                "too_few"):
        out[key] = stats.get(key)
    for unit in ("um", "px"):
        sizes = stats.get(f"min_feret_{unit}")
        out[f"mean_min_feret_{unit}"] = _get(sizes, "mean")
        out[f"median_min_feret_{unit}"] = _get(sizes, "median")
    out["sd_min_feret_um"] = _get(stats, "min_feret_um", "sd")
    for name in ("small", "angular", "dark", "sad"):
        out[f"n_{name}"] = _get(stats, "classes", name, "n")
        out[f"pct_{name}"] = _pct(_get(stats, "classes", name, "fraction"))
    nuclei = summary.get("nuclei") or {}
    if nuclei.get("method"):
        out["n_centrally_nucleated"] = nuclei.get("n_centrally_nucleated")
        out["pct_centrally_nucleated"] = nuclei.get("pct_centrally_nucleated")
    grouping = summary.get("grouping") or {}
    out["n_small_groups"] = grouping.get("n_groups")
    out["small_grouping_p"] = _get(grouping, "join_count", "p_value")
    out["reference"] = _reference_name(stats.get("reference"))
    types = summary.get("fiber_types") or {}
    per_type = types.get("per_type") if isinstance(types.get("per_type"), Mapping) else {}
    if types.get("types") and per_type:
        out["fiber_types"] = ", ".join(str(t) for t in per_type)
        for name, entry in per_type.items():
            out[f"pct_type_{name}"] = _pct(_get(entry, "fraction"))
            out[f"atrophy_factor_type_{name}"] = _get(entry, "sizes", "atrophy_factor")
            out[f"hypertrophy_factor_type_{name}"] = _get(entry, "sizes", "hypertrophy_factor")
    collagen = summary.get("collagen") or {}  # PSR slides (histo.measure.collagen)
    for key, column in (("endomysial_fraction", "endomysial_collagen_fraction"),
                        ("perimysial_fraction", "perimysial_collagen_fraction"),
                        ("collagen_fraction", "collagen_fraction")):
        if collagen.get(key) is not None:
            out[column] = collagen[key]
    for key, value in stats.items():  # any other scalar statistic, as before
        # None stands for a nested figure missing here (min_feret_um without a pixel size): an empty
        # column named like the nested value would only mislead
        if key not in out and isinstance(value, (int, float, str, bool)):
            out[key] = value
    return out


def _typed(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "float64":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if dtype == "Int64":
        return pd.to_numeric(series, errors="coerce").round().astype("Int64")
    if dtype == "boolean":
        return series.map(lambda v: pd.NA if v is None or v != v else bool(v)).astype("boolean")
    return series.map(lambda v: pd.NA if v is None or v != v else str(v)).astype("string")


def cohort_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The cohort table: :data:`COHORT_COLUMNS` first with their dtypes, then the per-type
    columns (types in first-seen order), then other statistics in first-seen order."""
    rows = [dict(r) for r in rows]
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in _DTYPES]
    typed = [c for c in extra if any(c.startswith(p.format("")) for p, _ in TYPE_COLUMNS)]
    other = [c for c in extra if c not in typed]
    table = table.reindex(columns=[*COHORT_COLUMN_NAMES, *typed, *other])
    for name, dtype in _DTYPES.items():
        table[name] = _typed(table[name], dtype)
    for name in typed:
        table[name] = _typed(table[name], "float64")
    for name in other:  # integer counts stay integers when a failed row leaves them empty
        values = [r[name] for r in rows if r.get(name) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[name] = _typed(table[name], "Int64")
    return table
