"""The per-fiber table's contract: its column names, their unit suffixes, the column registry.

The table :func:`histo.measure.morphometry.measure_fibers` builds and every later stage reads
(scoring, evaluation, review, export). A size carries its unit in its name: ``_um`` /
``_um2`` when the pixel size is known, ``_px`` otherwise; :func:`size_column` finds
whichever a table has, so readers need not know how it was measured.

The **exported** table (``fibers.parquet`` / ``fibers.csv`` of every slide folder) has one
schema whatever the slide: the columns of :data:`COLUMNS`, in that order, with their nullable
dtypes (``Int64``, ``boolean``, ``string``, ``float64``), ``slide_id`` first, both the pixel
and the micrometre form of every size (``_um`` empty when the pixel size is unknown), and
a value missing where a stage did not run (no nuclei counted, no fiber types, ...).
:func:`to_export` builds it from the in-memory table and :func:`from_export` gives the
in-memory table back. ``python -m histo.measure.fiber_table`` prints the column reference
(``docs/columns.md``).

To add a column: append one :class:`Column` to :data:`COLUMNS` (name, dtype, unit,
description, the stage that fills it) and regenerate ``docs/columns.md``; a column that is not
registered is still written (after the registered ones) but raises
:class:`UnregisteredColumnWarning`, which the test suite turns into an error.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from histo.errors import HistoInputError

#: Measurement names whose column carries a unit suffix, and the kind of unit.
_SIZE_KINDS = {
    "centroid_y": "length", "centroid_x": "length", "area": "area", "perimeter": "length",
    "min_feret": "length", "max_feret": "length", "equivalent_diameter": "length",
}


def table_columns(pixel_size_known: bool) -> list[str]:
    """Column names of the per-fiber table, in order.

    Examples
    --------
    >>> table_columns(False)[7:9]
    ['area_px', 'perimeter_px']
    >>> "centroid_y_um" in table_columns(True)
    True
    """
    length, area = ("um", "um2") if pixel_size_known else ("px", "px")
    cols = ["label", "centroid_y_px", "centroid_x_px"]
    if pixel_size_known:
        cols += ["centroid_y_um", "centroid_x_um"]
    cols += ["bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px", f"area_{area}",
             f"perimeter_{length}", f"min_feret_{length}", f"max_feret_{length}",
             f"equivalent_diameter_{length}", "aspect_ratio", "circularity", "solidity",
             "angularity", "mean_od", "darkness", "darkness_ref", "basophilia", "n_neighbors",
             "is_edge"]
    return cols


def size_column(df: pd.DataFrame, name: str) -> str:
    """The column holding measurement ``name`` in ``df``: micrometres when present, else pixels.

    Parameters
    ----------
    df : DataFrame
        A per-fiber table.
    name : str
        ``"area"``, ``"perimeter"``, ``"min_feret"``, ``"max_feret"``,
        ``"equivalent_diameter"``, ``"centroid_y"`` or ``"centroid_x"``.

    Examples
    --------
    >>> size_column(pd.DataFrame(columns=["label", "min_feret_um"]), "min_feret")
    'min_feret_um'
    >>> size_column(pd.DataFrame(columns=["label", "area_px"]), "area")
    'area_px'
    """
    kind = _SIZE_KINDS.get(name)
    if kind is None:
        raise HistoInputError(
            f"{name!r} is not a sized measurement; choose one of {', '.join(_SIZE_KINDS)}")
    um, px = (f"{name}_um2" if kind == "area" else f"{name}_um", f"{name}_px")
    if um in df.columns and (px not in df.columns or not len(df) or df[um].notna().any()):
        return um  # an exported table has both; its _um column is empty without a pixel size
    if px in df.columns:
        return px
    raise HistoInputError(
        f"the fiber table has no {name} column ({name}_um/_px); build it with "
        "histo.measure.morphometry.measure_fibers")


def empty_table(cols: list[str]) -> pd.DataFrame:
    """A table with no row and the columns ``cols``, each with the dtype it has when full.

    Examples
    --------
    >>> empty_table(table_columns(False)).dtypes[["label", "area_px", "is_edge"]].tolist()
    [dtype('int64'), dtype('float64'), dtype('bool')]
    """
    dtypes = {c: np.float64 for c in cols}
    for c in ("label", "bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px", "n_neighbors"):
        dtypes[c] = np.int64
    dtypes["is_edge"] = bool
    return pd.DataFrame({c: pd.Series([], dtype=dtypes[c]) for c in cols})


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Column:
    """One column of the exported per-fiber table.

    Attributes
    ----------
    name : str
        Column name; a size carries its unit in its suffix (``_px``, ``_um``, ``_um2``).
    dtype : str
        pandas dtype of the export: ``"Int64"``, ``"boolean"``, ``"string"`` (nullable) or
        ``"float64"`` (missing = NaN, written as a Parquet null).
    unit : str
        Unit of the values (``"px"``, ``"px2"``, ``"um"``, ``"um2"``, ``"1"`` for a ratio or a
        count, ``""`` for a label or text); stored in the Parquet field metadata.
    description : str
        What the value is, for ``docs/columns.md`` and the Parquet field metadata.
    source : str
        The module (stage) that fills it.
    """

    name: str
    dtype: str
    unit: str
    description: str
    source: str


_M = "histo.measure.morphometry"
_S = "histo.score.scoring"

#: The exported per-fiber table, in column order. Append new columns here (see the module docstring).
COLUMNS: tuple[Column, ...] = (
    Column("slide_id", "string", "", "slide the fiber belongs to (its result folder name)", "histo.results.tables"),
    Column("label", "Int64", "", "fiber id: its value in labels.tif", _M),
    Column("centroid_y_px", "float64", "px", "centroid row, in the labels' pixel grid", _M),
    Column("centroid_x_px", "float64", "px", "centroid column, in the labels' pixel grid", _M),
    Column("centroid_y_um", "float64", "um", "centroid row; empty when the pixel size is unknown", _M),
    Column("centroid_x_um", "float64", "um", "centroid column; empty when the pixel size is unknown", _M),
    Column("bbox_y0_px", "Int64", "px", "bounding box: first row", _M),
    Column("bbox_x0_px", "Int64", "px", "bounding box: first column", _M),
    Column("bbox_y1_px", "Int64", "px", "bounding box: one past the last row", _M),
    Column("bbox_x1_px", "Int64", "px", "bounding box: one past the last column", _M),
    Column("area_px", "float64", "px2", "area in pixels", _M),
    Column("area_um2", "float64", "um2", "area; empty when the pixel size is unknown", _M),
    Column("perimeter_px", "float64", "px", "outline length", _M),
    Column("perimeter_um", "float64", "um", "outline length; empty when the pixel size is unknown", _M),
    Column("min_feret_px", "float64", "px", "minimum Feret (caliper) diameter", _M),
    Column("min_feret_um", "float64", "um", "minimum Feret diameter, the size measure of the "
           "scoring; empty when the pixel size is unknown", _M),
    Column("max_feret_px", "float64", "px", "maximum Feret diameter", _M),
    Column("max_feret_um", "float64", "um", "maximum Feret diameter; empty when the pixel size is unknown", _M),
    Column("equivalent_diameter_px", "float64", "px", "diameter of the disc of the same area", _M),
    Column("equivalent_diameter_um", "float64", "um", "diameter of the disc of the same area; empty "
           "when the pixel size is unknown", _M),
    Column("aspect_ratio", "float64", "1", "max Feret / min Feret", _M),
    Column("circularity", "float64", "1", "4 pi area / perimeter^2 (1 for a disc)", _M),
    Column("solidity", "float64", "1", "area / convex hull area", _M),
    Column("angularity", "float64", "1", "how angular the outline is (docs/angularity.md)", "histo.measure.shape"),
    Column("mean_od", "float64", "1", "mean optical density (brightfield) or mean intensity "
           "(fluorescence) of the fiber's stain signal; empty without an image", _M),
    Column("darkness", "float64", "1", "how much darker than its reference the fiber is (z): the "
           "darkest fiber-type level on NADH/SDH/esterase, the 12 nearest fibers on H&E, all inner "
           "fibers elsewhere (docs/scoring.md, Darkness)", "histo.measure.darkness"),
    Column("darkness_ref", "float64", "1", "the mean_od the fiber's darkness is measured against "
           "(type level times the stain gradient at the fiber, or the local median)",
           "histo.measure.darkness"),
    Column("basophilia", "float64", "1", "H&E: cytoplasmic hematoxylin OD / (hematoxylin + eosin "
           "OD), nuclei masked; empty on other stains", _M),
    Column("n_neighbors", "Int64", "1", "fibers within the adjacency gap", "histo.measure.adjacency"),
    Column("is_edge", "boolean", "", "touches the image border or the tissue edge (not counted)", _M),
    Column("excluded", "boolean", "", "left out of the counts (outside the analysed region); "
           "empty when nothing was excluded", "histo.batch.pipeline"),
    Column("fiber_score", "float64", "1", "segmentation model's per-object fiber score; empty for "
           "masks not made by the model", "histo.segment.evidence"),
    Column("rejected", "boolean", "", "the fiber score says not a fiber (listed, not counted); "
           "empty for masks not made by the model", "histo.segment.evidence"),
    Column("counted", "boolean", "", "enters the statistics (not edge, excluded or rejected)", _S),
    Column("is_small", "boolean", "", "counted and small (settings.small_rule)", _S),
    Column("is_angular", "boolean", "", "counted and angularity >= settings.angular_min", _S),
    Column("is_dark", "boolean", "", "counted, darkness >= settings.dark_min_z on a stain where "
           "dark means atrophy", _S),
    Column("is_sad", "boolean", "", "small, angular and dark (a reviewer's call wins)", _S),
    Column("is_atrophic", "boolean", "", "counted and min Feret below the normal range (False "
           "without a pixel size)", _S),
    Column("is_hypertrophic", "boolean", "", "counted and min Feret above the normal range (False "
           "without a pixel size)", _S),
    Column("is_regenerating", "boolean", "", "H&E: counted, basophilic beyond its neighbours and "
           "centrally nucleated (regenerating-like; never SAD); empty when not assessed", _S),
    Column("atrophy_group", "Int64", "", "id of the group of touching small fibers (0: none)", "histo.score.grouping"),
    Column("fiber_type", "string", "", "fiber type (I, IIa, ...) when typed; empty otherwise", "histo.score.fibertypes"),
    Column("n_nuclei", "Int64", "1", "nuclei inside the fiber; empty when nuclei were not counted", "histo.score.nuclei"),
    Column("n_central_nuclei", "Int64", "1", "nuclei away from the fiber's edge; empty when not counted", "histo.score.nuclei"),
    Column("is_centrally_nucleated", "boolean", "", "at least one central nucleus; empty when not counted",
           "histo.score.nuclei"),
    Column("review_flag", "string", "", "a reviewer's call on the fiber; empty when not reviewed", "histo.review.flags"),
    Column("is_sad_auto", "boolean", "", "the classifier's SAD call before the review; empty when not "
           "reviewed", _S),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}


class UnregisteredColumnWarning(UserWarning):
    """A fiber-table column that :data:`COLUMNS` does not list (it is written last, unchecked)."""


def column(name: str) -> Column:
    """The registered :class:`Column` called ``name``.

    Examples
    --------
    >>> column("min_feret_um").unit
    'um'
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a registered fiber-table column; add it to "
                       "histo.measure.fiber_table.COLUMNS") from None


