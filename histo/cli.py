"""The ``histo`` command line: ``histo score | segment | measure | train | eval | report``.

Each sub-command lives in ``histo/commands/<name>.py`` and exposes two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). This module only
dispatches, sets up logging and turns :class:`histo.errors.HistoError` into one readable
line on stderr and a non-zero exit code. ``-v`` / ``-q`` are accepted before or after the
sub-command (``args.verbosity``: the ``-v`` count minus the ``-q`` count; ``args.quiet``
when below zero). ``python -m histo`` runs the same entry point (:mod:`histo.__main__`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from histo import __version__
from histo.errors import TORCH_MISSING, HistoError

COMMANDS: dict[str, str] = {
    "score": "segment, measure and score slides or folders of slides (the main job)",
    "segment": "segment fibers and write instance labels",
    "measure": "measure fibers from an image and an existing mask",
    "train": "train the segmentation model",
    "eval": "compare predicted labels with reference labels (F1, IoU, min-Feret error)",
    "report": "rebuild the HTML cohort report from a results folder",
    "collect": "concatenate the per-fiber tables of a results folder into one Parquet file",
}


def _verbosity_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``-v`` / ``-q``; the sub-commands' copies count into other attributes (argparse copies a
    sub-parser's namespace over the top-level one), added up by :func:`main`."""
    parser.add_argument("-v", "--verbose", dest=prefix + "verbose", action="count", default=0,
                        help="more log output (-vv for debug); before or after the command")
    parser.add_argument("-q", "--quiet", dest=prefix + "quiet", action="count", default=0,
                        help="errors only: no progress, no log lines, no summary text (--json output "
                             "is still printed)")


def _command_module(name: str):
    return importlib.import_module(f"histo.commands.{name}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen sub-command's module is imported."""
    parser = argparse.ArgumentParser(
        prog="histo",
        description="Myofiber morphometry for muscle biopsies.",
    )
    parser.add_argument("--version", action="version", version=f"histo {__version__}")
    _verbosity_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in (argv or []) if a in COMMANDS), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _verbosity_options(p, prefix="sub_")
        if name == chosen:
            _command_module(name).add_arguments(p)
    return parser


def verbosity(args: argparse.Namespace) -> int:
    """``-v`` count minus ``-q`` count, wherever they were given.

    Examples
    --------
    >>> argv = ["-v", "report", "results", "-v", "-q", "-v"]
    >>> verbosity(build_parser(argv).parse_args(argv))
    2
    """
    return (args.verbose + getattr(args, "sub_verbose", 0)
            - args.quiet - getattr(args, "sub_quiet", 0))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``histo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.verbosity = verbosity(args)
    args.quiet = args.verbosity < 0
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(args.verbosity, 2)), logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(_command_module(args.command).run(args) or 0)
    except HistoError as err:
        print(f"histo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # the optional model extra (training, histo segment)
        if (err.name or "").partition(".")[0] != "torch":
            raise
        print(f"histo {args.command}: error: {TORCH_MISSING}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"histo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
