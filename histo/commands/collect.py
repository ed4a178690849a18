"""``histo collect RESULTS -o fibers.parquet``: one per-fiber table for a whole cohort.

Concatenates the ``fibers.parquet`` of every slide folder in ``RESULTS`` (they share one
schema, ``slide_id`` first: ``docs/columns.md``) into one Parquet file (or CSV when the name
ends in ``.csv``), ready for pandas, polars, R (arrow) or a spreadsheet. Slides that failed
have no folder and no rows; ``cohort.csv`` says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from histo.results.tables import collect_fiber_tables, write_collected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``histo collect``."""
    parser.add_argument("results", type=Path, metavar="RESULTS",
                        help="results folder written by histo score (or histo measure)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="the combined table: .parquet (default RESULTS/fibers.parquet) or .csv")
    parser.add_argument("--json", action="store_true",
                        help="print what was written as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    """Collect the tables; say how many fibers of how many slides went where."""
    out = args.output if args.output is not None else args.results / "fibers.parquet"
    table, slides = collect_fiber_tables(args.results)
    write_collected(table, out)
    if args.json:
        json.dump({"output": str(out), "n_slides": len(slides), "n_fibers": table.num_rows,
                   "slides": slides, "columns": table.column_names}, sys.stdout)
        print()
    elif not args.quiet:
        print(f"{table.num_rows} fibers of {len(slides)} slide(s) -> {out}")
    return 0
