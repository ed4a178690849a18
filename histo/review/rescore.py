"""A saved review applied to a slide's result files: the figures after review.

A review saved by the napari plugin (:mod:`histo.review.state`) excludes fibers, confirms or rejects
SAD calls and may edit the labels. :func:`reviewed_result` applies it to the slide's per-fiber
table and recomputes the classes, slide statistics, grouping and evidence from the (reviewed)
labels in the folder, without the original image: fiber types and nuclei need pixels, so
their per-fiber calls are kept from the first scoring and only their slide figures are
recounted over the fibers still counted (:func:`histo.score.scoring.score_table`, the
pixel-free scoring the whole-slide path uses too). The summary is rebuilt by
:func:`histo.score.summary.rebuild_summary`, like every other path's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from histo.measure.adjacency import fiber_adjacency
from histo.review.flags import REVIEW_COLUMNS, apply_review
from histo.review.state import reviewed_labels
from histo.score.evidence import build_evidence
from histo.score.nuclei import recount_central
from histo.score.scoring import CLASS_COLUMNS, PIXEL_COLUMNS, score_table
from histo.score.settings import ScoringSettings
from histo.score.summary import rebuild_summary

log = logging.getLogger(__name__)


def reviewed_result(result_dir: str | Path, summary: dict[str, Any], fibers: pd.DataFrame,
                    review) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Apply ``review`` to a slide's results; return (fibers, summary, notes).

    Parameters
    ----------
    result_dir : path
        The slide's result folder (``labels.tif`` and the review's files).
    summary : dict
        Its ``summary.json``.
    fibers : DataFrame
        Its per-fiber table (``fibers.parquet`` / ``fibers.csv``).
    review : histo.review.state.Review
        From :func:`histo.review.state.load_review`; must not be empty.
    """
    table = review.fibers if review.edited_labels else fibers
    slide = summary.get("slide") or {}
    if slide.get("whole_slide"):
        notes = ["review applied to the fiber table; whole-slide figures are not recomputed"]
        return apply_review(table, review), summary, notes
    settings = ScoringSettings.from_dict(summary.get("settings") or {})
    ps = slide.get("pixel_size_um") or (summary.get("statistics") or {}).get("pixel_size_um")
    labels = reviewed_labels(result_dir, review)
    derived = set(CLASS_COLUMNS) | set(REVIEW_COLUMNS) | {"atrophy_group", *PIXEL_COLUMNS}
    base = table.drop(columns=[c for c in table.columns if c in derived])
    base["excluded"] = base["label"].map(review.flags).eq("excluded").to_numpy()
    base["review_flag"] = base["label"].map(review.flags).astype(object).fillna("").to_numpy(dtype=object)
    gap = settings.gap_px(ps)
    basis = (summary.get("statistics") or {}).get("area_basis") or {}
    tissue = basis.get("area_um2") if basis.get("source") == "tissue area given" else None
    out, part = score_table(base, labels.shape, pixel_size_um=ps, stain=slide.get("stain"),
                            settings=settings, edges=fiber_adjacency(labels, max_gap_px=gap),
                            tissue_area_um2=tissue, labels=labels)
    out = apply_review(out, review)
    for col in PIXEL_COLUMNS:  # per-fiber calls that need pixels: kept from the scoring
        if col in fibers:
            out[col] = out["label"].map(fibers.set_index("label")[col]).to_numpy()
    counted = out["counted"].to_numpy(bool)
    part["fiber_types"] = summary.get("fiber_types") or {}
    part["nuclei"] = recount_central(summary.get("nuclei") or {}, out, counted)
    part["evidence"] = build_evidence(part, settings)
    return out, rebuild_summary(summary, part, n_fibers=len(out), fibers=out), []


