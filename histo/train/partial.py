"""Partial annotations: hand-drawn "fiber" and "no_fiber" polygons, and training from them.

A partial annotation (``data/real/annotations/<stem>.geojson``, QuPath-style GeoJSON) marks only
some regions of an image: whole fibers (class ``"fiber"``, one polygon each) and regions that
certainly hold no fiber (class ``"no_fiber"``: infiltrate, interstitium, vessels, glass...).
Everything else is unknown. Training targets from it carry a per-pixel loss weight of 0 on
unknown pixels, so the loss (:func:`histo.train.loop.loss_fn`) learns only from what was drawn.

Coordinates are pixels in the pixel-corner frame (as QuPath): x right, y down, pixel ``(r, c)``
covers ``[c, c + 1] x [r, r + 1]``; a pixel belongs to a polygon when its centre
``(c + 0.5, r + 0.5)`` lies inside it. Every feature has ``properties.split``
(``"train"`` or ``"eval"``) so a held-out part exists.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as _fill_polygon

from histo.errors import HistoInputError
from histo.segment.scale import rescale
from histo.segment.targets import fiber_targets, median_diameter_px, size_weights
from histo.train.trainset import Sample

if TYPE_CHECKING:
    from histo.train.loop import TrainSettings

log = logging.getLogger(__name__)

CLASSES = ("fiber", "no_fiber")
SPLITS = ("train", "eval")


def read_features(path: str | Path) -> list[dict]:
    """The features of a partial-annotation GeoJSON, checked.

    Parameters
    ----------
    path : str or Path
        A GeoJSON FeatureCollection (or a bare list of features).

    Returns
    -------
    list of dict
        ``{"class": "fiber"|"no_fiber", "split": "train"|"eval", "rings_xy": [ (N, 2) float arrays ]}``;
        the first ring is the outline, further rings are holes.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise HistoInputError(f"cannot read the annotation: {e}", path=path) from e
    feats = doc.get("features", []) if isinstance(doc, dict) else doc
    out = []
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        cls = props.get("classification", {})
        name = cls.get("name") if isinstance(cls, dict) else cls
        split = props.get("split", "train")
        if name not in CLASSES or split not in SPLITS:
            raise HistoInputError(f"feature {i}: class {name!r} / split {split!r} not in {CLASSES} / {SPLITS}",
                                  path=path)
        geom = f.get("geometry") or {}
        if geom.get("type") == "Polygon":
            polys = [geom["coordinates"]]
        elif geom.get("type") == "MultiPolygon":
            polys = geom["coordinates"]
        else:
            raise HistoInputError(f"feature {i}: geometry {geom.get('type')!r} is not a polygon", path=path)
        for rings in polys:
            out.append({"class": name, "split": split,
                        "rings_xy": [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings]})
    return out


