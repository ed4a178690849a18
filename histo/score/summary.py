"""The one place a slide's ``summary.json`` is put together.

Every path that scores a slide builds its summary here: the single-image pipeline
(:func:`histo.batch.pipeline.analyze`), whole slides tile by tile (:func:`histo.batch.wsi.score_wsi`)
and a saved review applied to results (:func:`histo.review.rescore.reviewed_result`). So the
keys, their order and the warnings a reader sees are the same whichever way a slide went.

The summary is ``{"slide", "software", "model", "n_fibers", "qc", ["segmentation"],
<scoring part>, "warnings"}`` (the scoring part is what :func:`histo.score.scoring.score_slide`
returns: ``settings``, ``statistics``, ``grouping``, ``fiber_types``, ``nuclei``, ``evidence``),
plus keys a caller adds after (``batch``: the resume fingerprint). ``qc`` is the segmentation
verdict of :func:`histo.score.qc.segmentation_qc` (``status`` ok/warn/fail, ``reasons``,
``measures``, ``checks``); the evidence text is rebuilt here so that it opens with the QC
reasons when the status is not ok. ``segmentation`` is the segmentation step's own report
(scale check, tissue area, rejected objects) when the caller has one. :func:`rebuild_summary`
scores an existing summary again (a review, in a result folder or in the napari session).

Examples
--------
>>> s = build_summary({"id": "s1", "path": None, "pixel_size_um": None}, {"statistics": {}},
...                   n_fibers=3, model=None)
>>> list(s)
['slide', 'software', 'model', 'n_fibers', 'qc', 'statistics', 'warnings']
>>> s["warnings"][0].startswith("s1: no pixel size")
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from histo import __version__
from histo.io.jsonable import to_jsonable
from histo.score.evidence import build_evidence
from histo.score.qc import segmentation_qc
from histo.score.settings import ScoringSettings


def pixel_size_warnings(slide: Mapping[str, Any]) -> list[str]:
    """What a reader must know about the slide's scale: nothing when the pixel size is known.

    Examples
    --------
    >>> pixel_size_warnings({"id": "a", "pixel_size_um": 0.5})
    []
    """
    if slide.get("pixel_size_um"):
        return []
    name = slide.get("path") or slide.get("id") or "image"
    return [f"{name}: no pixel size in the file; sizes are in pixels and the Dubowitz figures "
            "that need micrometres are left out. Pass --pixel-size UM (micrometres per pixel) "
            "to get them."]


def build_summary(slide: Mapping[str, Any], scored: Mapping[str, Any], *, n_fibers: int,
                  model: Mapping[str, Any] | None, warnings: Iterable[str] = (),
                  software: Mapping[str, Any] | None = None,
                  segmentation: Mapping[str, Any] | None = None,
                  fibers: pd.DataFrame | None = None,
                  qc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A slide's summary, JSON-able, with its segmentation QC.

    Parameters
    ----------
    slide : mapping
        The slide's identity and scale (``id``, ``path``, ``sha256``, ``shape``, ``axes``,
        ``pixel_size_um``, ``pixel_size_source``, ``stain``, ``channel``; whole slides add
        their analysis level and tissue).
    scored : mapping
        The scoring part (see the module docstring).
    n_fibers : int
        Objects in the fiber table (counted or not).
    model : mapping or None
        ``{"name", "version", ...}`` of the segmentation model; None for given masks.
    warnings : iterable of str
        The caller's own warnings, after the pixel-size warning (repeats dropped, so a
        re-scoring may pass the previous summary's warnings).
    software : mapping, optional
        The software that made the figures; default this histo. A re-scoring of a reviewed
        slide keeps the original's.
    segmentation : mapping, optional
        The segmentation step's report (``scale``, ``tissue_area_px``, ``n_rejected``,
        ``fiber_score_threshold``); stored as ``summary["segmentation"]`` and read by the QC.
        None for a slide measured from given masks.
    fibers : DataFrame, optional
        The scored fiber table; without it the QC checks only the counted number (from
        ``scored["statistics"]``) and the segmentation report.
    qc : mapping, optional
        A QC verdict to keep instead of computing one (a re-scoring without the table).
    """
    stats = scored.get("statistics") or {}
    if qc is None:
        pixel_size = slide.get("pixel_size_um") or stats.get("pixel_size_um")
        qc = segmentation_qc(fibers, pixel_size_um=pixel_size, segmentation=segmentation,
                             n_counted=stats.get("n_counted"))
    part = dict(scored)
    if isinstance(part.get("evidence"), Mapping) and "n_counted" in stats:
        settings = (ScoringSettings.from_dict(part["settings"]) if part.get("settings")
                    else ScoringSettings())
        part["evidence"] = build_evidence({**part, "qc": dict(qc)}, settings)
    summary = {
        "slide": dict(slide),
        "software": dict(software) if software else {"histo": __version__},
        "model": dict(model) if model else None,
        "n_fibers": int(n_fibers),
        "qc": dict(qc),
        **({"segmentation": dict(segmentation)} if segmentation is not None else {}),
        **part,
        "warnings": list(dict.fromkeys([*pixel_size_warnings(slide), *warnings])),
    }
    return to_jsonable(summary)


def rebuild_summary(previous: Mapping[str, Any], scored: Mapping[str, Any], *,
                    n_fibers: int, fibers: pd.DataFrame | None = None) -> dict[str, Any]:
    """``previous`` with a new scoring part: slide, model, software, segmentation report and
    warnings are kept, and so are keys the builder does not make (``batch``).

    The QC is computed again from ``fibers`` (the reviewed table) when given; without it the
    previous QC verdict is kept (a table-less QC would drop the fragment and size checks).

    Examples
    --------
    >>> old = build_summary({"id": "s1", "pixel_size_um": 0.5}, {"statistics": {"n_counted": 9}},
    ...                     n_fibers=9, model=None)
    >>> old["batch"] = {"fingerprint": "f"}
    >>> new = rebuild_summary(old, {"statistics": {"n_counted": 8}}, n_fibers=9)
    >>> new["statistics"], new["batch"], new["slide"]["id"]
    ({'n_counted': 8}, {'fingerprint': 'f'}, 's1')
    """
    rebuilt = build_summary(previous.get("slide") or {}, scored, n_fibers=n_fibers,
                            model=previous.get("model"), warnings=previous.get("warnings") or (),
                            software=previous.get("software"),
                            segmentation=previous.get("segmentation"), fibers=fibers,
                            qc=previous.get("qc") if fibers is None else None)
    kept = {key: value for key, value in previous.items() if key not in rebuilt}
    return {**rebuilt, **to_jsonable(kept)}
