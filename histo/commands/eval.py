"""``histo eval PRED GT``: score predicted fiber labels against reference labels.

Prints precision / recall / F1 at IoU 0.5 ... 0.9, the mean IoU of the matched pairs and the
minimum Feret diameter error on the fibers matched at IoU 0.5 (see :mod:`histo.train.evaluate`).
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
from histo.io.image import check_file, sniff_format
from histo.io.jsonable import to_jsonable
from histo.io.masks import read_labels
from histo.train.evaluate import DEFAULT_THRESHOLDS, match_labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pred", type=Path,
        help="predicted mask: label image (TIFF/PNG, 0 = background), ImageJ ROI set or GeoJSON")
    parser.add_argument(
        "gt", type=Path,
        help="reference mask on the same pixel grid (same formats; one of the two must be a "
        "label image)")
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
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the figures as JSON to FILE; without FILE (or with -) print them "
                             "as one JSON document on stdout and the tables on stderr")


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 0.5,0.75") from err
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: thresholds must be in (0, 1]")
    return values


_OUTLINE_FORMATS = ("zip", "roi", "json")


def read_label_pair(pred_path: Path, gt_path: Path):
    """Both masks as uint32 label images on one grid (via :func:`histo.io.masks.read_labels`).

    Either may be an ImageJ ROI set or QuPath GeoJSON as long as the other is a label image:
    its shape rasterises the outlines.
    """
    outline = {p: sniff_format(check_file(p)) in _OUTLINE_FORMATS for p in (pred_path, gt_path)}
    if all(outline.values()):
        raise HistoInputError(
            "both masks are outlines (ROI set / GeoJSON); give at least one label image so the "
            "outlines can be rasterised on its pixel grid", path=pred_path)
    first, second = (gt_path, pred_path) if outline[pred_path] else (pred_path, gt_path)
    labels = {first: read_labels(first)}
    labels[second] = read_labels(second, shape=labels[first].shape if outline[second] else None)
    return labels[pred_path], labels[gt_path]


def run(args: argparse.Namespace) -> int:
    pred, gt = read_label_pair(args.pred, args.gt)
    if pred.shape != gt.shape:
        raise HistoInputError(
            f"prediction {args.pred} has shape {pred.shape} but the reference has {gt.shape}; "
            "both must be on the same pixel grid",
            path=args.pred,
        )
    thresholds = args.thresholds or DEFAULT_THRESHOLDS
    modes = [("all objects", False)] + ([("edge objects ignored", True)] if args.exclude_edge else [])
    report = {"pred": str(args.pred), "gt": str(args.gt), "pixel_size_um": args.pixel_size}
    to_stdout = args.json == "-"
    text = None if getattr(args, "quiet", False) else (sys.stderr if to_stdout else sys.stdout)
    for i, (title, exclude) in enumerate(modes):
        result = match_labels(pred, gt, thresholds=thresholds, pixel_size_um=args.pixel_size,
                              exclude_edge=exclude)
        report["exclude_edge" if exclude else "all"] = result.to_dict()
        if text is not None:
            if len(modes) > 1:
                print(("\n" if i else "") + f"== {title}", file=text)
            print(result.table(), file=text)
    if to_stdout:
        print(json.dumps(to_jsonable(report), allow_nan=False))
    elif args.json is not None:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=False))
        except OSError as err:
            raise HistoInputError(f"cannot write the JSON report: {err.strerror}", path=path) from err
        if not args.quiet:
            print(f"figures written to {path}", file=sys.stderr)
    return 0
