"""Per-type Dubowitz figures, predominance, SAD types, and the "too few to test" wording."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk

from histo.report.cohort import slide_figures
from histo.score.dubowitz import predominance, type_figures
from histo.score.evidence import build_evidence
from histo.score.reference import reference_for
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings


def two_type_section(ny=16, nx=16, cell=70, seed=0):
    """Grid of disks at 1 µm/px: type 1 (light on ATPase 9.4) 55-65 µm, type 2 (dark) 30-46 µm
    (selective type 2 atrophy). Returns labels, table, edges and the true types."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((ny * cell, nx * cell), np.int32)
    true = np.where(rng.random(ny * nx) < 0.5, "1", "2")
    rows = []
    for k in range(1, ny * nx + 1):
        i, j = divmod(k - 1, nx)
        t = true[k - 1]
        d = rng.uniform(55, 65) if t == "1" else rng.uniform(30, 46)
        cy, cx = i * cell + cell / 2 - 0.5, j * cell + cell / 2 - 0.5
        rr, cc = disk((cy, cx), d / 2, shape=labels.shape)
        labels[rr, cc] = k
        rows.append({"label": k, "centroid_y_px": cy, "centroid_x_px": cx,
                     "bbox_y0_px": rr.min(), "bbox_x0_px": cc.min(),
                     "bbox_y1_px": rr.max() + 1, "bbox_x1_px": cc.max() + 1,
                     "area_um2": float(len(rr)), "min_feret_um": d, "angularity": 0.0,
                     "darkness": 0.0, "is_edge": i in (0, ny - 1) or j in (0, nx - 1),
                     "mean_od": (0.25 if t == "1" else 0.45) + rng.normal(0, 0.01)})
    idx = np.arange(1, ny * nx + 1).reshape(ny, nx)
    edges = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)])
    return labels, pd.DataFrame(rows), edges, true


def test_selective_type_2_atrophy_shows_per_type_in_summary_json():
    labels, fibers, edges, true = two_type_section()
    settings = ScoringSettings(reference="adult-male", permutations=0,
                               fiber_types={"atpase_ph": 9.4, "n_types": 2})
    out, summary = score_slide(fibers, labels, None, settings, stain="atpase", edges=edges)
    summary = json.loads(json.dumps(summary))            # as written to summary.json
    counted = out["counted"].to_numpy()
    assert (out.loc[counted, "fiber_type"].to_numpy() == true[counted]).mean() > 0.98
    pooled = summary["statistics"]["atrophy_factor"]
    per_type = summary["fiber_types"]["per_type"]
    af1 = per_type["1"]["sizes"]["atrophy_factor"]
    af2 = per_type["2"]["sizes"]["atrophy_factor"]
    assert af1 == 0.0 and af2 > 1.5 * pooled and af2 > 500      # hidden in the pooled figure
    n2, n = per_type["2"]["n"], summary["statistics"]["n_counted"]
    assert pooled == pytest.approx(af2 * n2 / n)                # all counted fibers are typed
    assert per_type["2"]["sizes"]["reference"] == "adult male, Dubowitz"
    # the per-type histograms share edges and add up to the typed fibers
    edges_um = summary["fiber_types"]["histogram_edges"]
    assert edges_um[1] - edges_um[0] == 5.0
    assert sum(sum(per_type[t]["histogram"]) for t in per_type) == summary["fiber_types"]["n_typed"]
    # the evidence reads them per type, each against its reference
    by_name = {f["name"]: f for f in summary["evidence"]["figures"]}
    assert by_name["type 2 atrophy factor"]["value"] == pytest.approx(af2)
    assert by_name["type 2 atrophy factor"]["outside"] is True
    assert by_name["type 2 atrophy factor"]["reference"] == "adult male, Dubowitz"
    assert f"type 2 AF {af2:.0f}" in summary["evidence"]["text"]
    # cohort.csv: per-type AF and the reference's name
    row = slide_figures(summary)
    assert row["atrophy_factor_type_2"] == pytest.approx(af2) and row["reference"] == "adult-male"
    _, assumed = score_slide(fibers, labels, None, settings.replace(reference=None),
                             stain="atpase", edges=edges)
    assert slide_figures(assumed)["reference"] == "adult-male (assumed)"


