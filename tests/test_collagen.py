"""Tests of histo.measure.collagen: PSR collagen fractions on a constructed section with a known
answer, on a real PSR image (sanity bounds), and in summary.json of a PSR slide."""

from __future__ import annotations

import numpy as np
import pytest

from histo.errors import HistoInputError
from histo.measure.collagen import collagen_fractions, collagen_summary, red_collagen_od

YELLOW, RED, GLASS = (200, 185, 70), (165, 45, 60), (205, 205, 200)


def section():
    """A 200 x 260 px PSR-like section with known collagen areas.

    Columns 0-219: tissue; 220-259: glass. Fibers are 40 px squares separated by 2 px red gaps
    (endomysium); a 24 px red septum (rows 84-107) crosses the tissue; a 3 px red layer
    (columns 217-219) lines the fascicle edge, opening onto glass (perimysium / epimysium).
    Returns the image, the fiber labels and the exact endomysial and perimysial pixel counts.
    """
    img = np.zeros((200, 260, 3), np.uint8)
    img[:] = RED
    img[:, 220:] = GLASS
    labels = np.zeros((200, 260), np.int32)
    label = 0
    for y0, h in ((0, 40), (42, 42), (108, 40), (150, 50)):  # rows 84-107: the septum
        for x0 in range(0, 216, 42):
            w = min(40, 217 - x0)
            label += 1
            labels[y0:y0 + h, x0:x0 + w] = label
    img[labels > 0] = YELLOW
    tissue = np.zeros((200, 260), bool)
    tissue[:, :220] = True
    septum = np.zeros_like(tissue)
    septum[84:108, :220] = True
    edge = np.zeros_like(tissue)
    edge[:, 217:220] = True
    collagen = tissue & (labels == 0)
    perimysial = collagen & (septum | edge)
    endomysial = collagen & ~perimysial
    return img, labels, int(tissue.sum()), int(endomysial.sum()), int(perimysial.sum())


def test_constructed_section_known_answer_from_colour_and_from_labels():
    img, labels, tissue, endo, peri = section()
    assert endo > 1000 and peri > 5000  # the construction has both
    for fibers in (None, labels):
        f = collagen_fractions(img, septum_min_px=10, fibers=fibers)
        assert f.tissue_px == tissue
        assert f.collagen_px == endo + peri
        # gap mouths that open onto the septum or the edge layer: a disk of 10 px reaches
        # a pixel or two into each (exact opening semantics)
        assert f.endomysial_px == pytest.approx(endo, abs=40)
        assert f.perimysial_px == pytest.approx(peri, abs=40)
        assert f.endomysial_px + f.perimysial_px == f.collagen_px
        assert f.endomysial_fraction == pytest.approx(endo / tissue, abs=0.002)
        assert f.perimysial_fraction == pytest.approx(peri / tissue, abs=0.002)


def test_septum_width_decides_the_split():
    img, _, _, endo, peri = section()
    # a septum width above 24 px: the septum becomes "endomysial" too; only the edge layer
    # (600 px, open onto glass) and the mouths that open onto the glass (up to 15 px deep:
    # 24 x 15 of the septum, a few px of each gap) stay perimysial
    wide = collagen_fractions(img, septum_min_px=30)
    assert 600 <= wide.perimysial_px < 600 + 24 * 15 + 5 * 2 * 15 + 200 < 0.25 * peri
    # under 2 px everything is a septum
    assert collagen_fractions(img, septum_min_px=1).endomysial_px == 0


def test_dimmer_tinted_scan_reads_the_same():
    img, _, _, _, _ = section()
    dim = (img.astype(float) * np.array([0.8, 0.85, 0.9])).astype(np.uint8)
    a = collagen_fractions(img, septum_min_px=10)
    b = collagen_fractions(dim, septum_min_px=10)
    assert b.collagen_px == a.collagen_px
    assert b.perimysial_px == pytest.approx(a.perimysial_px, abs=20)


def test_red_od_separates_collagen_from_fibers_and_glass():
    img, labels, _, _, _ = section()
    red = red_collagen_od(img)
    assert red[labels > 0].max() < 0.05
    assert red[:, 230:].max() < 0.05  # glass
    assert red[90, 50] > 0.4


def test_real_psr_crop_sanity(real_data):
    """fs_psr_crop (mouse, picrosirius red; pixel size unknown, ~0.5 µm/px from its fibers of
    60-80 px): some endomysial and some perimysial collagen, a few % of the tissue."""
    tifffile = pytest.importorskip("tifffile")
    img = tifffile.imread(real_data / "psr" / "fs_psr_crop.tif")
    rec = collagen_summary(img, pixel_size_um=0.5)
    assert 0.6 < rec["tissue_area_px"] / (img.shape[0] * img.shape[1]) < 0.95  # glass top right
    assert 0.03 < rec["collagen_fraction"] < 0.15
    assert 0.02 < rec["endomysial_fraction"] < 0.10
    assert 0.005 < rec["perimysial_fraction"] < 0.06
    assert rec["endomysial_fraction"] + rec["perimysial_fraction"] == pytest.approx(
        rec["collagen_fraction"])
    assert rec["septum_min_px"] == 20.0


def test_summary_septum_width_basis_and_errors():
    img, _, _, _, _ = section()
    rec = collagen_summary(img, fiber_min_feret_px=50)
    assert rec["septum_min_px"] == 10.0 and rec["septum_min_basis"].startswith("no pixel size")
    assert "tissue_area_mm2" not in rec
    with pytest.raises(HistoInputError, match="pixel size"):
        collagen_summary(img)
    with pytest.raises(HistoInputError, match=r"RGB"):
        collagen_fractions(img[..., 0], septum_min_px=10)
    with pytest.raises(HistoInputError, match="fibers has shape"):
        collagen_fractions(img, septum_min_px=10, fibers=np.zeros((5, 5)))


def test_psr_slide_summary_has_collagen():
    from histo.batch.pipeline import analyze
    from histo.io.image import ImageData

    img, labels, tissue, endo, peri = section()
    image = ImageData(img, "YXS", pixel_size_um=1.0, pixel_size_source="user")
    result = analyze(image, labels, stain="psr")
    col = result.summary["collagen"]
    assert col["tissue_area_px"] == tissue
    assert col["perimysial_fraction"] == pytest.approx(peri / tissue, abs=0.003)
    assert col["endomysial_fraction"] == pytest.approx(endo / tissue, abs=0.003)
    assert col["septum_min_basis"] == "10 µm at 1 µm/px"
    he = analyze(image, labels, stain="he")
    assert "collagen" not in he.summary


def test_collagen_reaches_the_cohort_row_and_the_report_section():
    from histo.report.cohort import slide_figures
    from histo.report.html import _sections

    img, labels, _, _, _ = section()
    summary = {"statistics": {"n_counted": 20},
               "collagen": collagen_summary(img, labels, pixel_size_um=1.0)}
    row = slide_figures(summary)
    assert row["perimysial_collagen_fraction"] == summary["collagen"]["perimysial_fraction"]
    assert row["endomysial_collagen_fraction"] == summary["collagen"]["endomysial_fraction"]
    sections = dict(_sections(summary))
    rows = dict(sections["Collagen (picrosirius red)"])
    assert rows["septum from"] == "10 µm at 1 µm/px"
    assert "perimysial collagen (fraction of tissue)" in rows
    assert "Collagen (picrosirius red)" not in dict(_sections({"statistics": {}}))
