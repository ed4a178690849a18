"""Nuclei per fiber and centrally nucleated fibers.

Nuclei are found on a nuclear signal (the hematoxylin optical density of an H&E colour
deconvolution, :func:`histo.io.stain.deconvolve_he`, or a DAPI / Hoechst channel on
immunofluorescence): light Gaussian smoothing, a threshold (Otsu unless fixed), then connected
blobs of at least the minimum nucleus size. A nucleus belongs to the fiber that contains its
centroid. It is **central** by MyoQuant's rule (Meyer et al., lambda-science/MyoQuant): along
the ray from the fiber centroid through the nucleus, the centroid-to-nucleus distance is at
most ``central_ratio`` (0.75) times the centroid-to-border distance, the border being where the
ray first leaves the fiber. A fiber with at least one central nucleus is centrally nucleated.

Touching nuclei are not split, so ``n_nuclei`` is a lower bound; the central call is hardly
affected (a central nucleus rarely touches a peripheral one).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.filters import threshold_otsu

from histo.errors import HistoInputError
from histo.io.image import ImageLike
from histo.io.stain import Stain, deconvolve_he
from histo.score.settings import ScoringSettings

log = logging.getLogger(__name__)

_RAY_STEP_PX = 0.5


def detect_nuclei(signal: np.ndarray, *, min_area_px: float, threshold: float | None = None,
                  region: np.ndarray | None = None, smooth_px: float = 1.0
                  ) -> tuple[np.ndarray, float]:
    """Nuclei as the centroids of bright blobs of a nuclear signal.

    Parameters
    ----------
    signal : (Y, X) float array
        Larger = more nuclear stain (hematoxylin OD, DAPI intensity).
    min_area_px : float
        Smaller blobs are dropped (debris, noise).
    threshold : float, optional
        Fixed threshold on the smoothed signal; None = Otsu over ``region`` (or the image).
    region : (Y, X) bool array, optional
        Pixels the Otsu threshold is computed on.
    smooth_px : float
        Gaussian sigma applied before thresholding (0 = none).

    Returns
    -------
    ((m, 2) float array of (y, x) centroids, the threshold used)

    Examples
    --------
    >>> img = np.zeros((20, 20)); img[4:8, 4:8] = 1; img[12:16, 10:14] = 1
    >>> cents, thr = detect_nuclei(img, min_area_px=4, smooth_px=0)
    >>> cents.tolist()
    [[5.5, 5.5], [13.5, 11.5]]
    """
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 2:
        raise HistoInputError(f"the nuclear signal must be a 2-D image, got shape {signal.shape}")
    smooth = ndimage.gaussian_filter(signal, smooth_px) if smooth_px > 0 else signal
    if threshold is None:
        values = smooth[region] if region is not None and region.any() else smooth.ravel()
        threshold = float(threshold_otsu(values)) if np.ptp(values) > 0 else math.inf
    mask = smooth > threshold
    blobs, n = ndimage.label(mask)
    if n == 0:
        return np.empty((0, 2)), float(threshold)
    sizes = np.bincount(blobs.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_area_px) + 1
    if keep.size == 0:
        return np.empty((0, 2)), float(threshold)
    cents = np.asarray(ndimage.center_of_mass(mask, blobs, keep), dtype=float).reshape(-1, 2)
    return cents, float(threshold)


def border_ratio(labels: np.ndarray, fiber_label: np.ndarray, fiber_centroid: np.ndarray,
                 nucleus: np.ndarray, *, max_length_px: float | None = None) -> np.ndarray:
    """Centroid-to-nucleus over centroid-to-border distance along the same ray, per nucleus.

    The border is where the ray from the fiber centroid through the nucleus first leaves the
    fiber (a label other than ``fiber_label``, or the image edge). 0 for a nucleus on the
    centroid.

    Parameters
    ----------
    labels : (Y, X) int array
    fiber_label : (m,) int array
        The fiber of each nucleus.
    fiber_centroid, nucleus : (m, 2) float arrays
        (y, x) of the fiber centroid and of the nucleus.
    max_length_px : float, optional
        Longest ray to march (default: the image diagonal).

    Returns
    -------
    (m,) float array

    Examples
    --------
    A 21 x 21 square fiber centred on (10, 10): a nucleus 5 px right of the centre sits at
    5 / 10.75 of the way to the border.

    >>> lab = np.zeros((25, 25), int); lab[0:21, 0:21] = 1
    >>> r = border_ratio(lab, np.array([1]), np.array([[10.0, 10.0]]), np.array([[10.0, 15.0]]))
    >>> round(float(r[0]), 3)
    0.465
    """
    labels = np.asarray(labels)
    m = len(fiber_label)
    out = np.zeros(m, dtype=float)
    if m == 0:
        return out
    delta = np.asarray(nucleus, float) - np.asarray(fiber_centroid, float)
    dist = np.hypot(delta[:, 0], delta[:, 1])
    h, w = labels.shape
    length = max_length_px or math.hypot(h, w)
    steps = np.arange(0.0, length + _RAY_STEP_PX, _RAY_STEP_PX)
    moving = dist > 0
    idx = np.flatnonzero(moving)
    chunk = max(1, 2_000_000 // len(steps))
    for s in range(0, len(idx), chunk):
        sel = idx[s:s + chunk]
        unit = delta[sel] / dist[sel, None]
        ys = fiber_centroid[sel, 0, None] + steps[None, :] * unit[:, 0, None]
        xs = fiber_centroid[sel, 1, None] + steps[None, :] * unit[:, 1, None]
        yi, xi = np.rint(ys).astype(np.int64), np.rint(xs).astype(np.int64)
        inside_img = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        lab = np.where(inside_img, labels[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], -1)
        outside = lab != np.asarray(fiber_label)[sel, None]
        first = np.where(outside.any(axis=1), outside.argmax(axis=1), len(steps) - 1)
        border = np.maximum(steps[first] - _RAY_STEP_PX / 2, _RAY_STEP_PX / 2)
        out[sel] = dist[sel] / border
    return out


def nuclear_signal(image: ImageLike | np.ndarray | None, stain: Stain, settings: ScoringSettings) -> tuple[np.ndarray | None, str]:
    """The 2-D nuclear signal of a slide and its description, or (None, reason)."""
    opts = settings.nuclei
    if image is None:
        return None, "no image given"
    pixels = np.asarray(getattr(image, "pixels", image))
    axes = getattr(image, "axes", None) or ("YXS" if pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
                                            else "CYX" if pixels.ndim == 3 else "YX")
    if opts.channel is not None:
        if axes != "CYX":
            raise HistoInputError("nuclei.channel is set but the image is not multichannel",
                                  path=getattr(image, "path", None))
        if opts.channel >= pixels.shape[0]:
            raise HistoInputError(f"nuclear channel {opts.channel} does not exist; the image has "
                                  f"{pixels.shape[0]} channels (0 to {pixels.shape[0] - 1})",
                                  path=getattr(image, "path", None))
        return pixels[opts.channel].astype(float), f"channel {opts.channel} (DAPI)"
    if stain == "he" and axes == "YXS":
        return _hematoxylin(deconvolve_he(pixels[..., :3])), "hematoxylin OD (H&E deconvolution)"
    if stain == "if":
        return None, "no nuclear channel given (nuclei.channel, e.g. --nuclei-channel 0)"
    return None, f"nuclei are counted on H&E (hematoxylin) or with a DAPI channel, not on {stain!r}"


def _hematoxylin(deconvolved: Any) -> np.ndarray:
    """The hematoxylin plane of :func:`histo.io.stain.deconvolve_he`'s result."""
    if isinstance(deconvolved, dict):
        for key in ("hematoxylin", "h", "H"):
            if key in deconvolved:
                return np.asarray(deconvolved[key], dtype=float)
    if isinstance(deconvolved, tuple):
        return np.asarray(deconvolved[0], dtype=float)
    arr = np.asarray(deconvolved, dtype=float)
    return arr[..., 0] if arr.ndim == 3 else arr


