"""Whole-slide images: tissue at low resolution, analysis level, tiles, bounded memory.

:func:`score_wsi` scores a slide that is too large to hold in memory:

1. the slide is opened lazily (:func:`histo.io.slide.open_slide`);
2. tissue is found on a thumbnail (:func:`detect_tissue`): optical density or fluorescence
   above an automatic threshold, closed, holes filled, specks dropped;
3. the *analysis level* is the coarsest pyramid level whose pixels are still at least as fine
   as the segmenter's canonical scale (:func:`choose_level`), so no work is wasted on detail
   the model does not use;
4. fibers are segmented tile by tile into an on-disk label array (zarr, compressed), tiles
   without tissue skipped;
5. fibers are measured tile by tile: each fiber is measured once, by the tile that owns it
   (:func:`histo.segment.tiling.owned_labels`), on the tile's labels and pixels with a halo wider than
   any fiber; darkness is then re-referenced to the whole slide's fibers;
6. the slide is scored from the fiber table and the adjacency edges gathered per tile, and the
   labels are written as a tiled pyramidal OME-TIFF (:func:`histo.results.writer.write_labels_pyramid`).

No full-resolution array of the slide (pixels or labels) is ever in memory: peak memory is a
few tiles plus the fiber table. Labels live in the slide's *analysis-level* grid, recorded in
``summary.json`` (``slide.analysis_level``, ``slide.analysis_downsample``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
from PIL import Image

from histo.batch.wsi_tiles import halo_px, measure_tiles, nuclei_state, nuclei_summary, segment_tiles, signal_reference
from histo.errors import HistoInputError
from histo.io.channels import pick_channel
from histo.io.jsonable import to_jsonable
from histo.io.slide import open_slide
from histo.io.stain import guess_stain
from histo.results.folder import result_directory
from histo.results.tables import write_fiber_tables
from histo.results.writer import fibers_geojson, render_overlay, write_labels_pyramid, write_roi_zip
from histo.score.evidence import build_evidence
from histo.score.scoring import score_table
from histo.score.settings import ScoringSettings
from histo.score.summary import build_summary
from histo.segment.tissue import detect_tissue  # noqa: F401 (public here too)

if TYPE_CHECKING:
    from histo.batch.slides import ScoreParams  # slides runs score_wsi: a runtime import would be a cycle

log = logging.getLogger(__name__)

#: Images with more pixels than this (level 0) take the whole-slide path even when flat.
WSI_MIN_PIXELS = 30_000_000
#: Suffixes that are always whole-slide formats.
WSI_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif")
#: Thumbnail side used for tissue detection and the overlay.
THUMBNAIL_PX = 2048
#: Analysis pixel size of the classical method (µm/px), the model uses its canonical one.
CLASSICAL_PIXEL_SIZE_UM = 1.5
#: Segmentation tile core side at the model's canonical scale on whole slides (memory bound).
MODEL_TILE_CANONICAL_PX = 1024
#: Tile core side (analysis px) of the measuring pass; halo = largest fiber + adjacency gap.
MEASURE_TILE_PX = 2048


def is_whole_slide(path: str | Path, *, min_pixels: int = WSI_MIN_PIXELS) -> bool:
    """True for slide formats (SVS, NDPI, ...), pyramidal TIFFs and images over ``min_pixels``.

    Files that cannot be opened as slides return False: the ordinary reader then reports why.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in WSI_SUFFIXES:
        return True
    if suffix not in (".tif", ".tiff"):
        return False

    try:
        slide = open_slide(path)
    except Exception:  # noqa: BLE001 - unreadable here means "let read_image explain"
        return False
    try:
        h, w = slide.level_shapes[0]
        return slide.level_count > 1 or h * w > min_pixels
    finally:
        _close(slide)


def _close(slide) -> None:
    close = getattr(slide, "close", None)
    if callable(close):
        close()


# --------------------------------------------------------------------------- pure helpers
def choose_level(downsamples, pixel_size_um: float | None, target_um: float, *,
                 tolerance: float = 1.25) -> int:
    """Coarsest level whose pixel size is at most ``target_um * tolerance``.

    Level 0 when the pixel size is unknown (the segmenter then estimates the fiber size).

    Examples
    --------
    >>> choose_level([1, 4, 16], 0.25, 1.5)      # 0.25, 1.0, 4.0 µm/px -> 1.0 µm/px
    1
    >>> choose_level([1, 2, 4], 2.0, 1.5)        # already coarser than the target
    0
    >>> choose_level([1, 2], None, 1.5)
    0
    """
    if pixel_size_um is None:
        return 0
    best = 0
    for i, ds in enumerate(downsamples):
        if pixel_size_um * float(ds) <= target_um * tolerance:
            best = i if float(ds) >= float(downsamples[best]) else best
    return best