def _sized() -> list[tuple[str, str, float]]:
    """(micrometre column, its pixel twin, power of the pixel size) of every sized measurement."""
    return [(f"{name}_um2" if kind == "area" else f"{name}_um", f"{name}_px", 2.0 if kind == "area" else 1.0)
            for name, kind in _SIZE_KINDS.items()]


def _as_dtype(values: pd.Series, dtype: str, name: str) -> pd.Series:
    try:
        if dtype == "float64":
            return pd.to_numeric(values, errors="raise").astype("float64")
        if dtype == "Int64":
            if values.dtype == object:
                values = pd.to_numeric(values, errors="raise")
            return values.astype("Int64")
        if dtype == "boolean":
            if values.dtype == object:
                values = values.map(lambda v: pd.NA if v is None or (isinstance(v, float) and np.isnan(v))
                                    else v)
            return values.astype("boolean")
        if dtype == "string":
            return values.astype("string")
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"fiber-table column {name!r} cannot be stored as {dtype}: {err}") from err
    raise ValueError(f"unknown registry dtype {dtype!r} of column {name!r}")


def to_export(fibers: pd.DataFrame, *, slide_id: str, pixel_size_um: float | None) -> pd.DataFrame:
    """The exported form of a per-fiber table: :data:`COLUMNS` in order, with their dtypes.

    Parameters
    ----------
    fibers : DataFrame
        The in-memory table (:func:`histo.measure.morphometry.measure_fibers` and the scoring
        columns), sizes in ``_um`` or ``_px``.
    slide_id : str
        Written into the ``slide_id`` column of every row.
    pixel_size_um : float or None
        Fills the ``_px`` form of a table measured in micrometres (value / pixel size); None
        leaves the ``_um`` columns empty for a table measured in pixels.

    Returns
    -------
    DataFrame
        Every registered column (missing ones empty), then any unregistered column (each
        raises an :class:`UnregisteredColumnWarning`).

    Examples
    --------
    >>> t = pd.DataFrame({"label": [1], "min_feret_um": [5.0], "is_edge": [False]})
    >>> e = to_export(t, slide_id="s1", pixel_size_um=0.5)
    >>> e[["slide_id", "label", "min_feret_px", "min_feret_um"]].values.tolist()
    [['s1', 1, 10.0, 5.0]]
    >>> list(e.columns) == list(COLUMN_NAMES), str(e["n_nuclei"].dtype)
    (True, 'Int64')
    """
    if "slide_id" in fibers.columns:
        fibers = fibers.drop(columns="slide_id")
    extra = [c for c in fibers.columns if c not in _BY_NAME]
    if extra:
        warnings.warn(f"fiber-table column(s) {', '.join(map(repr, extra))} are not registered; add "
                      "them to histo.measure.fiber_table.COLUMNS", UnregisteredColumnWarning, stacklevel=2)
    n = len(fibers)
    index = pd.RangeIndex(n)
    data = {}
    for col in COLUMNS:
        if col.name in fibers.columns:
            data[col.name] = _as_dtype(fibers[col.name].reset_index(drop=True), col.dtype, col.name)
        else:
            data[col.name] = pd.Series(pd.array([pd.NA] * n, dtype=col.dtype if col.dtype != "float64"
                                                else "Float64"), index=index)
            if col.dtype == "float64":
                data[col.name] = data[col.name].astype("float64")
    data["slide_id"] = pd.Series([str(slide_id)] * n, index=index, dtype="string")
    if pixel_size_um is not None:  # sizes measured in um also get their pixel form
        for um, px, power in _sized():
            if um in fibers.columns and px not in fibers.columns:
                data[px] = data[um] / float(pixel_size_um) ** power
    out = pd.DataFrame(data, index=index)
    for name in extra:
        out[name] = fibers[name].to_numpy()
    return out


