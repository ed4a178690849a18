"""The per-fiber table's contract: its column names, their unit suffixes, the empty table.

The table :func:`histo.measure.morphometry.measure_fibers` builds and every later stage reads
(scoring, evaluation, review, export). A size carries its unit in its name: ``_um`` /
``_um2`` when the pixel size is known, ``_px`` otherwise; :func:`size_column` finds
whichever a table has, so readers need not know how it was measured.
"""

from __future__ import annotations

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
             "angularity", "mean_od", "darkness", "n_neighbors", "is_edge"]
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
    for col in (f"{name}_um2" if kind == "area" else f"{name}_um", f"{name}_px"):
        if col in df.columns:
            return col
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
