"""The napari summary names the reference of every figure compared with a normal range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
from histo.score.evidence import build_evidence  # noqa: E402
from histo.score.settings import ScoringSettings  # noqa: E402
from napari_histo._summary import summary_html  # noqa: E402

pytestmark = pytest.mark.napari


def test_summary_panel_names_the_reference():
    n = 250
    stats = {"n_counted": n, "n": n, "too_few": False, "min_feret_um": {"mean": 52.0},
             "reasons": {}, "atrophy_factor": 120.0, "hypertrophy_factor": 30.0,
             "variability_coefficient": 210.0,
             "classes": {k: {"n": 2, "fraction": 2 / n} for k in ("small", "angular", "dark", "sad")},
             "thresholds": {"dark_applies": True}}
    settings = ScoringSettings(reference="child", age_years=12)
    summary = {"statistics": stats,
               "evidence": build_evidence({"statistics": stats}, settings)}
    table = pd.DataFrame({"label": np.arange(1, 4), "counted": True, "is_sad": False})
    text = summary_html(table, summary)
    assert "(child, 12 years, Oertel 1988, interpolated by age)" in text
    assert "normal " + settings.reference_in_force.range_text().split("normal ")[1] in text