def test_type_figures_sad_types_central_nuclei_and_too_few():
    d = np.array([60, 62, 58, 30, 28, 35, 33], float)
    types = np.array(["1", "1", "1", "2", "2", "2", None], dtype=object)
    sad = np.array([0, 0, 0, 1, 1, 0, 1], bool)
    cn = np.array([False, True, False, False, False, False, None], dtype=object)
    ref = reference_for("adult-male")
    f = type_figures(d, types, unit="um", normal_range_um=ref.min_feret_um, reference=ref,
                     is_sad=sad, is_central=cn)
    assert f["sad_types"] == {"2": 2} and f["n_sad_untyped"] == 1
    assert f["per_type"]["1"]["pct_centrally_nucleated"] == pytest.approx(100 / 3)
    assert f["per_type"]["2"]["sizes"]["atrophy_factor"] == pytest.approx(1000 * (1 + 2 + 1) / 3)
    assert f["per_type"]["2"]["sizes"]["too_few"] is True
    assert f["predominance"]["type_1_pct"] == pytest.approx(50.0)


def test_predominance_follows_dubowitz_and_is_human_only():
    assert predominance({"1": 56.0, "2": 44.0}, human=True)["predominance"] == "type 1"
    assert predominance({"1": 15.0, "2A": 50.0, "2B": 35.0}, human=True)["predominance"] == "type 2"
    assert predominance({"1": 25.0, "2": 75.0}, human=True)["predominance"] is None
    rodent = predominance({"I": 5.0, "IIa": 30.0, "IIx/IIb": 65.0}, human=False)
    assert rodent["predominance"] is None and "species" in rodent["reason"]
    assert predominance({"light": 50.0, "dark": 50.0}, human=True)["type_1_pct"] is None


def _summary(n, join_count, n_groups=2, expected_groups=1.1):
    return {"statistics": {
        "n_counted": n, "n": n, "too_few": n < 200,
        "too_few_note": f"too few to test: {n} fibers < 200 (value kept, read with care)",
        "min_feret_um": {"mean": 48.0}, "reasons": {}, "atrophy_factor": 165.0,
        "hypertrophy_factor": 20.0, "variability_coefficient": 230.0,
        "classes": {k: {"n": 3, "fraction": 3 / n} for k in ("small", "angular", "dark", "sad")},
        "thresholds": {"dark_applies": False}},
        "grouping": {"on": "small", "min_group_size": 2, "n_groups": n_groups,
                     "expected_groups": expected_groups, "join_count": join_count}}


def test_too_few_to_test_wording():
    few = {"statistic": 0, "expected": 0.8, "p_value": 1.0, "too_few_to_test": True}
    ev = build_evidence(_summary(35, few), ScoringSettings())
    text = ev["text"]
    assert "too few to test for grouping (0.8 joins expected by chance, < 5)" in text
    assert "not grouped" not in text and "p = 1" not in text
    assert "atrophy factor 165 (normal < 150; too few to test: 35 fibers < 200)" in text
    assert "2 groups of >= 2 (1.1 expected by chance)" in text
    by_name = {f["name"]: f for f in ev["figures"]}
    assert by_name["atrophy factor"]["value"] == 165.0                  # value kept, marked
    assert "too few to test" in by_name["atrophy factor"]["note"]
    assert "too few to test" in by_name["grouping of small fibers (join-count p)"]["note"]
    assert by_name["groups of >= 2 small fibers"]["note"] == "1.1 expected by chance"
    # enough fibers and joins: the usual words, no marker
    many = {"statistic": 40, "expected": 30.0, "p_value": 0.2, "too_few_to_test": False}
    text = build_evidence(_summary(400, many), ScoringSettings())["text"]
    assert "small fibers not grouped beyond chance (p = 0.2)" in text
    assert "too few" not in text
    # a significant permutation p stands even with few expected joins
    sig = {"statistic": 9, "expected": 1.2, "p_value": 0.002, "too_few_to_test": True}
    assert "grouped beyond chance (p = 0.002)" in build_evidence(_summary(400, sig),
                                                                 ScoringSettings())["text"]
