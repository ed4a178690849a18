"""``histo eval PRED GT``: score predicted fiber labels against reference labels.

Prints precision / recall / F1 at IoU 0.5 ... 0.9, the mean IoU of the matched pairs and the
minimum Feret diameter error on the fibers matched at IoU 0.5 (see :mod:`histo.evaluate`).
With ``--exclude-edge`` it reports twice: all objects, then with objects touching the image
border ignored (reference masks usually include cut fibers a pathologist would not count).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from histo.commands._common import positive_float
from histo.errors import HistoInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", type=Path, help="predicted label image (TIFF/PNG; 0 = background)")
    parser.add_argument("gt", type=Path, help="reference label image on the same pixel grid")
    parser.add_argument(
        "--pixel-size", type=positive_float, default=None, metavar="UM",
        help="micrometres per pixel: absolute min-Feret error in µm instead of px",
    )
    parser.add_argument(
        "--exclude-edge", action="store_true",
        help="also report with objects touching the image border ignored",
    )
    parser.add_argument(
        "--thresholds", type=_thresholds, default=None, metavar="T1,T2,...",
        help="IoU thresholds (default 0.5,0.55,...,0.9)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the figures as JSON")


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 0.5,0.75") from err
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: thresholds must be in (0, 1]")
    return values


def read_label_image(path: Path):
    """A 2-D integer label image from ``path`` (TIFF via tifffile, PNG and others via Pillow)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise HistoInputError("no such file; give the path of a label image", path=path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im)
    except Exception as err:  # noqa: BLE001 - any decoder error means an unreadable file
        raise HistoInputError(f"cannot read the label image ({err})", path=path) from err
    arr = np.squeeze(arr)
    if arr.ndim != 2 or arr.dtype.kind not in "iub":
        raise HistoInputError(
            f"expected a 2-D integer label image, got shape {arr.shape} dtype {arr.dtype}", path=path
        )
    return arr


def run(args: argparse.Namespace) -> int:
    from histo.evaluate import DEFAULT_THRESHOLDS, match_labels

    pred = read_label_image(args.pred)
    gt = read_label_image(args.gt)
    if pred.shape != gt.shape:
        raise HistoInputError(
            f"prediction {args.pred} has shape {pred.shape} but the reference has {gt.shape}; "
            "both must be on the same pixel grid",
            path=args.pred,
        )
    thresholds = args.thresholds or DEFAULT_THRESHOLDS
    modes = [("all objects", False)] + ([("edge objects ignored", True)] if args.exclude_edge else [])
    report = {"pred": str(args.pred), "gt": str(args.gt), "pixel_size_um": args.pixel_size}
    for i, (title, exclude) in enumerate(modes):
        result = match_labels(pred, gt, thresholds=thresholds, pixel_size_um=args.pixel_size,
                              exclude_edge=exclude)
        report["exclude_edge" if exclude else "all"] = result.to_dict()
        if len(modes) > 1:
            print(("\n" if i else "") + f"== {title}")
        print(result.table())
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
        except OSError as err:
            raise HistoInputError(f"cannot write the JSON report: {err.strerror}", path=args.json) from err
        print(f"figures written to {args.json}", file=sys.stderr)
    return 0
