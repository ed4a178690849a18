"""Real fiber geometry from the NCL-SM manual masks (human biopsies, fully hand-drawn).

``data/real/masks/nclsm_S11_labels.tiff`` and ``nclsm_S60_labels.tiff`` hold 489 and 586
fibers about 600 px across. Each mask is read once per process, downsampled 2x by striding
(labels stay exact) and cached in memory (~140 MB for both). A crop is one affine warp with
nearest-neighbour sampling (rotation, flip and scale so that the median fiber reaches the
requested diameter), then cleaned: one component per label, slivers dropped, touching labels
separated. Planted small angular fibers are made by subdividing one or two real fibers into
2-8 angular pieces (a group of atrophic fibers squeezed into the space of their host).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from histo.errors import HistoInputError
from histo.io.labels import touches_edge
from histo.synth.geometry import Geometry, assign_fiber_types
from histo.synth.labelops import clean_labels, label_areas

logger = logging.getLogger(__name__)

SOURCES = ("nclsm_S11_labels.tiff", "nclsm_S60_labels.tiff")
_LOCK = threading.Lock()
_CACHE: dict[str, "_Source"] = {}
_BLOCK = 64
_CROP_CALIBRATION = 0.93


@dataclass(frozen=True)
class _Source:
    labels: np.ndarray  # uint16, 2x downsampled
    median_diameter_px: float  # median equivalent diameter at this resolution
    block_weight: np.ndarray  # crop-centre sampling weights per _BLOCK x _BLOCK block


def masks_dir() -> Path | None:
    """Folder holding the NCL-SM masks: ``$HISTO_NCL_MASKS`` or ``<repo>/data/real/masks``."""
    env = os.environ.get("HISTO_NCL_MASKS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "data" / "real" / "masks")
    for c in candidates:
        if all((c / s).is_file() for s in SOURCES):
            return c
    return None


def available() -> bool:
    """True when the NCL-SM masks can be found (see :func:`masks_dir`)."""
    return masks_dir() is not None


def _load(name: str) -> _Source:
    with _LOCK:
        if name in _CACHE:
            return _CACHE[name]
        folder = masks_dir()
        if folder is None:
            raise HistoInputError(
                "NCL-SM masks not found; set HISTO_NCL_MASKS to the folder holding "
                f"{', '.join(SOURCES)} or use geometry='packing'",
                path=Path(__file__).resolve().parents[2] / "data" / "real" / "masks",
            )

        path = folder / name
        try:
            full = tifffile.imread(path)
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
            raise HistoInputError(f"cannot read the NCL-SM mask ({err})", path=path) from err
        lab = np.ascontiguousarray(full[::2, ::2]).astype(np.uint16)
        del full
        area = label_areas(lab)[1:]
        area = area[area > 50]
        diam = float(np.median(2 * np.sqrt(area / np.pi)))
        h, w = lab.shape
        bh, bw = h // _BLOCK, w // _BLOCK
        fgf = (lab[: bh * _BLOCK, : bw * _BLOCK] > 0).reshape(bh, _BLOCK, bw, _BLOCK).mean((1, 3))
        weight = fgf**2
        src = _Source(lab, diam, weight / weight.sum())
        _CACHE[name] = src
        logger.debug("loaded %s: %s, median diameter %.1f px", name, lab.shape, diam)
        return src


def _subdivide(labels: np.ndarray, host: int, rng, d: float, gap: float, next_label: int):
    """Replace fiber ``host`` by 2-8 small angular fibers filling its territory.

    The territory is the host plus its side of the surrounding interstitium (pixels nearer to
    the host than to any other fiber, up to 0.3 diameters away), so its outline follows the
    neighbours rather than the host's own round border. It is cut by a randomly weighted power diagram into
    pieces of the planted size; each piece keeps half an endomysium from its siblings and a
    full one from the neighbouring fibers, so the neighbours' convex outlines press concave,
    angular sides into the group. Returns ``(labels, new labels)``.
    """
    h, w = labels.shape
    ys, xs = np.nonzero(labels == host)
    reach = max(2 * gap + 2, 0.3 * d)  # how far the territory may extend beyond the host
    pad = int(reach + 3)
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
    win = labels[y0:y1, x0:x1]
    is_host = win == host
    others = (win > 0) & ~is_host
    d_host = cv2.distanceTransform((~is_host).astype(np.uint8), cv2.DIST_L2, 3)
    d_other = cv2.distanceTransform((~others).astype(np.uint8), cv2.DIST_L2, 3) if others.any() else np.full(win.shape, 1e3, np.float32)
    terr = ~others & (d_host <= d_other) & (d_host < reach)
    py, px = np.nonzero(terr)
    pts = np.stack([py, px], 1).astype(np.float32)
    frac = rng.uniform(0.33, 0.57)
    piece_area = np.pi / 4 * (frac * d * 1.05 + gap) ** 2
    k = int(np.clip(round(len(pts) / piece_area), 2, 8))
    seeds = pts[rng.choice(len(pts), k, replace=False)]
    wts = rng.uniform(0.5, 1.5, k) * piece_area / np.pi
    for _ in range(3):
        pw = ((pts[:, None, :] - seeds[None]) ** 2).sum(-1) - wts
        own = pw.argmin(1)
        for j in range(k):
            m = own == j
            if m.any():
                seeds[j] = pts[m].mean(0)
    pw = ((pts[:, None, :] - seeds[None]) ** 2).sum(-1) - wts
    own = pw.argmin(1)
    sep = np.sqrt(((seeds[None, :, :] - seeds[own][:, None, :]) ** 2).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        db = (pw - pw[np.arange(len(pts)), own][:, None]) / (2 * sep)
    db[sep == 0] = np.inf
    db = db.min(1)
    half = gap / 2 * rng.uniform(0.8, 1.5)
    keep = (db > half) & (d_other[py, px] > gap * rng.uniform(0.8, 1.2))
    new_ids = np.arange(next_label, next_label + k)
    win[is_host] = 0
    win[py[keep], px[keep]] = new_ids[own[keep]]
    return labels, list(new_ids)


def ncl_crop(
    shape: tuple[int, int],
    diameter_px: float,
    rng: np.random.Generator,
    *,
    source: str | None = None,
    planted_groups: int | None = None,
) -> Geometry:
    """A random crop of an NCL-SM manual mask, rescaled so the median fiber is ``diameter_px``.

    Parameters
    ----------
    source : str, optional
        One of :data:`SOURCES`; random when omitted.
    planted_groups : int, optional
        Number of host fibers subdivided into groups of planted small angular fibers.
    """
    h, w = int(shape[0]), int(shape[1])
    name = source or SOURCES[int(rng.integers(len(SOURCES)))]
    if name not in SOURCES:
        raise HistoInputError(f"unknown NCL-SM source {name!r}; use one of {SOURCES}")
    src = _load(name)
    d = float(diameter_px)
    # output px per source px; crops favour dense tissue, whose fibers are ~7 % smaller than
    # the whole mask's median (measured on 24 crops), hence the calibration factor
    scale = d / (src.median_diameter_px * _CROP_CALIBRATION)
    block = rng.choice(src.block_weight.size, p=src.block_weight.ravel())
    by, bx = np.divmod(block, src.block_weight.shape[1])
    cy = (by + rng.random()) * _BLOCK
    cx = (bx + rng.random()) * _BLOCK
    theta = rng.uniform(0, 2 * np.pi)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    c, s = np.cos(theta) / scale, np.sin(theta) / scale
    # dst (x, y) -> src (x, y): rotate/flip/scale around the crop centre
    m = np.array([[c * flip, -s, 0.0], [s * flip, c, 0.0]], np.float64)
    m[:, 2] = np.array([cx, cy]) - m[:, :2] @ np.array([w / 2, h / 2])
    raw = cv2.warpAffine(
        src.labels, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    ).astype(np.int32)
    labels, _ = clean_labels(raw, min_area_px=max(6.0, 0.03 * np.pi / 4 * d * d))
    labels = labels.astype(np.int32)

    if planted_groups is None:
        planted_groups = 0 if rng.random() < 0.2 else int(rng.integers(1, 4))
    gap = max(1.2, 0.05 * d)
    planted: list[int] = []
    n = int(labels.max())
    if n and planted_groups:
        area = label_areas(labels)
        border = touches_edge(labels, n)
        ok = (area > 0.5 * np.pi / 4 * d * d) & (area < 1.6 * np.pi / 4 * d * d)  # room for 2-8 pieces
        ok[0] = False
        ok[border] = False
        cands = list(np.flatnonzero(ok))
        rng.shuffle(cands)
        for host in cands[:planted_groups]:
            labels, new = _subdivide(labels, int(host), rng, d, gap, int(labels.max()) + 1)
            planted.extend(new)
    dilated_fg = cv2.dilate((labels > 0).astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (int(0.7 * d) | 1, int(0.7 * d) | 1)))
    tissue = cv2.morphologyEx(dilated_fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (int(1.2 * d) | 1, int(1.2 * d) | 1))) > 0
    before = labels
    labels, mapping = clean_labels(labels, min_area_px=max(6.0, 0.03 * np.pi / 4 * d * d))
    del before
    lookup = np.zeros(max(planted, default=0) + 2, np.uint32)
    lookup[: min(len(mapping), len(lookup))] = mapping[: len(lookup)]
    planted_arr = np.unique(lookup[np.array(planted, np.intp)]) if planted else np.zeros(0, np.uint32)
    planted_arr = planted_arr[planted_arr > 0].astype(np.uint32)
    types, tinfo = assign_fiber_types(labels, rng, d)
    info = {
        "geometry": "ncl",
        "source": name,
        "fiber_diameter_px": d,
        "scale": float(scale * 0.5),  # relative to the full-resolution mask
        "rotation_deg": float(np.degrees(theta)),
        "flipped": bool(flip < 0),
        "n_planted_groups": int(planted_groups),
        **tinfo,
    }
    return Geometry(labels=labels, tissue=tissue, planted=planted_arr, fiber_types=types, info=info)
