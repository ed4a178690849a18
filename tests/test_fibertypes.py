"""Fiber typing (intensity levels, IF type channels), enclosed fibers and type grouping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo.errors import HistoInputError
from histo.score.fibertypes import (
    enclosed_fibers,
    fit_levels,
    level_names,
    otsu_1d,
    type_fibers,
    type_statistics,
)
from histo.score.settings import ScoringSettings


def grid(ny, nx, cell=20, radius=8):
    """Square grid of disks (labels 1..ny*nx row-major), table and 4-neighbour edges."""
    yy, xx = np.indices((ny * cell, nx * cell))
    labels = np.zeros((ny * cell, nx * cell), np.int32)
    for k in range(ny * nx):
        i, j = divmod(k, nx)
        labels[(yy - (i * cell + cell // 2)) ** 2 + (xx - (j * cell + cell // 2)) ** 2
               <= radius ** 2] = k + 1
    idx = np.arange(1, ny * nx + 1).reshape(ny, nx)
    edges = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)])
    ii, jj = np.divmod(np.arange(ny * nx), nx)
    fibers = pd.DataFrame({"label": idx.ravel(),
                           "counted": (ii > 0) & (ii < ny - 1) & (jj > 0) & (jj < nx - 1)})
    return labels, fibers, edges


def test_level_names_by_stain_and_ph():
    assert level_names("nadh", 3) == ("2B", "2A", "1")
    assert level_names("atpase", 2, 4.3) == ("2", "1")
    assert level_names("atpase", 3, 4.6) == ("2A", "2B", "1")
    assert level_names("atpase", 3, 9.4) == ("light", "intermediate", "dark")


@pytest.mark.parametrize("means, expected", [
    ([0.3], 1),
    ([0.2, 0.5], 2),
    ([0.1, 0.35, 0.6], 3),
])
def test_bic_chooses_the_number_of_levels(means, expected):
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(m, 0.03, 60) for m in means])
    fit = fit_levels(values)
    assert fit["n_levels"] == expected
    assert len(fit["thresholds"]) == expected - 1
    for lo, hi, cut in zip(sorted(means), sorted(means)[1:], fit["thresholds"]):
        assert lo < cut < hi
    if expected > 1:
        forced = fit_levels(values, n_levels=expected - 1)
        assert forced["n_levels"] == expected - 1 and forced["bic"].keys() == {str(expected - 1)}


def test_intensity_typing_on_nadh_table():
    labels, fibers, edges = grid(6, 6)
    dark = (fibers["label"] % 2 == 0).to_numpy()
    rng = np.random.default_rng(0)
    fibers["mean_od"] = np.where(dark, 0.6, 0.25) + rng.normal(0, 0.02, len(fibers))
    types, info = type_fibers(fibers, labels, None, ScoringSettings(), stain="nadh")
    assert info["n_levels"] == 2 and info["n_levels_chosen_by"] == "BIC"
    assert (types[dark] == "1").all() and (types[~dark] == "2").all()   # NADH: type 1 dark
    types, info = type_fibers(fibers, labels, None,
                              ScoringSettings(fiber_types={"level_names": ("slow?", "fast?")}),
                              stain="nadh")
    assert set(types) == {"slow?", "fast?"}
    none, info = type_fibers(fibers, labels, None, ScoringSettings(), stain="he")
    assert none.isna().all() and "does not show fiber types" in info["reason"]


def test_intensity_typing_from_image_when_table_has_no_od():
    labels, fibers, _ = grid(5, 5)
    image = np.full(labels.shape, 230, np.uint8)
    dark_labels = [2, 4, 7, 9, 13, 17, 19, 22, 24]
    image[np.isin(labels, dark_labels)] = 60
    image[(labels > 0) & ~np.isin(labels, dark_labels)] = 170
    types, info = type_fibers(fibers.assign(counted=True), labels, image,
                              ScoringSettings(fiber_types={"n_types": 2, "atpase_ph": 9.4}),
                              stain="atpase")
    assert info["n_levels_chosen_by"] == "given"
    by = pd.Series(types.to_numpy(), index=fibers["label"])
    assert (by[dark_labels] == "2").all() and (by.drop(dark_labels) == "1").all()


def test_otsu_1d_splits_in_the_gap():
    assert otsu_1d(np.array([100, 110, 120, 130, 700, 2800, 3300, 3600])) == pytest.approx(1750)
    with pytest.raises(HistoInputError):
        otsu_1d(np.array([5.0, 5.0]))


def test_channel_typing_with_negative_and_hybrid():
    labels, fibers, _ = grid(4, 4)
    fibers["counted"] = True
    image = np.full((3, *labels.shape), 100, np.uint16)        # 0: DAPI, 1: type I, 2: IIa
    type_i, type_iia, hybrid = [1, 6, 11], [2, 3, 7, 12, 16], [8]
    image[1][np.isin(labels, type_i + hybrid)] = 3000
    image[2][np.isin(labels, type_iia + hybrid)] = 1500
    settings = ScoringSettings(fiber_types={"type_channels": {"I": 1, "IIa": 2}})
    types, info = type_fibers(fibers, labels, image, settings, stain="if")
    by = pd.Series(types.to_numpy(), index=fibers["label"])
    assert (by[type_i] == "I").all() and (by[type_iia] == "IIa").all()
    assert by[8] == "hybrid"
    assert (by.drop(type_i + type_iia + hybrid) == "negative").all()
    assert info["channels"]["I"]["threshold_method"] == "otsu"
    assert 100 < info["channels"]["I"]["threshold"] < 3000

    fixed = settings.replace(fiber_types={"type_channels": {"I": 1, "IIa": 2},
                                          "channel_thresholds": {"IIa": 5000.0}})
    types, info = type_fibers(fibers, labels, image, fixed, stain="if")
    assert not (types == "IIa").any() and info["channels"]["IIa"]["threshold_method"] == "fixed"

    bad = settings.replace(fiber_types={"type_channels": {"I": 5}})
    with pytest.raises(HistoInputError, match="type channel 5"):
        type_fibers(fibers, labels, image, bad, stain="if")
    types, info = type_fibers(fibers, labels, image, ScoringSettings(), stain="if")
    assert types.isna().all() and "type_channels" in info["reason"]


def test_enclosed_fibers_on_a_hand_graph():
    # star: fiber 1 in the middle with neighbours 2-5; 6 hangs off 5 with another type
    edges = np.array([[1, 2], [1, 3], [1, 4], [1, 5], [5, 6], [2, 3]])
    fibers = pd.DataFrame({"label": [1, 2, 3, 4, 5, 6], "counted": True,
                           "fiber_type": ["a", "a", "a", "a", "a", "b"]})
    enclosed, eligible = enclosed_fibers(edges, fibers, min_neighbors=3)
    assert eligible.tolist() == [True, False, False, False, False, False]
    assert enclosed.tolist() == [True, False, False, False, False, False]
    enclosed, eligible = enclosed_fibers(edges, fibers, min_neighbors=2)
    assert enclosed.tolist() == [True, True, True, False, False, False]   # 5 touches a "b"
    fibers.loc[3, "fiber_type"] = pd.NA                                   # untyped neighbour
    enclosed, eligible = enclosed_fibers(edges, fibers, min_neighbors=3)
    assert not eligible[0]


def test_expected_enclosed_matches_simulation():
    labels, fibers, edges = grid(8, 8)
    rng = np.random.default_rng(3)
    base = np.array(["1"] * 40 + ["2"] * 24, dtype=object)
    fibers["fiber_type"] = rng.permutation(base)
    settings = ScoringSettings(permutations=0, fiber_types={"enclosed_min_neighbors": 4})
    stats = type_statistics(fibers, edges, settings)
    sims = []
    for _ in range(3000):
        f = fibers.assign(fiber_type=rng.permutation(base))
        sims.append(enclosed_fibers(edges, f, min_neighbors=4)[0].sum())
    assert stats["expected_enclosed"] == pytest.approx(np.mean(sims), rel=0.05)


def test_checkerboard_has_no_type_grouping_and_blocks_do():
    labels, fibers, edges = grid(10, 10)
    ii, jj = np.divmod(fibers["label"].to_numpy() - 1, 10)
    settings = ScoringSettings(permutations=999)
    checker = fibers.assign(fiber_type=np.where((ii + jj) % 2 == 0, "1", "2").astype(object))
    stats = type_statistics(checker, edges, settings)
    assert stats["n_enclosed"] == 0
    assert stats["grouping"]["join_count"]["statistic"] == 0
    assert stats["grouping"]["join_count"]["p_value"] == 1.0
    assert stats["grouping"]["beyond_chance"] is False
    assert stats["per_type"]["1"]["fraction"] == pytest.approx(0.5)

    blocks = fibers.assign(fiber_type=np.where(jj < 5, "1", "2").astype(object))
    stats = type_statistics(blocks, edges, settings)
    assert stats["grouping"]["join_count"]["p_value"] < 0.01
    assert stats["grouping"]["beyond_chance"] is True
    # interior fibers not on the block border or next to the grid edge are enclosed
    assert stats["n_enclosed"] == 48 and stats["expected_enclosed"] < 10


def test_real_if_type_channels(real_data):
    image = tifffile.imread(real_data / "if" / "fs_rat.tif")
    labels = tifffile.imread(real_data / "if" / "fs_rat_labels.tif").astype(np.int64)
    ids = np.unique(labels)[1:]
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fibers = pd.DataFrame({"label": ids, "counted": ~np.isin(ids, border)})
    settings = ScoringSettings(fiber_types={"type_channels": {"I": 1, "IIa": 2},
                                            "negative_name": "IIx/IIb"})
    types, info = type_fibers(fibers, labels, image, settings, stain="if")
    counts = types.value_counts()
    # 4 bright type I fibers in the section (one at the image edge), ~30 IIa, the rest negative
    assert counts["I"] == 4
    assert 20 <= counts["IIa"] <= 40
    assert counts["IIx/IIb"] > counts["IIa"]
    assert "hybrid" not in counts
