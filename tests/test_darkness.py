"""Tests of histo.measure.darkness: darkness per stain against the right reference (issue 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from histo.measure.darkness import fiber_darkness, fit_type_levels, local_reference, robust_z
from histo.measure.morphometry import measure_fibers
from histo.score.fibertypes import type_fibers
from histo.score.scoring import classify_fibers, score_table
from histo.score.settings import ScoringSettings

TYPE2_OD, TYPE1_OD = 0.28, 0.40


def nadh_table(type1_fraction: float, *, n_side: int = 22, gradient: bool = False,
               n_dark: int = 0, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Equal-size fibers on a grid: a fraction type 1 (OD 0.40), the rest type 2 (0.28), SD
    0.03; optionally a 0.8 -> 1.2 stain gradient across x and ``n_dark`` small very dark
    fibers (OD 0.8-1.0, min Feret 15 instead of 50). Returns the table and the true types."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n_side, 0:n_side]
    y, x = yy.ravel() * 100.0, xx.ravel() * 100.0
    n = y.size
    is1 = rng.random(n) < type1_fraction
    od = np.where(is1, TYPE1_OD, TYPE2_OD) + rng.normal(0, 0.03, n)
    size = np.full(n, 50.0)
    truth = np.where(is1, "1", "2").astype(object)
    dark = rng.choice(n, n_dark, replace=False) if n_dark else np.array([], int)
    od[dark] = rng.uniform(0.8, 1.0, n_dark)
    size[dark] = 15.0
    truth[dark] = "dark"
    if gradient:
        od *= 0.8 + 0.4 * x / x.max()
    table = pd.DataFrame({"label": np.arange(1, n + 1), "mean_od": od, "centroid_y_px": y,
                          "centroid_x_px": x, "min_feret_um": size, "is_edge": False})
    return table, truth


@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize("mix", [0.1, 0.9])
def test_type_levels_from_10_to_90_percent(mix, gradient):
    table, truth = nadh_table(mix, gradient=gradient)
    fit = fit_type_levels(table["mean_od"].to_numpy(), y=table["centroid_y_px"].to_numpy(),
                          x=table["centroid_x_px"].to_numpy(), size=table["min_feret_um"].to_numpy())
    assert fit["n_levels"] == 2 and fit["outlier"] is None
    assert fit["means"] == pytest.approx([TYPE2_OD, TYPE1_OD], rel=0.06)
    assert fit["weights"][1] == pytest.approx(np.mean(truth == "1"), abs=0.05)
    # the gradient is found (1.2 / 0.8 = 1.5 across the slide) and only when there is one
    assert fit["gradient"] == pytest.approx(1.5 if gradient else 1.0, abs=0.08)
    typed = np.where(fit["corrected"] > fit["thresholds"][0], "1", "2")
    assert np.mean(typed == truth) > 0.95


@pytest.mark.parametrize("gradient", [False, True])
@pytest.mark.parametrize("mix", [0.1, 0.3, 0.6, 0.9])
def test_nadh_darkness_does_not_follow_fiber_type(mix, gradient):
    """Normal type-1 fibers are not dark at any mix; before issue 11 30 % type 1 gave ~30 % dark."""
    table, _ = nadh_table(mix, gradient=gradient)
    z, ref, info = fiber_darkness(table, stain="nadh")
    assert info["method"] == "darkest fiber-type level"
    assert np.mean(z >= ScoringSettings().dark_min_z) <= 0.01
    # the reference is the type-1 level, at the fiber's place on the gradient
    assert np.median(ref / (0.8 + 0.4 * table["centroid_x_px"] / table["centroid_x_px"].max())
                     if gradient else ref) == pytest.approx(TYPE1_OD, rel=0.06)


@pytest.mark.parametrize("mix", [0.1, 0.5, 0.9])
def test_small_dark_fibers_are_an_outlier_component_and_dark(mix):
    table, truth = nadh_table(mix, n_dark=25, gradient=True, seed=3)
    z, _, info = fiber_darkness(table, stain="nadh")
    assert info["n_levels"] == 2
    assert info["outlier_component"]["n"] == 25
    dark = truth == "dark"
    assert (z[dark] >= 3).all()
    assert np.mean(z[~dark] >= 3) <= 0.01


def test_dark_component_of_normal_size_is_a_type_not_atrophy():
    """Without small size, a dark 10 % is type 1 (a type level), not an outlier component."""
    table, _ = nadh_table(0.0, n_dark=40, seed=4)
    table["min_feret_um"] = 50.0
    fit = fit_type_levels(table["mean_od"].to_numpy(), size=table["min_feret_um"].to_numpy())
    assert fit["outlier"] is None and fit["n_levels"] == 2


@pytest.mark.parametrize("mix", [0.1, 0.9])
def test_typing_with_gradient_and_atrophic_fibers(mix):
    table, truth = nadh_table(mix, gradient=True, n_dark=15, seed=5)
    table["counted"] = True
    types, info = type_fibers(table, np.zeros((2, 2), int), None, ScoringSettings(), stain="nadh")
    assert info["n_levels"] == 2 and info["outlier_component"]["n"] == 15
    normal = truth != "dark"
    assert np.mean(types[normal].to_numpy() == truth[normal]) > 0.95
    assert np.mean(types[normal] == "1") == pytest.approx(np.mean(truth[normal] == "1"), abs=0.05)
    assert (types[~normal] == "1").all()          # atrophic fibers get the darkest level


def test_he_darkness_is_local_so_a_gradient_does_not_hide_or_make_dark_fibers():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:20, 0:20]
    x = xx.ravel() * 100.0
    od = 0.3 * (0.8 + 0.4 * x / x.max()) * (1 + rng.normal(0, 0.03, x.size))
    od[200] *= 1.35                       # a dark fiber on the light side of the gradient
    table = pd.DataFrame({"mean_od": od, "centroid_y_px": yy.ravel() * 100.0,
                          "centroid_x_px": x, "is_edge": False})
    z, ref, info = fiber_darkness(table, stain="he")
    assert info["method"].startswith("local")
    assert z[200] > 5
    assert np.delete(z, 200).max() < 3
    assert ref[200] == pytest.approx(0.3 * 0.8, rel=0.05)      # its neighbours' OD
    # against the whole slide the same fiber is unremarkable (robust z < 1)
    assert robust_z(od)[200] < 1


def test_local_reference_leaves_the_fiber_itself_out():
    v = np.array([0.0, 0.0, 0.0, 10.0])
    out = local_reference(v, np.zeros(4), np.arange(4.0), np.ones(4, bool), n_local=2)
    assert out.tolist() == [0.0, 0.0, 5.0, 0.0]


def test_measure_fibers_uses_the_one_darkness_function():
    rng = np.random.default_rng(2)
    lab = np.zeros((120, 120), np.int32)
    k = 0
    for i in range(6):
        for j in range(6):
            k += 1
            lab[i * 20 + 2: i * 20 + 18, j * 20 + 2: j * 20 + 18] = k
    grey = np.full(lab.shape, 250.0)
    level = np.where(rng.random(k + 1) < 0.3, 90.0, 140.0)
    grey[lab > 0] = level[lab[lab > 0]]
    df = measure_fibers(lab, grey.astype(np.uint8), stain="nadh")
    z, ref, _ = fiber_darkness(df, stain="nadh")
    np.testing.assert_allclose(df["darkness"], z)
    np.testing.assert_allclose(df["darkness_ref"], ref)
    assert df["basophilia"].isna().all()


def _he_table(central: bool) -> pd.DataFrame:
    """25 normal H&E fibers and one small angular dark basophilic fiber (label 13)."""
    yy, xx = np.mgrid[0:5, 0:5]
    n = 25
    t = pd.DataFrame({
        "label": np.arange(1, n + 1), "centroid_y_px": yy.ravel() * 100.0,
        "centroid_x_px": xx.ravel() * 100.0, "min_feret_um": 50.0, "angularity": 0.1,
        "darkness": 0.0, "is_edge": False,
        "basophilia": 0.1 + 0.005 * np.sin(np.arange(n)),
        "is_centrally_nucleated": pd.array([False] * n, dtype="boolean"),
    })
    t.loc[12, ["min_feret_um", "angularity", "darkness", "basophilia"]] = [15.0, 0.8, 5.0, 0.4]
    t.loc[12, "is_centrally_nucleated"] = central
    return t


def test_regenerating_fibers_are_their_own_class_and_not_sad():
    out, info = classify_fibers(_he_table(central=True), ScoringSettings(), stain="he",
                                pixel_size_um=1.0)
    assert bool(out.loc[12, "is_regenerating"]) and not bool(out.loc[12, "is_sad"])
    assert bool(out.loc[12, "is_dark"]) and bool(out.loc[12, "is_small"])
    assert int(out["is_regenerating"].sum()) == 1
    assert info["regenerating"]["n_regenerating"] == 1


def test_basophilic_fiber_without_central_nucleus_stays_sad():
    out, _ = classify_fibers(_he_table(central=False), ScoringSettings(), stain="he",
                             pixel_size_um=1.0)
    assert not bool(out.loc[12, "is_regenerating"]) and bool(out.loc[12, "is_sad"])


def test_regenerating_not_assessed_off_he():
    out, info = classify_fibers(_he_table(central=True), ScoringSettings(), stain="nadh",
                                pixel_size_um=1.0)
    assert out["is_regenerating"].isna().all() and bool(out.loc[12, "is_sad"])
    assert info["regenerating"]["assessed"] is False


def test_score_table_types_a_whole_slide_table_slide_wide():
    """Whole slides (score_table, no pixels): NADH types come from mean_od with the same fit."""
    table, truth = nadh_table(0.3, gradient=True, seed=9)
    table["area_um2"] = 1960.0
    z, ref, _ = fiber_darkness(table, stain="nadh")
    table["darkness"], table["angularity"] = z, 0.1
    out, summary = score_table(table, (2200, 2200), pixel_size_um=1.0, stain="nadh",
                               settings=ScoringSettings(permutations=0),
                               edges=np.zeros((0, 2), int), tissue_area_um2=2200.0 ** 2)
    assert summary["fiber_types"]["n_levels"] == 2
    assert np.mean(out["fiber_type"].to_numpy() == truth) > 0.95
    assert int(out["is_dark"].sum()) == 0
