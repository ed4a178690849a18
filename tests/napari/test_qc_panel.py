"""The summary panel shows the slide's segmentation QC (status in colour, reasons)."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("napari")
from napari_histo._summary import QC_COLORS, qc_html, summary_html  # noqa: E402

pytestmark = pytest.mark.napari


def test_qc_line_heads_the_panel():
    df = pd.DataFrame({"label": [1], "counted": [True], "is_sad": [False]})
    summary = {"qc": {"status": "fail", "reasons": ["N = 1 counted fibers: too few", "a < b"]}}
    text = summary_html(df, summary)
    assert text.startswith(f"segmentation QC <b style='color:{QC_COLORS['fail']}'>fail</b>")
    assert "N = 1 counted fibers: too few; a &lt; b" in text
    assert qc_html({"qc": {"status": "ok", "reasons": []}}).endswith(">ok</b>")
    assert qc_html({}) == "" and not summary_html(df, {}).startswith("segmentation QC")
