"""The one place a slide's ``summary.json`` is put together.

Every path that scores a slide builds its summary here: the single-image pipeline
(:func:`histo.batch.pipeline.analyze`), whole slides tile by tile (:func:`histo.batch.wsi.score_wsi`)
and a saved review applied to results (:func:`histo.review.rescore.reviewed_result`). So the
keys, their order and the warnings a reader sees are the same whichever way a slide went.

The summary is ``{"slide", "software", "model", "n_fibers", <scoring part>, "warnings"}``
(the scoring part is what :func:`histo.score.scoring.score_slide` returns: ``settings``,
``statistics``, ``grouping``, ``fiber_types``, ``nuclei``, ``evidence``), plus keys a caller
adds after (``batch``: the resume fingerprint). :func:`rebuild_summary` scores an existing
summary again (a review, in a result folder or in the napari session).

Examples
--------
>>> s = build_summary({"id": "s1", "path": None, "pixel_size_um": None}, {"statistics": {}},
...                   n_fibers=3, model=None)
>>> list(s)
['slide', 'software', 'model', 'n_fibers', 'statistics', 'warnings']
>>> s["warnings"][0].startswith("s1: no pixel size")
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from histo import __version__
from histo.io.jsonable import to_jsonable


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
                  software: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A slide's summary, JSON-able.

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
    """
    summary = {
        "slide": dict(slide),
        "software": dict(software) if software else {"histo": __version__},
        "model": dict(model) if model else None,
        "n_fibers": int(n_fibers),
        **scored,
        "warnings": list(dict.fromkeys([*pixel_size_warnings(slide), *warnings])),
    }
    return to_jsonable(summary)


def rebuild_summary(previous: Mapping[str, Any], scored: Mapping[str, Any], *,
                    n_fibers: int) -> dict[str, Any]:
    """``previous`` with a new scoring part: slide, model, software and warnings are kept, and
    so are keys the builder does not make (``batch``).

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
                            software=previous.get("software"))
    kept = {key: value for key, value in previous.items() if key not in rebuilt}
    return {**rebuilt, **to_jsonable(kept)}
