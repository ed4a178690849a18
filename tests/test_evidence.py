"""Evidence summary: figures against normal ranges and the plain-language line."""

from __future__ import annotations

import copy

import pytest

from histo.score.evidence import FORBIDDEN_WORDS, build_evidence, figure, format_p
from histo.score.settings import ScoringSettings


def base_summary():
    """A slide summary shaped like score_slide's, with round numbers."""
    return {
        "statistics": {
            "n_counted": 927,
            "density_per_mm2": 310.0,
            "area_basis": {"source": "convex hull of the counted fibers"},
            "min_feret_um": {"mean": 38.5, "median": 41.0, "sd": 14.0},
            "atrophy_factor": 420.0, "hypertrophy_factor": 95.0,
            "variability_coefficient": 310.0,
            "reasons": {},
            "classes": {
                "small": {"n": 150, "fraction": 150 / 927, "density_per_mm2": 50.0},
                "angular": {"n": 80, "fraction": 80 / 927, "density_per_mm2": 27.0},
                "dark": {"n": 60, "fraction": 60 / 927, "density_per_mm2": 20.0},
                "sad": {"n": 38, "fraction": 38 / 927, "density_per_mm2": 12.7},
            },
            "thresholds": {"dark_applies": True},
        },
        "grouping": {"on": "sad", "join_count": {"statistic": 30, "expected": 4.2,
                                                 "p_value": 0.003}},
        "fiber_types": {"method": None, "reason": "stain 'he' does not show fiber types"},
        "nuclei": {"pct_centrally_nucleated": 1.2, "n_centrally_nucleated": 11},
    }


def test_format_p_and_figure():
    assert format_p(0.003) == "0.003"
    assert format_p(0.0123) == "0.012"
    assert format_p(0.5) == "0.5"
    f = figure("variability coefficient", 310.0, None, [None, 250.0])
    assert f == {"name": "variability coefficient", "value": 310.0, "unit": None,
                 "normal_range": [None, 250.0], "outside": True}
    assert figure("mean min Feret", 38.5, "um", [40, 80])["outside"] is True
    assert figure("mean min Feret", 55.0, "um", [40, 80])["outside"] is False
    assert figure("atrophy factor", None, None, [None, 150])["outside"] is None
    assert figure("small fibers", 4.0, "%", None)["outside"] is None


def test_the_example_line():
    ev = build_evidence(base_summary(), ScoringSettings())
    assert ev["text"].startswith("927 fibers counted; 38 small angular dark fibers (4.1%), "
                                 "grouped beyond chance (p = 0.003); normal 40–80 µm, adult "
                                 "male, Dubowitz (assumed: no reference given): atrophy factor "
                                 "420 (normal < 150)")
    assert "variability coefficient 310 (normal < 250)" in ev["text"]
    assert "11 centrally nucleated fibers (1.2%, normal < 3%, adult human)" in ev["text"]
    by_name = {f["name"]: f for f in ev["figures"]}
    assert by_name["atrophy factor"]["outside"] is True
    assert by_name["hypertrophy factor"]["outside"] is False
    assert by_name["grouping of sad fibers (join-count p)"]["outside"] is True
    assert by_name["centrally nucleated fibers"]["outside"] is False
    assert by_name["small angular dark fibers"]["value"] == pytest.approx(100 * 38 / 927)
    for f in ev["figures"]:
        assert set(f) >= {"name", "value", "unit", "normal_range", "outside"}
        if f["normal_range"] is not None:          # every range names where it comes from
            assert f["reference"], f


def test_variants_without_pixel_size_dark_or_grouping():
    s = base_summary()
    st = s["statistics"]
    st["atrophy_factor"] = st["hypertrophy_factor"] = None
    st["min_feret_um"] = None
    st["reasons"] = {"atrophy_factor": "no pixel size", "hypertrophy_factor": "no pixel size"}
    st["thresholds"]["dark_applies"] = False
    s["grouping"] = {"on": "small", "join_count": {"statistic": 3, "expected": 5.0,
                                                   "p_value": 0.62}}
    ev = build_evidence(s, ScoringSettings())
    assert "150 small fibers (16.2%); small fibers not grouped beyond chance (p = 0.62)" in ev["text"]
    assert "atrophy and hypertrophy factors not computed (no pixel size)" in ev["text"]
    by_name = {f["name"]: f for f in ev["figures"]}
    assert by_name["atrophy factor"]["value"] is None
    assert by_name["atrophy factor"]["note"] == "no pixel size"
    assert by_name["small angular dark fibers"]["note"] == "darkness is not scored on this stain"


def test_fiber_types_in_the_line():
    s = base_summary()
    s["fiber_types"] = {
        "types": ["1", "2"], "n_enclosed": 25, "expected_enclosed": 6.4,
        "per_type": {"1": {"fraction": 0.62}, "2": {"fraction": 0.38}},
        "grouping": {"join_count": {"statistic": 900, "expected": 700.0, "p_value": 0.001}},
    }
    ev = build_evidence(s, ScoringSettings())
    assert ("fiber types type 1 62% / type 2 38%; 25 enclosed fibers (6.4 expected by chance), "
            "types grouped beyond chance (p = 0.001)") in ev["text"]


def test_never_a_diagnosis():
    variants = [base_summary()]
    v = copy.deepcopy(base_summary())
    v["grouping"] = {}
    v["nuclei"] = {}
    variants.append(v)
    for s in variants:
        text = build_evidence(s, ScoringSettings())["text"].lower()
        assert not any(word in text for word in FORBIDDEN_WORDS), text
