"""Segmentation QC (histo.score.qc) on small hand-built tables with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from histo.score import qc as qcmod
from histo.score.evidence import QC_PREFIX
from histo.score.qc import segmentation_qc
from histo.score.summary import build_summary, rebuild_summary


def table(areas_px, *, counted=None, **columns) -> pd.DataFrame:
    """A fiber table in pixels: area, equivalent diameter from the area, all counted."""
    a = np.asarray(areas_px, float)
    data = {"area_px": a, "equivalent_diameter_px": np.sqrt(4 * a / np.pi),
            "counted": np.ones(len(a), bool) if counted is None else counted}
    data.update(columns)
    return pd.DataFrame(data)


GOOD = [2000.0] * 300  # 300 fibers of ~50 px across: nothing to report


def test_clean_slide_is_ok_and_json_able():
    out = segmentation_qc(table(GOOD), pixel_size_um=None)
    assert out["status"] == "ok" and out["reasons"] == []
    assert out["measures"]["n_counted"] == 300
    assert out["checks"]["n_counted"] == "ok" and out["checks"]["fragments"] == "ok"
    assert out["checks"]["fiber_size"] == "skipped"  # no pixel size
    assert out["checks"]["coverage"] == out["checks"]["scale"] == "skipped"
    json.dumps(out)


@pytest.mark.parametrize("n, status", [(250, "ok"), (200, "ok"), (199, "warn"), (35, "warn"),
                                       (20, "warn"), (19, "fail"), (0, "fail")])
def test_too_few_fibers(n, status):
    out = segmentation_qc(table([2000.0] * n), pixel_size_um=None)
    assert out["checks"]["n_counted"] == status
    assert out["status"] == status
    if status != "ok":
        assert out["reasons"][0].startswith(f"N = {n} counted fibers")
    if status == "warn":
        assert "≥ 200" in out["reasons"][0]


def test_uncounted_objects_do_not_count():
    counted = np.array([True] * 150 + [False] * 150)
    out = segmentation_qc(table(GOOD, counted=counted), pixel_size_um=None)
    assert out["measures"]["n_counted"] == 150 and out["checks"]["n_counted"] == "warn"
    # without a counted column, edge and excluded objects are left out
    t = table(GOOD).drop(columns="counted")
    t["is_edge"] = [True] * 50 + [False] * 250
    t["excluded"] = [False] * 250 + [True] * 50
    assert segmentation_qc(t, pixel_size_um=None)["measures"]["n_counted"] == 200


def test_typical_area_ignores_fragments():
    # 60 fragments of 10 px² and 40 fibers: the median object is a fragment, the typical fiber not
    out = segmentation_qc(table([10.0] * 60 + [1000.0] * 30 + [3000.0] * 10), pixel_size_um=None)
    assert out["measures"]["median_area_px"] == 10.0
    assert out["measures"]["typical_area_px"] == 1000.0
    assert out["measures"]["tiny_fraction"] == pytest.approx(0.6)


@pytest.mark.parametrize("n_tiny, status", [(10, "ok"), (20, "warn"), (150, "fail")])
def test_tiny_object_fraction(n_tiny, status):
    # 300 fibers of 2000 px² plus n_tiny of 150 px² (0.075x typical, but above 50 px²)
    out = segmentation_qc(table(GOOD + [150.0] * n_tiny), pixel_size_um=None)
    frac = n_tiny / (300 + n_tiny)
    assert out["measures"]["typical_area_px"] == 2000.0
    assert out["measures"]["tiny_fraction"] == pytest.approx(frac)
    assert out["checks"]["tiny_objects"] == status
    assert out["checks"]["fragments"] == "ok"
    if status != "ok":
        pct = {20: "6.2", 150: "33"}[n_tiny]
        assert out["reasons"][0].startswith(f"{pct} % of counted objects are under 0.1× the "
                                            "typical fiber area of 2000 px²")


@pytest.mark.parametrize("n_frag, status", [(5, "ok"), (10, "warn"), (40, "fail")])
def test_fragment_fraction(n_frag, status):
    # 300 fibers + n_frag objects of 30 px²: 5/305 = 1.6 % ok, 10/310 = 3.2 % warn, 40/340 = 12 % fail
    out = segmentation_qc(table(GOOD + [30.0] * n_frag), pixel_size_um=None)
    assert out["measures"]["fragment_fraction"] == pytest.approx(n_frag / (300 + n_frag))
    assert out["checks"]["fragments"] == status


def test_the_h_and_e_disaster_fails():
    # the slide in miniature: half the objects under 50 px², median object 7 px²
    out = segmentation_qc(table([7.0] * 480 + [30.0] * 20 + [3000.0] * 500), pixel_size_um=0.5)
    assert out["status"] == "fail"
    assert out["checks"]["fragments"] == "fail" and out["checks"]["tiny_objects"] == "fail"
    assert any("under 50 px²" in r for r in out["reasons"])


@pytest.mark.parametrize("feret_um, status", [(50.0, "ok"), (8.0, "ok"), (150.0, "ok"),
                                              (6.0, "warn"), (200.0, "warn"), (2.0, "fail"),
                                              (400.0, "fail")])
def test_median_min_feret_in_um(feret_um, status):
    t = table(GOOD, min_feret_um=np.full(300, feret_um))
    out = segmentation_qc(t, pixel_size_um=0.5)
    assert out["measures"]["median_min_feret_um"] == feret_um
    assert out["checks"]["fiber_size"] == status
    if status != "ok":
        assert "median min Feret" in out["reasons"][0] and "8–150 µm" in out["reasons"][0]
    # without a pixel size the µm check is skipped
    assert segmentation_qc(t, pixel_size_um=None)["checks"]["fiber_size"] == "skipped"


def test_min_feret_in_px_is_scaled():
    t = table(GOOD, min_feret_px=np.full(300, 100.0))
    assert segmentation_qc(t, pixel_size_um=0.5)["measures"]["median_min_feret_um"] == 50.0


def test_tiny_fibers_in_pixels_warn():
    out = segmentation_qc(table([50.0] * 300), pixel_size_um=None)  # ~8 px across
    assert out["measures"]["median_equivalent_diameter_px"] == pytest.approx(np.sqrt(200 / np.pi))
    assert out["checks"]["fiber_diameter_px"] == "warn"
    assert any("not measurable" in r for r in out["reasons"])


def test_areas_in_um2_are_converted():
    t = pd.DataFrame({"area_um2": [500.0] * 300, "counted": True})  # 2000 px² at 0.5 µm/px
    out = segmentation_qc(t, pixel_size_um=0.5)
    assert out["measures"]["typical_area_px"] == pytest.approx(2000.0)
    assert out["measures"]["fiber_area_px"] == pytest.approx(600000.0)
    # µm² without a pixel size cannot become pixels: the area checks are skipped
    assert segmentation_qc(t, pixel_size_um=None)["checks"]["fragments"] == "skipped"


@pytest.mark.parametrize("n_rejected, status", [(100, "ok"), (150, "warn"), (500, "fail")])
def test_rejected_fraction(n_rejected, status):
    rejected = np.array([False] * 300 + [True] * n_rejected)
    t = table(GOOD + [2000.0] * n_rejected, rejected=rejected,
              fiber_score=np.where(rejected, 0.1, 0.9))
    out = segmentation_qc(t, pixel_size_um=None)
    assert out["measures"]["n_counted"] == 300  # rejected objects are never counted
    assert out["measures"]["rejected_fraction"] == pytest.approx(n_rejected / (300 + n_rejected))
    assert out["measures"]["median_fiber_score"] == pytest.approx(0.9)
    assert out["checks"]["rejected"] == status


def test_restored_objects_are_not_rejected():
    rejected = np.array([False] * 300 + [True] * 200)
    flags = np.array([""] * 300 + ["restored"] * 100 + [""] * 100, dtype=object)
    t = table(GOOD + [2000.0] * 200, rejected=rejected, review_flag=flags)
    out = segmentation_qc(t, pixel_size_um=None)
    assert out["measures"]["n_rejected"] == 100 and out["measures"]["rejected_fraction"] == 0.2
    assert out["measures"]["n_counted"] == 400 and out["checks"]["rejected"] == "ok"


def test_rejected_count_from_the_segmentation_report():
    out = segmentation_qc(table(GOOD), pixel_size_um=None, segmentation={"n_rejected": 300})
    assert out["measures"]["rejected_fraction"] == 0.5
    assert out["checks"]["rejected"] == "warn"


@pytest.mark.parametrize("tissue_px, status", [(1_000_000, "ok"), (3_000_000, "warn"),
                                               (10_000_000, "fail"), (0, "skipped")])
def test_fiber_coverage_of_the_tissue(tissue_px, status):
    # 300 x 2000 px² = 600,000 px² of fibers: 60 %, 20 %, 6 %
    out = segmentation_qc(table(GOOD), pixel_size_um=None,
                          segmentation={"tissue_area_px": tissue_px})
    assert out["checks"]["coverage"] == status
    if status not in ("ok", "skipped"):
        assert out["measures"]["fiber_coverage"] == pytest.approx(600_000 / tissue_px)
        assert "of the tissue" in out["reasons"][0]


def test_scale_disagreement_names_both_figures():
    scale = {"source": "pixel_size", "pixel_size_um": 0.645, "metadata_diameter_px": 74.0,
             "image_diameter_px": 37.0, "ratio": 0.5, "used": "image", "warning": None}
    out = segmentation_qc(table(GOOD), pixel_size_um=0.645, segmentation={"scale": scale})
    assert out["checks"]["scale"] == "warn" and out["status"] == "warn"
    assert out["reasons"] == ["pixel size 0.645 µm/px implies fibers of 74 px but the image "
                              "shows ~37 px (0.5×): segmented at the image's scale; check the "
                              "pixel size"]


@pytest.mark.parametrize("scale, status", [
    ({"ratio": 1.2, "metadata_diameter_px": 50.0, "image_diameter_px": 60.0}, "ok"),
    ({"ratio": 2.0, "metadata_diameter_px": 37.0, "image_diameter_px": 74.0}, "warn"),
    ({"ratio": 1.0, "warning": "no fibers seen to estimate the scale"}, "warn"),
    ({"ratio": None, "metadata_diameter_px": None, "image_diameter_px": None}, "ok"),
])
def test_scale_levels(scale, status):
    out = segmentation_qc(table(GOOD), pixel_size_um=0.5, segmentation={"scale": scale})
    assert out["checks"]["scale"] == status
    if scale.get("warning"):
        assert out["reasons"] == [scale["warning"]]


def test_missing_inputs_skip_checks():
    out = segmentation_qc(None, pixel_size_um=None)
    assert out["status"] == "ok" and set(out["checks"].values()) == {"skipped"}
    out = segmentation_qc(None, pixel_size_um=None, n_counted=12)
    assert out["status"] == "fail" and out["checks"]["tiny_objects"] == "skipped"
    with pytest.raises(TypeError, match="fibers must be"):
        segmentation_qc([1, 2], pixel_size_um=None)


def test_status_is_the_worst_check_and_reasons_worst_first():
    # warn: 150 fibers; fail: 12 % fragments; ok otherwise
    out = segmentation_qc(table([2000.0] * 150 + [30.0] * 20), pixel_size_um=None)
    assert out["checks"]["n_counted"] == "warn" and out["checks"]["fragments"] == "fail"
    assert out["status"] == "fail"
    assert "under 50 px²" in out["reasons"][0] and out["reasons"][1].startswith("N = 170")
    # only warnings: warn
    out = segmentation_qc(table([2000.0] * 150), pixel_size_um=None)
    assert out["status"] == "warn" and len(out["reasons"]) == 1


def test_thresholds_are_named_constants():
    assert (qcmod.MIN_FIBERS_WARN, qcmod.MIN_FIBERS_FAIL) == (200, 20)
    assert (qcmod.TINY_WARN, qcmod.TINY_FAIL, qcmod.TINY_AREA_FRACTION) == (0.05, 0.25, 0.1)
    assert (qcmod.FRAGMENT_WARN, qcmod.FRAGMENT_FAIL, qcmod.FRAGMENT_AREA_PX) == (0.02, 0.10, 50)
    assert (qcmod.REJECTED_WARN, qcmod.REJECTED_FAIL) == (0.30, 0.60)
    assert (qcmod.COVERAGE_WARN, qcmod.COVERAGE_FAIL) == (0.25, 0.08)


# ---------------------------------------------------------------------- in the summary
def _scored(n_counted: int) -> dict:
    """A scoring part shaped like score_slide's (no pixel-size figures)."""
    classes = {name: {"n": 0, "fraction": 0.0, "density_per_mm2": None}
               for name in ("small", "angular", "dark", "sad")}
    return {"statistics": {"n_counted": n_counted, "reasons": {}, "classes": classes,
                           "thresholds": {"dark_applies": True}},
            "grouping": {}, "fiber_types": {}, "nuclei": {}}


