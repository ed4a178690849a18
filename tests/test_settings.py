"""ScoringSettings: defaults, validation, files and round trips (flags: test_settings_cli)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from histo.errors import HistoInputError
from histo.score.settings import FiberTypeSettings, NucleiSettings, ScoringSettings


def test_normal_range_by_sex_and_override():
    assert ScoringSettings().normal_range == (40.0, 80.0)
    assert ScoringSettings(sex="female").normal_range == (30.0, 70.0)
    child = ScoringSettings(sex="female", normal_range_um=[15, 35])
    assert child.normal_range == (15.0, 35.0)
    assert isinstance(child.normal_range_um, tuple)


@pytest.mark.parametrize("kwargs, word", [
    ({"sex": "other"}, "sex"),
    ({"normal_range_um": (50, 40)}, "lo < hi"),
    ({"normal_range_um": (10,)}, "normal_range_um"),
    ({"small_rule": "tiny"}, "small_rule"),
    ({"small_median_fraction": 1.5}, "small_median_fraction"),
    ({"small_percentile": 0}, "small_percentile"),
    ({"permutations": -1}, "permutations"),
    ({"permutations": 9.5}, "permutations"),
    ({"dark_min_z": float("nan")}, "dark_min_z"),
    ({"dark_stains": ("he", "trichrome")}, "dark_stains"),
    ({"alpha": 0}, "alpha"),
    ({"fiber_types": {"n_types": 4}}, "n_types"),
    ({"fiber_types": {"type_channels": {"I": -1}}}, "type_channels"),
    ({"fiber_types": {"channel_thresholds": {"IIa": 3.0}}}, "without a channel"),
    ({"nuclei": {"central_ratio": 1.5}}, "central_ratio"),
    ({"nuclei": {"colour": "blue"}}, "nuclei.colour"),
])
def test_bad_values_are_input_errors_naming_the_setting(kwargs, word):
    with pytest.raises(HistoInputError, match=word):
        ScoringSettings(**kwargs)


def test_frozen_hashable_and_replace():
    s = ScoringSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sex = "female"  # type: ignore[misc]
    t = s.replace(sex="female", fiber_types={"type_channels": {"I": 1, "IIa": 2}},
                  nuclei={"channel": 0})
    assert s.sex is None and t.sex == "female"   # no sex given: adult male assumed, and said
    assert s.reference_in_force.assumed and s.normal_range == (40.0, 80.0)
    assert t.fiber_types.type_channels == (("I", 1), ("IIa", 2))
    assert t.nuclei.channel == 0 and t.nuclei.central_ratio == 0.75
    assert hash(t) != hash(s)
    with pytest.raises(HistoInputError, match="unknown setting sexx"):
        s.replace(sexx="female")
    with pytest.raises(HistoInputError, match="fiber_types.n_typs"):
        s.replace(fiber_types={"n_typs": 2})


def test_to_dict_is_json_and_round_trips():
    s = ScoringSettings(sex="female", normal_range_um=(20, 50), permutations=99,
                        fiber_types=FiberTypeSettings(type_channels={"I": 1},
                                                      channel_thresholds={"I": 900.0},
                                                      level_names=("a", "b")),
                        nuclei=NucleiSettings(channel=0))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["fiber_types"]["type_channels"] == {"I": 1}
    assert d["normal_range_in_force_um"] == [20.0, 50.0]
    assert ScoringSettings.from_dict(d) == s


def test_from_toml_yaml_and_json_files(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('sex = "female"\npermutations = 199\n[fiber_types]\nn_types = 2\n'
                    'type_channels = {I = 1, IIa = 2}\n[nuclei]\nchannel = 0\n')
    s = ScoringSettings.from_file(toml)
    assert (s.sex, s.permutations, s.fiber_types.n_types, s.nuclei.channel) == ("female", 199, 2, 0)
    assert s.fiber_types.type_channels == (("I", 1), ("IIa", 2))

    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("scoring:\n  normal_range_um: [25, 60]\n  dark_min_z: 1.5\n")
    s = ScoringSettings.from_file(yaml_file)
    assert s.normal_range == (25.0, 60.0) and s.dark_min_z == 1.5

    # a summary.json "settings" block reads back as the same settings
    js = tmp_path / "summary_settings.json"
    js.write_text(json.dumps({"settings": ScoringSettings(seed=7).to_dict()}))
    assert ScoringSettings.from_file(js) == ScoringSettings(seed=7)


@pytest.mark.parametrize("name, text, match", [
    ("bad.toml", "sex = 'male'\nangular_threshold = 0.4\n",
     r"bad\.toml: unknown setting angular_threshold"),
    ("broken.yaml", "sex: [male\n", r"broken\.yaml: not valid YAML"),
    ("missing.toml", None, "cannot read"),
    ("s.ini", "x", r"s\.ini: settings files must end in"),
    ("value.toml", "permutations = -3\n", r"value\.toml: setting permutations"),
])
def test_file_errors_name_the_file(tmp_path, name, text, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(HistoInputError, match=match):
        ScoringSettings.from_file(path)


def test_gap_px_from_the_pixel_size_or_the_pixel_default():
    s = ScoringSettings()
    assert s.gap_px(0.5) == 6 and s.gap_px(None) == 3
    assert s.replace(adjacency_gap_px=5).gap_px(None) == 5