def scratch_dir(out_dir: Path) -> Path:
    """A hidden working folder beside ``out_dir`` that a killed run's cleanup recognises."""
    return out_dir.parent / f".{out_dir.name}.partial-scratch-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _labels_store(path: Path, shape_yx, chunk_px: int = 1024):
    """A zero-filled, compressed on-disk uint32 array (zarr) of ``shape_yx``."""
    import zarr

    return zarr.open_array(str(path), mode="w", shape=tuple(int(s) for s in shape_yx),
                           chunks=(chunk_px, chunk_px), dtype="uint32", fill_value=0)




def _plane(thumb: np.ndarray, axes: str, channel: int | None) -> tuple[np.ndarray, str]:
    if axes == "CYX":
        return thumb[channel or 0], "YX"
    return thumb, axes


def score_wsi(path: str | Path, out_dir: str | Path, *, params: ScoreParams, batch_info: dict | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Segment, measure and score a whole-slide image into ``out_dir`` (written atomically).

    Parameters
    ----------
    path : path
        SVS, NDPI, pyramidal (OME-)TIFF or any image too large to hold in memory.
    out_dir : path
        The slide's result folder (the output contract of ``histo score``; ``labels.tif`` is
        pyramidal and on the analysis level's grid).
    params : histo.batch.slides.ScoreParams
        Stain, channel, pixel size override, method and scoring settings.
    batch_info : dict, optional
        Stored as ``summary["batch"]`` (resume fingerprint).
    progress : callable(done, total), optional
        Called per tile; segmentation and measurement count as one sequence.

    Returns
    -------
    dict
        The slide's summary (as written to ``summary.json``).
    """

    path, out_dir = Path(path), Path(out_dir)
    settings = params.settings or ScoringSettings()
    slide = open_slide(path)
    ps0 = params.pixel_size_um or slide.pixel_size_um
    channel = params.channel
    if slide.axes == "CYX":
        channel = pick_channel(slide.n_channels, channel, path=path, what="the slide")
    thumb = slide.thumbnail(THUMBNAIL_PX)
    plane, plane_axes = _plane(thumb, slide.axes, channel)
    tissue = detect_tissue(plane, axes=plane_axes)
    if not tissue.any():
        raise HistoInputError("no tissue found on the slide (blank or out-of-focus scan?)",
                              path=path)
    stain = params.stain
    if stain in (None, "auto"):
        stain = guess_stain(thumb) if slide.axes == "YXS" else "if"
    target = (_model_pixel_size() if params.method == "model" else CLASSICAL_PIXEL_SIZE_UM)
    level = choose_level(slide.level_downsamples, ps0, target)
    ds = float(slide.level_downsamples[level])
    ps = ps0 * ds if ps0 else None
    shape_yx = tuple(int(s) for s in slide.level_shapes[level])
    source = slide.to_dask(level)
    gap = settings.gap_px(ps)
    halo = halo_px(ps, gap)
    log.info("%s: level %d of %d (%s px, %.3g µm/px), tissue %.0f%% of the slide", path.name,
             level, slide.level_count, shape_yx, ps or float("nan"), 100 * tissue.mean())
    scratch = scratch_dir(out_dir)
    scratch.mkdir(parents=True)
    try:
        labels = _labels_store(scratch / "labels.zarr", shape_yx)
        steps = _Steps(progress)
        if params.method == "model":
            from histo.segment.segmenter import segment_image  # torch loads here, only when segmenting

            segment_image(source, stain=stain, channel=channel, pixel_size_um=ps, method="model",
                          out=labels, tissue_mask=tissue, progress=steps.part(0),
                          tile_px=_model_tile_px(ps, target))
        else:
            segment_tiles(source, labels, tissue_mask=tissue, pixel_size_um=ps, stain=stain,
                          channel=channel, method=params.method, tile_px=2048, halo_px=halo,
                          progress=steps.part(0))
        polygons: dict = {}
        nuclei = nuclei_state(settings, ps)
        fibers, edges = measure_tiles(labels, source, tissue_mask=tissue, pixel_size_um=ps,
                                      stain=stain, channel=channel, gap_px=gap,
                                      tile_px=MEASURE_TILE_PX, halo_px=halo,
                                      signal_ref=signal_reference(thumb, stain, channel),
                                      progress=steps.part(1), polygons=polygons, nuclei=nuclei)
        tissue_um2 = float(tissue.mean()) * shape_yx[0] * shape_yx[1] * ps ** 2 if ps else None
        scored, part = score_table(fibers, shape_yx, pixel_size_um=ps, stain=stain,
                                   settings=settings, edges=edges, tissue_area_um2=tissue_um2,
                                   path=path)
        part["nuclei"] = nuclei_summary(nuclei, scored)
        if part["nuclei"].get("method"):
            part["evidence"] = build_evidence(part, settings)
        slide_info = {
            "id": out_dir.name, "path": str(path), "sha256": (batch_info or {}).get("input_sha256"),
            "shape": list(slide.level_shapes[0]), "axes": slide.axes, "pixel_size_um": ps,
            "pixel_size_source": "user" if params.pixel_size_um else slide.pixel_size_source,
            "stain": stain, "channel": channel, "whole_slide": True, "analysis_level": level,
            "analysis_downsample": ds, "analysis_shape": list(shape_yx), "level0_pixel_size_um": ps0,
            "tissue_fraction": float(tissue.mean()), "tissue_area_um2": tissue_um2}
        segmentation = {"scale": {"source": "pixel_size" if ps else "estimated", "pixel_size_um": ps,
                                  "checked": False},
                        "tissue_area_px": int(round(float(tissue.mean()) * shape_yx[0] * shape_yx[1]))}
        summary = build_summary(slide_info, part, n_fibers=len(scored), model=_model_info(params),
                                segmentation=segmentation, fibers=scored)
        if batch_info is not None:
            summary["batch"] = batch_info
        write_wsi_outputs(out_dir, labels=labels, fibers=scored, summary=summary,
                          polygons=polygons, thumbnail=thumb, axes=slide.axes, channel=channel,
                          pixel_size_um=ps)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _close(slide)
    return summary


def _model_tile_px(ps: float | None, canonical_um: float) -> int | None:
    """Segmentation tile side (analysis px) for whole slides: :data:`MODEL_TILE_CANONICAL_PX`
    at the model's scale, which bounds the network's activations (peak memory)."""
    if ps is None:
        return None
    return max(256, int(round(MODEL_TILE_CANONICAL_PX * canonical_um / ps)))


def _model_pixel_size() -> float:
    from histo.segment.segmenter import load_segmenter

    return float(load_segmenter()[1].canonical_pixel_size_um)


def _model_info(params: ScoreParams) -> dict | None:
    if params.model is not None:
        return params.model
    from histo.segment.segmenter import model_info

    return model_info(params.method)


class _Steps:
    """One progress sequence over two tile passes (segment, then measure)."""

    def __init__(self, progress):
        self.progress, self.totals = progress, [0, 0]

    def part(self, i: int):
        def report(done: int, total: int) -> None:
            self.totals[i] = total
            if self.progress is not None:
                first = self.totals[0] if i else 0
                self.progress(first + done, self.totals[0] + (self.totals[1] or self.totals[0]))
        return report


def write_wsi_outputs(out_dir: Path, *, labels, fibers: pd.DataFrame, summary: dict,
                      polygons: dict, thumbnail: np.ndarray, axes: str, channel: int | None,
                      pixel_size_um: float | None) -> Path:
    """The slide folder of a whole slide, atomically: tables, summary, pyramidal labels,
    GeoJSON and ROIs from per-tile outlines, overlay from the thumbnail (no full-size array)."""
    polygons = dict(sorted(polygons.items()))
    text = json.dumps(to_jsonable(summary), indent=2, ensure_ascii=False, allow_nan=False)
    with result_directory(out_dir) as tmp:
        write_fiber_tables(tmp, fibers, slide_id=str((summary.get("slide") or {}).get("id") or out_dir.name),
                           pixel_size_um=pixel_size_um)
        (tmp / "summary.json").write_text(text + "\n", encoding="utf-8")
        write_labels_pyramid(tmp / "labels.tif", labels, pixel_size_um=pixel_size_um)
        _write_geojson(tmp / "fibers.geojson", fibers, polygons, fibers_geojson)
        write_roi_zip(tmp / "rois.zip", polygons, fibers)
        display = np.moveaxis(thumbnail, 0, -1)[..., channel or 0] if axes == "CYX" else thumbnail
        overlay = render_overlay(labels, fibers, display)
        Image.fromarray(overlay).save(tmp / "overlay.png")
    return out_dir


def _write_geojson(path: Path, fibers: pd.DataFrame, polygons: dict, fibers_geojson,
                   chunk: int = 2000) -> None:
    """The QuPath GeoJSON of :func:`histo.results.writer.fibers_geojson`, streamed in chunks of
    fibers so that a slide's hundred thousand outlines never sit in memory as JSON at once."""
    labels = list(polygons)
    by_label = fibers.set_index("label", drop=False)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","features":[')
        for i in range(0, len(labels), chunk):
            part = labels[i:i + chunk]
            sub = by_label.loc[by_label.index.intersection(part)].reset_index(drop=True)
            geo = fibers_geojson(None, sub, {k: polygons[k] for k in part})
            for j, feature in enumerate(geo["features"]):
                fh.write(("," if i or j else "") + json.dumps(feature, separators=(",", ":")))
        fh.write("]}")
