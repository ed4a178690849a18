"""Command-line flags of the scoring settings, shared by ``histo measure`` and ``histo score``.

:func:`add_settings_arguments` adds ``--settings FILE`` and one flag per commonly changed
setting (all defaulting to None); :func:`settings_from_args` reads the file (or takes the
defaults) and applies only the flags the user typed, so a flag always wins over the file.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_settings_arguments(parser)
>>> settings_from_args(parser.parse_args(["--sex", "female", "--n-types", "2"])).normal_range
(30.0, 70.0)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from histo.errors import HistoInputError
from histo.review.options import parse_type_channels
from histo.score.reference import REFERENCES
from histo.score.settings import SEXES, SMALL_RULES, ScoringSettings


def _type_channels(text: str) -> dict[str, int]:
    """argparse type for ``--type-channels I=1,IIa=2`` (:func:`histo.review.options.parse_type_channels`)."""
    try:
        return parse_type_channels(text)
    except HistoInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


#: (flag, setting ("part.field" for nested options), argparse options) of the overrides.
_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--reference", "reference", dict(
        choices=REFERENCES, help="normal reference of fiber size (docs/scoring.md): adult-male "
        "40-80 µm, adult-female 30-70 µm (Dubowitz), child (by --age, Oertel 1988), mouse / rat "
        "(relative criterion, no published range); default: --sex, else adult male assumed and "
        "said beside every figure")),
    ("--age", "age_years", dict(type=float, metavar="YEARS",
                                help="age in years (needed by --reference child)")),
    ("--muscle", "muscle", dict(metavar="NAME", help="the muscle, named beside the reference")),
    ("--sex", "sex", dict(choices=SEXES, help="adult normal min Feret: male 40-80 µm, female "
                                              "30-70 µm (without --reference)")),
    ("--normal-range", "normal_range_um", dict(nargs=2, type=float, metavar=("LO", "HI"),
                                               help="normal min Feret range in µm (children, "
                                                    "other muscles, rodents); overrides --sex")),
    ("--small-rule", "small_rule", dict(choices=SMALL_RULES, help="small = below the normal "
                                        "range (absolute), below a fraction of the slide median "
                                        "(relative), either, both; auto: absolute if µm known")),
    ("--small-max-um", "small_max_um", dict(type=float, metavar="UM", help="absolute small "
                                            "threshold (default: lower bound of the range)")),
    ("--small-median-fraction", "small_median_fraction", dict(
        type=float, metavar="F", help="relative small threshold, x slide median (default 0.6)")),
    ("--angular-min", "angular_min", dict(type=float, metavar="A",
                                          help="angularity from which a fiber is angular (0.34)")),
    ("--dark-min-z", "dark_min_z", dict(type=float, metavar="Z",
                                        help="darkness z from which a fiber is dark (default 3)")),
    ("--permutations", "permutations", dict(type=int, metavar="N",
                                            help="permutations of the grouping tests (999)")),
    ("--seed", "seed", dict(type=int, metavar="N", help="random seed of the permutations")),
    ("--n-types", "fiber_types.n_types", dict(type=int, choices=(1, 2, 3), help="ATPase/NADH: "
                                              "intensity levels (default: chosen by BIC)")),
    ("--type-channels", "fiber_types.type_channels", dict(
        type=_type_channels, metavar="NAME=CH,...", help="IF: a channel per type, e.g. I=1,IIa=2")),
    ("--nuclei-channel", "nuclei.channel", dict(type=int, metavar="N",
                                                help="IF: the DAPI / nuclear channel (0-based)")),
)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the scoring options (``--settings FILE``, ``--sex``, ``--normal-range``, ...).

    Every flag defaults to None so that :func:`settings_from_args` only overrides what the
    user typed, on top of the file (or the defaults).
    """
    group = parser.add_argument_group("scoring settings")
    group.add_argument("--settings", type=Path, default=None, metavar="FILE",
                       help="scoring settings file (YAML or TOML); flags below override it")
    for flag, name, options in _FLAGS:
        group.add_argument(flag, dest="scoring_" + name.replace(".", "__"), default=None, **options)


def settings_from_args(args: argparse.Namespace) -> ScoringSettings:
    """The settings a command line asks for: the ``--settings`` file (or the defaults), then
    every scoring flag the user gave."""
    path = getattr(args, "settings", None)
    settings = ScoringSettings.from_file(path) if path is not None else ScoringSettings()
    overrides: dict[str, Any] = {}
    for _, name, _ in _FLAGS:
        value = getattr(args, "scoring_" + name.replace(".", "__"), None)
        if value is None:
            continue
        value = tuple(value) if isinstance(value, list) else value
        part, _, field_name = name.rpartition(".")
        (overrides.setdefault(part, {}) if part else overrides)[field_name] = value
    return settings.replace(**overrides)
