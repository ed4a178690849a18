"""Scoring: Dubowitz figures on a slide, classes, statistics, grouping and the summary contract."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk

from histo.errors import HistoInputError
from histo.score.scoring import classify_fibers, score_slide
from histo.score.settings import ScoringSettings

CELL = 40  # grid spacing of the synthetic sections, px


def disk_section(diameters_px, *, ny, nx, pixel_size_um=None, angularity=None, darkness=None,
                 cell=CELL):
    """A grid of disks (row-major labels 1..ny*nx), its hand-made fiber table and grid edges.

    The table follows the measure_fibers contract; ``min_feret`` is the chosen diameter times
    the pixel size (exact by construction, not measured).
    """
    labels = np.zeros((ny * cell, nx * cell), np.int32)
    rows = []
    unit = "um" if pixel_size_um else "px"
    scale = pixel_size_um or 1.0
    for k, d in enumerate(np.asarray(diameters_px, float).ravel(), start=1):
        i, j = divmod(k - 1, nx)
        cy, cx = i * cell + cell / 2 - 0.5, j * cell + cell / 2 - 0.5
        rr, cc = disk((cy, cx), d / 2, shape=labels.shape)
        labels[rr, cc] = k
        rows.append({
            "label": k, "centroid_y_px": cy, "centroid_x_px": cx,
            "bbox_y0_px": rr.min(), "bbox_x0_px": cc.min(),
            "bbox_y1_px": rr.max() + 1, "bbox_x1_px": cc.max() + 1,
            f"area_{'um2' if pixel_size_um else 'px'}": len(rr) * scale ** 2,
            f"min_feret_{unit}": d * scale,
            "angularity": 0.0 if angularity is None else angularity[k - 1],
            "darkness": 0.0 if darkness is None else darkness[k - 1],
            "is_edge": i in (0, ny - 1) or j in (0, nx - 1),
        })
    idx = np.arange(1, ny * nx + 1).reshape(ny, nx)
    edges = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)])
    return labels, pd.DataFrame(rows), edges


# ---------------------------------------------------------------------- Dubowitz on a slide
def test_disk_section_figures_match_hand_computation():
    # 5 x 6 grid; the 12 interior disks carry the chosen diameters, at 1 µm/px
    interior = [25, 35, 45, 55, 60, 65, 70, 85, 95, 50, 38, 18]
    diam = np.full((5, 6), 30.0)
    diam[1:4, 1:5] = np.reshape(interior, (3, 4))
    labels, fibers, edges = disk_section(diam, ny=5, nx=6, pixel_size_um=1.0, cell=100)
    fibers, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=0),
                                  stain="he", edges=edges)
    stats = summary["statistics"]
    d = np.array(interior, float)
    # AF: 35 -> 1, 25 -> 2, 38 -> 1, 18 -> 3  => 7 / 12;  HF: 85 -> 1, 95 -> 2 => 3 / 12
    assert stats["atrophy_factor"] == pytest.approx(1000 * 7 / 12)
    assert stats["hypertrophy_factor"] == pytest.approx(1000 * 3 / 12)
    assert stats["variability_coefficient"] == pytest.approx(1000 * d.std(ddof=1) / d.mean())
    assert stats["n_counted"] == 12 and stats["n_edge"] == 18
    assert stats["min_feret_um"]["median"] == pytest.approx(np.median(d))
    assert stats["n_atrophic"] == 4 and stats["n_hypertrophic"] == 2
    assert fibers.loc[fibers["counted"], "is_atrophic"].sum() == 4


# ---------------------------------------------------------------------- classes
def test_classes_and_counted():
    diam = np.full((4, 4), 50.0)
    diam[1, 1], diam[1, 2], diam[2, 1] = 20, 22, 60
    ang = np.zeros(16)
    ang[[5, 6, 9]] = [0.6, 0.1, 0.7]
    dark = np.zeros(16)
    dark[[5, 6, 9]] = [3.0, 3.0, 3.0]
    labels, fibers, edges = disk_section(diam, ny=4, nx=4, pixel_size_um=1.0,
                                         angularity=ang, darkness=dark)
    fibers.loc[fibers["label"] == 1, "min_feret_um"] = 5.0       # tiny but an edge fiber
    out, info = classify_fibers(fibers, ScoringSettings(), stain="he", pixel_size_um=1.0)
    by = out.set_index("label")
    assert by.loc[6, "is_small"] and by.loc[6, "is_angular"] and by.loc[6, "is_dark"]
    assert by.loc[6, "is_sad"]
    assert by.loc[7, "is_small"] and not by.loc[7, "is_angular"] and not by.loc[7, "is_sad"]
    assert by.loc[10, "is_angular"] and by.loc[10, "is_dark"] and not by.loc[10, "is_small"]
    assert not by.loc[1, "counted"] and not by.loc[1, "is_small"]   # edge fibers not classified
    assert info["small_rule_used"] == "absolute" and info["small_max_um"] == 40.0

    # darkness means type, not atrophy, on ATPase: no dark, no SAD
    out, info = classify_fibers(fibers, ScoringSettings(), stain="atpase", pixel_size_um=1.0)
    assert not out["is_dark"].any() and not out["is_sad"].any()
    assert not info["dark_applies"]

    # a reviewer's exclusion is honoured
    fibers["excluded"] = fibers["label"] == 6
    out, _ = classify_fibers(fibers, ScoringSettings(), stain="he", pixel_size_um=1.0)
    assert not out.set_index("label").loc[6, ["counted", "is_small", "is_sad"]].any()


def test_small_rules_absolute_relative_and_without_pixel_size():
    diam = np.full((4, 5), 30.0)        # 30 µm: below the male lower bound (40)
    diam[1, 1] = 15.0
    labels, fibers, _ = disk_section(diam, ny=4, nx=5, pixel_size_um=1.0)
    absolute, _ = classify_fibers(fibers, ScoringSettings(), stain="he", pixel_size_um=1.0)
    assert absolute["is_small"].sum() == 6        # all 6 counted fibers are below 40 µm
    relative, info = classify_fibers(fibers, ScoringSettings(small_rule="relative"), stain="he",
                                     pixel_size_um=1.0)
    assert relative["is_small"].sum() == 1        # 15 < 0.6 x median 30
    assert info["small_relative_cutoff"] == pytest.approx(18.0)
    both, _ = classify_fibers(fibers, ScoringSettings(small_rule="both"), stain="he",
                              pixel_size_um=1.0)
    assert both["is_small"].sum() == 1
    pct, _ = classify_fibers(fibers, ScoringSettings(small_rule="relative", small_percentile=50),
                             stain="he", pixel_size_um=1.0)
    assert pct["is_small"].sum() == 1             # strictly below the median

    _, px_fibers, _ = disk_section(diam, ny=4, nx=5)
    out, info = classify_fibers(px_fibers, ScoringSettings(small_rule="absolute"), stain="he")
    assert info["small_rule_used"] == "relative" and "needs µm" in info["notes"][0]
    assert out["is_small"].sum() == 1 and not out["is_atrophic"].any()


# ---------------------------------------------------------------------- whole slide
def test_without_pixel_size_um_figures_are_none_with_reason_and_a_given_size_fills_them():
    diam = np.full((5, 5), 30.0)
    diam[2, 2] = 12.0
    labels, fibers, edges = disk_section(diam, ny=5, nx=5)
    _, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=0), stain="he",
                             edges=edges)
    stats = summary["statistics"]
    assert stats["atrophy_factor"] is None and stats["min_feret_um"] is None
    assert "no pixel size" in stats["reasons"]["atrophy_factor"]
    assert stats["density_per_mm2"] is None
    d = np.array([30.0] * 8 + [12.0])
    assert stats["variability_coefficient"] == pytest.approx(1000 * d.std(ddof=1) / d.mean())
    assert stats["min_feret_px"]["median"] == 30.0
    assert "not computed (no pixel size)" in summary["evidence"]["text"]

    given = SimpleNamespace(pixel_size_um=2.0)
    _, summary = score_slide(fibers, labels, given, ScoringSettings(permutations=0),
                             stain="he", edges=edges)
    stats = summary["statistics"]
    assert stats["pixel_size_source"] == "image"
    # 60 µm x 8 -> 0, 24 µm -> 2: AF = 2000 / 9
    assert stats["atrophy_factor"] == pytest.approx(2000 / 9)
    assert stats["min_feret_um"]["median"] == 60.0


def test_density_on_hull_of_counted_fibers_and_on_tissue_area():
    labels, fibers, edges = disk_section(np.full((4, 4), 30.0), ny=4, nx=4, pixel_size_um=0.5)
    _, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=0), stain="he",
                             edges=edges)
    basis = summary["statistics"]["area_basis"]
    # the 4 counted disks (rows/cols 1-2) span 40 + 30 px in each direction, hull ~ a square
    # with cut corners: between the disks' total area and the bounding square
    disks_px = (labels[np.isin(labels, [6, 7, 10, 11])] > 0).sum()
    assert disks_px < basis["area_px"] < 70 ** 2
    assert summary["statistics"]["density_per_mm2"] == pytest.approx(
        4 / (basis["area_px"] * 0.25 / 1e6))
    _, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=0), stain="he",
                             edges=edges, tissue_area_um2=1e4)
    # 16 fibers, none cut by the image border (disks sit inside their cells): 16 / 0.01 mm2
    assert summary["statistics"]["density_per_mm2"] == pytest.approx(1600.0)


def test_planted_small_fiber_groups_are_found_and_tested():
    ny, nx = 10, 10
    diam = np.full((ny, nx), 34.0)
    planted = [(2, 2), (2, 3), (3, 2), (3, 3), (6, 6), (6, 7), (7, 7)]
    for i, j in planted:
        diam[i, j] = 12.0
    diam[5, 2] = 12.0                                   # a lone small fiber
    labels, fibers, edges = disk_section(diam, ny=ny, nx=nx)
    out, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=999),
                               stain="he", edges=edges)
    grp = out.set_index("label")["atrophy_group"]
    first = {grp[i * nx + j + 1] for i, j in planted[:4]}
    second = {grp[i * nx + j + 1] for i, j in planted[4:]}
    assert first == {1} and second == {2}
    assert grp[5 * nx + 2 + 1] == 0
    g = summary["grouping"]
    assert g["group_sizes"] == [4, 3] and g["on"] == "small"
    assert g["join_count"]["statistic"] == 4 + 2
    assert g["join_count"]["p_value"] < 0.01 and g["beyond_chance"] is True
    assert "grouped beyond chance" in summary["evidence"]["text"]


def test_summary_contract_and_json():
    labels, fibers, edges = disk_section(np.full((4, 4), 45.0), ny=4, nx=4, pixel_size_um=1.0)
    out, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=9),
                               stain="nadh", edges=edges)
    assert set(summary) == {"settings", "statistics", "grouping", "fiber_types", "nuclei",
                            "evidence"}
    for col in ("counted", "is_small", "is_angular", "is_dark", "is_sad", "is_atrophic",
                "is_hypertrophic", "atrophy_group", "fiber_type", "n_nuclei",
                "n_central_nuclei", "is_centrally_nucleated"):
        assert col in out, col
    assert list(out.columns[: len(fibers.columns)]) == list(fibers.columns)
    json.dumps(summary)                           # JSON-able as is
    assert ScoringSettings.from_dict(summary["settings"]) == ScoringSettings(permutations=9)
    assert out["n_nuclei"].isna().all()           # no image: nuclei not counted (NA, not 0)
    assert summary["nuclei"]["reason"] == "no image given"


def test_bad_inputs_are_input_errors():
    labels, fibers, edges = disk_section(np.full((3, 3), 30.0), ny=3, nx=3)
    with pytest.raises(HistoInputError, match="min_feret"):
        score_slide(fibers.drop(columns="min_feret_px"), labels, None, stain="he", edges=edges)
    with pytest.raises(HistoInputError, match="2-D integer"):
        score_slide(fibers, labels.astype(float), None, stain="he", edges=edges)
    with pytest.raises(HistoInputError, match="DataFrame"):
        score_slide(fibers.to_dict(), labels, None, stain="he", edges=edges)


# ---------------------------------------------------------------------- with measure_fibers
def test_measured_disks_give_the_hand_computed_figures():
    """Disks of chosen diameters, measured by histo.measure.morphometry (min Feret within 1 px)."""
    from histo.measure.morphometry import measure_fibers

    ps = 0.5
    chosen_um = [15, 25, 35, 45, 55, 65, 75, 85, 95, 105, 33, 52]   # >= 1 µm from band edges
    ny, nx, cell = 5, 6, 240
    labels = np.zeros((ny * cell, nx * cell), np.int32)
    interior = [(i, j) for i in range(1, ny - 1) for j in range(1, nx - 1)]
    k = 0
    for i in range(ny):
        for j in range(nx):
            k += 1
            d_um = chosen_um[interior.index((i, j))] if (i, j) in interior else 50.0
            rr, cc = disk((i * cell + cell / 2, j * cell + cell / 2), d_um / ps / 2, shape=labels.shape)
            labels[rr, cc] = k
    labels = labels[cell // 2: -cell // 2, cell // 2: -cell // 2]   # outer ring cut: edge fibers
    fibers = measure_fibers(labels, None, pixel_size_um=ps)
    out, summary = score_slide(fibers, labels, None, ScoringSettings(permutations=0),
                               stain="he")
    stats = summary["statistics"]
    assert stats["n_counted"] == 12
    d = np.array(chosen_um, float)
    # AF: 15 -> 3, 25 -> 2, 35 -> 1, 33 -> 1 = 7; HF: 85 -> 1, 95 -> 2, 105 -> 3 = 6
    assert stats["atrophy_factor"] == pytest.approx(1000 * 7 / 12)
    assert stats["hypertrophy_factor"] == pytest.approx(1000 * 6 / 12)
    assert stats["variability_coefficient"] == pytest.approx(1000 * d.std(ddof=1) / d.mean(),
                                                             rel=0.02)
    assert stats["min_feret_um"]["mean"] == pytest.approx(d.mean(), abs=0.5)
    assert summary["grouping"]["adjacency"]["source"].startswith("fiber_adjacency")
    # the counted disks are small (< 40 µm: 15, 25, 35, 33) but round: none is angular or SAD
    assert out["is_small"].sum() == 4 and not out["is_sad"].any()


def test_real_regenerating_mouse_muscle(real_data):
    """cn_img01: H&E, no pixel size, many centrally nucleated fibers."""
    import tifffile
    from PIL import Image

    from histo.measure.morphometry import measure_fibers

    rgb = tifffile.imread(real_data / "he" / "cn_img01.tif")
    labels = np.array(Image.open(real_data / "he" / "cn_img01_labels.png")).astype(np.int32)
    fibers = measure_fibers(labels, rgb, stain="he")
    out, summary = score_slide(fibers, labels, rgb, ScoringSettings(permutations=199),
                               stain="he")
    stats = summary["statistics"]
    assert stats["n_fibers"] == 66 and stats["n_counted"] == 46
    assert stats["atrophy_factor"] is None and stats["size_unit"] == "px"
    assert 200 < stats["variability_coefficient"] < 450
    assert 50 <= summary["nuclei"]["pct_centrally_nucleated"] <= 90
    assert out.loc[out["counted"], "n_nuclei"].sum() > 46
    assert "centrally nucleated fibers" in summary["evidence"]["text"]
    json.dumps(summary)

    um_fibers = measure_fibers(labels, rgb, pixel_size_um=0.4, stain="he")
    _, summary = score_slide(um_fibers, labels, rgb, ScoringSettings(permutations=0), stain="he")
    stats = summary["statistics"]
    assert stats["pixel_size_source"] == "fiber table"
    assert 30 < stats["min_feret_um"]["median"] < 60
    assert stats["atrophy_factor"] is not None and stats["density_per_mm2"] > 0


def test_review_flags_override_the_sad_call_and_keep_the_automatic_one():
    fibers = pd.DataFrame({
        "label": [1, 2, 3, 4],
        "min_feret_um": [10.0, 10.0, 60.0, 10.0],
        "angularity": [0.8, 0.8, 0.1, 0.8],
        "darkness": [5.0, 5.0, 0.0, 5.0],
        "is_edge": [False, False, False, True],
        "review_flag": ["not_sad", "", "confirmed_sad", "confirmed_sad"],
    })
    out, info = classify_fibers(fibers, ScoringSettings(), stain="nadh")
    assert out["is_sad_auto"].tolist() == [True, True, False, False]
    # a rejected call is dropped, a confirmed one added; an edge fiber is never counted
    assert out["is_sad"].tolist() == [False, True, True, False]
    assert info["reviewed_sad_calls"] == 3