def _empty_table(fibers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "n_nuclei": pd.array([pd.NA] * len(fibers), dtype="Int64"),
        "n_central_nuclei": pd.array([pd.NA] * len(fibers), dtype="Int64"),
        "is_centrally_nucleated": pd.array([pd.NA] * len(fibers), dtype="boolean"),
    }, index=fibers.index)


def count_nuclei(fibers: pd.DataFrame, labels: np.ndarray, nuclei_yx: np.ndarray, *,
                 central_ratio: float = 0.75) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-fiber nucleus counts from nucleus centroids.

    Returns
    -------
    (table, fiber_of_nucleus, ratio): the table has ``n_nuclei``, ``n_central_nuclei``,
    ``is_centrally_nucleated`` (aligned with ``fibers``); ``fiber_of_nucleus`` is 0 for nuclei
    outside every listed fiber; ``ratio`` is NaN there.
    """
    ids = fibers["label"].to_numpy().astype(np.int64)
    nuclei_yx = np.asarray(nuclei_yx, dtype=float).reshape(-1, 2)
    h, w = labels.shape
    yi = np.clip(np.rint(nuclei_yx[:, 0]).astype(np.int64), 0, h - 1)
    xi = np.clip(np.rint(nuclei_yx[:, 1]).astype(np.int64), 0, w - 1)
    host = labels[yi, xi].astype(np.int64)
    row_of = pd.Series(np.arange(len(ids)), index=ids)
    known = np.isin(host, ids)
    host = np.where(known, host, 0)
    if {"centroid_y_px", "centroid_x_px"} <= set(fibers.columns):
        cent = fibers[["centroid_y_px", "centroid_x_px"]].to_numpy(float)
    else:
        cent = np.asarray(ndimage.center_of_mass(labels > 0, labels, ids), float).reshape(-1, 2)
    rows = row_of.reindex(host[known]).to_numpy()
    ratio = np.full(len(host), np.nan)
    if rows.size:
        length = None
        if {"bbox_y0_px", "bbox_y1_px", "bbox_x0_px", "bbox_x1_px"} <= set(fibers.columns):
            b = fibers[["bbox_y0_px", "bbox_y1_px", "bbox_x0_px", "bbox_x1_px"]].to_numpy(float)
            length = float(np.hypot(b[:, 1] - b[:, 0], b[:, 3] - b[:, 2]).max()) + 2
        ratio[known] = border_ratio(labels, host[known], cent[rows], nuclei_yx[known],
                                    max_length_px=length)
    central = known & (ratio <= central_ratio)
    n_nuc = np.bincount(rows, minlength=len(ids)) if rows.size else np.zeros(len(ids), int)
    n_cen = (np.bincount(row_of.reindex(host[central]).to_numpy(), minlength=len(ids))
             if central.any() else np.zeros(len(ids), int))
    table = pd.DataFrame({
        "n_nuclei": pd.array(n_nuc, dtype="Int64"),
        "n_central_nuclei": pd.array(n_cen, dtype="Int64"),
        "is_centrally_nucleated": pd.array(n_cen > 0, dtype="boolean"),
    }, index=fibers.index)
    return table, host, ratio


def central_nuclei(fibers: pd.DataFrame, labels: np.ndarray, image: ImageLike | np.ndarray | None, settings: ScoringSettings, *,
                   stain: Stain, pixel_size_um: float | None = None
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Detect nuclei and count them per fiber; the slide's % centrally nucleated fibers.

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table with ``label`` and ``counted`` (centroids and boxes used if present).
    labels : (Y, X) int array
    image : histo.io.image.ImageData, ndarray or None
    settings : histo.score.settings.ScoringSettings
    stain : str
    pixel_size_um : float, optional
        Sets the minimum nucleus size; without it the size is a fraction of the median fiber.

    Returns
    -------
    (DataFrame, dict)
        ``n_nuclei``, ``n_central_nuclei`` (nullable Int64) and ``is_centrally_nucleated``
        (nullable boolean), NA when nuclei were not counted; and the slide summary.
    """
    opts = settings.nuclei
    if not opts.enabled:
        return _empty_table(fibers), {"method": None, "reason": "nuclei disabled in the settings"}
    signal, how = nuclear_signal(image, stain, settings)
    if signal is None:
        return _empty_table(fibers), {"method": None, "reason": how}
    counted = fibers["counted"].to_numpy(dtype=bool)
    if pixel_size_um is not None:
        diameter_px = opts.min_diameter_um / pixel_size_um
        size_basis = f"{opts.min_diameter_um:g} µm"
    else:
        col = "min_feret_px" if "min_feret_px" in fibers else None
        ref = fibers.loc[counted, col].to_numpy(float) if col else np.array([])
        median = float(np.median(ref)) if ref.size else 50.0
        diameter_px = opts.min_diameter_fraction * median
        size_basis = f"{opts.min_diameter_fraction:g} x median fiber min Feret ({median:.0f} px)"
    min_area_px = math.pi / 4 * diameter_px ** 2
    region = ndimage.binary_dilation(labels > 0, iterations=3) if (labels > 0).any() else None
    nuclei_yx, thr = detect_nuclei(signal, min_area_px=min_area_px, threshold=opts.threshold,
                                   region=region)
    table, host, ratio = count_nuclei(fibers, labels, nuclei_yx, central_ratio=opts.central_ratio)
    n_counted = int(counted.sum())
    cn = table["is_centrally_nucleated"].to_numpy(dtype=bool) & counted
    info = {
        "method": how,
        "threshold": thr,
        "threshold_method": "fixed" if opts.threshold is not None else "otsu",
        "min_nucleus_area_px": float(min_area_px),
        "min_nucleus_size_basis": size_basis,
        "central_ratio": opts.central_ratio,
        "n_nuclei_detected": int(len(nuclei_yx)),
        "n_nuclei_in_fibers": int(np.count_nonzero(host)),
        "n_nuclei_in_counted_fibers": int(table["n_nuclei"].to_numpy(dtype=int)[counted].sum()),
        "n_central_nuclei": int(table["n_central_nuclei"].to_numpy(dtype=int)[counted].sum()),
        "n_centrally_nucleated": int(cn.sum()),
        "pct_centrally_nucleated": float(100.0 * cn.sum() / n_counted) if n_counted else None,
        "n_counted": n_counted,
    }
    return table, info


def recount_central(info: dict[str, Any], fibers: pd.DataFrame, counted: np.ndarray) -> dict[str, Any]:
    """``info`` with the slide's centrally nucleated figures recomputed from ``fibers``.

    For tables whose per-fiber nucleus calls were made elsewhere (tile by tile on a whole
    slide, or before a review changed which fibers are counted).
    """
    if not info.get("method") or "is_centrally_nucleated" not in fibers:
        return info
    cn = fibers["is_centrally_nucleated"].fillna(False).to_numpy(bool) & counted
    n = int(counted.sum())
    n_central = fibers["n_central_nuclei"].fillna(0).to_numpy(int) if "n_central_nuclei" in fibers else None
    extra = {} if n_central is None else {"n_central_nuclei": int(n_central[counted].sum())}
    return {**info, **extra, "n_counted": n, "n_centrally_nucleated": int(cn.sum()),
            "pct_centrally_nucleated": 100.0 * cn.sum() / n if n else None}

