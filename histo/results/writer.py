"""Per-slide output files: tables, summary, labels, QuPath GeoJSON, ImageJ ROIs, overlay.

:func:`write_slide_outputs` writes the output contract of ``histo score``/``histo measure``
(docs/architecture.md) into a temporary sibling folder and renames it into place
(:func:`histo.results.folder.result_directory`): a killed or failed run never leaves half a
folder, a folder histo did not write is refused, and only histo's own files are replaced.

* ``fibers.csv`` / ``fibers.parquet`` - the per-fiber table in the common exported schema
  (:mod:`histo.results.tables`, ``docs/columns.md``);
* ``summary.json`` - numpy numbers become JSON numbers, NaN/inf become ``null``;
* ``labels.tif`` - uint32 tiled OME-TIFF (deflate) with ``PhysicalSizeX/Y`` in µm when known,
  with a pyramid when larger than one tile (:func:`write_labels_pyramid`);
* ``fibers.geojson`` - one QuPath *detection* per fiber, outline traced along pixel edges in
  image pixel coordinates, ``classification`` = display class (:func:`histo.score.classes.fiber_class`)
  with its colour, ``measurements`` = every numeric column (booleans as 0/1, NaN left out),
  ``name`` = the label. QuPath >= 0.4: File > Import objects;
* ``rois.zip`` - ImageJ ROI set, one traced ROI per fiber named by its label, stroke
  coloured by class (Fiji: ROI Manager > More > Open);
* ``overlay.png`` - RGB thumbnail (long side <= 2048 px) with class-coloured outlines.

Both outline formats read back with :func:`histo.io.masks.read_labels` to the same labels.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import roifile
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.atomic import atomic_path
from histo.io.image import ImageLike
from histo.io.jsonable import to_jsonable
from histo.io.polygons import label_shapes, ring_area
from histo.results.folder import result_directory
from histo.results.tables import write_fiber_tables
from histo.score.classes import CLASS_COLORS, fiber_class

logger = logging.getLogger(__name__)

__all__ = [
    "fibers_geojson",
    "qupath_type_name",
    "render_overlay",
    "to_jsonable",
    "write_labels_pyramid",
    "write_roi_zip",
    "write_slide_outputs",
]

OVERLAY_MAX_PX = 2048
#: In-memory labels up to this many pixels get an untiled (striped) base level, which plain
#: ImageJ 1.x opens (it cannot read tiled TIFFs); larger ones, and whole slides, are tiled
#: (Fiji: File > Import > Bio-Formats, QuPath, napari).
STRIPED_MAX_PIXELS = 2**28


# --------------------------------------------------------------------------- labels.tif
def _level_shapes(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    while max(shapes[-1]) > tile:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def _tiles(source, shape: tuple[int, int], tile: int, step: int, on_tile=None):
    """Yield zero-padded uint32 tiles of ``source[::step, ::step]`` row by row."""
    height, width = shape
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(height, y0 + tile), min(width, x0 + tile)
            block = np.asarray(source[y0 * step:y1 * step:step, x0 * step:x1 * step:step])
            if block.dtype.kind not in "iub":
                raise HistoInputError(f"labels must be integers, got {block.dtype}")
            if block.dtype.kind == "i" and block.size and block.min() < 0:
                raise HistoInputError("labels contain negative values; use 0 for background")
            block = block.astype(np.uint32, copy=False)
            if on_tile is not None:
                on_tile(y0, x0, block)
            out = np.zeros((tile, tile), np.uint32)
            out[: y1 - y0, : x1 - x0] = block
            yield out


def write_labels_pyramid(path: str | os.PathLike, labels_like, *, pixel_size_um: float | None,
                         tile: int = 512, description: str | None = None) -> Path:
    """Write labels as a pyramidal uint32 OME-TIFF, tile by tile.

    Parameters
    ----------
    path : str or Path
        Output file (written atomically).
    labels_like : array-like, shape (Y, X)
        numpy, dask, zarr or any object supporting 2-D strided slicing; it is read once,
        one tile at a time (plus a temporary half-resolution copy on disk beside ``path``
        for the lower levels), so whole-slide labels never need to fit in memory.
    pixel_size_um : float or None
        Written as OME ``PhysicalSizeX/Y`` (µm) and TIFF resolution; omitted when None.
    tile : int, default 512
        Tile side, a multiple of 16.
    description : str, optional
        Stored in the OME image's ``Description`` (e.g. the pixel frame of the labels).

    Returns
    -------
    Path

    Notes
    -----
    Levels halve the size until the whole level fits one tile; they are taken by
    nearest-neighbour (every other pixel), which never invents a label that is not there.
    The base level is what ``tifffile.imread``, napari and QuPath (OME-TIFF reader) show.
    A numpy array of at most :data:`STRIPED_MAX_PIXELS` pixels gets a base level in strips
    (untiled), which plain ImageJ 1.x also opens (as 32-bit); the lower levels (SubIFDs) and
    any larger or lazy labels are tiled, for Bio-Formats, QuPath, napari and tifffile.
    """
    path = Path(path)
    if tile % 16 or tile <= 0:
        raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
    if len(labels_like.shape) != 2:
        raise HistoInputError(f"labels must be 2-D (Y, X), got shape {tuple(labels_like.shape)}", path=path)
    height, width = (int(s) for s in labels_like.shape)
    shapes = _level_shapes(height, width, tile)
    metadata: dict = {"axes": "YX"}
    if description:
        metadata["Description"] = str(description)
    options: dict = {"tile": (tile, tile), "compression": "zlib", "photometric": "minisblack"}
    if pixel_size_um is not None:
        metadata.update(PhysicalSizeX=float(pixel_size_um), PhysicalSizeXUnit="µm",
                        PhysicalSizeY=float(pixel_size_um), PhysicalSizeYUnit="µm")
        options.update(resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
    bigtiff = height * width * 4 * 4 / 3 > 2**31 - 2**25
    in_memory = isinstance(labels_like, np.ndarray)
    striped = in_memory and height * width <= STRIPED_MAX_PIXELS
    # lower levels straight from the source when strided reads are cheap (numpy, or a lazy view
    # that says so, e.g. histo.batch.wsi.Level0Labels); else from a half-size copy on disk
    direct = in_memory or bool(getattr(labels_like, "strided_reads", False))
    with atomic_path(path) as tmp, tempfile.TemporaryDirectory(dir=path.parent, prefix=".labels-pyramid-") as scratch:
        half = None
        if len(shapes) > 1 and not direct:  # half-resolution copy gathered during the first pass
            half = np.lib.format.open_memmap(Path(scratch) / "level1.npy", mode="w+", dtype=np.uint32,
                                             shape=shapes[1])

        def keep_half(y0, x0, block):
            if half is not None:
                sub = block[::2, ::2]
                half[y0 // 2: y0 // 2 + sub.shape[0], x0 // 2: x0 // 2 + sub.shape[1]] = sub

        with tifffile.TiffWriter(tmp, bigtiff=bigtiff, ome=True) as tw:
            if striped:
                base = np.concatenate(list(_tiles(labels_like, (height, width), max(height, width), 1)))
                base_opts = {k: v for k, v in options.items() if k != "tile"}
                tw.write(base[:height, :width], subifds=len(shapes) - 1, metadata=metadata,
                         rowsperstrip=max(1, 2**20 // (4 * width)), **base_opts)
            else:
                tw.write(_tiles(labels_like, shapes[0], tile, 1, keep_half), shape=shapes[0], dtype=np.uint32,
                         subifds=len(shapes) - 1, metadata=metadata, **options)
            for k in range(1, len(shapes)):
                source, step = (labels_like, 2**k) if direct else (half, 2 ** (k - 1))
                level_opts = {key: v for key, v in options.items() if key not in ("resolution", "resolutionunit")}
                tw.write(_tiles(source, shapes[k], tile, step), shape=shapes[k], dtype=np.uint32,
                         subfiletype=1, **level_opts)
        if half is not None:
            del half
    return path


# --------------------------------------------------------------------------- outlines
def _class_table(fibers: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame({"label": fibers["label"].astype(np.int64).to_numpy()}, index=fibers.index)
    table["class"] = fiber_class(fibers).to_numpy()
    return table.set_index("label")


def _ring_json(ring: np.ndarray) -> list:
    closed = np.vstack([ring, ring[:1]])
    if np.all(closed == np.round(closed)):
        return closed.astype(np.int64).tolist()
    return np.round(closed, 3).tolist()


def _rings(shape) -> list[np.ndarray]:
    """One outline: an (n, 2) ring, or a list of rings (outer first, then holes)."""
    if isinstance(shape, np.ndarray) and shape.ndim == 2:
        return [shape]
    return [np.asarray(r) for r in shape]


def _measurements(fibers: pd.DataFrame) -> dict[int, dict[str, float]]:
    numeric = [c for c in fibers.columns
               if c != "label" and (pd.api.types.is_numeric_dtype(fibers[c]) or pd.api.types.is_bool_dtype(fibers[c]))]
    values = fibers[numeric].astype("float64")
    out = {}
    for label, row in zip(fibers["label"].astype(np.int64), values.to_numpy()):
        out[int(label)] = {name: float(v) for name, v in zip(numeric, row) if math.isfinite(v)}
    return out


def _fiber_types(fibers: pd.DataFrame) -> dict[int, str]:
    """Known fiber types by label (``fiber_type`` column; missing, NA and empty left out)."""
    if "fiber_type" not in fibers.columns:
        return {}
    out = {}
    for label, value in zip(fibers["label"].astype(np.int64), fibers["fiber_type"]):
        if value is not None and not (isinstance(value, float) and math.isnan(value)) \
                and value is not pd.NA and str(value).strip():
            out[int(label)] = str(value).strip()
    return out


def qupath_type_name(fiber_type: str) -> str:
    """QuPath class name part for a fiber type.

    Type designations get a "Type" prefix (``"IIa"`` -> ``"Type IIa"``, ``"1"`` -> ``"Type 1"``,
    kept when already there); ``"negative"`` (no type channel positive) becomes
    ``"type-negative"``, apart from QuPath's own "Negative" class; other names (``"hybrid"``)
    are kept. Colons are QuPath's class separator and become spaces.

    Examples
    --------
    >>> [qupath_type_name(t) for t in ("IIa", "type 1", "2B", "negative", "hybrid")]
    ['Type IIa', 'type 1', 'Type 2B', 'type-negative', 'hybrid']
    """
    text = " ".join(str(fiber_type).replace(":", " ").split())
    if re.fullmatch(r"(?i)([IVX]+|\d+)[a-z]?(/([IVX]+|\d+)[a-z]?)*", text):
        return f"Type {text}"
    if text.lower() == "negative":
        return "type-negative"
    return text


def fibers_geojson(labels: np.ndarray, fibers: pd.DataFrame, polygons: dict | None = None) -> dict:
    """QuPath-importable FeatureCollection: one detection per label with its measurements.

    Parameters
    ----------
    labels : ndarray (Y, X) of int, or None when ``polygons`` is given
    fibers : DataFrame with ``label`` (and the class columns, ``fiber_type`` when typed)
    polygons : dict label -> ring or list of rings, optional
        Outlines in pixel-corner coordinates, outer ring first, then holes
        (:func:`histo.io.polygons.label_shapes`, traced from ``labels`` when None).

    Returns
    -------
    dict
        GeoJSON: a ``Polygon`` per fiber whose interior rings are its holes (a ``MultiPolygon``
        for a fiber in several pieces); ``classification``
        is the display class, or the derived class ``[class, "Type <t>"]`` (QuPath shows
        "small: Type IIa") when the fiber's type is known, which is also in ``metadata``.
    """
    polygons = label_shapes(labels) if polygons is None else polygons
    classes = _class_table(fibers)
    measures = _measurements(fibers)
    types = _fiber_types(fibers)
    features = []
    for label, shape in polygons.items():
        props: dict = {"objectType": "detection", "name": str(label)}
        if label in classes.index:
            name = str(classes.at[label, "class"])
            if label in types:  # QuPath >= 0.4 reads "names" as a derived class (needs "color")
                props["classification"] = {"names": [name, qupath_type_name(types[label])],
                                           "color": list(CLASS_COLORS[name])}
            else:
                props["classification"] = {"name": name, "color": list(CLASS_COLORS[name])}
        if label in types:
            props["metadata"] = {"fiber_type": types[label]}
        if label in measures:
            props["measurements"] = measures[label]
        features.append({"type": "Feature", "geometry": _geometry(_rings(shape)), "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _geometry(rings: list[np.ndarray]) -> dict:
    """GeoJSON geometry of one outline: each positive ring starts a polygon, negative rings
    after it are its holes (:func:`histo.io.polygons.label_shapes`); a Polygon, or a
    MultiPolygon for a fiber in several pieces."""
    polygons: list[list] = []
    for i, ring in enumerate(rings):
        if i == 0 or ring_area(ring) > 0:
            polygons.append([])
        polygons[-1].append(_ring_json(ring))
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def _roi(label_name: str, rings: list[np.ndarray]):
    """One ImageJ ROI: traced polygon, or a composite (shape) ROI when there are holes."""
    if len(rings) == 1:
        ring = rings[0]
        pts = ring.astype(np.int32) if np.all(ring == np.round(ring)) else ring.astype(np.float32)
        roi = roifile.ImagejRoi.frompoints(pts, name=label_name)
        subpixel = bool(roi.options & roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION)
        roi.roitype = roifile.ROI_TYPE.POLYGON if subpixel else roifile.ROI_TYPE.TRACED
        return roi
    # ImageJ ShapeRoi: a RECT roi whose path is MOVETO x y, LINETO x y ..., CLOSE per ring
    # (absolute image coordinates; holes run the other way round, so even-odd and non-zero
    # winding both cut them out)
    path = []
    for ring in rings:
        ring = np.asarray(ring, np.float64)
        path += [0.0, *ring[0]]
        for x, y in ring[1:]:
            path += [1.0, x, y]
        path.append(4.0)
    outer = np.asarray(rings[0], np.float64)
    roi = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, name=label_name)
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    x0, y0 = np.floor(outer.min(axis=0)).astype(int)
    x1, y1 = np.ceil(outer.max(axis=0)).astype(int)
    roi.left, roi.top, roi.right, roi.bottom = int(x0), int(y0), int(x1), int(y1)
    return roi


def write_roi_zip(path: str | os.PathLike, polygons: dict, fibers: pd.DataFrame | None = None) -> Path:
    """ImageJ ROI set: one ROI per label, named by the label, coloured by class.

    A ring becomes a traced ROI (integer pixel-corner vertices) or, beyond ImageJ's integer
    range (-5000..60535, whole slides) or off the pixel corners, a sub-pixel polygon; an
    outline with holes or several pieces (a list of rings, :func:`histo.io.polygons.label_shapes`)
    becomes a composite ROI (ImageJ ``ShapeRoi``) whose holes are cut out.
    """
    classes = _class_table(fibers) if fibers is not None else None
    width = max(4, len(str(max(polygons, default=0))))
    rois = []
    for label, shape in polygons.items():
        roi = _roi(f"{label:0{width}d}", _rings(shape))
        if classes is not None and label in classes.index:
            r, g, b = CLASS_COLORS[str(classes.at[label, "class"])]
            roi.stroke_color = bytes([255, r, g, b])
        rois.append(roi)
    path = Path(path)
    with atomic_path(path) as tmp:
        roifile.roiwrite(tmp, rois, mode="w")
    return path


# --------------------------------------------------------------------------- overlay
def _stretch(plane: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(plane.size / 1e6)))
    sample = plane[::step, ::step].astype(np.float32)
    lo, hi = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    return np.clip((plane.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _display_rgb(image: ImageLike | np.ndarray | None, channel: int | None) -> np.ndarray | None:
    if image is None:
        return None
    pixels, axes = (image.pixels, image.axes) if hasattr(image, "axes") else (np.asarray(image), None)
    channel = channel if channel is not None else getattr(image, "channel", None)
    if axes is None:
        axes = "YXS" if pixels.ndim == 3 and pixels.shape[-1] in (3, 4) else ("CYX" if pixels.ndim == 3 else "YX")
    if axes == "YXS":
        rgb = pixels[..., :3]
        return rgb if rgb.dtype == np.uint8 else np.dstack([_stretch(rgb[..., i]) for i in range(3)])
    if axes == "YX":
        grey = _stretch(pixels)
    elif channel is not None and 0 <= channel < pixels.shape[0]:
        grey = _stretch(pixels[channel])
    else:  # no chosen channel: brightest of the stretched channels
        grey = np.max([_stretch(p) for p in pixels], axis=0)
    return np.dstack([grey, grey, grey])


def render_overlay(labels: np.ndarray, fibers: pd.DataFrame, image: ImageLike | np.ndarray | None = None, *, channel: int | None = None,
                   max_px: int = OVERLAY_MAX_PX) -> np.ndarray:
    """RGB uint8 thumbnail of ``image`` with fiber outlines coloured by display class.

    ``image`` (ImageData or array; any size, resampled to the labels' thumbnail) may be None
    (dark background). Multichannel images show ``channel`` (or the image's chosen channel)
    contrast-stretched, else the brightest channel per pixel.
    """
    height, width = labels.shape
    step = max(1, math.ceil(max(height, width) / max_px))
    small = np.asarray(labels[::step, ::step])
    out_h, out_w = small.shape
    rgb = _display_rgb(image, channel)
    if rgb is None:
        canvas = np.full((out_h, out_w, 3), 40, np.uint8)
    else:
        canvas = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((out_w, out_h), Image.Resampling.BOX))
        canvas = canvas.copy()
    band_px = 1 if max(out_h, out_w) < 1200 else 2  # outline width in thumbnail pixels
    size = 2 * band_px + 1
    edge = (small > 0) & ((ndi.minimum_filter(small, size=size) != small)
                          | (ndi.maximum_filter(small, size=size) != small))
    classes = _class_table(fibers)
    palette = np.array([CLASS_COLORS["normal"]] + [CLASS_COLORS[c] for c in classes["class"]], np.uint8)
    colour_of = pd.Series(np.arange(1, len(classes) + 1), index=classes.index)  # 0 = not in table
    lab_edge = small[edge].astype(np.int64)
    colour_idx = colour_of.reindex(lab_edge).fillna(0).to_numpy(np.int64)
    canvas[edge] = palette[colour_idx]
    return canvas


# --------------------------------------------------------------------------- slide folder
def write_slide_outputs(out_dir: str | os.PathLike, *, labels: np.ndarray, fibers: pd.DataFrame,
                        summary: Mapping, image: ImageLike | np.ndarray | None = None, pixel_size_um: float | None = None) -> Path:
    """Write one slide's results folder atomically (see the module docstring).

    Parameters
    ----------
    out_dir : str or Path
        The slide folder; an existing one is replaced only once the new one is complete, only
        when it is histo's (:func:`histo.results.folder.check_result_dir`), and only histo's
        own files in it: a saved review and the user's other files are kept.
    labels : ndarray (Y, X) of int
    fibers : DataFrame with a ``label`` column
    summary : mapping, JSON-able after :func:`to_jsonable`
    image : ImageData or ndarray, optional
        Background of ``overlay.png``.
    pixel_size_um : float, optional
        Written into ``labels.tif``; defaults to ``image.pixel_size_um``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iu":
        raise HistoInputError(f"labels to write must be a 2-D integer array, got {labels.dtype} "
                              f"{labels.shape}", path=out_dir)
    if not isinstance(fibers, pd.DataFrame) or "label" not in fibers.columns:
        raise HistoInputError("the fiber table to write needs a 'label' column", path=out_dir)
    if not isinstance(summary, Mapping):
        raise HistoInputError(f"summary must be a mapping, got {type(summary).__name__}", path=out_dir)
    if pixel_size_um is None and image is not None:
        pixel_size_um = getattr(image, "pixel_size_um", None)
    try:
        summary_text = json.dumps(to_jsonable(summary), indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise HistoInputError(f"summary cannot be stored as JSON: {err}", path=out_dir) from err
    channel = (summary.get("slide") or {}).get("channel") if isinstance(summary.get("slide"), Mapping) else None
    with result_directory(out_dir) as tmp:
        slide = summary.get("slide") if isinstance(summary.get("slide"), Mapping) else {}
        write_fiber_tables(tmp, fibers, slide_id=str(slide.get("id") or out_dir.name), pixel_size_um=pixel_size_um)
        (tmp / "summary.json").write_text(summary_text + "\n", encoding="utf-8")
        write_labels_pyramid(tmp / "labels.tif", labels, pixel_size_um=pixel_size_um)
        polygons = label_shapes(labels)
        geo = fibers_geojson(labels, fibers, polygons)
        (tmp / "fibers.geojson").write_text(json.dumps(geo, separators=(",", ":")), encoding="utf-8")
        write_roi_zip(tmp / "rois.zip", polygons, fibers)
        overlay = render_overlay(labels, fibers, image, channel=channel)

        Image.fromarray(overlay).save(tmp / "overlay.png", optimize=False)
    logger.info("wrote %s (%d fibers)", out_dir, len(fibers))
    return out_dir
