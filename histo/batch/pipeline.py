"""One slide through the stages: read, (segment), measure, score, write.

Every entry point (CLI, batch, napari plugin) goes through these functions so that a slide
scored in any of them gives the same numbers and the same files.

Examples
--------
The bundled sample slide with its reference labels, measured and scored into a results folder:

>>> import tempfile
>>> from histo.batch.pipeline import measure_file
>>> from histo.sample_data import demo_image_path, demo_labels_path
>>> results = tempfile.TemporaryDirectory()
>>> slide_dir, result = measure_file(demo_image_path(), demo_labels_path(), results.name)
>>> slide_dir.name, len(result.fibers), result.summary["slide"]["stain"]
('cn_img02', 55, 'he')
>>> sorted(p.name for p in slide_dir.iterdir())  # doctest: +NORMALIZE_WHITESPACE
['.histo-result', 'fibers.csv', 'fibers.geojson', 'fibers.parquet', 'labels.tif', 'overlay.png',
 'rois.zip', 'summary.json']
>>> results.cleanup()
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.io.channels import pick_channel
from histo.io.image import ImageLike, image_checksum, image_from_array, read_image
from histo.io.masks import read_labels, validate_labels
from histo.io.pixelsize import check_pixel_size
from histo.io.stain import Stain, check_stain, guess_stain
from histo.measure.adjacency import fiber_adjacency
from histo.measure.collagen import collagen_summary
from histo.measure.morphometry import measure_fibers
from histo.results.writer import write_slide_outputs
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings
from histo.score.summary import build_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideResult:
    """What analysing one slide produces: the labels, the per-fiber table and the summary."""

    labels: np.ndarray
    fibers: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def slide_id(path: str | Path) -> str:
    """Folder name for a slide's results: the file stem, made filesystem-safe.

    Examples
    --------
    >>> slide_id("/data/Biopsy 12 (NADH).ome.tif")
    'Biopsy_12_NADH'
    """
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = Path(name).stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe or "slide"


def resolve_stain(image: ImageLike, stain: Stain | Literal["auto"] | None) -> Stain:
    """The stain to analyse with: the given one, or a guess from the pixels for ``"auto"``."""
    if stain in (None, "auto"):
        guessed = guess_stain(image.pixels)
        log.info("stain guessed as %s for %s", guessed, image.path)
        return guessed
    return check_stain(stain, allow_auto=True)


def default_channel(image: ImageLike, stain: Stain, channel: int | None) -> int | None:
    """The analysis channel of a multichannel image; brightfield RGB needs none.

    A multichannel fluorescence image without ``channel`` is an error that names the fix:
    which channel holds the fiber membrane (laminin, dystrophin, WGA) is not in the file.
    """
    if image.axes != "CYX":
        return None
    return pick_channel(image.n_channels, channel, path=image.path)


def _slide_info(image: ImageLike, stain: Stain, channel: int | None) -> dict[str, Any]:
    path = image.path
    return {
        "id": slide_id(path) if path is not None else "image",
        "path": str(path) if path is not None else None,
        "sha256": image_checksum(path) if path is not None else None,
        "shape": list(image.shape_yx),
        "axes": image.axes,
        "pixel_size_um": image.pixel_size_um,
        "pixel_size_source": getattr(image, "pixel_size_source", None),
        "stain": stain,
        "channel": channel,
    }


def analyze(
    image: ImageLike | np.ndarray,
    labels: np.ndarray,
    *,
    stain: Stain | Literal["auto"] = "auto",
    pixel_size_um: float | None = None,
    settings: ScoringSettings | None = None,
    channel: int | None = None,
    tissue_mask: np.ndarray | None = None,
    model_info: dict[str, Any] | None = None,
    excluded: pd.Series | None = None,
    objects: pd.DataFrame | None = None,
    segmentation: dict[str, Any] | None = None,
) -> SlideResult:
    """Measure and score one slide whose fibers are already segmented.

    Parameters
    ----------
    image : histo.io.image.ImageData or array
        The slide's pixels and metadata, or a plain ``(Y, X)``, ``(Y, X, 3)`` or ``(C, Y, X)``
        array (:func:`histo.io.image.image_from_array`; give ``pixel_size_um`` with it).
    labels : (Y, X) integer array
        Instance labels on the image's pixel grid, 0 = background.
    stain : str
        One of :data:`STAINS`, or ``"auto"`` (default): guessed from the pixels
        (:func:`resolve_stain`).
    pixel_size_um : float, optional
        Micrometres per pixel of an array ``image`` (sizes in pixels when None); for an
        ImageData it overrides the image's own.
    settings : histo.score.settings.ScoringSettings, optional
        Thresholds and normal ranges; defaults when omitted.
    channel : int, optional
        Analysis channel of a multichannel image.
    tissue_mask : (Y, X) bool array, optional
        Tissue region; fibers at its edge are flagged like image-border fibers.
    model_info : dict, optional
        ``{"name", "version"}`` of the segmentation model, recorded in the summary.
    excluded : Series of bool indexed by label, optional
        Fibers a reviewer excluded; they are measured but not counted.
    objects : DataFrame, optional
        The segmenter's per-object evidence (``label``, ``fiber_score``, ``rejected``;
        :class:`histo.segment.segmenter.Segmentation`); rejected objects are listed, not counted.
    segmentation : dict, optional
        ``Segmentation.info()``: scale check, tissue area, rejected count (summary and QC).

    Returns
    -------
    SlideResult

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((60, 60), np.uint16)
    >>> labels[5:25, 5:25], labels[30:55, 30:55] = 1, 2
    >>> result = analyze(np.full((60, 60, 3), 200, np.uint8), labels, stain="he", pixel_size_um=2.0)
    >>> result.fibers["area_um2"].tolist()
    [1600.0, 2500.0]
    """
    if not (hasattr(image, "pixels") and hasattr(image, "axes")):  # a plain array
        image = image_from_array(image, pixel_size_um=pixel_size_um, channel=channel)
        stain = resolve_stain(image, stain)
        channel = default_channel(image, stain, channel)
    elif pixel_size_um is not None:
        image = replace(image, pixel_size_um=check_pixel_size(pixel_size_um, in_range=True),
                        pixel_size_source="user")
    stain = resolve_stain(image, stain)
    settings = settings or ScoringSettings()
    labels = validate_labels(labels, image_shape=image.shape_yx, path=image.path)
    gap_px = settings.gap_px(image.pixel_size_um)
    edges = fiber_adjacency(labels, max_gap_px=gap_px)
    fibers = measure_fibers(
        labels,
        image.pixels,
        pixel_size_um=image.pixel_size_um,
        stain=stain,
        channel=channel,
        tissue_mask=tissue_mask,
        max_gap_um=settings.adjacency_gap_um,
        edges=edges,
    )
    if excluded is not None:
        fibers["excluded"] = fibers["label"].map(excluded).fillna(False).astype(bool)
    if objects is not None and "fiber_score" in objects:
        fibers = add_fiber_scores(fibers, objects)
    fibers, scored = score_slide(fibers, labels, image, settings, stain=stain, edges=edges)
    notes = []
    if stain == "psr":  # endomysial / perimysial collagen (histo.measure.collagen)
        feret_px = fibers["min_feret_px"].median() if "min_feret_px" in fibers else None
        try:
            scored = {**scored, "collagen": collagen_summary(
                np.asarray(image.pixels), labels, pixel_size_um=image.pixel_size_um,
                fiber_min_feret_px=feret_px, tissue_mask=tissue_mask)}
        except HistoInputError as err:
            notes.append(f"{image.path or 'image'}: collagen fractions not measured: {err}")
    summary = build_summary(_slide_info(image, stain, channel), scored, n_fibers=len(fibers),
                            model=model_info, segmentation=segmentation, fibers=fibers,
                            warnings=notes)
    return SlideResult(labels=labels, fibers=fibers, summary=summary)


def add_fiber_scores(fibers: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """``fiber_score`` and ``rejected`` of the segmenter's objects joined onto the fiber table by label.

    Examples
    --------
    >>> f = pd.DataFrame({"label": [1, 2]})
    >>> o = pd.DataFrame({"label": [2, 1], "fiber_score": [0.1, 0.9], "rejected": [True, False]})
    >>> add_fiber_scores(f, o)[["fiber_score", "rejected"]].values.tolist()
    [[0.9, False], [0.1, True]]
    """
    by_label = objects.set_index("label")
    out = fibers.copy()
    out["fiber_score"] = out["label"].map(by_label["fiber_score"]).astype(float)
    out["rejected"] = out["label"].map(by_label["rejected"]).fillna(False).astype(bool)
    return out


def write_result(result: SlideResult, image: ImageLike, out_root: str | Path) -> Path:
    """Write ``out_root/<slide-id>/`` (the output contract) atomically; returns the folder."""
    out_dir = Path(out_root) / slide_id(image.path if image.path is not None else "image")
    write_slide_outputs(
        out_dir,
        labels=result.labels,
        fibers=result.fibers,
        summary=result.summary,
        image=image,
        pixel_size_um=image.pixel_size_um,
    )
    return out_dir


def measure_file(
    image_path: str | Path,
    labels_path: str | Path,
    out_root: str | Path,
    *,
    pixel_size_um: float | None = None,
    stain: Stain | Literal["auto"] = "auto",
    channel: int | None = None,
    settings: ScoringSettings | None = None,
) -> tuple[Path, SlideResult]:
    """Measure an image with an existing mask and write ``out_root/<slide-id>/``.

    The mask may be a label image, an ImageJ ROI set or QuPath GeoJSON
    (:func:`histo.io.masks.read_labels`). Nothing is written when any input is bad.
    """
    image = read_image(image_path, pixel_size_um=pixel_size_um, channel=channel)
    stain = resolve_stain(image, stain)
    channel = default_channel(image, stain, channel)
    labels = read_labels(labels_path, shape=image.shape_yx)
    result = analyze(image, labels, stain=stain, settings=settings, channel=channel)
    result.summary["slide"]["labels_path"] = str(labels_path)
    return write_result(result, image, out_root), result


def segment_and_analyze(
    image: ImageLike,
    *,
    stain: Stain | Literal["auto"] = "auto",
    channel: int | None = None,
    method: str = "model",
    settings: ScoringSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    fiber_diameter_px: float | None = None,
    model=None,
) -> SlideResult:
    """Segment an in-memory slide, then measure and score it (no files written).

    Objects the fiber score rejects are kept in the table (``rejected``), not counted; the
    segmentation's scale check and tissue area go to ``summary["segmentation"]`` and its QC.
    ``model`` is a model name or path (default the shipped model).
    """
    from histo.segment.segmenter import model_info as seg_model_info  # torch loads here, only when segmenting
    from histo.segment.segmenter import segment

    stain = resolve_stain(image, stain)
    channel = default_channel(image, stain, channel)
    hint = (
        f"(stain {stain}" + (f", channel {channel}" if channel is not None else "")
        + f", method {method}). Check that the section shows muscle fibers and that --stain and"
        " --channel are right; give --pixel-size if the file has none"
        + (", or try --method classical" if method == "model" else "")
    )
    try:
        seg = segment(
            image, stain=stain, channel=channel, pixel_size_um=image.pixel_size_um,
            method=method, progress=progress, fiber_diameter_px=fiber_diameter_px, model=model,
        )
    except HistoInputError as err:
        if err.path is not None:
            raise
        raise HistoInputError(f"{err.reason} {hint}", path=image.path) from err
    labels = np.asarray(seg.labels)
    if not np.any(labels):
        raise HistoInputError(f"no fibers found {hint}", path=image.path)
    info = seg_model_info(method, model)
    return analyze(image, labels, stain=stain, settings=settings, channel=channel, model_info=info,
                   objects=seg.objects, segmentation=seg.info())


def score_file(
    image_path: str | Path,
    out_root: str | Path,
    *,
    pixel_size_um: float | None = None,
    stain: Stain | Literal["auto"] = "auto",
    channel: int | None = None,
    method: str = "model",
    settings: ScoringSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    fiber_diameter_px: float | None = None,
) -> tuple[Path, SlideResult]:
    """Segment, measure and score one image file and write ``out_root/<slide-id>/``."""
    image = read_image(image_path, pixel_size_um=pixel_size_um, channel=channel)
    result = segment_and_analyze(
        image, stain=stain, channel=channel, method=method, settings=settings, progress=progress,
        fiber_diameter_px=fiber_diameter_px,
    )
    return write_result(result, image, out_root), result
