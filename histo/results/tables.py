"""A slide's per-fiber table on disk: ``fibers.parquet`` and ``fibers.csv`` in one schema.

:func:`write_fiber_tables` writes the exported form of the table
(:func:`histo.measure.fiber_table.to_export`: the registered columns in order, nullable dtypes,
``slide_id`` first), with each column's unit and description in the Parquet field metadata and
the slide's pixel size in the file metadata, so that every slide's file has the same schema and
a cohort concatenates as it is (``polars.read_parquet("RESULTS/*/fibers.parquet")``, or
:func:`collect_fiber_tables` behind ``histo collect``). :func:`read_fiber_table` reads either
file back into the in-memory table the scoring and review code use.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from histo.errors import HistoInputError
from histo.io.atomic import atomic_path
from histo.measure.fiber_table import COLUMN_NAMES, column, from_export, to_export
from histo.results.folder import is_histo_result

log = logging.getLogger(__name__)

#: Version of the exported table's layout, in the Parquet file metadata (``histo.schema``).
SCHEMA_VERSION = "1"
_META_PIXEL_SIZE = b"histo.pixel_size_um"
_META_SCHEMA = b"histo.schema"


def fiber_arrow_table(export: pd.DataFrame, *, pixel_size_um: float | None) -> pa.Table:
    """The exported table as Arrow, with units and descriptions in the field metadata.

    Examples
    --------
    >>> from histo.measure.fiber_table import to_export
    >>> e = to_export(pd.DataFrame({"label": [1], "area_um2": [4.0]}), slide_id="s", pixel_size_um=0.5)
    >>> t = fiber_arrow_table(e, pixel_size_um=0.5)
    >>> t.schema.field("area_um2").metadata[b"unit"], str(t.schema.field("n_nuclei").type)
    (b'um2', 'int64')
    """
    table = pa.Table.from_pandas(export, preserve_index=False)
    fields = []
    for f in table.schema:
        if f.name in COLUMN_NAMES:
            c = column(f.name)
            f = f.with_metadata({"unit": c.unit, "description": c.description})
        fields.append(f)
    meta = dict(table.schema.metadata or {})
    meta[_META_SCHEMA] = SCHEMA_VERSION.encode()
    meta[_META_PIXEL_SIZE] = json.dumps(pixel_size_um).encode()
    return table.cast(pa.schema(fields, metadata=meta))


def write_fiber_tables(folder: str | Path, fibers: pd.DataFrame, *, slide_id: str,
                       pixel_size_um: float | None) -> None:
    """Write ``fibers.parquet`` and ``fibers.csv`` (the same exported table) into ``folder``.

    Parameters
    ----------
    folder : path
        The slide folder being written (usually the temporary one of
        :func:`histo.results.folder.result_directory`).
    fibers : DataFrame
        The in-memory per-fiber table.
    slide_id : str
        The slide's id (its result folder's name).
    pixel_size_um : float or None
        The slide's pixel size (fills the ``_px`` sizes of a table measured in µm).
    """
    folder = Path(folder)
    export = to_export(fibers, slide_id=slide_id, pixel_size_um=pixel_size_um)
    export.to_csv(folder / "fibers.csv", index=False)
    pq.write_table(fiber_arrow_table(export, pixel_size_um=pixel_size_um), folder / "fibers.parquet")


def _pixel_size_of(path: Path) -> tuple[bool, float | None]:
    """(file says, pixel size) from a Parquet file's metadata."""
    meta = pq.read_schema(path).metadata or {}
    if _META_PIXEL_SIZE not in meta:
        return False, None
    value = json.loads(meta[_META_PIXEL_SIZE])
    return True, (float(value) if value is not None else None)


