"""Fiber masks made by other tools -> one validated ``uint32`` label image.

Accepted inputs (recognised from the file's content, not its extension):

* **label images** - TIFF/OME-TIFF, PNG (e.g. Cellpose ``*_cp_masks.png``, 8/16-bit or
  palette), ``.npy``: 0 = background, one integer per fiber;
* **ImageJ ROI sets** - ``.zip`` of ``.roi`` files, or a single ``.roi`` (polygon, freehand,
  traced, rectangle, oval, ellipse and composite ROIs; lines and points are skipped);
* **QuPath GeoJSON** - a FeatureCollection, a list of features, one feature or one geometry;
  Polygon and MultiPolygon with holes. When the file holds both detections and annotations
  (fibers inside a drawn tissue outline), only the detections are used.

Outlines are rasterised with :mod:`histo.io.polygons` (pixel-corner coordinates, a pixel
belongs to the outline containing its centre; later outlines win where they overlap), so
they need the image ``shape``. Outline labels are the ROI/feature names when every name is
a distinct positive integer (as histo's own exports write them), else 1..n in file order.

Binary masks: a mask with a single foreground value but several separate pieces (a 0/1 or
0/255 mask of fibers separated by their borders) is split into 4-connected components with
a warning - the common ImageJ/Fiji "Analyze Particles" reading. Pass ``binary="error"`` to
refuse such masks instead. A foreground *region* (one object over >90% of the image) is
always refused: it is not a fiber mask.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import roifile
from scipy import ndimage as ndi

from histo.errors import HistoInputError
from histo.io.files import check_file, sniff_format
from histo.io.image import check_pixel_budget, open_pil_checked
from histo.io.labels import check_labels
from histo.io.polygons import polygons_to_labels

logger = logging.getLogger(__name__)

__all__ = ["MAX_OBJECT_FRACTION", "read_labels", "validate_labels"]

#: One object covering more than this fraction of the image is a foreground mask, not a fiber.
MAX_OBJECT_FRACTION = 0.9
_AREA_ROI_TYPES = {"POLYGON", "RECT", "OVAL", "FREEHAND", "TRACED"}
_DETECTION_TYPES = {"detection", "cell", "tile", "pathdetectionobject", "pathcellobject", "pathtileobject"}


# --------------------------------------------------------------------------- validation
def validate_labels(labels, image_shape=None, path=None, *, binary: str = "components",
                    relabel: bool = False) -> np.ndarray:
    """Check an instance label image and return it as ``uint32`` ``(Y, X)``.

    The core rules are :func:`histo.io.labels.check_labels`; a mask made by another tool
    must also fit ``uint32``, match the image's shape, hold some fiber and not be one
    foreground region, and a binary mask is split into its pieces (or refused).

    Parameters
    ----------
    labels : array-like
        Candidate label image; singleton axes are dropped.
    image_shape : (int, int), optional
        ``(Y, X)`` of the image the labels belong to; a mismatch is an error.
    path : str or Path, optional
        File the labels came from, named in error messages.
    binary : {"components", "error"}
        What to do with a binary mask of several pieces (see the module docstring).
    relabel : bool
        Renumber labels 1..n in order of their current value (only when asked).

    Returns
    -------
    ndarray of uint32, shape (Y, X)

    Raises
    ------
    HistoInputError
        Not 2-D (e.g. an RGB rendering of labels), NaNs, non-integer or negative values,
        values beyond uint32, wrong shape, no fiber at all, one object over 90% of the image,
        or a binary mask when ``binary="error"``.

    Examples
    --------
    >>> lab = validate_labels(np.array([[0, 2], [2, 5]], dtype=np.int64))
    >>> lab.dtype.name, lab.tolist()
    ('uint32', [[0, 2], [2, 5]])
    """
    if binary not in ("components", "error"):
        raise ValueError(f"binary must be 'components' or 'error', got {binary!r}")
    arr = np.asarray(labels)
    if arr.ndim > 2:
        arr = arr.squeeze()
    arr = check_labels(arr, path=path)
    if arr.size and float(arr.max()) > np.iinfo(np.uint32).max:
        raise HistoInputError("labels exceed the uint32 range; renumber them 1..n", path=path)
    if image_shape is not None:
        _check_shape(arr.shape, tuple(int(s) for s in image_shape), path)
    arr = arr.astype(np.uint32, copy=False)
    top = int(arr.max()) if arr.size else 0
    if top == 0:
        raise HistoInputError("the mask is empty (no fiber: every pixel is 0); check that it is the "
                              "right file and that fibers are not stored as 0", path=path)
    n_fg = int(np.count_nonzero(arr))
    if int(np.count_nonzero(arr == top)) == n_fg:  # one foreground value: binary or one object
        arr = _split_binary(arr, arr > 0, path, binary)
    if n_fg > MAX_OBJECT_FRACTION * arr.size:  # only then can one object cover > 90%
        _check_largest(arr, path)
    if relabel:
        from skimage.segmentation import relabel_sequential

        arr = relabel_sequential(arr)[0].astype(np.uint32, copy=False)
    return arr


def _check_shape(shape: tuple[int, int], expected: tuple[int, int], path) -> None:
    if shape == expected:
        return
    hint = ""
    if shape == expected[::-1]:
        hint = " (rows and columns swapped: was the mask transposed?)"
    elif all(s and e % s == 0 for s, e in zip(shape, expected)) and expected[0] // shape[0] == expected[1] // shape[1]:
        hint = f" (the image is {expected[0] // shape[0]}x larger: was the mask made on a downsampled copy?)"
    raise HistoInputError(f"labels have shape {shape} but the image is {expected} (height, width){hint}; "
                          "the mask must be on the image's own pixel grid", path=path)


def _split_binary(arr: np.ndarray, fg: np.ndarray, path, binary: str) -> np.ndarray:
    pieces, n = ndi.label(fg)
    if n <= 1:
        return arr
    value = int(arr.max())
    if binary == "error":
        raise HistoInputError(
            f"is a binary mask (every fiber has the value {value}, {n} separate pieces), not instance "
            "labels; label its connected components first, or read it with binary='components'", path=path)
    logger.warning("%s: binary mask (all fibers = %d): split into %d connected pieces (4-connectivity); "
                   "touching fibers stay merged", path, value, n)
    return pieces.astype(np.uint32)


def _check_largest(arr: np.ndarray, path) -> None:
    top = int(arr.max())
    if top <= 10_000_000:
        counts = np.bincount(arr.ravel())
        counts[0] = 0
        biggest, label = int(counts.max()), int(counts.argmax())
    else:
        values, counts = np.unique(arr[arr > 0], return_counts=True)
        biggest, label = int(counts.max()), int(values[counts.argmax()])
    frac = biggest / arr.size
    if frac > MAX_OBJECT_FRACTION:
        raise HistoInputError(
            f"label {label} covers {100 * frac:.0f}% of the image: this looks like a foreground "
            "(tissue) mask, not one label per fiber; give instance labels (e.g. Cellpose masks, an "
            "ImageJ ROI set) or let histo segment the image", path=path)


# --------------------------------------------------------------------------- reading
def read_labels(path: str | os.PathLike, *, shape=None, binary: str = "components",
                relabel: bool = False) -> np.ndarray:
    """Read a fiber mask from a label image, an ImageJ ROI set or QuPath GeoJSON.

    Parameters
    ----------
    path : str or Path
    shape : (int, int), optional
        ``(Y, X)`` of the image. Required for ROI sets and GeoJSON (outlines carry no
        raster size); for label images it is checked against the file.
    binary, relabel
        See :func:`validate_labels`.

    Returns
    -------
    ndarray of uint32, shape (Y, X)

    Raises
    ------
    HistoInputError
        Unreadable or unsupported files, outlines without ``shape``, outlines outside the
        image, and everything :func:`validate_labels` refuses.
    """
    path = check_file(path)
    fmt = sniff_format(path)
    if fmt in ("zip", "roi", "json"):
        if shape is None:
            raise HistoInputError("holds outlines, not a raster: pass the image shape "
                                  "(shape=(height, width)) to rasterise them", path=path)
        shape = (int(shape[0]), int(shape[1]))
        items = _read_rois(path) if fmt != "json" else _read_geojson(path)
        labels = _rasterise(items, shape, path)
    elif fmt in ("tiff", "png", "npy", "bmp", "gif"):
        labels = _read_label_image(path, fmt)
    else:
        raise HistoInputError(
            "is not a mask histo can read: give a label image (TIFF/PNG, e.g. Cellpose *_cp_masks.png), "
            "an ImageJ ROI set (.zip/.roi) or QuPath GeoJSON", path=path)
    return validate_labels(labels, image_shape=shape, path=path, binary=binary, relabel=relabel)


def _read_label_image(path: Path, fmt: str) -> np.ndarray:
    try:
        if fmt == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape = series.levels[0].shape if series.is_pyramidal else series.shape
                if len(shape) >= 2:
                    check_pixel_budget(shape[-2], shape[-1], path)
                return series.asarray(level=0) if series.is_pyramidal else series.asarray()
        if fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.ndim >= 2:
                check_pixel_budget(arr.shape[-2], arr.shape[-1], path)
            return np.array(arr)
        with open_pil_checked(path) as im:  # palette PNGs give their indices; RGB is refused later
            im.load()
            return np.asarray(im)
    except HistoInputError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file for the user
        raise HistoInputError(f"could not be read as a {fmt.upper()} label image ({type(err).__name__}: "
                              f"{err}); the file is probably truncated or corrupt", path=path) from err


def _roi_rings(roi) -> list[np.ndarray] | None:
    """Rings of one area ROI in pixel-corner (x, y); None for lines, points, text."""
    kind = roi.roitype.name
    if roi.composite and roi.multi_coordinates is not None:
        return [np.asarray(r, np.float64) for r in roi.coordinates(multi=True)]
    if kind not in _AREA_ROI_TYPES:
        return None
    if kind == "RECT":
        if roi.subpixelrect:
            x0, y0, x1, y1 = roi.xd, roi.yd, roi.xd + roi.widthd, roi.yd + roi.heightd
        else:
            x0, y0, x1, y1 = roi.left, roi.top, roi.right, roi.bottom
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)]
    if kind == "OVAL" and roi.integer_coordinates is None and roi.subpixel_coordinates is None:
        cx, cy = (roi.left + roi.right) / 2, (roi.top + roi.bottom) / 2
        rx, ry = (roi.right - roi.left) / 2, (roi.bottom - roi.top) / 2
        n = max(64, int(4 * np.pi * max(rx, ry)))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return [np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)]
    coords = np.asarray(roi.coordinates(), np.float64)
    return [coords] if len(coords) >= 3 else None


#: A ROI set whose members unpack to more than this is refused (a zip bomb; real sets are MBs).
MAX_ROI_ZIP_BYTES = 1 << 30


def _check_zip_size(path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(max(0, info.file_size) for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # roifile reports the damage below
    if total > MAX_ROI_ZIP_BYTES:
        raise HistoInputError(f"unpacks to {total / 1024**3:.1f} GiB, far more than an ImageJ ROI set "
                              "holds; it is not a ROI set (or is damaged): export the ROIs again",
                              path=path)


def _read_rois(path: Path) -> list[tuple[str | None, list[np.ndarray]]]:
    if path.suffix.lower() == ".zip" or sniff_format(path) == "zip":
        _check_zip_size(path)
    try:
        rois = roifile.roiread(path)
    except Exception as err:  # noqa: BLE001
        raise HistoInputError(f"could not be read as an ImageJ ROI set ({type(err).__name__}: {err})",
                              path=path) from err
    rois = rois if isinstance(rois, list) else [rois]
    items, skipped = [], 0
    for number, roi in enumerate(rois, 1):
        try:
            rings = _roi_rings(roi)
        except Exception as err:  # noqa: BLE001 - a damaged ROI is a bad file for the user
            raise HistoInputError(f"ROI {number} ({getattr(roi, 'name', '') or 'unnamed'}) is damaged "
                                  f"({type(err).__name__}: {err}); export the ROIs again",
                                  path=path) from err
        if rings is None:
            skipped += 1
            continue
        items.append((roi.name or None, rings))
    if skipped:
        logger.warning("%s: skipped %d ROIs that are not areas (lines, points, text)", path, skipped)
    return items


def _geometry_rings(geometry) -> list[np.ndarray]:
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    if kind == "Polygon":
        polys = [geometry.get("coordinates") or []]
    elif kind == "MultiPolygon":
        polys = geometry.get("coordinates") or []
    elif kind == "GeometryCollection":
        return [r for g in geometry.get("geometries") or [] for r in _geometry_rings(g)]
    else:
        return []
    rings = [np.asarray(ring, np.float64) for poly in polys for ring in poly if len(ring) >= 3]
    for ring in rings:
        if ring.ndim != 2 or ring.shape[1] < 2:
            raise ValueError(f"a ring's points must be [x, y] pairs, got an array of shape {ring.shape}")
        if not np.isfinite(ring[:, :2]).all():
            raise ValueError("a ring has NaN or infinite coordinates")
    return [ring[:, :2] for ring in rings]


def _read_geojson(path: Path) -> list[tuple[str | None, list[np.ndarray]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HistoInputError(f"is not valid GeoJSON ({err}); export it again from QuPath "
                              "(File > Export objects as GeoJSON)", path=path) from err
    except RecursionError as err:
        raise HistoInputError("is JSON nested too deeply to be GeoJSON outlines; export it again "
                              "from QuPath (File > Export objects as GeoJSON)", path=path) from err
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    elif isinstance(data, dict) and "coordinates" in data:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    elif isinstance(data, list):
        features = data
    else:
        raise HistoInputError("is JSON but not GeoJSON features (expected a FeatureCollection or a "
                              "list of features)", path=path)
    if not isinstance(features, list):
        raise HistoInputError(f"'features' must be a list, got {type(features).__name__}; export it "
                              "again from QuPath (File > Export objects as GeoJSON)", path=path)
    parsed = []
    for number, feat in enumerate(features, 1):
        if not isinstance(feat, dict):
            continue
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            raise HistoInputError(f"feature {number} has 'properties' of type {type(props).__name__}, "
                                  "not an object; fix or re-export the file", path=path)
        otype = str(props.get("objectType") or props.get("object_type") or "").lower()
        try:
            rings = _geometry_rings(feat.get("geometry"))
        except (ValueError, IndexError, TypeError) as err:
            raise HistoInputError(f"has a malformed geometry in feature {number} ({err})", path=path) from err
        except RecursionError as err:
            raise HistoInputError(f"feature {number} has geometries nested too deeply", path=path) from err
        if rings:
            name = props.get("name")
            parsed.append((otype, None if name is None else str(name), rings))
    if any(t in _DETECTION_TYPES for t, _, _ in parsed) and any(t not in _DETECTION_TYPES for t, _, _ in parsed):
        n_other = sum(t not in _DETECTION_TYPES for t, _, _ in parsed)
        logger.info("%s: using the detections; ignoring %d annotations (e.g. a tissue outline)", path, n_other)
        parsed = [p for p in parsed if p[0] in _DETECTION_TYPES]
    return [(name, rings) for _, name, rings in parsed]


_MAX_LABEL = 2**32 - 1  # labels are stored as uint32


def _rasterise(items: list[tuple[str | None, list[np.ndarray]]], shape: tuple[int, int], path: Path) -> np.ndarray:
    if not items:
        raise HistoInputError("holds no area outlines (polygons) to use as fibers", path=path)
    names = [n.strip() if n else "" for n, _ in items]
    # names are used as labels only when they are plain ASCII numbers that fit uint32 labels
    if (all(n.isascii() and n.isdigit() and 0 < int(n) < _MAX_LABEL for n in names)
            and len(set(map(int, names))) == len(names)):
        ids = [int(n) for n in names]
    else:
        ids = list(range(1, len(items) + 1))
    height, width = shape
    outside = 0
    for _, rings in items:
        pts = np.concatenate(rings)
        if pts[:, 0].max() <= 0 or pts[:, 1].max() <= 0 or pts[:, 0].min() >= width or pts[:, 1].min() >= height:
            outside += 1
    if outside > 0.1 * len(items):
        allpts = np.concatenate([r for _, rings in items for r in rings])
        raise HistoInputError(
            f"{outside} of {len(items)} outlines lie outside the {width}x{height} image (outlines span "
            f"x {allpts[:, 0].min():.0f}..{allpts[:, 0].max():.0f}, y {allpts[:, 1].min():.0f}.."
            f"{allpts[:, 1].max():.0f}): were they drawn on another image or resolution level?", path=path)
    if outside:
        logger.warning("%s: %d outlines lie outside the image and are dropped", path, outside)
    return polygons_to_labels(((i, rings) for i, (_, rings) in zip(ids, items)), shape)
