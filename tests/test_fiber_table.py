"""Tests of histo.measure.fiber_table: the per-fiber table's column names and unit suffixes."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from histo.errors import HistoInputError
from histo.measure import fiber_table, morphometry
from histo.measure.fiber_table import empty_table, size_column, table_columns


def test_size_column():
    um = pd.DataFrame(columns=["area_um2", "min_feret_um", "min_feret_px"])
    assert size_column(um, "area") == "area_um2"
    assert size_column(um, "min_feret") == "min_feret_um"
    assert size_column(pd.DataFrame(columns=["perimeter_px"]), "perimeter") == "perimeter_px"
    with pytest.raises(HistoInputError, match="no max_feret column"):
        size_column(um, "max_feret")
    with pytest.raises(HistoInputError, match="not a sized measurement"):
        size_column(um, "angularity")


def test_table_columns_units_and_order():
    px, um = table_columns(False), table_columns(True)
    sizes = ["perimeter", "min_feret", "max_feret", "equivalent_diameter"]
    px_sizes = ["area_px"] + [f"{n}_px" for n in sizes]
    assert [c for c in px if c.endswith("_px") and not c.startswith(("centroid", "bbox"))] == px_sizes
    assert [c for c in um if c.endswith(("_um", "_um2"))] == (
        ["centroid_y_um", "centroid_x_um", "area_um2"] + [f"{n}_um" for n in sizes])
    # every other column is the same, in the same order, whatever the unit
    assert [c for c in um if not c.endswith(("_um", "_um2"))] == [c for c in px if c not in px_sizes]
    assert px[0] == "label" and px[-1] == "is_edge" and len(set(um)) == len(um)


def test_empty_table_has_the_dtypes_of_a_full_one():
    df = empty_table(table_columns(True))
    assert len(df) == 0 and list(df.columns) == table_columns(True)
    full = morphometry.measure_fibers(np.pad(np.ones((6, 6), np.int32), 2), pixel_size_um=0.5)
    assert df.dtypes.to_dict() == full.dtypes.to_dict()


def test_morphometry_still_exports_the_contract():
    assert morphometry.size_column is size_column and morphometry.table_columns is table_columns
    result = doctest.testmod(fiber_table)
    assert result.attempted > 0 and result.failed == 0
