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
6. the slide is scored from the fiber table and the adjacency edges gathered per tile;
7. every output is put in the slide's **level-0 pixel frame** (the frame QuPath, ImageJ and the
   slide file use): ``*_px`` columns (:func:`level0_table`), GeoJSON and ROI outlines
   (:func:`level0_outlines`), and ``labels.tif``, whose base level is the analysis labels
   upsampled to level 0 by nearest neighbour (:class:`Level0Labels`, written tile by tile as a
   tiled pyramidal OME-TIFF by :func:`histo.results.writer.write_labels_pyramid`; its first
   sub-resolution is the analysis grid again when the downsample is 2).

No full-resolution array of the slide (pixels or labels) is ever in memory: peak memory is a
few tiles plus the fiber table. The analysis happens on the analysis level, recorded in
``summary.json`` (``slide.analysis_level``, ``slide.analysis_downsample``,
``slide.analysis_pixel_size_um``); ``slide.pixel_size_um`` is level 0's, the frame of the
outputs (``slide.labels_downsample`` is 1: labels.tif's base level is level 0).
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




class Level0Labels:
    """Lazy view of analysis-level labels upsampled to the slide's level 0 (nearest neighbour).

    Level-0 pixel ``(r, c)`` takes the label of the analysis pixel under its centre,
    ``floor((r + 0.5) * h / H)`` (and the same for columns), so the analysis outlines scaled
    by ``(W / w, H / h)`` (:func:`level0_outlines`) rasterise to exactly these pixels.
    Supports 2-D slicing (any step). Contiguous requests read the analysis rows under them,
    a band across the whole width at a time (kept for the next request in the same rows:
    :func:`histo.results.writer.write_labels_pyramid` asks tile by tile, row by row); strided
    requests (the pyramid's lower levels, ``strided_reads``) read only the analysis rows and
    columns they sample (zarr orthogonal selection), so no copy of the labels is needed.

    Examples
    --------
    >>> lab = np.array([[1, 2], [3, 0]], np.uint32)
    >>> Level0Labels(lab, (4, 4))[:, :].tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 0, 0], [3, 3, 0, 0]]
    """

    def __init__(self, source, shape_yx: tuple[int, int]):
        self.source = source
        self.shape = (int(shape_yx[0]), int(shape_yx[1]))
        self.dtype = np.dtype(source.dtype)
        self.ndim = 2
        self.strided_reads = True  # write_labels_pyramid may read lower levels from it directly
        self._band: tuple[int, int, np.ndarray] | None = None

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        """Analysis rows ``r0:r1`` across the whole width (cached band)."""
        if self._band is None or not (self._band[0] <= r0 and r1 <= self._band[1]):
            width = int(self.source.shape[1])
            extra = max(0, min(int(self.source.shape[0]), r0 + max(r1 - r0, 2**24 // (4 * width))) - r1)
            self._band = (r0, r1 + extra, np.asarray(self.source[r0:r1 + extra, :]))
        b0, _, band = self._band
        return band[r0 - b0:r1 - b0]

    def _pick(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Analysis labels at sorted unique ``rows`` x ``cols``: a band or a strided slice
        when they are evenly spaced, else an orthogonal selection."""
        dr = np.diff(rows)
        dc = np.diff(cols)
        even_r = rows.size == 1 or (dr == dr[0]).all()
        even_c = cols.size == 1 or (dc == dc[0]).all()
        if even_r and even_c:
            sr = int(dr[0]) if rows.size > 1 else 1
            sc = int(dc[0]) if cols.size > 1 else 1
            if sr == 1:
                return self._rows(int(rows[0]), int(rows[-1]) + 1)[:, cols[0]:cols[-1] + 1:sc]
            return np.asarray(self.source[rows[0]:rows[-1] + 1:sr, cols[0]:cols[-1] + 1:sc])
        if hasattr(self.source, "oindex"):
            return np.asarray(self.source.oindex[rows, cols])
        return np.asarray(self.source)[np.ix_(rows, cols)]

    def _index(self, key: slice, axis: int) -> np.ndarray:
        n0, n = self.shape[axis], int(self.source.shape[axis])
        level0 = np.arange(*key.indices(n0), dtype=np.int64)
        return np.minimum(((level0 + 0.5) * n / n0).astype(np.int64), n - 1)

    def __getitem__(self, key) -> np.ndarray:
        ys, xs = key if isinstance(key, tuple) else (key, slice(None))
        rows, cols = self._index(ys, 0), self._index(xs, 1)
        if rows.size == 0 or cols.size == 0:
            return np.zeros((rows.size, cols.size), self.dtype)
        steps = [k.step for k in (ys, xs) if isinstance(k, slice)]
        if any(step not in (None, 1) for step in steps):
            urows, row_of = np.unique(rows, return_inverse=True)
            ucols, col_of = np.unique(cols, return_inverse=True)
            return self._pick(urows, ucols)[np.ix_(row_of.ravel(), col_of.ravel())]
        window = self._rows(int(rows[0]), int(rows[-1]) + 1)[:, cols[0]:cols[-1] + 1]
        return window[np.ix_(rows - rows[0], cols - cols[0])]


def level0_table(fibers: pd.DataFrame, scale_yx: tuple[float, float],
                 pixel_size_um: float | None = None) -> pd.DataFrame:
    """The fiber table's pixel columns moved from the analysis grid to level 0.

    ``scale_yx`` is level 0's size over the analysis level's, per axis. Centroids map
    centre to centre (``(c + 0.5) * s - 0.5``); bounding boxes become those of the level-0
    labels of :class:`Level0Labels` (first and past-the-end level-0 pixel whose centre falls in
    the analysis box); ``area_px`` and lengths in px (present only without a pixel size) scale
    by ``sy * sx`` and its square root. With ``pixel_size_um`` (level 0's), the ``centroid_*_um``
    columns are recomputed from the level-0 centroids, so µm and px positions agree.

    Examples
    --------
    >>> t = pd.DataFrame({"centroid_x_px": [0.0, 4.5], "bbox_x0_px": [0, 4], "bbox_x1_px": [1, 6]})
    >>> level0_table(t, (2.0, 2.0)).to_dict("list")
    {'centroid_x_px': [0.5, 9.5], 'bbox_x0_px': [0, 8], 'bbox_x1_px': [2, 12]}
    """
    sy, sx = (float(v) for v in scale_yx)
    if sy == 1.0 and sx == 1.0:
        return fibers
    out = fibers.copy()
    for col, s in (("centroid_y_px", sy), ("centroid_x_px", sx)):
        if col in out:
            out[col] = (out[col].astype(float) + 0.5) * s - 0.5
    for col, s in (("bbox_y0_px", sy), ("bbox_y1_px", sy), ("bbox_x0_px", sx), ("bbox_x1_px", sx)):
        if col in out:
            out[col] = np.ceil(out[col].to_numpy(float) * s - 0.5 - 1e-9).astype(out[col].dtype)
    if "area_px" in out:
        out["area_px"] = out["area_px"] * (sy * sx)
    for name in ("perimeter", "min_feret", "max_feret", "equivalent_diameter"):
        if f"{name}_px" in out:
            out[f"{name}_px"] = out[f"{name}_px"] * float(np.sqrt(sy * sx))
    if pixel_size_um:
        for axis in ("y", "x"):
            if f"centroid_{axis}_um" in out and f"centroid_{axis}_px" in out:
                out[f"centroid_{axis}_um"] = out[f"centroid_{axis}_px"] * float(pixel_size_um)
    return out


def level0_outlines(polygons: dict, scale_yx: tuple[float, float]) -> dict:
    """Outlines (a ring or a list of rings per label, ``(x, y)`` pixel corners) scaled from
    the analysis grid to level 0; integer vertices stay integers when the scale is.

    Where two pixels of a label touch only at a corner, the traced outline cuts that corner
    through the pixel edges' midpoints (:mod:`histo.io.polygons`); scaled as they are, those
    cuts would pass through level-0 pixel centres, so their ends are put a quarter of a
    level-0 pixel from the corner instead, and the outlines still rasterise to exactly the
    pixels of :class:`Level0Labels` (for integer scales).
    """
    sy, sx = (float(v) for v in scale_yx)
    if sy == 1.0 and sx == 1.0:
        return polygons
    factor = np.array([sx, sy])
    integral = sx.is_integer() and sy.is_integer()

    def scale(ring):
        ring = np.asarray(ring)
        half = ring != np.round(ring)
        if not half.any():
            scaled = ring * factor
            return scaled.astype(np.int64) if integral and ring.dtype.kind in "iu" else scaled
        ring = ring.astype(np.float64)
        n, out = len(ring), []
        for i in range(n):
            if not half[i].any():
                out.append(ring[i] * factor)
                continue
            axis = int(np.argmax(half[i]))
            for j in ((i - 1) % n, (i + 1) % n):
                if (ring[j] != ring[i]).all():  # the other end of a corner cut
                    corner = ring[i].copy()
                    corner[axis] = ring[j][axis]
                    out.append(corner * factor + np.sign(ring[i] - corner) * 0.25)
        return np.asarray(out)

    return {k: [scale(r) for r in v] if isinstance(v, list) else scale(v)
            for k, v in polygons.items()}


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
    target = (_model_pixel_size(params.model_path) if params.method == "model" else CLASSICAL_PIXEL_SIZE_UM)
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
                          model=params.model_path, out=labels, tissue_mask=tissue, progress=steps.part(0),
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
        shape0 = tuple(int(v) for v in slide.level_shapes[0])
        scored, part = score_table(fibers, shape_yx, pixel_size_um=ps, stain=stain,
                                   settings=settings, edges=edges, tissue_area_um2=tissue_um2,
                                   path=path)
        part["nuclei"] = nuclei_summary(nuclei, scored)
        if part["nuclei"].get("method"):
            part["evidence"] = build_evidence(part, settings)
        slide_info = {
            "id": out_dir.name, "path": str(path), "sha256": (batch_info or {}).get("input_sha256"),
            "shape": list(shape0), "axes": slide.axes, "pixel_size_um": ps0,
            "pixel_size_source": "user" if params.pixel_size_um else slide.pixel_size_source,
            "stain": stain, "channel": channel, "whole_slide": True, "analysis_level": level,
            "analysis_downsample": ds, "analysis_shape": list(shape_yx), "level0_pixel_size_um": ps0,
            "analysis_pixel_size_um": ps, "labels_downsample": 1.0,
            "tissue_fraction": float(tissue.mean()), "tissue_area_um2": tissue_um2}
        segmentation = {"scale": {"source": "pixel_size" if ps else "estimated", "pixel_size_um": ps,
                                  "checked": False},
                        "tissue_area_px": int(round(float(tissue.mean()) * shape0[0] * shape0[1]))}
        summary = build_summary(slide_info, part, n_fibers=len(scored), model=_model_info(params),
                                segmentation=segmentation, fibers=scored)
        if batch_info is not None:
            summary["batch"] = batch_info
        write_wsi_outputs(out_dir, labels=labels, fibers=scored, summary=summary,
                          polygons=polygons, thumbnail=thumb, axes=slide.axes, channel=channel,
                          pixel_size_um=ps0, level0_shape=shape0)
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


def _model_pixel_size(model=None) -> float:
    from histo.segment.segmenter import load_segmenter

    return float(load_segmenter(model)[1].canonical_pixel_size_um)


def _model_info(params: ScoreParams) -> dict | None:
    if params.model is not None:
        return params.model
    from histo.segment.segmenter import model_info

    return model_info(params.method, params.model_path)


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
                      pixel_size_um: float | None, level0_shape: tuple[int, int] | None = None) -> Path:
    """The slide folder of a whole slide, atomically: tables, summary, pyramidal labels,
    GeoJSON and ROIs from per-tile outlines, overlay from the thumbnail (no full-size array).

    ``labels``, ``fibers`` and ``polygons`` are on the analysis grid; with ``level0_shape``
    (the slide's level-0 ``(H, W)``) every output is written in the level-0 frame
    (:func:`level0_table`, :func:`level0_outlines`, :class:`Level0Labels`), where
    ``pixel_size_um`` is level 0's.
    """
    level0_shape = tuple(int(v) for v in (level0_shape or labels.shape))
    scale_yx = (level0_shape[0] / labels.shape[0], level0_shape[1] / labels.shape[1])
    fibers = level0_table(fibers, scale_yx, pixel_size_um)
    polygons = level0_outlines(dict(sorted(polygons.items())), scale_yx)
    info = summary.get("slide") or {}
    description = (f"histo fiber labels (uint32, 0 = background) on level 0 of "
                   f"{Path(str(info.get('path') or out_dir.name)).name} ({level0_shape[0]} x "
                   f"{level0_shape[1]} px); analysed at level {info.get('analysis_level', 0)} "
                   f"(downsample {float(info.get('analysis_downsample') or 1.0):g}), upsampled "
                   "by nearest neighbour")
    text = json.dumps(to_jsonable(summary), indent=2, ensure_ascii=False, allow_nan=False)
    with result_directory(out_dir) as tmp:
        write_fiber_tables(tmp, fibers, slide_id=str((summary.get("slide") or {}).get("id") or out_dir.name),
                           pixel_size_um=pixel_size_um)
        (tmp / "summary.json").write_text(text + "\n", encoding="utf-8")
        write_labels_pyramid(tmp / "labels.tif", Level0Labels(labels, level0_shape),
                             pixel_size_um=pixel_size_um, description=description)
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