def from_export(table: pd.DataFrame, *, pixel_size_known: bool | None = None) -> pd.DataFrame:
    """The in-memory per-fiber table of an exported one (the inverse of :func:`to_export`).

    Drops ``slide_id`` and the size columns of the unit the slide was not measured in, and
    gives numpy dtypes back where nothing is missing (``Int64`` -> int64, ``boolean`` -> bool,
    ``string`` -> object); a column with missing values keeps float NaN (numbers) or object
    ``None`` (flags, text), as the pipeline makes them.

    Parameters
    ----------
    table : DataFrame
        An exported table (``fibers.parquet`` / ``fibers.csv``), or an older one.
    pixel_size_known : bool, optional
        Whether an empty table was measured in micrometres (a table with rows says so itself:
        its ``_um`` sizes are set).

    Examples
    --------
    >>> t = pd.DataFrame({"label": [1], "min_feret_um": [5.0], "is_edge": [False]})
    >>> back = from_export(to_export(t, slide_id="s1", pixel_size_um=0.5))
    >>> "min_feret_px" in back, "slide_id" in back, str(back["label"].dtype)
    (False, False, 'int64')
    """
    out = table.drop(columns=[c for c in ("slide_id",) if c in table.columns])
    if len(out) or pixel_size_known is None:  # the data say which unit it was measured in
        pixel_size_known = any(um in out.columns and bool(out[um].notna().any()) for um, _, _ in _sized())
    unused = [px for _, px, _ in _sized()] if pixel_size_known else [um for um, _, _ in _sized()]
    unused = [c for c in unused if c in out.columns and c not in table_columns(pixel_size_known)]
    out = out.drop(columns=unused)
    # optional columns a stage did not fill are left out, as that stage leaves them
    optional = ("excluded", "fiber_score", "rejected", "review_flag", "is_sad_auto")
    out = out.drop(columns=[c for c in optional if c in out.columns and len(out) and out[c].isna().all()])
    for name in out.columns:
        series = out[name]
        has_na = bool(series.isna().any())
        if isinstance(series.dtype, pd.Int64Dtype) or str(series.dtype) == "Int64":
            out[name] = series.astype("float64") if has_na else series.astype("int64")
        elif str(series.dtype) == "boolean":
            out[name] = series.astype(object).where(series.notna(), None) if has_na else series.astype(bool)
        elif str(series.dtype) in ("string", "Float64"):
            out[name] = (series.astype(object).where(series.notna(), None) if str(series.dtype) == "string"
                         else series.astype("float64"))
    return out


