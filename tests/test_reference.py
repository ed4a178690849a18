"""Normal references: adult, child by age, rodents by relative criterion; named everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk

from histo.errors import HistoInputError
from histo.score.dubowitz import size_figures
from histo.score.evidence import build_evidence
from histo.score.reference import (
    REFERENCES,
    child_mean_um,
    child_range_um,
    reference_for,
    resolve_reference,
    type_family,
)
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings


def test_adult_references_are_dubowitz_and_say_so():
    male, female = reference_for("adult-male"), reference_for("adult-female")
    assert male.min_feret_um == (40.0, 80.0) and female.min_feret_um == (30.0, 70.0)
    assert male.range_text() == "normal 40–80 µm, adult male, Dubowitz"
    assert "Brooke" in male.citation and "Dubowitz" in male.citation
    assert all(reference_for(n, age_years=5).name == n for n in REFERENCES)


def test_child_range_interpolates_by_age_between_published_anchors():
    # Oertel 1988: mean 10-12 µm at birth, 40-60 µm at 15-20 years; SD <= 20 % of the mean
    assert child_mean_um(0) == 11.0 and child_mean_um(15) == 50.0
    assert child_mean_um(5) == pytest.approx(11 + 39 * 5 / 15)
    ages = np.linspace(0, 15, 31)
    means = [child_mean_um(a) for a in ages]
    assert np.all(np.diff(means) > 0)                       # grows with age
    lo, hi = child_range_um(5)
    m = child_mean_um(5)
    assert lo == pytest.approx(0.6 * m, abs=0.01) and hi == pytest.approx(1.4 * m, abs=0.01)
    r = reference_for("child", age_years=5, muscle="quadriceps")
    assert r.min_feret_um == (lo, hi) and "Oertel" in r.source and "quadriceps" in r.label
    assert r.range_text().startswith("normal 14.4–33.6 µm, child, 5 years")
    # from 15 years the adult range of the sex applies; without a sex, Oertel's 15-20 y range
    assert reference_for("child", age_years=16, sex="male").min_feret_um == (40.0, 80.0)
    assert reference_for("child", age_years=16).min_feret_um == child_range_um(15)
    with pytest.raises(ValueError, match="age"):
        reference_for("child")


def test_child_aged_5_is_not_atrophic_against_the_child_range():
    d = np.random.default_rng(0).normal(child_mean_um(5), 0.1 * child_mean_um(5), 400)
    adult = size_figures(None, None, None, reference_for("adult-male").min_feret_um,
                         min_feret_um=d)
    child = size_figures(None, None, None, reference_for("child", age_years=5).min_feret_um,
                         min_feret_um=d)
    assert adult["atrophy_factor"] > 1000          # a normal 5-year-old against adult men
    assert child["atrophy_factor"] < 150 and child["hypertrophy_factor"] < 150


def test_rat_atrophy_factor_is_no_longer_read_against_the_human_range():
    # normal rat fibers of ~ 30 µm min Feret: against adult men AF ~ 1200
    d = np.random.default_rng(1).normal(30, 5, 300)
    human = size_figures(None, None, None, (40.0, 80.0), min_feret_um=d)
    assert human["atrophy_factor"] > 1000
    rat = ScoringSettings(reference="rat")
    assert rat.normal_range is None
    fig = size_figures(None, None, None, rat.normal_range, min_feret_um=d,
                       reference=rat.reference_in_force)
    assert fig["atrophy_factor"] is None and fig["hypertrophy_factor"] is None
    assert "no published normal range (rat, relative criterion" in fig["reasons"]["atrophy_factor"]
    assert fig["variability_coefficient"] is not None       # unitless, still computed


def test_no_silent_default_and_backward_compatible_sex():
    assumed = ScoringSettings().reference_in_force
    assert assumed.assumed and assumed.min_feret_um == (40.0, 80.0)
    assert assumed.tag == "adult male, Dubowitz (assumed: no reference given)"
    given = ScoringSettings(sex="female").reference_in_force
    assert not given.assumed and given.name == "adult-female"
    custom = resolve_reference(normal_range_um=(20, 45))
    assert custom.min_feret_um == (20.0, 45.0) and custom.source == "range given by the user"
    d = ScoringSettings(reference="mouse").to_dict()
    assert d["normal_range_in_force_um"] is None and d["reference_in_force"]["name"] == "mouse"
    assert ScoringSettings.from_dict(d) == ScoringSettings(reference="mouse")
    with pytest.raises(HistoInputError, match="age_years"):
        ScoringSettings(reference="child")
    with pytest.raises(HistoInputError, match="reference"):
        ScoringSettings(reference="horse")


def test_every_ranged_figure_names_the_reference():
    summary = {"statistics": {
        "n_counted": 300, "n": 300, "min_feret_um": {"mean": 31.0}, "reasons": {},
        "atrophy_factor": None, "hypertrophy_factor": None, "variability_coefficient": 190.0,
        "classes": {k: {"n": 1, "fraction": 1 / 300} for k in ("small", "angular", "dark", "sad")},
        "thresholds": {"dark_applies": True, "small_rule_used": "relative",
                       "small_relative": "below 0.6 x the slide median min Feret"}},
        "nuclei": {"pct_centrally_nucleated": 0.7, "n_centrally_nucleated": 2}}
    for settings in (ScoringSettings(), ScoringSettings(reference="mouse"),
                     ScoringSettings(reference="child", age_years=8)):
        ev = build_evidence(summary, settings)
        ref = settings.reference_in_force
        assert ref.range_text() in ev["text"]
        assert ev["reference"]["tag"] == ref.tag
        for f in ev["figures"]:
            if f["normal_range"] is not None:
                assert f.get("reference"), f
    mouse = build_evidence(summary, ScoringSettings(reference="mouse"))
    by_name = {f["name"]: f for f in mouse["figures"]}
    assert by_name["variability coefficient"]["normal_range"] is None     # no human limit
    assert by_name["centrally nucleated fibers"]["normal_range"] is None
    assert "no normal range, mouse, relative criterion, no published range used" in mouse["text"]


def test_type_family():
    assert [type_family(t) for t in ("1", "2B", "I", "IIa", "IIx/IIb", "hybrid")] == \
        ["1", "2", "1", "2", "2", None]


def test_a_rodent_section_scores_with_the_relative_criterion():
    rng = np.random.default_rng(2)
    ny = nx = 8
    cell = 50
    labels = np.zeros((ny * cell, nx * cell), np.int32)
    rows = []
    for k in range(1, ny * nx + 1):
        i, j = divmod(k - 1, nx)
        d = rng.normal(32, 3) if k != 30 else 12.0          # one small fiber among ~32 µm
        cy, cx = i * cell + cell / 2, j * cell + cell / 2
        rr, cc = disk((cy, cx), d / 2, shape=labels.shape)
        labels[rr, cc] = k
        rows.append({"label": k, "min_feret_um": d, "area_um2": float(len(rr)),
                     "angularity": 0.0, "darkness": 0.0,
                     "is_edge": i in (0, ny - 1) or j in (0, nx - 1)})
    fibers = pd.DataFrame(rows)
    human = score_slide(fibers, labels, None, ScoringSettings(permutations=0), stain="he")[1]
    out, rat = score_slide(fibers, labels, None, ScoringSettings(reference="rat", permutations=0),
                           stain="he")
    assert human["statistics"]["classes"]["small"]["fraction"] > 0.9    # all "small" vs men
    assert human["statistics"]["atrophy_factor"] > 500
    st = rat["statistics"]
    assert st["classes"]["small"]["n"] == 1 and st["thresholds"]["small_rule_used"] == "relative"
    assert st["atrophy_factor"] is None and not out["is_atrophic"].any()
    assert st["reference"]["name"] == "rat"
    assert "no normal range, rat, relative criterion, no published range used" in \
        rat["evidence"]["text"]
    assert "atrophy and hypertrophy factors not computed (no published normal range)" in \
        rat["evidence"]["text"]
