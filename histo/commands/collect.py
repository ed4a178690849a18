"""``histo collect RESULTS -o fibers.parquet``: one per-fiber table for a whole cohort.

Concatenates the ``fibers.parquet`` of every slide folder in ``RESULTS`` (they share one
schema, ``slide_id`` first: ``docs/columns.md``) into one Parquet file (or CSV when the name
ends in ``.csv``; ``-o -``: CSV on stdout), ready for pandas, polars, R (arrow) or a spreadsheet. Slides that failed
have no folder and no rows; ``cohort.csv`` says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from histo.errors import HistoInputError
from histo.results.tables import collect_fiber_tables, write_collected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``histo collect``."""
    parser.add_argument("results", type=Path, metavar="RESULTS",
                        help="results folder written by histo score (or histo measure)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="the combined table: .parquet (default RESULTS/fibers.parquet), .csv, or - "
                             "for CSV on stdout")
    parser.add_argument("--json", action="store_true",
                        help="print what was written as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    """Collect the tables; say how many fibers of how many slides went where."""
    table, slides = collect_fiber_tables(args.results)
    if args.output == "-":
        if args.json:
            raise HistoInputError("-o - prints the table on stdout; --json cannot share it")
        table.to_pandas().to_csv(sys.stdout, index=False)
        return 0
    out = Path(args.output) if args.output is not None else args.results / "fibers.parquet"
    write_collected(table, out)
    if args.json:
        json.dump({"output": str(out), "n_slides": len(slides), "n_fibers": table.num_rows,
                   "slides": slides, "columns": table.column_names}, sys.stdout)
        print()
    elif not args.quiet:
        print(f"{table.num_rows} fibers of {len(slides)} slide(s) -> {out}")
    return 0
