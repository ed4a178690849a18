"""``histo report``: rebuild ``RESULTS/report.html`` from the result files.

Uses ``cohort.csv`` when present (else every slide folder with a ``summary.json``) and the
reviews saved by the napari plugin, so a report rebuilt after a review shows the reviewed
figures. Nothing but the report is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from histo.report.html import build_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``histo report``."""
    parser.add_argument("results", type=Path, metavar="RESULTS",
                        help="results folder written by histo score (or histo measure)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="HTML",
                        help="where to write the report (default: RESULTS/report.html)")


def run(args: argparse.Namespace) -> int:
    """Build the report; print its path."""
    path = build_report(args.results, out_path=args.output)
    print(path)
    return 0