def _polygon_mask(rings_xy: list[np.ndarray], shape_yx: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside the outline and outside its holes (pixel-corner frame)."""
    mask = np.zeros(shape_yx, bool)
    for k, ring in enumerate(rings_xy):
        # pixel-corner coordinates -> pixel-centre coordinates (the centre of pixel c is c + 0.5)
        rr, cc = _fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape=shape_yx)
        mask[rr, cc] = k == 0
    return mask


def read_partial(path: str | Path, shape_yx: tuple[int, int], *, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Rasterise the polygons of one split: fiber instance labels and the known mask.

    Parameters
    ----------
    path : str or Path
        Partial-annotation GeoJSON (pixel-corner frame, x right, y down).
    shape_yx : (int, int)
        Shape of the image the polygons were drawn on.
    split : {"train", "eval"}
        Only polygons of this split are used.

    Returns
    -------
    labels : (Y, X) int32
        Fiber polygons numbered 1..n in file order (a later polygon wins where two overlap).
    known : (Y, X) bool
        Pixels inside any polygon of the split, fiber or no_fiber.

    Examples
    --------
    A square from (2, 2) to (5, 5) covers the 3 x 3 pixels whose centres are inside:

    >>> import tempfile, json
    >>> sq = {"type": "Feature", "geometry": {"type": "Polygon",
    ...       "coordinates": [[[2, 2], [5, 2], [5, 5], [2, 5], [2, 2]]]},
    ...       "properties": {"classification": {"name": "fiber"}, "split": "train"}}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".geojson", delete=False) as f:
    ...     json.dump({"type": "FeatureCollection", "features": [sq]}, f)
    >>> lab, known = read_partial(f.name, (8, 8))
    >>> int(lab.sum()), int(known.sum()), bool(lab[2, 2]), bool(lab[5, 5])
    (9, 9, True, False)
    """
    shape_yx = (int(shape_yx[0]), int(shape_yx[1]))
    labels = np.zeros(shape_yx, np.int32)
    known = np.zeros(shape_yx, bool)
    n = 0
    for f in read_features(path):
        if f["split"] != split:
            continue
        m = _polygon_mask(f["rings_xy"], shape_yx)
        known |= m
        if f["class"] == "fiber":
            n += 1
            labels[m] = n
    return labels, known


def partial_targets(labels: np.ndarray, known: np.ndarray, small_weight_max: float, *,
                    outside_ring_px: int = 1) -> np.ndarray:
    """(4, Y, X) float16 targets of a partial annotation: the three maps and the loss weight.

    The maps are :func:`histo.segment.targets.fiber_targets` of the fiber polygons (the
    boundary there is the fibers' *inner* edge, so it lies inside their polygons). The weight
    is :func:`histo.segment.targets.size_weights` (``small_weight_max`` <= 1: all ones) on
    known pixels and 0 elsewhere, so the loss ignores what was not annotated. Known no_fiber
    pixels are background with weight 1. A ring ``outside_ring_px`` wide just outside each fiber
    polygon is known background too (the endomysium at a drawn fiber's edge), so the network
    learns where the fiber stops.

    Parameters
    ----------
    labels : (Y, X) int array
        Fiber instance labels (0 = not a fiber polygon).
    known : (Y, X) bool
        Annotated pixels (inside any polygon).
    small_weight_max : float
        Largest size weight of a small fiber's pixels.
    outside_ring_px : int
        Width of the known background ring around fiber polygons (0: none).

    Returns
    -------
    (4, Y, X) float16

    Examples
    --------
    >>> lab = np.zeros((9, 9), np.int32); lab[2:6, 2:6] = 1
    >>> known = np.zeros((9, 9), bool); known[7:, :] = True
    >>> t = partial_targets(lab, known | (lab > 0), 3.0)
    >>> float(t[3, 0, 0]), float(t[3, 3, 3]), float(t[3, 1, 3]), float(t[3, 8, 8]), float(t[0, 8, 8])
    (0.0, 1.0, 1.0, 1.0, 0.0)
    """
    labels = np.asarray(labels)
    fg = labels > 0
    known = np.asarray(known, bool) | fg
    if outside_ring_px > 0 and fg.any():
        known = known | ndi.binary_dilation(fg, iterations=int(outside_ring_px))
    t = fiber_targets(labels)
    w = size_weights(labels, small_weight_max) if small_weight_max > 1 else np.ones(labels.shape, np.float32)
    w = np.where(known, w, 0.0).astype(np.float32)
    return np.concatenate([t, w[None]]).astype(np.float16)


def read_image(path: str | Path) -> np.ndarray:
    """(Y, X, 3) uint8 RGB of a brightfield image file (TIFF via tifffile, others via Pillow)."""
    import tifffile
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        img = tifffile.imread(path)
    else:
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 200_000_000)
        img = np.asarray(Image.open(path).convert("RGB"))
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise HistoInputError(f"partial annotations need an RGB brightfield image, got shape {img.shape}", path=path)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) / max(float(img.max()), 1.0) * 255, 0, 255).astype(np.uint8)
    return img


def prepare_partial(image_path: str | Path, annotation_path: str | Path, settings: TrainSettings, *,
                    split: str = "train", tile_px: int | None = None) -> list[Sample]:
    """Training samples of one partially annotated image at several canonical fiber sizes.

    The image is brought to ``settings.partial_scales`` fiber diameters spread over
    ``settings.diameter_range_px`` (geometric), using the median diameter of the annotated
    fibers (:func:`histo.segment.targets.median_diameter_px`). Only tiles (``tile_px`` square
    at the canonical scale, default ``2 * settings.crop_px``) holding annotated pixels are kept,
    each with a context margin of at least the largest fiber diameter whose loss weight is 0 (a
    fiber cut by the tile edge is still whole where it is learned). Labels and the known mask
    are rescaled with nearest neighbours and the targets computed after scaling, so the
    weight is exactly 0 on unknown pixels.

    Parameters
    ----------
    image_path, annotation_path : str or Path
        RGB brightfield image and its partial-annotation GeoJSON.
    settings : TrainSettings
        Uses ``diameter_range_px``, ``partial_scales`` (else ``real_scales``), ``crop_px``,
        ``small_weight_max``.
    split : {"train", "eval"}
    tile_px : int, optional

    Returns
    -------
    list of Sample
        ``kind="partial"``, ``labels=None``, targets (4, Y, X) with the loss weight last.
    """
    img = read_image(image_path)
    labels, known = read_partial(annotation_path, img.shape[:2], split=split)
    if not known.any():
        raise HistoInputError(f"no {split!r} polygons in the annotation", path=annotation_path)
    if labels.max() == 0:
        raise HistoInputError("no fiber polygons: the fiber size (and the scale) is unknown", path=annotation_path)
    out = known_region_samples(img, labels, known, settings, tile_px=tile_px)
    log.info("prepared %s (partial, %s): %d tiles", Path(image_path).name, split, len(out))
    return out


