"""Export a reviewed slide: its reviewed outputs written beside the unreviewed ones.

A saved review (``review.json``, :mod:`histo.review.state`) changes what the slide's figures
are, but ``fibers.csv``, ``summary.json`` and ``fibers.geojson`` in ``RESULTS/<slide-id>/``
stay the unreviewed output of ``histo score`` (a rescore replaces them; the review is applied
on top). :func:`export_review` writes the reviewed slide as a second result folder,
``RESULTS/<slide-id>/reviewed/``, with the same writer and the same contract as every result
folder (:func:`histo.results.writer.write_slide_outputs`: ``fibers.csv`` / ``.parquet``,
``summary.json``, ``labels.tif``, ``fibers.geojson``, ``rois.zip``, ``overlay.png``): the
reviewed labels, the table with the flags applied and the figures after review, computed as
``histo report`` computes them (:func:`histo.review.rescore.reviewed_result`). The folder is
replaced only when it is histo's (:mod:`histo.results.folder`); a folder of the user's own of
that name is refused, never overwritten. Pure I/O over arrays and tables, no Qt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.results.tables import read_fiber_table
from histo.results.writer import write_slide_outputs
from histo.review.flags import apply_review
from histo.review.rescore import reviewed_result
from histo.review.state import load_review, reviewed_labels

log = logging.getLogger(__name__)

#: The folder inside a slide's result folder that receives the reviewed outputs.
EXPORT_DIR = "reviewed"


def export_review(result_dir: str | Path, *, labels: np.ndarray | None = None, fibers: pd.DataFrame | None = None,
                  summary: dict[str, Any] | None = None, image: ImageLike | None = None) -> Path:
    """Write the reviewed outputs of a slide into ``result_dir/reviewed/``; returns that folder.

    Parameters
    ----------
    result_dir : path
        The slide's result folder, holding its saved review.
    labels, fibers, summary : optional
        The reviewed labels, table and summary as the reviewer sees them (the napari session,
        which may carry a pixel size or reference set during the review). When omitted they
        are computed from the saved review as ``histo report`` does.
    image : ImageData, optional
        The slide's pixels, for the overlay picture (dark background without).

    Raises
    ------
    HistoInputError
        When ``result_dir`` is not a result folder, or ``reviewed/`` exists and is not histo's.
    """
    result_dir = Path(result_dir)
    summary_path = result_dir / "summary.json"
    if not summary_path.is_file():
        raise HistoInputError(f"{result_dir} is not a histo result folder (no summary.json); "
                              "save the review into a result folder first", path=result_dir)
    if labels is None or fibers is None or summary is None:
        stored = json.loads(summary_path.read_text(encoding="utf-8"))
        table = read_fiber_table(result_dir)
        review = load_review(result_dir)
        if review.is_empty:
            fibers_r, summary_r = apply_review(table, review), stored
        else:
            fibers_r, summary_r, _ = reviewed_result(result_dir, stored, table, review)
        labels = reviewed_labels(result_dir, review) if labels is None else labels
        fibers = fibers_r if fibers is None else fibers
        summary = summary_r if summary is None else summary
    review = load_review(result_dir)
    summary = {**summary, "review_export": {
        "source": str(result_dir),
        "review_saved_at": review.saved_at,
        "flags": review.counts(),
        "edited_labels": bool(review.edited_labels),
    }}
    ps = (summary.get("slide") or {}).get("pixel_size_um")
    out = result_dir / EXPORT_DIR
    write_slide_outputs(out, labels=np.asarray(labels), fibers=fibers.reset_index(drop=True), summary=summary,
                        image=image, pixel_size_um=ps)
    log.info("reviewed outputs of %s written to %s", result_dir, out)
    return out
