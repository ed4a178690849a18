"""Dubowitz figures by hand: atrophy / hypertrophy factors, variability, size figures."""

from __future__ import annotations

import numpy as np
import pytest

from histo.score import scoring
from histo.score.dubowitz import (
    atrophy_factor,
    describe_sizes,
    hypertrophy_factor,
    size_figures,
    variability_coefficient,
)


def test_atrophy_factor_bands_by_hand():
    lo = 40.0
    d = np.array([45, 40, 39.9, 30, 29.9, 20, 19.9, 10, 9.9, 0.5])
    # weights:     0   0    1    1    2    2    3   3    4   4   -> sum 20, N = 10
    assert atrophy_factor(d, lo) == pytest.approx(1000 * 20 / 10)
    assert atrophy_factor(np.array([50.0, 60.0]), lo) == 0.0
    assert atrophy_factor(np.array([]), lo) is None


def test_hypertrophy_factor_bands_by_hand():
    hi = 80.0
    d = np.array([79.9, 80, 89.9, 90, 99.9, 100, 109.9, 110, 150])
    # weights:     0    1    1    2    2     3     3     4    4  -> sum 20, N = 9
    assert hypertrophy_factor(d, hi) == pytest.approx(1000 * 20 / 9)


def test_variability_coefficient_by_hand():
    d = np.array([30.0, 50.0, 70.0])
    sd = np.sqrt(((30 - 50) ** 2 + 0 + (70 - 50) ** 2) / 2)  # sample SD = 20
    assert variability_coefficient(d) == pytest.approx(1000 * sd / 50)
    assert variability_coefficient(np.array([40.0])) is None


def test_size_figures_from_pixels_and_from_micrometres_agree():
    d_px = np.array([20.0, 30.0, 45.0, 90.0])
    a_px = np.array([300.0, 700.0, 1500.0, 6000.0])
    from_px = size_figures(d_px, a_px, 2.0, (40.0, 80.0))
    from_um = size_figures(None, None, None, (40.0, 80.0), min_feret_um=d_px * 2.0,
                           area_um2=a_px * 4.0)
    for key in ("n", "min_feret_um", "area_um2", "atrophy_factor", "hypertrophy_factor",
                "variability_coefficient", "n_atrophic", "n_hypertrophic"):
        assert from_px[key] == from_um[key], key
    # d = 40, 60, 90, 180 µm: AF 0; HF 90 -> 2, 180 -> 4 => 1000 * 6 / 4
    assert from_px["atrophy_factor"] == 0.0 and from_px["hypertrophy_factor"] == 1500.0
    assert (from_px["n_atrophic"], from_px["n_hypertrophic"]) == (0, 2)
    assert from_px["min_feret_px"] == describe_sizes(d_px) and from_um["min_feret_px"] is None
    assert from_px["reasons"] == {}


def test_size_figures_without_pixel_size_give_reasons():
    out = size_figures(np.array([10.0]), None, None, (40.0, 80.0))
    assert out["n"] == 1 and out["min_feret_um"] is None and out["atrophy_factor"] is None
    assert set(out["reasons"]) == {"min_feret_um", "atrophy_factor", "hypertrophy_factor",
                                   "variability_coefficient"}
    assert describe_sizes(np.array([np.nan])) is None
    assert describe_sizes(np.array([5.0]))["sd"] is None


def test_scoring_still_exports_the_figures():
    assert scoring.atrophy_factor is atrophy_factor and scoring.size_figures is size_figures
    assert scoring.hypertrophy_factor is hypertrophy_factor
    assert scoring.variability_coefficient is variability_coefficient
