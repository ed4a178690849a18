"""Scoring from result files: a slide's figures after review, and tables without pixels.

A review saved by the napari plugin (:mod:`histo.review.state`) excludes fibers, confirms or rejects
SAD calls and may edit the labels. :func:`reviewed_result` applies it to the slide's per-fiber
table and recomputes the classes, slide statistics, grouping and evidence from the (reviewed)
labels in the folder, without the original image: fiber types and nuclei need pixels, so
their per-fiber calls are kept from the first scoring and only their slide figures are
recounted over the fibers still counted. :func:`score_table` (scoring a fiber table without
the slide's pixels) is shared with the whole-slide path (:mod:`histo.batch.wsi`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Per-fiber calls that need the slide's pixels (fiber type, nuclei): scoring without pixels
#: cannot make them, so they come from where they were made.
_PIXEL_COLUMNS = ("fiber_type", "n_nuclei", "n_central_nuclei", "is_centrally_nucleated")


class _PixelSize:
    """Stand-in image for :func:`histo.score.scoring.score_slide` when only the pixel size is known
    (nuclei and type channels are then read elsewhere or not at all)."""

    def __init__(self, pixel_size_um: float | None, path=None):
        self.pixel_size_um, self.path = pixel_size_um, path


def score_table(fibers: pd.DataFrame, shape_yx, *, pixel_size_um: float | None, stain: str,
                settings, edges: np.ndarray, tissue_area_um2: float | None = None,
                labels: np.ndarray | None = None, path=None) -> tuple[pd.DataFrame, dict]:
    """Score a fiber table without the slide's pixels (whole slides, reviewed tables).

    Runs :func:`histo.score.scoring.score_slide` with nuclei and fiber typing switched off (they
    need pixels) and the adjacency ``edges`` given; per-fiber calls that need pixels
    (``fiber_type``, nucleus counts) already in ``fibers`` (made tile by tile) are kept. ``labels`` is only used for the density
    area when ``tissue_area_um2`` is None; without it an all-zero view of ``shape_yx`` (no
    memory) stands in, so pass ``tissue_area_um2`` then.
    """
    from histo.score.scoring import score_slide

    if labels is None:
        labels = np.broadcast_to(np.zeros((), np.uint32), tuple(int(s) for s in shape_yx))
    off = settings.replace(nuclei={"enabled": False}, fiber_types={"enabled": False})
    out, part = score_slide(fibers, labels, _PixelSize(pixel_size_um, path), off, stain=stain,
                            edges=edges, tissue_area_um2=tissue_area_um2)
    for col in _PIXEL_COLUMNS:
        if col in fibers:
            out[col] = fibers[col].to_numpy()
    part["settings"] = settings.to_dict()
    return out, part


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
    from histo.review.state import reviewed_labels
    from histo.review.flags import REVIEW_COLUMNS, apply_review
    from histo.score.scoring import CLASS_COLUMNS

    table = review.fibers if review.edited_labels else fibers
    slide = summary.get("slide") or {}
    if slide.get("whole_slide"):
        notes = ["review applied to the fiber table; whole-slide figures are not recomputed"]
        return apply_review(table, review), summary, notes
    from histo.measure.adjacency import fiber_adjacency
    from histo.score.evidence import build_evidence
    from histo.score.nuclei import recount_central
    from histo.score.settings import ScoringSettings

    settings = ScoringSettings.from_dict(summary.get("settings") or {})
    ps = slide.get("pixel_size_um") or (summary.get("statistics") or {}).get("pixel_size_um")
    labels = reviewed_labels(result_dir, review)
    derived = set(CLASS_COLUMNS) | set(REVIEW_COLUMNS) | {"atrophy_group", *_PIXEL_COLUMNS}
    base = table.drop(columns=[c for c in table.columns if c in derived])
    base["excluded"] = base["label"].map(review.flags).eq("excluded").to_numpy()
    base["review_flag"] = base["label"].map(review.flags).fillna("").to_numpy(dtype=object)
    gap = settings.gap_px(ps)
    basis = (summary.get("statistics") or {}).get("area_basis") or {}
    tissue = basis.get("area_um2") if basis.get("source") == "tissue area given" else None
    out, part = score_table(base, labels.shape, pixel_size_um=ps, stain=slide.get("stain"),
                            settings=settings, edges=fiber_adjacency(labels, max_gap_px=gap),
                            tissue_area_um2=tissue, labels=labels)
    out = apply_review(out, review)
    for col in _PIXEL_COLUMNS:  # per-fiber calls that need pixels: kept from the scoring
        if col in fibers:
            out[col] = out["label"].map(fibers.set_index("label")[col]).to_numpy()
    counted = out["counted"].to_numpy(bool)
    part["fiber_types"] = summary.get("fiber_types") or {}
    part["nuclei"] = recount_central(summary.get("nuclei") or {}, out, counted)
    part["evidence"] = build_evidence(part, settings)
    from histo.results.writer import to_jsonable

    return out, to_jsonable({**summary, **part}), []