def test_build_summary_has_qc_and_segmentation_and_prefixes_evidence():
    from histo.score.evidence import build_evidence
    from histo.score.settings import ScoringSettings

    part = _scored(35)
    part["settings"] = ScoringSettings().to_dict()
    part["evidence"] = build_evidence(part, ScoringSettings())
    assert not part["evidence"]["text"].startswith(QC_PREFIX)
    seg = {"tissue_area_px": 1000, "scale": None}
    s = build_summary({"id": "s", "pixel_size_um": 0.5}, part, n_fibers=35, model=None,
                      segmentation=seg)
    assert s["segmentation"] == seg
    assert s["qc"]["status"] == "warn" and s["qc"]["reasons"][0].startswith("N = 35")
    assert s["evidence"]["text"].startswith(QC_PREFIX + "N = 35 counted fibers")
    assert s["evidence"]["figures"] == part["evidence"]["figures"]
    # a rebuild of an ok slide drops the prefix; without a table the previous qc is kept
    ok_part = {**_scored(300), "settings": part["settings"], "evidence": part["evidence"]}
    kept = rebuild_summary(s, ok_part, n_fibers=300)
    assert kept["qc"] == s["qc"] and kept["segmentation"] == seg
    fresh = rebuild_summary(s, ok_part, n_fibers=300, fibers=table(GOOD))
    assert fresh["qc"]["status"] == "ok" and not fresh["evidence"]["text"].startswith(QC_PREFIX)
    assert "segmentation" in fresh


def test_build_summary_without_segmentation_has_qc_only():
    s = build_summary({"id": "s", "pixel_size_um": None}, _scored(300), n_fibers=300, model=None,
                      fibers=table(GOOD))
    assert "segmentation" not in s and s["qc"]["status"] == "ok"
    assert list(s)[:5] == ["slide", "software", "model", "n_fibers", "qc"]
