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

import numpy as np
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
    labels = reviewed_labels(result_dir, review)
    out, part = rescore_flags(table, labels, review.flags, summary=summary, settings=settings,
                              pixel_calls=fibers)
    return out, rebuild_summary(summary, part, n_fibers=len(out), fibers=out), []


def _by_label(table: pd.DataFrame, column: str, labels: pd.Series):
    """``table[column]`` in the order of ``labels`` (missing: NA), its dtype kept."""
    return table.set_index("label")[column].reindex(labels.to_numpy()).array


def rescore_flags(fibers: pd.DataFrame, labels: np.ndarray, flags, *, summary: dict[str, Any],
                  settings: ScoringSettings, edges: np.ndarray | None = None,
                  pixel_calls: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score a measured table again after flags changed, without the slide's pixels.

    A flag changes which fibers are counted and which SAD calls stand, never a fiber's
    measurements or its pixel calls (fiber type, nuclei), so only the pixel-free part of the
    scoring runs again (:func:`histo.score.scoring.score_table`: classes, statistics,
    grouping, evidence); the pixel calls are kept from ``pixel_calls`` (default: ``fibers``)
    and their slide figures recounted over the fibers still counted. This is the computation
    ``histo report`` makes for a saved review (:func:`reviewed_result`), so the widget and the
    report agree. Pure; runs in a worker thread.

    Parameters
    ----------
    fibers : DataFrame
        The measured and scored table (a review already applied or not).
    labels : (Y, X) int array
        Its labels (adjacency and density area).
    flags : mapping of label to flag, or histo.review.state.Review
    summary : dict
        The slide's summary (pixel size, stain, fiber types, nuclei, area basis).
    settings : ScoringSettings
    edges : (E, 2) int array, optional
        The adjacency of ``labels`` when already known.

    Returns
    -------
    fibers, part
        The reviewed table and the scoring part of the summary
        (for :func:`histo.score.summary.rebuild_summary`).
    """
    pixel_calls = fibers if pixel_calls is None else pixel_calls
    flag_map = dict(getattr(flags, "flags", flags))
    slide = summary.get("slide") or {}
    ps = slide.get("pixel_size_um") or (summary.get("statistics") or {}).get("pixel_size_um")
    derived = set(CLASS_COLUMNS) | set(REVIEW_COLUMNS) | {"atrophy_group"}
    base = fibers.drop(columns=[c for c in fibers.columns if c in derived])
    for col in PIXEL_COLUMNS:  # the pixel calls the classes read (central nuclei: regenerating)
        if col in pixel_calls:
            base[col] = _by_label(pixel_calls, col, base["label"])
    base["excluded"] = base["label"].map(flag_map).eq("excluded").to_numpy()
    base["review_flag"] = base["label"].map(flag_map).astype(object).fillna("").to_numpy(dtype=object)
    if edges is None:
        edges = fiber_adjacency(labels, max_gap_px=settings.gap_px(ps))
    basis = (summary.get("statistics") or {}).get("area_basis") or {}
    tissue = basis.get("area_um2") if basis.get("source") == "tissue area given" else None
    out, part = score_table(base, labels.shape, pixel_size_um=ps, stain=slide.get("stain"),
                            settings=settings, edges=edges, tissue_area_um2=tissue, labels=labels)
    out = apply_review(out, flags)
    for col in PIXEL_COLUMNS:  # per-fiber calls that need pixels: kept from the scoring
        if col in pixel_calls:
            out[col] = _by_label(pixel_calls, col, out["label"])
    counted = out["counted"].to_numpy(bool)
    part["fiber_types"] = summary.get("fiber_types") or {}
    part["nuclei"] = recount_central(summary.get("nuclei") or {}, out, counted)
    part["evidence"] = build_evidence(part, settings)
    return out, part
