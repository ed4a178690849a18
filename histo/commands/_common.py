"""Arguments and console output shared by the ``histo`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from histo.io.stain import STAINS

STAIN_CHOICES = ("auto", *STAINS)


def positive_float(text: str) -> float:
    """argparse type: a strictly positive float (e.g. a pixel size in µm)."""
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from err
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """--pixel-size, --stain and --channel, as every image-reading command takes them."""
    parser.add_argument(
        "--pixel-size", type=positive_float, default=None, metavar="UM",
        help="micrometres per pixel; overrides the file's metadata",
    )
    parser.add_argument(
        "--stain", choices=STAIN_CHOICES, default="auto",
        help="stain of the section (default: guessed from the colours)",
    )
    parser.add_argument(
        "--channel", type=int, default=None, metavar="N",
        help="fluorescence: index of the fiber-membrane channel (0-based)",
    )


def print_slide_summary(out_dir: Path, summary: dict, stream=None) -> None:
    """A few lines a person reads after scoring one slide."""
    stream = stream or sys.stdout
    slide = summary.get("slide", {})
    px = slide.get("pixel_size_um")
    px_text = f"{px:.4g} µm/px ({slide.get('pixel_size_source') or 'given'})" if px else "unknown pixel size"
    print(f"{slide.get('id', out_dir.name)}: {summary.get('n_fibers', 0)} fibers, "
          f"stain {slide.get('stain')}, {px_text}", file=stream)
    evidence = summary.get("evidence") or {}
    if evidence.get("text"):
        print(f"  {evidence['text']}", file=stream)
    for warning in summary.get("warnings", []):
        print(f"  note: {warning}", file=stream)
    print(f"  results: {out_dir}", file=stream)
