"""Ground-truth geometry of synthetic sections: generated fiber packings.

A section's geometry is an exact instance label image plus the tissue around it. Packings are
capacity-constrained power diagrams (see :mod:`histo.synth.powerdiagram`) whose cells are
shrunk by half the endomysium width, rounded at the corners and gently warped, then cut by
perimysium septa between fascicles, random gaps and, in some samples, the tissue edge. Small
angular fibers are planted by giving a few cells (singly or in groups) a small target area and
sharp corners, so that their neighbours squeeze them; their labels are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
import shapely
from scipy.spatial import cKDTree

from histo.synth.labelops import clean_labels, label_centroids
from histo.synth.noise import sample_field, smooth_noise
from histo.synth.powerdiagram import relax

logger = logging.getLogger(__name__)

FIBER_TYPES = ("1", "2A", "2B")


@dataclass
class Geometry:
    """Exact geometry of one synthetic section.

    Attributes
    ----------
    labels : numpy.ndarray
        uint32 (Y, X) fiber instance labels 1..n, 0 elsewhere; labels never touch.
    tissue : numpy.ndarray
        bool (Y, X): True on tissue (fibers and connective tissue), False on empty glass.
    planted : numpy.ndarray
        uint32 sorted labels of planted small angular fibers.
    fiber_types : dict
        label -> "1" / "2A" / "2B".
    info : dict
        How the geometry was made (source, diameters, widths, counts).
    """

    labels: np.ndarray
    tissue: np.ndarray
    planted: np.ndarray
    fiber_types: dict[int, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def assign_fiber_types(labels: np.ndarray, rng: np.random.Generator, diameter_px: float) -> tuple[dict, dict]:
    """Give every fiber a type: a checkerboard mosaic, or type grouping (reinnervation).

    Returns ``(fiber_types, info)``.
    """
    n = int(labels.max())
    if n == 0:
        return {}, {"type_pattern": "none"}
    three = rng.random() < 0.6
    p1 = rng.uniform(0.3, 0.6)
    grouped = rng.random() < 0.2
    cent = label_centroids(labels)[1:]
    if grouped:
        fld = smooth_noise(labels.shape, diameter_px * rng.uniform(2.5, 5.0), rng)
        yx = np.nan_to_num(cent)
        val = sample_field(fld, yx) + rng.normal(0, 0.35, n)
        order = np.argsort(np.argsort(val)) / max(n - 1, 1)
    else:
        order = rng.random(n)
    types = np.where(order < p1, "1", "2A").astype(object)
    if three:
        second = rng.random(n) < rng.uniform(0.3, 0.6)
        types[(types == "2A") & second] = "2B"
    return {i + 1: str(t) for i, t in enumerate(types)}, {
        "type_pattern": "grouped" if grouped else "mosaic",
        "n_types": 3 if three else 2,
    }


def _targets(rng, n_area, diameter_px, cv, gap_px):
    sigma = np.sqrt(np.log(1 + cv**2))
    d = rng.lognormal(np.log(diameter_px) - sigma**2 / 2, sigma, 4096)
    t = np.pi / 4 * (d + gap_px) ** 2
    n = int(np.searchsorted(np.cumsum(t), n_area)) + 1
    t = t[:n]
    return d[:n], t * (n_area / t.sum())


def _grow_groups(cells_nb, inside, rng, n_groups, max_total):
    """Random connected groups of sites (1 to 8 each) among ``inside`` sites."""
    nbrs: dict[int, list[int]] = {}
    for a, b in cells_nb:
        nbrs.setdefault(int(a), []).append(int(b))
        nbrs.setdefault(int(b), []).append(int(a))
    taken: set[int] = set()
    groups = []
    candidates = np.flatnonzero(inside)
    for _ in range(n_groups):
        if len(candidates) == 0 or len(taken) >= max_total:
            break
        size = 1 if rng.random() < 0.45 else int(rng.integers(2, 9))
        start = int(rng.choice(candidates))
        if start in taken:
            continue
        group = [start]
        frontier = [start]
        while len(group) < size and frontier:
            cur = frontier[int(rng.integers(len(frontier)))]
            options = [j for j in nbrs.get(cur, []) if inside[j] and j not in taken and j not in group]
            if not options:
                frontier.remove(cur)
                continue
            nxt = int(rng.choice(options))
            group.append(nxt)
            frontier.append(nxt)
        taken.update(group)
        groups.append(group)
    return groups


def _septum_field(shape, diameter_px, rng):
    """Distance (px) to the nearest perimysium septum between fascicles, and the fascicle count."""
    h, w = shape
    spacing = diameter_px * rng.uniform(6.0, 15.0)
    # fine enough that the V-shaped minimum along a septum survives linear upsampling
    step = max(1.5, diameter_px / 16, max(h, w) / 320)
    gh, gw = int(np.ceil(h / step)) + 2, int(np.ceil(w / step)) + 2
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32) * step
    # a gentle domain warp bends the septa; amplitude well below the feature size keeps the
    # warp one-to-one (no spurious islands of septum inside fascicles)
    warp_amp = spacing * rng.uniform(0.04, 0.1)
    wy = smooth_noise((gh, gw), spacing / step / 1.5, rng) * warp_amp
    wx = smooth_noise((gh, gw), spacing / step / 1.5, rng) * warp_amp
    yy, xx = yy + wy, xx + wx
    m = spacing
    n = max(2, int(round((h + 2 * m) * (w + 2 * m) / spacing**2)))
    seeds = rng.uniform([-m, -m], [h + m, w + m], (n, 2)).astype(np.float32)
    pts = np.stack([yy.ravel(), xx.ravel()], 1)
    k = min(4, n)
    d, idx = cKDTree(seeds).query(pts, k=k)
    # distance to the bisector between the nearest seed and each of the next ones
    c1 = seeds[idx[:, 0]]
    sep = np.sqrt(((seeds[idx[:, 1:]] - c1[:, None, :]) ** 2).sum(-1))
    dist = (d[:, 1:] ** 2 - d[:, :1] ** 2) / (2 * np.maximum(sep, 1e-6))
    fld = dist.min(1).reshape(gh, gw).astype(np.float32)
    up = cv2.resize(fld, (int(gw * step), int(gh * step)), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.ascontiguousarray(up), n


def _edge_field(shape, diameter_px, rng):
    """Signed distance (px) to a wavy tissue edge; positive inside the tissue."""
    h, w = shape
    theta = rng.uniform(0, 2 * np.pi)
    ny, nx = np.sin(theta), np.cos(theta)
    diag = np.hypot(h, w)
    # the tissue keeps 45-90 % of the image (before the edge is made wavy)
    offset = (rng.uniform(0.45, 0.9) - 0.5) * diag
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sd = (yy - h / 2) * ny + (xx - w / 2) * nx + offset
    sd += smooth_noise(shape, diameter_px * rng.uniform(2, 5), rng) * diameter_px * rng.uniform(0.2, 0.8)
    return sd


def generate_packing(
    shape: tuple[int, int],
    diameter_px: float,
    rng: np.random.Generator,
    *,
    size_cv: float | None = None,
    endomysium_px: float | None = None,
    fascicles: bool | None = None,
    tissue_edge: bool | None = None,
    gap_fraction: float | None = None,
    planted_groups: int | None = None,
    tear_fraction: float = 0.5,
) -> Geometry:
    """A generated fiber packing with exact labels (see the module docstring).

    Parameters
    ----------
    shape : (int, int)
        Output shape (Y, X).
    diameter_px : float
        Mean equivalent diameter of the normal fibers in pixels.
    rng : numpy.random.Generator
        Source of randomness; the result is a pure function of its state.
    size_cv : float, optional
        Coefficient of variation of the fiber diameters (default: uniform in 0.2-0.35).
    endomysium_px : float, optional
        Mean gap between neighbouring fibers (default: 3-10 % of the diameter, >= 1 px).
    fascicles : bool, optional
        Cut the packing into fascicles by perimysium septa (default: 60 % of samples).
    tissue_edge : bool, optional
        Put a tissue edge with empty glass beyond it (default: 25 % of samples).
    gap_fraction : float, optional
        Fraction of fibers left out as gaps (default: uniform in 0-4 %).
    planted_groups : int, optional
        Number of groups of planted small angular fibers (default: random, 0-5).
    tear_fraction : float
        Fraction of the missing fibers that leave a tear (empty glass) rather than loose
        connective tissue.
    """
    h, w = int(shape[0]), int(shape[1])
    d = float(diameter_px)
    cv = rng.uniform(0.2, 0.35) if size_cv is None else float(size_cv)
    # endomysium: thin in tightly packed (human, well-frozen) muscle, wide in loose or
    # retracted tissue; log-uniform 2.5-15 % of the diameter
    gap_frac = float(np.exp(rng.uniform(np.log(0.025), np.log(0.15))))
    gap = max(1.2, gap_frac * d) if endomysium_px is None else max(1.0, float(endomysium_px))
    roundness = rng.uniform(0.1, 0.9)  # polygonal (0) to nearly round (1) outlines
    use_fasc = (rng.random() < 0.6) if fascicles is None else bool(fascicles)
    use_edge = (rng.random() < 0.25) if tissue_edge is None else bool(tissue_edge)
    p_gap = rng.uniform(0.0, 0.04) if gap_fraction is None else float(gap_fraction)
    if planted_groups is None:
        planted_groups = 0 if rng.random() < 0.15 else int(rng.integers(1, 6))

    m = 1.5 * d
    bounds = (-m, -m, h + m, w + m)
    # the cells along the bounds spill about half a fiber into the frame of the diagram
    area = (h + 2 * m + d) * (w + 2 * m + d)
    # inset, corner rounding and the budget shave the fibers a little: calibrated so that the
    # mean equivalent diameter of whole fibers matches the request (40 samples, residual sd 2.4 %)
    shrink = 0.978 - 0.062 * (gap / d) - 0.077 * roundness**2
    _, target = _targets(rng, area, d / shrink, cv, gap)
    sites = rng.uniform([bounds[0], bounds[1]], [bounds[2], bounds[3]], (len(target), 2))
    sites, _, cells = relax(sites, target, bounds, spacing=d, iterations=5)

    # plant small angular fibers: shrink the targets of a few connected groups of cells
    inside = (
        (cells.centroid[:, 0] > d * 0.6)
        & (cells.centroid[:, 0] < h - d * 0.6)
        & (cells.centroid[:, 1] > d * 0.6)
        & (cells.centroid[:, 1] < w - d * 0.6)
    )
    n_inside = int(inside.sum())
    groups = _grow_groups(cells.neighbors, inside, rng, planted_groups, max(1, int(0.25 * n_inside)))
    planted_sites = np.array(sorted({i for g in groups for i in g}), dtype=np.intp)
    frac = rng.uniform(0.33, 0.57, len(planted_sites))
    if len(planted_sites):
        normal = np.ones(len(target), bool)
        normal[planted_sites] = False
        # min Feret of an angular fiber is ~0.85 of its equivalent diameter
        small_t = np.pi / 4 * (frac * d * 1.18 / shrink + gap) ** 2
        freed = target[planted_sites].sum() - small_t.sum()
        target = target.copy()
        target[planted_sites] = small_t
        target[normal] *= 1 + freed / target[normal].sum()
    sites, _, cells = relax(sites, target, bounds, spacing=d, iterations=10, fixed_iterations=3, step=1.0)

    n = len(sites)
    is_planted = np.zeros(n, bool)
    is_planted[planted_sites] = True
    void = np.zeros(n, bool)
    cen = cells.centroid

    # fascicles and perimysium
    septum = None
    info_fasc = 0
    if use_fasc:
        septum, info_fasc = _septum_field((h, w), d, rng)
        half = d * rng.uniform(0.08, 0.35)
        band_w = half * np.clip(1 + 0.35 * smooth_noise((h, w), d * 3, rng), 0.6, 2.0)
        in_img = (cen[:, 0] >= 0) & (cen[:, 0] < h) & (cen[:, 1] >= 0) & (cen[:, 1] < w)
        cval = sample_field(septum - band_w * 0.6, cen)
        void |= in_img & (cval < 0) & ~is_planted
    # tissue edge
    sd_edge = None
    if use_edge:
        sd_edge = _edge_field((h, w), d, rng)
        void |= sample_field(sd_edge, cen) < d * 0.3
    # random gaps (missing fibers: tears or loose connective tissue)
    gaps = (rng.random(n) < p_gap) & ~is_planted
    void |= gaps

    # cell polygons -> shrunk, rounded, warped fiber outlines
    half_gap = gap / 2 * np.exp(rng.normal(0, 0.3, n))
    radius = np.sqrt(cells.area / np.pi)
    rounding = np.where(
        is_planted,
        rng.uniform(0.0, 0.05, n) * d,
        np.clip(roundness + rng.normal(0, 0.15, n), 0.05, 0.95) * 0.75 * radius,
    )
    draw = np.flatnonzero((~void) & (cells.area > 0))
    polys = np.array([shapely.Polygon(cells.polygon(i)[:, ::-1]) for i in draw], dtype=object)  # (x, y)
    inner = shapely.buffer(polys, -(half_gap[draw] + rounding[draw]), join_style="mitre", mitre_limit=10.0)
    # a rounding radius beyond the cell's inradius would erase the cell: retry those smaller
    empty = shapely.is_empty(inner)
    if empty.any():
        rounding[draw[empty]] *= 0.3
        inner[empty] = shapely.buffer(
            polys[empty], -(half_gap[draw[empty]] + rounding[draw[empty]]), join_style="mitre", mitre_limit=10.0
        )
    outer = shapely.buffer(inner, rounding[draw], quad_segs=4)
    outer = shapely.segmentize(outer, max(2.0, d / 6))
    coords, idx = shapely.get_coordinates(outer, return_index=True)
    warp_amp = d * rng.uniform(0.04, 0.12)
    feat = d * rng.uniform(1.2, 2.5)
    wy = smooth_noise((h, w), feat, rng) * warp_amp
    wx = smooth_noise((h, w), feat, rng) * warp_amp
    yx = coords[:, ::-1]
    coords = coords + np.stack([sample_field(wx, yx), sample_field(wy, yx)], 1)
    raw = np.zeros((h, w), np.int32)
    splits = np.flatnonzero(np.diff(idx)) + 1
    for k, pts in zip(idx[np.r_[0, splits]] if len(idx) else [], np.split(coords, splits) if len(idx) else []):
        if len(pts) < 3:
            continue
        cv2.fillPoly(raw, [np.round(pts * 16).astype(np.int32)], int(draw[k]) + 1, cv2.LINE_8, shift=4)

    tissue = np.ones((h, w), bool)
    # half of the missing fibers are tears (empty glass), the rest loose connective tissue
    tears = np.flatnonzero(gaps & (rng.random(n) < tear_fraction) & (cells.area > 0))
    if len(tears):
        # the hole left by a missing fiber: its cell grown to just short of the neighbours,
        # bent by the same warp as the fibers
        tear_polys = shapely.buffer(
            np.array([shapely.Polygon(cells.polygon(i)[:, ::-1]) for i in tears], dtype=object),
            -half_gap[tears] * 0.2,
            join_style="round",
        )
        tear_polys = shapely.segmentize(tear_polys, max(2.0, d / 6))
        t_coords, t_idx = shapely.get_coordinates(tear_polys, return_index=True)
        t_yx = t_coords[:, ::-1]
        t_coords = t_coords + np.stack([sample_field(wx, t_yx), sample_field(wy, t_yx)], 1)
        tear_mask = np.zeros((h, w), np.uint8)
        for k in np.unique(t_idx):
            pts = t_coords[t_idx == k]
            if len(pts) >= 3:
                cv2.fillPoly(tear_mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        tissue &= tear_mask == 0
    if septum is not None:
        raw[septum < band_w] = 0
    if sd_edge is not None:
        tissue = sd_edge > 0
        raw[sd_edge < d * rng.uniform(0.05, 0.3)] = 0

    labels, mapping = clean_labels(raw, min_area_px=max(6.0, 0.03 * np.pi / 4 * d * d))
    tissue |= labels > 0
    lookup = np.zeros(n + 2, np.uint32)
    lookup[: len(mapping)] = mapping[: n + 2]
    planted = lookup[planted_sites + 1]
    planted = np.unique(planted[planted > 0]).astype(np.uint32)
    types, tinfo = assign_fiber_types(labels, rng, d)
    info = {
        "geometry": "packing",
        "fiber_diameter_px": d,
        "size_cv": float(cv),
        "endomysium_px": float(gap),
        "roundness": float(roundness),
        "n_fascicle_seeds": int(info_fasc),
        "tissue_edge": bool(use_edge),
        "gap_fraction": float(p_gap),
        "n_tears": int(len(tears)),
        "n_planted_groups": len(groups),
        "planted_group_sizes": [len(g) for g in groups],
        **tinfo,
    }
    logger.debug("packing: %d fibers, %d planted", int(labels.max()), len(planted))
    return Geometry(labels=labels, tissue=tissue, planted=planted, fiber_types=types, info=info)