def read_fiber_table(result_dir: str | Path) -> pd.DataFrame:
    """A slide folder's per-fiber table, as the pipeline holds it in memory.

    Reads ``fibers.parquet`` (``fibers.csv`` when it is missing or unreadable) and undoes the
    export (:func:`histo.measure.fiber_table.from_export`); tables written before the common
    schema are returned as they are.

    Parameters
    ----------
    result_dir : path
        A slide folder written by ``histo score`` / ``histo measure``.
    """
    result_dir = Path(result_dir)
    parquet, csv = result_dir / "fibers.parquet", result_dir / "fibers.csv"
    known = None
    table = None
    if parquet.is_file():
        try:
            table = pd.read_parquet(parquet)
            said, pixel_size = _pixel_size_of(parquet)
            known = (pixel_size is not None) if said else None
        except Exception:  # noqa: BLE001 - pyarrow raises its own types; fall back to the CSV twin
            log.warning("%s unreadable, using fibers.csv", parquet)
            table = None
    if table is None:
        if not csv.is_file():
            raise HistoInputError("no fibers.parquet or fibers.csv here; is this a histo result "
                                  "folder?", path=result_dir)
        table = pd.read_csv(csv)
        if "slide_id" in table.columns:  # exported: give the columns their registered dtypes
            slide = str(table["slide_id"].iloc[0]) if len(table) else result_dir.name
            table = to_export(table, slide_id=slide, pixel_size_um=None)
    if "slide_id" not in table.columns:
        return table  # written before the common schema
    return from_export(table, pixel_size_known=known)


def _slide_arrow_table(folder: Path) -> pa.Table:
    """A slide folder's exported table as Arrow; a table written before the common schema is
    exported now (slide id = folder name, pixel size from its summary.json)."""
    parquet = folder / "fibers.parquet"
    if parquet.is_file():
        try:
            table = pq.read_table(parquet)
        except Exception as err:  # noqa: BLE001 - pyarrow raises its own types
            raise HistoInputError(f"unreadable ({err}); score the slide again", path=parquet) from err
        if (table.schema.metadata or {}).get(_META_SCHEMA) == SCHEMA_VERSION.encode():
            return table
    try:
        pixel_size = (json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("slide")
                      or {}).get("pixel_size_um")
    except (OSError, ValueError, AttributeError):
        pixel_size = None
    export = to_export(read_fiber_table(folder), slide_id=folder.name, pixel_size_um=pixel_size)
    return fiber_arrow_table(export, pixel_size_um=pixel_size)


def collect_fiber_tables(results_dir: str | Path) -> tuple[pa.Table, list[str]]:
    """Every slide's per-fiber table in ``results_dir``, one after the other.

    Parameters
    ----------
    results_dir : path
        A ``histo score`` / ``histo measure`` output folder (one sub-folder per slide).

    Returns
    -------
    (pyarrow.Table, list of str)
        The concatenated table (the common schema, ``slide_id`` first; the file metadata's
        per-slide pixel size is dropped, the field metadata kept) and the slide ids, in
        folder-name order. Failed slides have no folder and so no rows.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise HistoInputError("is not a folder; give the -o folder of histo score", path=results_dir)
    folders = [f for f in sorted(results_dir.iterdir())
               if not f.name.startswith(".") and is_histo_result(f)
               and ((f / "fibers.parquet").is_file() or (f / "fibers.csv").is_file())]
    if not folders:
        raise HistoInputError("holds no slide result folders (with fibers.parquet); give the -o "
                              "folder of histo score or histo measure", path=results_dir)
    tables = [_slide_arrow_table(f) for f in folders]
    table = pa.concat_tables(tables, promote_options="permissive")
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != _META_PIXEL_SIZE}
    return table.replace_schema_metadata(meta), [f.name for f in folders]


def write_collected(table: pa.Table, out_path: str | Path) -> Path:
    """Write a collected table atomically: Parquet, or CSV when ``out_path`` ends in ``.csv``."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise HistoInputError("is a folder; give a file name such as fibers.parquet", path=out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_path) as tmp:
            if out_path.suffix.lower() == ".csv":
                table.to_pandas().to_csv(tmp, index=False)
            else:
                pq.write_table(table, tmp)
    except OSError as err:
        raise HistoInputError(f"cannot write ({err.strerror or err}); choose another -o file",
                              path=out_path) from err
    return out_path
