"""``histo score``: segment, measure and score slides or folders of slides.

Writes ``RESULTS/<slide-id>/`` per slide, ``RESULTS/cohort.csv`` (one row per slide, failures
included with their reason) and ``RESULTS/report.html``. A rerun skips slides whose input,
options, settings and model are unchanged (``--force`` redoes them). Exit code 0 only when
every slide was scored; 1 when some failed (their rows say why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from histo.batch.run import ScoreParams, run_batch
from histo.commands._common import STAIN_CHOICES, positive_float
from histo.commands._settings import add_settings_arguments, settings_from_args
from histo.errors import HistoInputError
from histo.io.pixelsize import check_pixel_size

log = logging.getLogger(__name__)

#: Columns of the table printed at the end (those present in the cohort).
TABLE_COLUMNS = ("slide_id", "status", "n_fibers", "stain", "qc_status", "seconds", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``histo score``."""
    parser.add_argument("inputs", nargs="+", type=Path, metavar="FOLDER_OR_FILE",
                        help="slide files (TIFF, OME-TIFF, SVS, NDPI, PNG, JPEG) or folders, "
                             "searched recursively")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="RESULTS",
                        help="results folder (one sub-folder per slide, cohort.csv, report.html)")
    parser.add_argument("--stain", choices=STAIN_CHOICES, default="auto",
                        help="stain of the slides (default: guessed per slide)")
    parser.add_argument("--channel", type=int, default=None, metavar="N",
                        help="fluorescence: the channel showing the fiber membrane (0-based)")
    parser.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                        help="pixel size in micrometres, overriding the files' metadata")
    parser.add_argument("--fiber-diameter", type=positive_float, default=None, metavar="PX",
                        help="typical fiber diameter in pixels: segment at this size (sizes in µm "
                             "still use the pixel size); default: from the pixel size, checked "
                             "against the image, or estimated from the image")
    parser.add_argument("--method", choices=("model", "classical"), default="model",
                        help="segmentation: the shipped network (default) or the classical "
                             "baseline")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="score N slides at a time on a local Dask cluster of N processes "
                             "(default: one at a time in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="submit to a running Dask scheduler, e.g. tcp://host:8786 (the "
                             "workers must see the same paths)")
    parser.add_argument("--force", action="store_true",
                        help="score every slide again, even when its results are up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Score the slides; print the final table; 0 when all succeeded, 1 otherwise."""
    if args.workers is not None and args.workers < 1:
        raise HistoInputError(f"--workers must be 1 or more, got {args.workers}")
    check_pixel_size(args.pixel_size, name="--pixel-size", in_range=True)
    params = ScoreParams(stain=args.stain, channel=args.channel, pixel_size_um=args.pixel_size,
                         method=args.method, settings=settings_from_args(args),
                         model=_model_info(args.method), fiber_diameter_px=args.fiber_diameter)
    result = run_batch(args.inputs, args.output, params=params, workers=args.workers,
                       scheduler=args.scheduler, force=args.force,
                       show_progress=not args.no_progress)
    print(format_table(result.cohort))
    for line in qc_lines(result.cohort):
        print(line, file=sys.stderr)
    n = len(result.cohort)
    print(f"\n{n - result.n_failed} of {n} slide(s) scored; results in {result.results_dir}"
          + (f"; report: {result.report_path}" if result.report_path else ""))
    if result.n_failed:
        print(f"{result.n_failed} slide(s) failed; see the 'error' column of "
              f"{result.results_dir / 'cohort.csv'}", file=sys.stderr)
    return 1 if result.n_failed else 0


def _model_info(method: str):
    """``{"name", "version"}`` of the model a method uses (it enters the resume fingerprint)."""
    from histo.segment.segmenter import model_info  # torch loads here, only when segmenting

    return model_info(method)


def qc_lines(cohort) -> list[str]:
    """One line per slide whose segmentation QC is not ok: what to check, where the user reads it.

    Examples
    --------
    >>> import pandas as pd
    >>> qc_lines(pd.DataFrame({"slide_id": ["a", "b"], "qc_status": ["ok", "warn"],
    ...                        "qc_reasons": ["", "pixel size 0.68 µm/px implies ..."]}))
    ['b: segmentation needs review (warn): pixel size 0.68 µm/px implies ...']
    """
    if "qc_status" not in cohort:
        return []
    out = []
    for _, row in cohort.iterrows():
        status = row.get("qc_status")
        if isinstance(status, str) and status not in ("", "ok"):
            out.append(f"{row['slide_id']}: segmentation needs review ({status}): {row.get('qc_reasons') or ''}")
    return out


def format_table(cohort) -> str:
    """The cohort as a short text table for the terminal (errors cut to 60 characters)."""
    columns = [c for c in TABLE_COLUMNS if c in cohort]
    table = cohort[columns].copy()
    if "error" in table:
        table["error"] = table["error"].fillna("").astype(str).str.slice(0, 60)
    if "n_fibers" in table:
        table["n_fibers"] = table["n_fibers"].astype("Int64")
    table = table.astype(object).where(table.notna(), "")
    return table.to_string(index=False)
