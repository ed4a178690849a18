"""``histo measure IMAGE LABELS -o OUT``: measure fibers from an existing mask.

For users who already have fiber masks (Cellpose, ImageJ ROI sets, QuPath GeoJSON, hand drawn):
writes ``OUT/<image-stem>/`` as in the output contract and prints the slide's figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from histo.batch.pipeline import measure_file, slide_id
from histo.commands._common import add_image_arguments, print_slide_summary
from histo.commands._settings import add_settings_arguments, settings_from_args
from histo.results.folder import check_inputs_outside, check_result_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="the stained section (TIFF, OME-TIFF, PNG, JPEG, ...)")
    parser.add_argument(
        "labels", type=Path,
        help="fiber mask: label image (TIFF/PNG, e.g. Cellpose *_cp_masks.png), ImageJ ROI set "
        "(.zip/.roi) or QuPath GeoJSON",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="results folder")
    add_image_arguments(parser)

    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    # refused before any work: the slide folder must be histo's and hold none of the inputs
    target = Path(args.output) / slide_id(args.image)
    check_inputs_outside([args.image, args.labels], target, what="slide result folder")
    check_result_dir(target)
    out_dir, result = measure_file(
        args.image,
        args.labels,
        args.output,
        pixel_size_um=args.pixel_size,
        stain=args.stain,
        channel=args.channel,
        settings=settings,
    )
    print_slide_summary(out_dir, result.summary)
    return 0
