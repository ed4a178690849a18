"""The scoring settings' command-line flags (histo.commands._settings)."""

from __future__ import annotations

import argparse

import pytest

from histo.commands._settings import add_settings_arguments, settings_from_args
from histo.errors import HistoInputError
from histo.score.settings import ScoringSettings


def parse(argv):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return settings_from_args(parser.parse_args(argv))


def test_cli_defaults_flags_and_file_precedence(tmp_path):
    assert parse([]) == ScoringSettings()
    s = parse(["--sex", "female", "--normal-range", "20", "50", "--small-rule", "both",
               "--angular-min", "0.4", "--dark-min-z", "1.5", "--permutations", "99",
               "--seed", "3", "--n-types", "3", "--type-channels", "I=1,IIa=2",
               "--nuclei-channel", "0"])
    assert s.sex == "female" and s.normal_range == (20.0, 50.0)
    assert (s.small_rule, s.angular_min, s.dark_min_z, s.permutations, s.seed) == (
        "both", 0.4, 1.5, 99, 3)
    assert s.fiber_types.n_types == 3 and s.fiber_types.type_channels == (("I", 1), ("IIa", 2))
    assert s.nuclei.channel == 0

    f = tmp_path / "s.toml"
    f.write_text('sex = "female"\npermutations = 199\n')
    s = parse(["--settings", str(f), "--permutations", "49"])
    assert s.sex == "female" and s.permutations == 49      # the flag wins over the file


def test_cli_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        parse(["--type-channels", "I:1"])
    with pytest.raises(HistoInputError, match="permutations"):
        parse(["--permutations", "-5"])
