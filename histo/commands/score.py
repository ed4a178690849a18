"""``histo score``: segment, measure and score slides or folders of slides.

Writes ``RESULTS/<slide-id>/`` per slide, ``RESULTS/cohort.csv`` (one row per slide, failures
included with their reason) and ``RESULTS/report.html``. A rerun skips slides whose input,
options, settings and model are unchanged (``--force`` redoes them). Exit code 0 only when
every slide was scored; 1 when some failed (their rows say why).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from histo.batch.run import ScoreParams, run_batch
from histo.commands._common import STAIN_CHOICES, positive_float
from histo.commands._settings import add_settings_arguments, settings_from_args
from histo.errors import HistoInputError
from histo.io.jsonable import to_jsonable
from histo.io.pixelsize import check_pixel_size
from histo.score.cases import read_cases

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
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help="segmentation model: a name in models/ or a path, e.g. one trained with "
                             "histo train --from-reviews (default: the shipped model)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="score N slides at a time on a local Dask cluster of N processes "
                             "(default: one at a time in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="submit to a running Dask scheduler, e.g. tcp://host:8786 (the "
                             "workers must see the same paths)")
    parser.add_argument("--scheduler-file", type=Path, default=None, metavar="FILE",
                        help="submit to the Dask scheduler that wrote FILE (dask scheduler "
                             "--scheduler-file FILE); default for both: $DASK_SCHEDULER_ADDRESS")
    parser.add_argument("--force", action="store_true",
                        help="score every slide again, even when its results are up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true",
                        help="print the cohort as one JSON document on stdout (the text table "
                             "goes to stderr, or nowhere with -q)")
    add_settings_arguments(parser)
    parser.add_argument("--cases", type=Path, default=None, metavar="CASES_CSV",
                        help="CSV with columns slide, sex, age, species, muscle: sets each "
                             "slide's normal reference (slide = id, file name or stem)")


def run(args: argparse.Namespace) -> int:
    """Score the slides; print the final table; 0 when all succeeded, 1 otherwise."""
    if args.workers is not None and args.workers < 1:
        raise HistoInputError(f"--workers must be 1 or more, got {args.workers}")
    check_pixel_size(args.pixel_size, name="--pixel-size", in_range=True)
    params = ScoreParams(stain=args.stain, channel=args.channel, pixel_size_um=args.pixel_size,
                         method=args.method, settings=settings_from_args(args),
                         model=_model_info(args.method, args.model), fiber_diameter_px=args.fiber_diameter,
                         model_path=args.model,
                         cases=read_cases(args.cases) if args.cases is not None else None)
    result = run_batch(args.inputs, args.output, params=params, workers=args.workers,
                       scheduler=scheduler_of(args), force=args.force,
                       show_progress=not (args.no_progress or args.quiet))
    if args.json:
        print(cohort_json(result))
    text = None if args.quiet else (sys.stderr if args.json else sys.stdout)
    if text is not None:
        print(format_table(result.cohort), file=text)
    for line in qc_lines(result.cohort):
        print(line, file=sys.stderr)
    if params.cases:
        for line in unmatched_cases(params.cases, result.cohort):
            print(line, file=sys.stderr)
    n = len(result.cohort)
    if text is not None:
        print(f"\n{n - result.n_failed} of {n} slide(s) scored; results in {result.results_dir}"
              + (f"; report: {result.report_path}" if result.report_path else ""), file=text)
    if result.n_failed:
        print(f"{result.n_failed} slide(s) failed; see the 'error' column of "
              f"{result.results_dir / 'cohort.csv'}", file=sys.stderr)
    return 1 if result.n_failed else 0


def unmatched_cases(cases, cohort) -> list[str]:
    """One line per case (``--cases``) that named no slide of the cohort.

    Examples
    --------
    >>> import pandas as pd
    >>> from histo.score.cases import Case
    >>> unmatched_cases({"a": Case("a"), "zz": Case("zz")},
    ...                 pd.DataFrame({"slide_id": ["a"], "path": ["/d/a.tif"]}))
    ["cases file: slide 'zz' matches no slide of the run (use its id, file name or stem)"]
    """
    names: set[str] = set()
    for _, row in cohort.iterrows():
        names.add(str(row.get("slide_id")))
        if isinstance(row.get("path"), str) and row.get("path"):
            names.update((Path(row["path"]).name, Path(row["path"]).stem))
    return [f"cases file: slide {key!r} matches no slide of the run (use its id, file name or "
            "stem)" for key in cases if key not in names]


def _model_info(method: str, model: str | None = None):
    """``{"name", "version"}`` of the model a method uses (it enters the resume fingerprint)."""
    from histo.segment.segmenter import model_info  # torch loads here, only when segmenting

    if model is not None and method == "classical":
        raise HistoInputError("--model applies to --method model only")
    return model_info(method, model)


def scheduler_of(args: argparse.Namespace) -> str | None:
    """The Dask scheduler to use: ``--scheduler``, ``--scheduler-file``, else (unless
    ``--workers`` asks for a local cluster) ``$DASK_SCHEDULER_ADDRESS``, as Dask's own clients do.

    Examples
    --------
    >>> ns = argparse.Namespace(scheduler=None, scheduler_file=None, workers=None)
    >>> scheduler_of(ns) == (os.environ.get("DASK_SCHEDULER_ADDRESS") or None)
    True
    """
    if args.scheduler is not None and args.scheduler_file is not None:
        raise HistoInputError("give --scheduler or --scheduler-file, not both")
    if args.scheduler_file is not None:
        if not args.scheduler_file.is_file():
            raise HistoInputError("no such scheduler file (written by dask scheduler "
                                  "--scheduler-file FILE)", path=args.scheduler_file)
        return str(args.scheduler_file)
    if args.scheduler is not None:
        return args.scheduler
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
    if address and args.workers is None:
        log.info("using the Dask scheduler at $DASK_SCHEDULER_ADDRESS=%s", address)
        return address
    return None


def cohort_json(result) -> str:
    """The run as one JSON document: results folder, report, counts and the cohort rows
    (empty cells as null).

    Examples
    --------
    >>> import pandas as pd
    >>> from histo.batch.run import BatchResult
    >>> r = BatchResult(pd.DataFrame({"slide_id": ["a"], "status": ["error"], "n_fibers": [None]}),
    ...                 Path("out"))
    >>> json.loads(cohort_json(r))["slides"]
    [{'slide_id': 'a', 'status': 'error', 'n_fibers': None}]
    """
    cohort = result.cohort.astype(object).where(result.cohort.notna(), None)
    doc = {"results_dir": str(result.results_dir),
           "report": str(result.report_path) if result.report_path else None,
           "n_slides": len(cohort), "n_failed": result.n_failed,
           "slides": [to_jsonable(row) for row in cohort.to_dict(orient="records")]}
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)


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