def column_reference() -> str:
    """``docs/columns.md``: the exported per-fiber table, one row per :data:`COLUMNS` entry.

    Examples
    --------
    >>> column_reference().splitlines()[0]
    '# Per-fiber table columns (fibers.parquet, fibers.csv)'
    """
    unit_text = {"px": "px", "px2": "px²", "um": "µm", "um2": "µm²", "1": "1", "": ""}
    lines = [
        "# Per-fiber table columns (fibers.parquet, fibers.csv)",
        "",
        "<!-- generated by `python -m histo.measure.fiber_table > docs/columns.md` from",
        "     histo.measure.fiber_table.COLUMNS; do not edit by hand (tests/test_interop.py checks it) -->",
        "",
        "Every slide folder's `fibers.parquet` and `fibers.csv` have these columns, in this order and",
        "with these types, whatever the slide (brightfield or fluorescence, whole slide or not, with",
        "or without a pixel size), so a cohort's tables concatenate as they are:",
        "`polars.read_parquet(\"RESULTS/*/fibers.parquet\")`, `pyarrow.dataset`, or",
        "`histo collect RESULTS -o fibers.parquet`. A value is empty (null) where it does not apply:",
        "`_um` columns without a pixel size, nuclei where they were not counted, `fiber_type` on an",
        "untyped slide. Parquet stores each column's unit and description in its field metadata",
        "(`unit`, `description`) and the slide's pixel size in the file metadata (`histo.pixel_size_um`).",
        "",
        "Types: `Int64` integer, `boolean` true/false, `string` text (all three nullable), `float64`",
        "number (empty = null / NaN). Unit `1`: a ratio, z-score or count.",
        "",
        "| column | type | unit | description | filled by |",
        "|---|---|---|---|---|",
    ]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | {c.dtype} | {unit_text.get(c.unit, c.unit)} | {c.description} | "
                     f"`{c.source}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - python -m histo.measure.fiber_table > docs/columns.md
    sys.stdout.write(column_reference())
