"""``histo measure IMAGE LABELS -o OUT``: measure fibers from an existing mask.

For users who already have fiber masks (Cellpose, ImageJ ROI sets, QuPath GeoJSON, hand drawn):
writes ``OUT/<image-stem>/`` as in the output contract and prints the slide's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from histo.batch.pipeline import measure_file, slide_id
from histo.commands._common import add_image_arguments, print_slide_summary
from histo.commands._settings import add_settings_arguments, settings_from_args
from histo.errors import HistoError
from histo.io.jsonable import to_jsonable
from histo.results.folder import check_inputs_outside, check_result_dir
from histo.review.state import REVIEW_FILE, rebase_review


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="the stained section (TIFF, OME-TIFF, PNG, JPEG, ...)")
    parser.add_argument(
        "labels", type=Path,
        help="fiber mask: label image (TIFF/PNG, e.g. Cellpose *_cp_masks.png), ImageJ ROI set "
        "(.zip/.roi) or QuPath GeoJSON",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="results folder")
    add_image_arguments(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the slide's summary (summary.json) as one JSON document on stdout")

    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # refused before any work: the slide folder must be histo's and hold none of the inputs
    target = Path(args.output) / slide_id(args.image)
    check_inputs_outside([args.image, args.labels], target, what="slide result folder")
    check_result_dir(target)
    if (target / REVIEW_FILE).is_file() and (target / "labels.tif").is_file():
        # a saved review is kept; keep the labels it points at to carry its flags over
        with tempfile.TemporaryDirectory(prefix=".histo-previous-", dir=target.parent) as scratch:
            previous = Path(scratch) / "labels.tif"
            try:
                os.link(target / "labels.tif", previous)
            except OSError:
                shutil.copy2(target / "labels.tif", previous)
            out_dir, result = _measure(args, settings)
            try:
                note = rebase_review(out_dir, previous)
            except HistoError as err:
                note = f"saved review damaged, kept but not applied: {err}"
        if note != "saved review kept":
            print(f"{out_dir}: {note}", file=sys.stderr)
    else:
        out_dir, result = _measure(args, settings)
    if args.json:
        doc = {"results_dir": str(out_dir), "summary": result.summary}
        print(json.dumps(to_jsonable(doc), ensure_ascii=False, allow_nan=False))
    elif not getattr(args, "quiet", False):
        print_slide_summary(out_dir, result.summary)
    return 0


def _measure(args: argparse.Namespace, settings):
    return measure_file(
        args.image,
        args.labels,
        args.output,
        pixel_size_um=args.pixel_size,
        stain=args.stain,
        channel=args.channel,
        settings=settings,
    )
