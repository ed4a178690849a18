"""``histo segment IMAGE... -o OUT``: segment fibers and write ``OUT/<stem>/labels.tif``.

The labels are uint32 on the input's own pixel grid (same height and width), written
atomically, with the pixel size recorded when it is known.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import tifffile

from histo.batch.pipeline import default_channel, resolve_stain, slide_id
from histo.commands._common import add_image_arguments, positive_float
from histo.errors import HistoInputError
from histo.io.atomic import atomic_path, atomic_write_text
from histo.io.image import read_image
from histo.results.folder import MARKER, check_inputs_outside, check_result_dir

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="images to segment")
    parser.add_argument("-o", "--output", type=Path, required=True, help="results folder")
    add_image_arguments(parser)
    parser.add_argument("--method", choices=("model", "classical"), default="model",
                        help="the network (default) or the classical no-model baseline")
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help="model name in models/ or path (default: the shipped model)")
    parser.add_argument("--fiber-diameter", type=positive_float, default=None, metavar="PX",
                        help="typical fiber diameter in pixels when the pixel size is unknown "
                             "(default: estimated from the image)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: CUDA when available, else CPU")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for the network (default: torch's choice)")


def _write_labels(path: Path, labels, pixel_size_um) -> None:


    kwargs = {}
    if pixel_size_um:
        kwargs = {"resolution": (1e4 / pixel_size_um, 1e4 / pixel_size_um), "resolutionunit": "CENTIMETER"}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype("uint32", copy=False), compression="zlib", **kwargs)


def run(args: argparse.Namespace) -> int:
    from histo.segment.segmenter import segment_image  # torch loads here, only when segmenting

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for path in args.images:  # refused before any work: folders histo did not write, inputs inside
        target = Path(args.output) / slide_id(path)
        check_inputs_outside([path], target, what="slide result folder")
        check_result_dir(target)
    for path in args.images:
        t0 = time.perf_counter()
        image = read_image(path, pixel_size_um=args.pixel_size)
        # --channel picks the membrane plane of multichannel images; RGB images ignore it
        channel = args.channel if image.axes == "CYX" else None
        stain = resolve_stain(image, args.stain) if args.method == "classical" else args.stain
        channel = default_channel(image, stain, channel)
        labels = segment_image(
            image, stain=stain, channel=channel, pixel_size_um=image.pixel_size_um,
            method=args.method, model=args.model, fiber_diameter_px=args.fiber_diameter,
            device=args.device,
        )
        out_dir = check_result_dir(Path(args.output) / slide_id(path))
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_labels(out_dir / "labels.tif", labels, image.pixel_size_um)
            if not (out_dir / MARKER).is_file():
                atomic_write_text(out_dir / MARKER, "histo slide result folder\n")
        except OSError as err:
            raise HistoInputError(f"cannot write the labels here ({err.strerror or err}); choose "
                                  "another -o folder", path=out_dir) from err
        print(f"{path.name}: {int(labels.max())} fibers in {time.perf_counter() - t0:.1f} s -> "
              f"{out_dir / 'labels.tif'}", file=sys.stdout)
    return 0
