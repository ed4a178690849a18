"""Summary panel: fiber counts, the slide figures against their normal ranges, grouping tests.

The panel is one rich-text label rebuilt from the reviewed per-fiber table and the summary
of :func:`histo.score.scoring.score_slide` after every flag or edit. The first lines (fibers,
counted, excluded, SAD, ...) are counted from the table, so a confirmed or rejected SAD call
shows at once; the figures below (AF, HF, VC, class fractions, grouping join-count p-values
and the rest of ``summary["evidence"]``, each with its normal range, out-of-range ones in
red) come from the summary, which is recomputed after each exclusion or edit. A line at the
top gives the segmentation QC (``summary["qc"]``: ok / warn / fail and its reasons).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from histo.score.scoring import fiber_counts as slide_counts

OUTSIDE_COLOR = "#ff6060"
#: Colour of the segmentation QC line by status.
QC_COLORS = {"ok": "#60c060", "warn": "#ffb030", "fail": OUTSIDE_COLOR}


def fiber_counts(fibers: pd.DataFrame) -> dict[str, Any]:
    """Counts shown at the top of the panel (pure; also used by tests).

    ``counted`` fibers are the denominator of every percentage (edge and excluded fibers left
    out); SAD uses the reviewed call (``is_sad`` after :func:`histo.review.state.apply_review`).

    Examples
    --------
    >>> df = pd.DataFrame({"counted": [True, True, False], "is_sad": [True, False, True],
    ...                    "excluded": [False, False, True]})
    >>> c = fiber_counts(df)
    >>> c["n_fibers"], c["n_counted"], c["n_excluded"], c["n_sad"], c["pct_sad"]
    (3, 2, 1, 1, 50.0)
    """
    out: dict[str, Any] = slide_counts(fibers)
    out["n_flagged"] = int((fibers["review_flag"].fillna("") != "").sum()) if "review_flag" in fibers else 0
    n_counted = out["n_counted"]
    for name in ("sad", "small", "angular", "dark"):
        out[f"pct_{name}"] = 100.0 * out[f"n_{name}"] / n_counted if n_counted else float("nan")
    return out


def _fmt(value: Any) -> str:
    """A number for the panel: integers as such, >= 100 without decimals, >= 1 with one,
    below 1 (p-values, ratios) with three significant digits.

    Examples
    --------
    >>> [_fmt(v) for v in (7, 314.44, 16.0, 4.0, 0.0123, 1.0, None)]
    ['7', '314', '16.0', '4.0', '0.0123', '1.0', '–']
    """
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1 or value == 0:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return html.escape(str(value))


def _range(rng: Any) -> str:
    if rng is None:
        return ""
    if isinstance(rng, (list, tuple)) and len(rng) == 2:
        lo, hi = rng
        if lo is None:
            return f"&lt; {hi:g}"
        if hi is None:
            return f"&ge; {lo:g}"
        return f"{lo:g}–{hi:g}"
    return html.escape(str(rng))


def _reference(fig: dict[str, Any]) -> str:
    """Where a figure's normal range comes from, and its note, small beside the range.

    Examples
    --------
    >>> _reference({"normal_range": [None, 150], "reference": "adult male, Dubowitz"})
    ' <small>(adult male, Dubowitz)</small>'
    """
    bits = [fig.get("reference") if fig.get("normal_range") is not None else None,
            fig.get("note")]
    text = "; ".join(html.escape(str(b)) for b in bits if b)
    return f" <small>({text})</small>" if text else ""


def qc_html(summary: dict[str, Any] | None) -> str:
    """The segmentation QC line: status in its colour, then the reasons ("" without a QC).

    Examples
    --------
    >>> qc_html({"qc": {"status": "warn", "reasons": ["N = 35 counted fibers"]}})
    "segmentation QC <b style='color:#ffb030'>warn</b>: N = 35 counted fibers"
    """
    qc = (summary or {}).get("qc")
    if not isinstance(qc, dict) or not qc.get("status"):
        return ""
    status = str(qc["status"])
    color = QC_COLORS.get(status, OUTSIDE_COLOR)
    reasons = "; ".join(html.escape(str(r)) for r in qc.get("reasons") or [])
    return (f"segmentation QC <b style='color:{color}'>{html.escape(status)}</b>"
            + (f": {reasons}" if reasons else ""))


def summary_html(fibers: pd.DataFrame, summary: dict[str, Any] | None) -> str:
    """The panel's rich text (pure function of the table and the summary)."""
    summary = summary or {}
    c = fiber_counts(fibers)
    qc_line = qc_html(summary)
    rows = [*([qc_line] if qc_line else []),
        f"<b>{c['n_fibers']}</b> fibers, <b>{c['n_counted']}</b> counted "
        f"({c['n_edge']} at an edge, {c['n_excluded']} excluded)",
        f"SAD (reviewed) <b>{c['n_sad']}</b> ({_fmt(c['pct_sad'])} %) · small {c['n_small']} ({_fmt(c['pct_small'])} %) · "
        f"angular {c['n_angular']} · dark {c['n_dark']}",
    ]
    if c["n_flagged"]:
        rows.append(f"reviewed flags: {c['n_flagged']}")
    parts = ["<br>".join(rows)]

    figures = ((summary.get("evidence") or {}).get("figures")) or []
    if figures:
        lines = ["<table cellspacing='0' cellpadding='1'>",
                 "<tr><th align='left'>figure</th><th align='right'>value</th><th align='left'>&nbsp;normal</th></tr>"]
        for fig in figures:
            outside = bool(fig.get("outside"))
            style = f" style='color:{OUTSIDE_COLOR}'" if outside else ""
            unit = f" {html.escape(str(fig['unit']))}" if fig.get("unit") else ""
            lines.append(
                f"<tr{style}><td>{html.escape(str(fig.get('name', '')))}</td>"
                f"<td align='right'>{_fmt(fig.get('value'))}{unit}</td>"
                f"<td>&nbsp;{_range(fig.get('normal_range'))}{_reference(fig)}</td></tr>"
            )
        lines.append("</table>")
        parts.append("".join(lines))

    for warning in summary.get("warnings") or []:
        parts.append(f"<i>{html.escape(str(warning))}</i>")
    text = (summary.get("evidence") or {}).get("text")
    if text:
        parts.append(f"<i>{html.escape(str(text))}</i>")
    return "<hr>".join(parts)


class SummaryPanel(QWidget):
    """The slide's figures, refreshed with :meth:`update_summary`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel("No results yet: run “Segment and score” or open a results folder.")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        self.counts: dict[str, Any] = {}

    def update_summary(self, fibers: pd.DataFrame, summary: dict[str, Any] | None) -> None:
        """Show the figures of a reviewed table and its summary."""
        self.counts = fiber_counts(fibers)
        self.label.setText(summary_html(fibers, summary))

    def show_prepared(self, text: str, counts: dict[str, Any]) -> None:
        """Show text and counts made in a worker (:func:`summary_html`, :func:`fiber_counts`)."""
        self.counts = counts
        self.label.setText(text)

    def text(self) -> str:
        """The panel's current rich text (tests compare it)."""
        return self.label.text()