def known_region_samples(image: np.ndarray, labels: np.ndarray, known: np.ndarray, settings: TrainSettings, *,
                         tile_px: int | None = None, diameter_px: float | None = None,
                         outside_ring_px: int = 1) -> list[Sample]:
    """Training samples of an image whose truth is known only on ``known`` pixels, at several scales.

    The tiling behind :func:`prepare_partial`, over arrays: used for hand-drawn annotations
    and for reviewed slides (:mod:`histo.train.reviews`). The image is brought to
    ``settings.partial_scales`` fiber diameters spread over ``settings.diameter_range_px``
    (geometric), from ``diameter_px`` (default the median diameter of the ``labels``
    fibers). Only tiles (``tile_px`` square at the canonical scale, default
    ``2 * settings.crop_px``) holding known pixels are kept, each with a context margin of at
    least the largest fiber diameter whose loss weight is 0. Labels and the known mask are
    rescaled with nearest neighbours and the targets computed after scaling
    (:func:`partial_targets`), so the weight is exactly 0 on unknown pixels.

    Parameters
    ----------
    image : (Y, X, 3) uint8 or (Y, X) float32 array
        Brightfield RGB, or one fluorescence plane scaled to about [0, 1].
    labels : (Y, X) int array
        Fiber instance labels of the known fibers (0 elsewhere).
    known : (Y, X) bool array
        Pixels whose truth is known (fibers and certain background).
    settings : TrainSettings
        Uses ``diameter_range_px``, ``partial_scales`` (else ``real_scales``), ``crop_px``,
        ``small_weight_max``.
    tile_px : int, optional
    diameter_px : float, optional
        Typical fiber diameter in the image, px (when ``labels`` holds too few fibers to tell).
    outside_ring_px : int
        Known background ring drawn around each fiber (:func:`partial_targets`).

    Returns
    -------
    list of Sample
        ``kind="partial"``, ``labels=None``, targets (4, Y, X) with the loss weight last.
    """
    img = image
    labels = np.asarray(labels)
    known = np.asarray(known, bool)
    if img.shape[:2] != labels.shape or known.shape != labels.shape:
        raise ValueError(f"image {img.shape[:2]}, labels {labels.shape} and known {known.shape} differ in shape")
    d_px = float(diameter_px) if diameter_px else median_diameter_px(labels)
    lo, hi = settings.diameter_range_px
    crop = int(getattr(settings, "crop_px", 160))
    tile_px = int(tile_px or 2 * crop)
    margin_px = max(int(np.ceil(hi)), crop // 2)
    max_w = float(getattr(settings, "small_weight_max", 1.0))
    n_scales = int(getattr(settings, "partial_scales", 0) or settings.real_scales)
    out = []
    h, w = known.shape
    for target_d in np.geomspace(lo, hi, n_scales):
        f = float(target_d / d_px)
        step_n = max(8, int(round(tile_px / f)))
        margin_n = int(np.ceil(margin_px / f))
        for y0 in range(0, h, step_n):
            for x0 in range(0, w, step_n):
                y1, x1 = min(h, y0 + step_n), min(w, x0 + step_n)
                if not known[y0:y1, x0:x1].any():
                    continue
                ya, xa = max(0, y0 - margin_n), max(0, x0 - margin_n)
                yb, xb = min(h, y1 + margin_n), min(w, x1 + margin_n)
                shape = (max(8, round((yb - ya) * f)), max(8, round((xb - xa) * f)))
                core = np.zeros((yb - ya, xb - xa), bool)
                core[y0 - ya:y1 - ya, x0 - xa:x1 - xa] = True
                lab_s = rescale(labels[ya:yb, xa:xb], shape, labels=True)
                known_s = rescale(known[ya:yb, xa:xb], shape, labels=True)
                core_s = rescale(core, shape, labels=True)
                t = partial_targets(lab_s, known_s, max_w, outside_ring_px=outside_ring_px)
                t[3][~core_s] = 0
                if not (t[3] > 0).any():
                    continue
                out.append(Sample(rescale(img[ya:yb, xa:xb], shape), t, "partial", None))
    log.info("known-region samples: fiber diameter %.1f px, %d tiles over %d scales", d_px, len(out), n_scales)
    return out


def annotation_summary(path: str | Path, shape_yx: tuple[int, int] | None = None) -> dict:
    """Counts of polygons per (class, split) and, with ``shape_yx``, annotated area in px.

    Returns
    -------
    dict
        ``{"<class>/<split>": {"polygons": n, "area_px": a}}`` (``area_px`` only with ``shape_yx``).
    """
    out: dict[str, dict] = {}
    for f in read_features(path):
        key = f"{f['class']}/{f['split']}"
        e = out.setdefault(key, {"polygons": 0})
        e["polygons"] += 1
        if shape_yx is not None:
            e["area_px"] = e.get("area_px", 0) + int(_polygon_mask(f["rings_xy"], tuple(shape_yx)).sum())
    return out
