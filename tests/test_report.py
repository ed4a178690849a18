"""The cohort report: built from result folders, honours saved reviews, renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histo.errors import HistoInputError
from histo.report.html import build_report, format_number, load_cohort

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def results(tmp_path_factory, real_data):
    """A results folder made with the real pipeline: two H&E slides measured from their
    reference masks (pixel size given so the Dubowitz figures exist), plus a failed slide."""
    from histo.batch.pipeline import measure_file

    out = tmp_path_factory.mktemp("results")
    rows = []
    for name in ("cn_img01", "cn_img02"):
        folder, res = measure_file(real_data / "he" / f"{name}.tif",
                                   real_data / "he" / f"{name}_labels.png", out,
                                   pixel_size_um=0.45, stain="he")
        rows.append({"slide_id": folder.name, "path": str(real_data / "he" / f"{name}.tif"),
                     "status": "scored", "error": "", "n_fibers": res.summary["n_fibers"]})
    rows.append({"slide_id": "broken", "path": "/data/broken.svs", "status": "error",
                 "error": "could not be read as TIFF: the file is truncated"})
    pd.DataFrame(rows).to_csv(out / "cohort.csv", index=False)
    return out


def test_format_number():
    assert [format_number(v) for v in (3, 2.5, 1234.56, 0.000123, float("nan"), None, True)] == \
        ["3", "2.5", "1235", "0.000123", "–", "–", "yes"]


def test_report_lists_slides_failures_and_embeds_everything(results):
    path = build_report(results)
    html = path.read_text()
    assert path == results / "report.html"
    assert html.count('class="slide-row"') == 2 and html.count('class="slide-row failed"') == 1
    assert 'id="slide-cn_img01"' in html and 'id="slide-cn_img02"' in html
    assert "could not be read as TIFF" in html and 'class="failure-row"' in html
    # self-contained: every picture is a data URI, nothing loaded from elsewhere
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert len(srcs) == 1 + 3 * 2  # cohort box plot + (overlay, histogram, scatter) per slide
    assert not re.search(r'<(link|script)[^>]+(src|href)="http', html)
    # figures outside their normal range are highlighted, and the normal range shaded
    assert 'class="outside"' in html
    assert "normal 40–80 µm, adult male, Dubowitz (assumed: no reference given)" in html
    # every figure with a normal range names its reference beside it
    assert "≤ 150 (adult male, Dubowitz (assumed: no reference given)" in html


def test_report_honours_a_saved_review(results, tmp_path):
    from histo.review.state import save_review

    work = tmp_path / "results"
    shutil.copytree(results, work)
    before = build_report(work).read_text()
    fibers = pd.read_csv(work / "cn_img01" / "fibers.csv")
    counted = fibers.loc[fibers["counted"], "label"].tolist()
    flags = {int(lab): "excluded" for lab in counted[:5]}
    flags[int(counted[6])] = "confirmed_sad"
    save_review(work / "cn_img01", None, flags)
    after = build_report(work).read_text()
    n_before = len(counted)

    def counted_cell(html):
        row = re.search(r'data-slide="cn_img01">(.*?)</tr>', html, re.S).group(1)
        return [int(x) for x in re.findall(r"<td>(\d+)</td>", row)][:2]

    assert counted_cell(before) == [len(fibers), n_before]
    assert counted_cell(after) == [len(fibers), n_before - 5]
    assert "reviewed" in after and "5 excluded, 1 confirmed sad" in after
    assert "small angular dark fibers" in after


def test_load_cohort_scans_folders_without_cohort_csv(results, tmp_path):
    work = tmp_path / "r"
    shutil.copytree(results, work)
    (work / "cohort.csv").unlink()
    assert sorted(load_cohort(work)["slide_id"]) == ["cn_img01", "cn_img02"]
    with pytest.raises(HistoInputError, match="no cohort.csv"):
        load_cohort(tmp_path)


def test_report_command_rebuilds_from_files(results, tmp_path):
    from histo.cli import main

    work = tmp_path / "r"
    shutil.copytree(results, work)
    (work / "report.html").unlink(missing_ok=True)
    assert main(["report", str(work)]) == 0
    assert (work / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (make apt)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    from PIL import Image

    html = build_report(results)
    profile = tempfile.mkdtemp(dir=tmp_path)
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={shot}", "--window-size=1400,2000", html.as_uri()],
                   check=True, timeout=120, capture_output=True)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1400)
    assert img.std() > 20  # text, tables and plots drawn, not a blank page
    assert (np.abs(img.astype(int) - [253, 227, 227]).sum(-1) < 12).sum() > 50  # red 'outside' cells
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          html.as_uri()], check=True, timeout=120, capture_output=True, text=True).stdout
    assert dom.count('class="slide-row"') == 2 and 'data-slide="broken"' in dom
    assert dom.count("<img") == 7
