"""Things that are not fibers in a brightfield section, as unlabelled tissue components.

A segmenter trained on clean packings calls everything round and outlined a fiber: clusters
of interstitial and inflammatory cells, capillaries with red cells at fiber corners, wedges
of connective tissue where three fibers meet, fat cells, nerve twigs, whole areas of muscle
replaced by an inflammatory infiltrate. :func:`carve_brightfield` puts such tissue into a
geometry and returns it as *component maps* (nuclei, cell bodies, red cells, collagen,
vessel wall, membranes, nerve, cleared lumen), each float32 (Y, X) in [0, 1]; each stain
draws the components in its own colours (:mod:`histo.synth.bf_render`). None of it is ever
labelled: fibers it replaces are removed from the labels, fibers it notches keep their exact
(cut) labels, and planted small angular fibers are never covered, cut or removed.

Sizes are fractions of the normal fiber diameter ``d`` (a 50 µm fiber: inflammatory nuclei of
0.1-0.2 d are 5-10 µm, capillary lumens of 0.1-0.2 d are 5-10 µm).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from histo.synth.geometry import Geometry
from histo.synth.labelops import clean_labels
from histo.synth.noise import cell_mosaic, smooth_noise

COMPONENTS = ("nuc", "cyto", "rbc", "coll", "wall", "mem", "nerve", "clear")
_S = 16  # OpenCV sub-pixel scale (shift 4)


@dataclass
class NonFiber:
    """Unlabelled tissue of a brightfield section, as component maps in [0, 1].

    ``maps``: ``nuc`` nuclei (inflammatory, endothelial, fibroblast, smooth muscle), ``cyto``
    cell bodies of infiltrates, ``rbc`` red cells, ``coll`` collagen (vessel adventitia,
    nerve sheaths, junction wedges, fibrosis), ``wall`` smooth muscle of arterioles, ``mem``
    fat-cell and myelin membranes, ``nerve`` endoneurium, ``clear`` lumens and fat vacuoles
    (no dye at all). ``perimysium``: ``"loose"``, ``"dense"`` or ``"plain"`` connective tissue.
    """

    maps: dict = field(default_factory=dict)
    perimysium: str = "plain"


def _pt(y, x):
    return int(round(x * _S)), int(round(y * _S))


def _ellipse(canvas, y, x, a, b, angle, value, thick=-1):
    cv2.ellipse(canvas, _pt(y, x), (max(1, int(round(a * _S))), max(1, int(round(b * _S)))), float(angle),
                0, 360, int(value), int(thick), cv2.LINE_AA, 4)


def _disk_ok(guard, y, x, r) -> bool:
    """True when a disk of radius ``r`` at (y, x) misses every guarded (planted) pixel."""
    h, w = guard.shape
    y0, y1 = max(0, int(y - r - 1)), min(h, int(y + r + 2))
    x0, x1 = max(0, int(x - r - 1)), min(w, int(x + r + 2))
    if y0 >= y1 or x0 >= x1:
        return True
    yy, xx = np.ogrid[y0:y1, x0:x1]
    return not guard[y0:y1, x0:x1][(yy - y) ** 2 + (xx - x) ** 2 <= (r + 0.5) ** 2].any()


def _blob(mask, y, x, radius, rng, rough=0.35):
    """OR an irregular blob of about ``radius`` px around (y, x) into ``mask``."""
    h, w = mask.shape
    pad = radius * 1.6
    y0, y1 = max(0, int(y - pad)), min(h, int(y + pad) + 1)
    x0, x1 = max(0, int(x - pad)), min(w, int(x + pad) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    ratio, ang = rng.uniform(0.55, 1.0), rng.uniform(0, np.pi)
    u = (yy - y) * np.cos(ang) + (xx - x) * np.sin(ang)
    v = (-(yy - y) * np.sin(ang) + (xx - x) * np.cos(ang)) / ratio
    r = np.sqrt(u * u + v * v) / max(radius, 1.0)
    noise = smooth_noise((y1 - y0, x1 - x0), max(2.0, radius * 0.5), rng)
    mask[y0:y1, x0:x1] |= (r + rough * noise) < 1.0


def cut_fibers(geom: Geometry, carve: np.ndarray, remove: np.ndarray | None = None,
               not_tissue: np.ndarray | None = None, *, diameter_px: float) -> tuple[Geometry, int]:
    """Remove ``remove[label]`` fibers and the ``carve`` pixels from the labels; exact relabel.

    A fiber that loses more than half of itself is gone. ``not_tissue`` pixels leave the tissue
    (empty glass, stitching fill); carved pixels join it. Returns ``(geometry, n_removed)``.
    Callers must keep planted fibers out of ``carve`` and ``remove``.
    """
    labels = geom.labels.astype(np.int32)
    n0 = int(labels.max())
    before = np.bincount(labels.ravel(), minlength=n0 + 1)
    cut = np.where(carve, 0, labels)
    if remove is not None and remove.any():
        cut[remove[cut]] = 0
    after = np.bincount(cut.ravel(), minlength=n0 + 1)
    gone = after < 0.5 * np.maximum(before, 1)
    gone[0] = False
    if len(geom.planted):
        gone[np.asarray(geom.planted, np.intp)] = False
    cut[gone[cut]] = 0
    new, mapping = clean_labels(cut, min_area_px=max(6.0, 0.03 * np.pi / 4 * diameter_px**2))
    planted = mapping[np.asarray(geom.planted, np.intp)] if len(geom.planted) else np.zeros(0, np.uint32)
    planted = np.unique(planted[planted > 0]).astype(np.uint32)
    types = {int(mapping[k]): t for k, t in geom.fiber_types.items() if 0 < k < len(mapping) and mapping[k] > 0}
    tissue = geom.tissue | carve
    if not_tissue is not None:
        tissue = tissue & ~not_tissue
    return replace(geom, labels=new, planted=planted, fiber_types=types, tissue=tissue), int(n0 - new.max())


def _infiltrate(cv, region, d, rng, density, low_mag):
    """Dense small round nuclei with little cytoplasm over ``region``; returns the nucleus count."""
    ys, xs = np.nonzero(region)
    if not len(ys):
        return 0
    nd = max(1.6 if low_mag else 2.2, d * rng.uniform(0.1, 0.2))
    spacing = nd * rng.uniform(1.15, 1.8) / max(density, 0.2)
    n = min(int(len(ys) / spacing**2), 20000)
    sel = rng.integers(0, len(ys), n)
    a = nd / 2 * rng.uniform(0.75, 1.15, n)
    b = a * rng.uniform(0.6, 1.0, n)
    ang, val = rng.uniform(0, 180, n), rng.uniform(150, 255, n)
    jit = rng.uniform(-0.5, 0.5, (n, 2))
    nuc = cv["nuc"]
    for k in range(n):
        _ellipse(nuc, ys[sel[k]] + jit[k, 0], xs[sel[k]] + jit[k, 1], a[k], b[k], ang[k], val[k])
    # cell bodies: a mosaic of small pale-outlined cells (or fiber-sized clumps) under the nuclei
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cell = nd * rng.uniform(1.3, 2.2) if rng.random() < 0.6 else d * rng.uniform(0.3, 0.6)
    outline, value = cell_mosaic((y1 - y0, x1 - x0), cell, rng)
    body = (1 - 0.85 * outline) * (0.45 + 0.55 * value)
    sub = cv["cyto"][y0:y1, x0:x1]
    m = region[y0:y1, x0:x1]
    sub[m] = np.maximum(sub[m], (body[m] * 255 * rng.uniform(0.6, 1.0)).astype(np.uint8))
    return n


def _capillary(cv, y, x, r, d, rng):
    wall = max(1.0, d * rng.uniform(0.015, 0.03))
    _ellipse(cv["coll"], y, x, r + wall / 2, r + wall / 2, 0, rng.uniform(150, 230), max(1, int(round(wall))))
    _ellipse(cv["clear"], y, x, r, r, 0, rng.uniform(150, 240))
    for _ in range(int(rng.integers(1, 4)) if rng.random() < 0.8 else 0):
        rr = r * rng.uniform(0.35, 0.6)
        oy, ox = rng.uniform(-1, 1, 2) * max(0.0, r - rr)
        _ellipse(cv["rbc"], y + oy, x + ox, rr, rr * rng.uniform(0.7, 1.0), rng.uniform(0, 180), rng.uniform(180, 255))
    if rng.random() < 0.4:  # an endothelial nucleus flattened on the wall
        t = rng.uniform(0, 2 * np.pi)
        _ellipse(cv["nuc"], y + r * np.sin(t), x + r * np.cos(t), max(1.0, r * 0.7), max(0.6, wall * 0.6),
                 np.degrees(t) + 90, rng.uniform(170, 240))


def _arteriole(cv, y, x, r, d, rng):
    t = r * rng.uniform(0.3, 0.5)
    _ellipse(cv["coll"], y, x, r * 1.2, r * 1.2, 0, rng.uniform(120, 220))  # adventitia
    _ellipse(cv["wall"], y, x, r, r, 0, rng.uniform(170, 240))
    _ellipse(cv["clear"], y, x, r - t, r - t, 0, 255)
    _ellipse(cv["coll"], y, x, r - t, r - t, 0, rng.uniform(120, 200), max(1, int(round(d * 0.015))))
    n = max(3, int(2 * np.pi * (r - t / 2) / max(2.0, 0.15 * d) * rng.uniform(0.6, 1.0)))
    for k, phi in enumerate(rng.uniform(0, 2 * np.pi, n)):  # smooth-muscle nuclei, circumferential
        rr = r - t * rng.uniform(0.25, 0.75)
        _ellipse(cv["nuc"], y + rr * np.sin(phi), x + rr * np.cos(phi), max(1.0, d * 0.07), max(0.6, d * 0.02),
                 np.degrees(phi) + 90, rng.uniform(160, 240))
    for _ in range(int(rng.integers(0, 6))):
        rr = max(0.8, d * rng.uniform(0.05, 0.08))
        oy, ox = rng.uniform(-1, 1, 2) * max(0.0, r - t - rr) * 0.7
        _ellipse(cv["rbc"], y + oy, x + ox, rr, rr, 0, rng.uniform(180, 255))


def _nerve(cv, y, x, r, d, rng):
    ratio, ang = rng.uniform(0.5, 1.0), rng.uniform(0, 180)
    sheath = max(1.0, r * rng.uniform(0.06, 0.15))
    _ellipse(cv["nerve"], y, x, r, r * ratio, ang, rng.uniform(150, 230))
    _ellipse(cv["coll"], y, x, r, r * ratio, ang, rng.uniform(170, 240), max(1, int(round(sheath))))
    ax = max(0.8, d * rng.uniform(0.025, 0.06))
    n = int(np.pi * r * r * ratio / (2.4 * ax) ** 2)
    th = np.radians(ang)
    for _ in range(min(n, 3000)):  # myelinated axons: small pale circles with a thin rim
        u, v = rng.uniform(-1, 1, 2)
        if u * u + v * v > 0.8:
            continue
        py, px = u * (r - sheath), v * (r - sheath) * ratio
        yy, xx = y + py * np.cos(th) + px * np.sin(th), x - py * np.sin(th) + px * np.cos(th)
        _ellipse(cv["clear"], yy, xx, ax * 0.7, ax * 0.7, 0, rng.uniform(120, 220))
        _ellipse(cv["mem"], yy, xx, ax, ax, 0, rng.uniform(100, 200), 1)
    for _ in range(int(rng.integers(1, 5))):  # Schwann-cell nuclei
        u, v = rng.uniform(-0.6, 0.6, 2)
        _ellipse(cv["nuc"], y + u * r, x + v * r * ratio, max(1.0, d * 0.06), max(0.6, d * 0.025),
                 rng.uniform(0, 180), rng.uniform(150, 220))


def _fat(cv, region, d, rng):
    """Adipocytes: empty polygons of 1-2 d with thin membranes filling ``region``."""
    ys, xs = np.nonzero(region)
    if not len(ys):
        return 0
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    size = d * rng.uniform(1.0, 2.0)
    m = region[y0:y1, x0:x1]
    n = max(1, int(m.sum() / size**2 * 1.2))
    src = np.ones(m.shape, np.uint8)
    pick = rng.integers(0, len(ys), n)
    src[ys[pick] - y0, xs[pick] - x0] = 0
    _, lab = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    edge = np.zeros(m.shape, bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    border = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edge = (edge | border) & m
    cv["clear"][y0:y1, x0:x1][m & ~edge] = 255
    cv["mem"][y0:y1, x0:x1][edge] = np.uint8(rng.uniform(180, 255))
    return n


def _wedge(cv, y, x, r, d, rng):
    """Connective tissue filling the triangle between three fibers, sometimes with a nucleus."""
    _ellipse(cv["coll"], y, x, r, r, 0, rng.uniform(60, 200))
    if r > 0.06 * d and rng.random() < 0.35:
        a = min(r * 0.8, d * rng.uniform(0.05, 0.09))
        _ellipse(cv["nuc"], y, x, a, a * rng.uniform(0.5, 0.9), rng.uniform(0, 180), rng.uniform(170, 250))


def _choose_inflammation(rng) -> float:
    u = rng.random()
    if u < 0.55:
        return 0.0
    if u < 0.88:
        return float(rng.uniform(0.02, 0.08))
    return float(rng.uniform(0.1, 0.25))


def carve_brightfield(geom: Geometry, diameter_px: float, rng: np.random.Generator, *,
                      inflammation: float | None = None, low_mag: bool = False) -> tuple[Geometry, NonFiber, dict]:
    """Add unlabelled non-fiber tissue to a brightfield geometry.

    Parameters
    ----------
    geom : Geometry
        Fibers to make room in.
    diameter_px : float
        Normal fiber diameter ``d``.
    rng : numpy.random.Generator
    inflammation : float, optional
        Fraction of the tissue replaced by inflammatory infiltrate (0-1; default random: none
        in 55 % of sections, 2-8 % in a third, 10-25 % in the rest).
    low_mag : bool
        Low magnification: nuclei no smaller than 1.6 px.

    Returns
    -------
    (Geometry, NonFiber, info)
        Geometry with replaced fibers removed and notched fibers cut (relabelled 1..n,
        planted fibers and types mapped), the component maps (zero on every fiber) and a
        JSON-able record of what was drawn.

    Examples
    --------
    >>> from histo.synth.geometry import generate_packing
    >>> g = generate_packing((128, 128), 24.0, np.random.default_rng(1))
    >>> g2, nf, info = carve_brightfield(g, 24.0, np.random.default_rng(2), inflammation=0.2)
    >>> bool((nf.maps["nuc"][g2.labels > 0] == 0).all()), len(g2.planted) == len(g.planted)
    (True, True)
    """
    d = float(diameter_px)
    labels = geom.labels
    h, w = labels.shape
    n0 = int(labels.max())
    fg = labels > 0
    tissue = geom.tissue
    planted = np.zeros(n0 + 1, bool)
    if len(geom.planted):
        planted[np.asarray(geom.planted, np.intp)] = True
    pl = planted[labels]
    gm = max(1, int(round(0.05 * d)))
    guard = cv2.dilate(pl.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gm + 1,) * 2)).astype(bool)
    dout = cv2.distanceTransform((~fg).astype(np.uint8), cv2.DIST_L2, 3) if fg.any() else np.full((h, w), 1e3, np.float32)
    cv = {k: np.zeros((h, w), np.uint8) for k in COMPONENTS}
    carve = np.zeros((h, w), bool)
    infl = float(_choose_inflammation(rng) if inflammation is None else np.clip(inflammation, 0.0, 1.0))
    info: dict = {"inflammation": infl}
    tissue_px = np.argwhere(tissue)
    area_scale = h * w / (6 * d) ** 2

    def at_random():
        if not len(tissue_px):
            return None
        k = int(rng.integers(len(tissue_px)))
        return float(tissue_px[k, 0]), float(tissue_px[k, 1])

    # --- areas that replace fibers: infiltrate, fat, fibrosis, empty glass -------------------
    blobs = {k: np.zeros((h, w), bool) for k in ("infiltrate", "fat", "fibrosis", "glass")}
    target = infl * tissue.sum()
    covered, tries = 0.0, 0
    while covered < target and tries < 12:
        tries += 1
        at = at_random()
        if at is None:
            break
        big = infl >= 0.1 and rng.random() < 0.5
        r = np.sqrt((target - covered) / np.pi) if big else d * rng.uniform(1.0, 2.5)
        r = float(np.clip(r, d, max(d, 0.3 * max(h, w))))
        _blob(blobs["infiltrate"], *at, r, rng)
        covered = float(np.count_nonzero(blobs["infiltrate"] & tissue))
    n_fat = int(rng.poisson(0.35)) if rng.random() < 0.3 else 0
    for _ in range(n_fat):
        at = at_random()
        if at is not None:
            _blob(blobs["fat"], *at, d * rng.uniform(1.0, 2.5), rng, 0.25)
    n_fib = int(rng.random() < 0.15)
    for _ in range(n_fib):
        at = at_random()
        if at is not None:
            _blob(blobs["fibrosis"], *at, d * rng.uniform(0.8, 2.0), rng)
    n_glass = int(rng.random() < 0.12)
    for _ in range(n_glass):
        at = at_random()
        if at is not None:
            _blob(blobs["glass"], *at, d * rng.uniform(0.6, 1.8), rng, 0.5)
    info.update(fat_areas=n_fat, fibrosis_areas=n_fib, glass_holes=n_glass)
    any_blob = np.zeros((h, w), bool)
    for b in blobs.values():
        any_blob |= b
    remove = np.zeros(n0 + 1, bool)
    if any_blob.any():
        area = np.bincount(labels.ravel(), minlength=n0 + 1)
        cover = np.bincount(labels[any_blob], minlength=n0 + 1)
        remove = (cover > 0.4 * np.maximum(area, 1)) & ~planted
        remove[0] = False
    keep_fg = fg & ~remove[labels]
    near_kept = cv2.dilate(keep_fg.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) | guard
    gone_px = fg & remove[labels]
    regions = {}
    for kind, b in blobs.items():
        reg = (b | (gone_px & _nearest_blob(b, gone_px, labels))) & ~near_kept & tissue
        regions[kind] = reg
    # a fiber footprint belongs to one kind only (the first blob that claimed it)
    claimed = np.zeros((h, w), bool)
    for kind in ("glass", "fat", "fibrosis", "infiltrate"):
        regions[kind] &= ~claimed
        claimed |= regions[kind]
    info["fibers_replaced"] = int(remove.sum())

    # interstitial cell clusters and sheets (in the interstitium, between fibers)
    clusters = np.zeros((h, w), bool)
    lam = (0 if rng.random() < 0.3 else rng.uniform(0.2, 2.0)) * area_scale * (1 + 3 * infl)
    n_cl = int(rng.poisson(lam))
    for _ in range(n_cl):
        at = at_random()
        if at is not None:
            _blob(clusters, *at, d * rng.uniform(0.4, 1.5), rng, 0.5)
    clusters &= ~fg & tissue & (dout >= 1.0) & ~claimed
    info["cell_clusters"] = n_cl
    low = bool(low_mag)
    info["infiltrate_nuclei"] = _infiltrate(cv, regions["infiltrate"] | clusters, d, rng,
                                            rng.uniform(0.8, 1.2), low)
    info["fat_cells"] = _fat(cv, regions["fat"], d, rng)
    if regions["fibrosis"].any():
        cv["coll"][regions["fibrosis"]] = np.uint8(rng.uniform(160, 240))
        _infiltrate({"nuc": cv["nuc"], "cyto": np.zeros((h, w), np.uint8)}, regions["fibrosis"], d, rng, 0.3, low)
    carve |= regions["infiltrate"] | regions["fat"] | regions["fibrosis"] | regions["glass"]

    # --- vessels and nerves ------------------------------------------------------------------
    lam = rng.uniform(0.0, 1.0) * area_scale
    wide = np.argwhere(tissue & (dout > 0.25 * d))
    counts = {"arterioles": 0, "nerves": 0, "capillaries": 0, "wedges": 0}
    for _ in range(int(rng.poisson(lam))):
        kind = "nerves" if rng.random() < 0.45 else "arterioles"
        r = d * (rng.uniform(0.3, 1.0) if kind == "nerves" else rng.uniform(0.2, 0.6))
        if len(wide) and rng.random() < 0.7:
            k = int(rng.integers(len(wide)))
            at = float(wide[k, 0]), float(wide[k, 1])
        else:
            at = at_random()
        if at is None or not _disk_ok(guard, at[0], at[1], r * 1.25 + 1):
            continue
        (_nerve if kind == "nerves" else _arteriole)(cv, at[0], at[1], r, d, rng)
        room = np.zeros((h, w), np.uint8)
        cv2.circle(room, _pt(*at), int(round((r * 1.25 + 1) * _S)), 1, -1, cv2.LINE_8, 4)
        carve |= room.astype(bool)
        counts[kind] += 1

    # --- capillaries and connective wedges at fiber corners ----------------------------------
    k = max(3, int(0.3 * d) | 1)
    mx = cv2.dilate(dout, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    corner = tissue & ~fg & ~carve & (dout >= 1.0) & (dout <= 0.35 * d) & (dout >= mx - 1e-3)
    cand = np.argwhere(corner)
    if len(cand):  # a corner is where three fibers meet
        cand = cand[_n_around(labels, cand, dout[cand[:, 0], cand[:, 1]] + 1.5) >= 3]
    if len(cand):
        cand = cand[rng.permutation(len(cand))]
        n_cap = min(len(cand), int(rng.poisson(rng.uniform(0.0, 0.6) * max(n0, 1))))
        p_wedge = rng.uniform(0.0, 0.7)
        for i, (y, x) in enumerate(cand):
            y, x = float(y), float(x)
            if i < n_cap:
                r = max(1.0, d * rng.uniform(0.05, 0.1))
                room_r = r + max(1.0, d * 0.03) + 0.5
                if _disk_ok(guard, y, x, room_r):
                    _capillary(cv, y, x, r, d, rng)
                    room = np.zeros((h, w), np.uint8)
                    cv2.circle(room, _pt(y, x), int(round(room_r * _S)), 1, -1, cv2.LINE_8, 4)
                    carve |= room.astype(bool)
                    counts["capillaries"] += 1
                    continue
            if rng.random() < p_wedge:
                _wedge(cv, y, x, float(dout[int(y), int(x)]) + 0.3, d, rng)
                counts["wedges"] += 1
    info.update(counts)
    carve &= ~guard
    out, n_removed = cut_fibers(geom, carve, remove, regions["glass"], diameter_px=d)
    info["fibers_removed"] = n_removed
    pmode = str(rng.choice(["plain", "loose", "dense"], p=[0.4, 0.35, 0.25]))
    info["perimysium"] = pmode
    on_fiber = out.labels > 0
    off = on_fiber | ~out.tissue
    maps = {}
    for name, c in cv.items():
        m = c.astype(np.float32) * (1 / 255)
        m[off] = 0.0
        maps[name] = m
    return out, NonFiber(maps=maps, perimysium=pmode), info


def _n_around(labels, yx, r) -> np.ndarray:
    """Distinct labels met at distance ``r`` in 12 directions around each point of ``yx``."""
    h, w = labels.shape
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ys = np.clip(np.round(yx[:, :1] + r[:, None] * np.sin(t)), 0, h - 1).astype(np.intp)
    xs = np.clip(np.round(yx[:, 1:] + r[:, None] * np.cos(t)), 0, w - 1).astype(np.intp)
    v = np.sort(labels[ys, xs], axis=1)
    return ((v[:, 1:] != v[:, :-1]) & (v[:, 1:] > 0)).sum(1) + (v[:, 0] > 0)


def _nearest_blob(blob, gone_px, labels):
    """Pixels of removed fibers whose label is touched by ``blob`` (whole footprints)."""
    if not blob.any():
        return np.zeros(blob.shape, bool)
    touched = np.zeros(int(labels.max()) + 1, bool)
    touched[labels[blob & gone_px]] = True
    touched[0] = False
    return touched[labels]
