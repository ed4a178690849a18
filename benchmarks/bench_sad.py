"""Small-angular-dark (SAD) classification on synthetic NADH sections with planted SAD fibers.

Run: ``.venv/bin/python benchmarks/bench_sad.py [--sections N] [--seed S]``

A simple generator of its own (the richer one is ``histo/synth``): a jittered hexagonal
Voronoi packing of normal fibers (min Feret ~45-60 µm at 0.5 µm/px, corners rounded, 1 µm
endomysium), rendered as an NADH-TR-like image with two fiber types (type 1 darker); section k
has the type-1 fraction ``--mixes[k]`` (default 10, 30, 50, 70, 90 %: darkness must not follow
the type mix, issue 11) and the ``dark%`` column is the share of the unplanted fibers called
dark. Planted in it, with known labels:

* **SAD** fibers: triangles or 60-degree rhombi of min Feret 12-30 µm, very dark, partly in
  groups; the neighbours grow into the space the fiber left (they squeeze it), as in
  denervated muscle;
* **decoys** that fail exactly one SAD criterion: small angular fibers of normal stain, small
  round dark fibers, and dark normal-sized fibers.

The true labels go through the real chain: :func:`histo.measure.morphometry.measure_fibers` then
:func:`histo.score.scoring.score_slide`. Printed: sensitivity and precision of ``is_sad`` against
the planted truth on counted fibers (target >= 0.95 each), the same for a size-only baseline
("small" alone, what a size histogram would flag) in the same process, how many planted
patches come out as one atrophy group, the slide's join-count p-value and the timings.

The scattered SAD fibers and the decoys are planted one per original fiber and their
neighbours close around them, so they never touch each other: they are *more* dispersed
than random, and the slide-wide join-count test of small fibers is not significant even
with the planted patches. The patches are the test of group finding.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse.csgraph import connected_components
from skimage.draw import polygon as draw_polygon
from skimage.morphology import convex_hull_image
from skimage.morphology import disk as disk_footprint

from histo.measure.morphometry import measure_fibers
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings

PIXEL_UM = 0.5
NADH_OD = np.array([0.55, 0.75, 0.35])      # OD direction of a blue-purple formazan


def voronoi_fibers(rng, shape, spacing_px):
    """Jittered hexagonal seeds -> Voronoi labels with a 2 px gap and rounded corners."""
    h, w = shape
    rows = np.arange(-spacing_px, h + spacing_px, spacing_px * np.sqrt(3) / 2)
    seeds = []
    for i, y in enumerate(rows):
        xs = np.arange(-spacing_px, w + spacing_px, spacing_px) + (spacing_px / 2) * (i % 2)
        for x in xs:
            seeds.append((y + rng.normal(0, 0.12 * spacing_px), x + rng.normal(0, 0.12 * spacing_px)))
    seeds = np.array(seeds)
    inside = (seeds[:, 0] >= 0) & (seeds[:, 0] < h) & (seeds[:, 1] >= 0) & (seeds[:, 1] < w)
    marker = np.ones(shape, bool)
    ys, xs = np.round(seeds[inside]).astype(int).T
    ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    marker[ys, xs] = False
    seed_id = np.zeros(shape, np.int32)
    seed_id[ys, xs] = np.arange(1, len(ys) + 1)
    _, (iy, ix) = ndi.distance_transform_edt(marker, return_indices=True)
    labels = seed_id[iy, ix]
    border = np.zeros(shape, bool)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[1:, :] |= labels[1:, :] != labels[:-1, :]
    fg = ~ndi.binary_dilation(border, iterations=1)
    fg = ndi.binary_opening(fg, structure=disk_footprint(6))
    return np.where(fg, labels, 0)


def angular_shape(rng, center, min_feret_px):
    """Vertices (y, x) of a random triangle or thin rhombus with the given min Feret."""
    theta = rng.uniform(0, 2 * np.pi)
    if rng.random() < 0.6:                              # triangle, angles 40-80 degrees
        a = np.radians(rng.uniform(45, 75))
        b = np.radians(rng.uniform(45, min(75, 180 - np.degrees(a) - 40)))
        # base along x, apex height = min Feret (the smallest width of a triangle with
        # these angles is its height onto the longest side, which is the base here)
        hgt = min_feret_px
        base = hgt / np.tan(a) + hgt / np.tan(b)
        pts = np.array([[0, 0], [0, base], [hgt, hgt / np.tan(a)]], float)
    else:                                               # 60-degree rhombus
        side = min_feret_px / np.sin(np.radians(60))
        pts = np.array([[0, 0], [0, side], [min_feret_px, side + side / 2],
                        [min_feret_px, side / 2]], float)
    pts -= pts.mean(axis=0)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return pts @ rot.T + np.asarray(center, float)


def replace_cells(labels, cells, shapes, frozen, margin=45):
    """Replace fibers ``cells`` by smaller ones; their other neighbours grow into the space.

    ``shapes`` is a list of ``(label, mask)`` with masks in image coordinates given as a
    polygon ``(n, 2)`` of (y, x) vertices or a disk ``(cy, cx, radius)``. Works in place on a
    window around the fibers; fibers in ``frozen`` (already planted) do not grow, and a 3 px
    gap is kept around every new fiber.
    """
    ys, xs = np.nonzero(np.isin(labels, cells))
    y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
    y1, x1 = min(ys.max() + margin + 1, labels.shape[0]), min(xs.max() + margin + 1, labels.shape[1])
    win = labels[y0:y1, x0:x1]
    region = close_gaps(np.isin(win, cells)) & (np.isin(win, cells) | (win == 0))
    new = np.zeros(win.shape, np.int64)
    for lab, spec in shapes:
        if isinstance(spec, tuple):
            cy, cx, r = spec
            yy, xx = np.ogrid[: win.shape[0], : win.shape[1]]
            mask = (yy - (cy - y0)) ** 2 + (xx - (cx - x0)) ** 2 <= r ** 2
        else:
            mask = np.zeros(win.shape, bool)
            rr, cc = draw_polygon(spec[:, 0] - y0, spec[:, 1] - x0, win.shape)
            mask[rr, cc] = True
        new[mask & region] = lab
    growers = np.where(np.isin(win, list(frozen)) | region, 0, win)
    dist, (iy, ix) = ndi.distance_transform_edt(growers == 0, return_indices=True)
    grown = growers[iy, ix]
    keep_clear = new > 0
    if len(shapes) > 1:          # a patch: nothing grows between its fibers
        keep_clear = convex_hull_image(keep_clear)
    fill = region & ~ndi.binary_dilation(keep_clear, iterations=3) & (dist <= margin)
    grown = np.where(fill, grown, 0)
    # keep a 1 px gap where two growing neighbours meet inside the freed region
    meet = np.zeros(win.shape, bool)
    meet[:, 1:] |= (grown[:, 1:] != grown[:, :-1]) & (grown[:, :-1] > 0)
    meet[1:, :] |= (grown[1:, :] != grown[:-1, :]) & (grown[:-1, :] > 0)
    win[region] = 0
    win[fill & ~meet] = grown[fill & ~meet]
    win[new > 0] = new[new > 0]
    frozen.update(int(lab) for lab, _ in shapes)


def close_gaps(mask):
    """The fibers of ``mask`` with the endomysium gaps between them filled in."""
    return ndi.binary_closing(np.pad(mask, 4), iterations=3)[4:-4, 4:-4]


def lattice_triangles(rng, region_mask, side_px, gap_px=3.0):
    """Equilateral triangles of a random triangular lattice that fit inside ``region_mask``,
    shrunk so that neighbouring triangles are ``gap_px`` apart, largest edge-connected set:
    a patch of touching small angular fibers (grouped atrophy)."""
    ys, xs = np.nonzero(region_mask)
    theta = rng.uniform(0, np.pi / 3)
    a = side_px * np.array([np.sin(theta), np.cos(theta)])
    b = side_px * np.array([np.sin(theta + np.pi / 3), np.cos(theta + np.pi / 3)])
    origin = np.array([ys.min(), xs.min()], float) - 2 * side_px + rng.uniform(0, side_px, 2)
    n = int(np.ceil(max(np.ptp(ys), np.ptp(xs)) / side_px)) + 5
    inradius = side_px / (2 * np.sqrt(3))
    keep_in = ndi.binary_erosion(region_mask, iterations=3)
    out = []
    for i in range(n):
        for j in range(n):
            p = origin + i * a + j * b
            for tri in (np.array([p, p + a, p + b]), np.array([p + a, p + a + b, p + b])):
                c = tri.mean(axis=0)
                tri = c + (tri - c) * (1 - gap_px / 2 / inradius)
                rr, cc = draw_polygon(tri[:, 0], tri[:, 1], region_mask.shape)
                if rr.size > 20 and keep_in[rr, cc].all():
                    out.append(tri)
    if not out:
        return out
    # keep the largest set of triangles connected through shared (shrunk) edges
    cent = np.array([t.mean(axis=0) for t in out])
    near = np.hypot(*(cent[:, None, :] - cent[None, :, :]).transpose(2, 0, 1)) <= 0.6 * side_px
    _, comp = connected_components(near, directed=False)
    best = np.argmax(np.bincount(comp))
    return [t for t, c in zip(out, comp) if c == best]


def synth_section(seed, shape=(2400, 2400), sad_fraction=0.06, decoy_fraction=0.03,
                  type_od=(0.28, 0.40), type1_fraction=0.5):
    """Labels, NADH-like RGB image, the planted truth {label: kind} and the planted patches
    (lists of labels of touching SAD fibers); ``type1_fraction`` of the other fibers are
    type 1 (the darker ``type_od[1]``)."""
    rng = np.random.default_rng(seed)
    labels = voronoi_fibers(rng, shape, spacing_px=55 / PIXEL_UM).astype(np.int64)
    ids = np.unique(labels)[1:]
    interior = set(int(v) for v in np.unique(labels[150:-150, 150:-150]) if v)
    kinds: dict[int, str] = {}
    frozen: set[int] = set()
    used: set[int] = set()
    next_label = int(labels.max()) + 1
    n_sad = int(sad_fraction * len(ids))
    n_sad_found = 0
    patches = []
    # about half the SAD fibers as groups: 2-3 neighbouring fibers replaced by a patch of
    # touching small triangles
    while n_sad_found < n_sad // 2:
        c = int(rng.choice(sorted(interior - used)))
        ys, xs = np.nonzero(labels == c)
        window = labels[ys.min() - 6: ys.max() + 7, xs.min() - 6: xs.max() + 7]
        near = [int(v) for v in np.unique(window) if v and v != c and v in interior - used]
        if not near:
            continue
        cells = [c] + [int(v) for v in rng.choice(near, size=min(len(near), rng.integers(1, 3)),
                                                  replace=False)]
        tris = lattice_triangles(rng, close_gaps(np.isin(labels, cells)),
                                 rng.uniform(22, 34) / PIXEL_UM)
        if len(tris) < 2:
            continue
        shapes = []
        for tri in tris:
            shapes.append((next_label, tri))
            kinds[next_label] = "sad"
            next_label += 1
        replace_cells(labels, cells, shapes, frozen)
        patches.append([lab for lab, _ in shapes])
        used.update(cells)
        n_sad_found += len(tris)
    rest = [int(c) for c in rng.permutation(sorted(interior - used))]
    scattered, rest = rest[: n_sad - n_sad_found], rest[n_sad - n_sad_found:]
    n_decoy = int(decoy_fraction * len(ids))
    plan = [(c, "sad") for c in scattered]
    for kind, cells in zip(("small_angular_pale", "small_round_dark", "dark_normal"),
                           (rest[:n_decoy], rest[n_decoy: 2 * n_decoy],
                            rest[2 * n_decoy: 3 * n_decoy])):
        plan += [(c, kind) for c in cells]
    for c, kind in plan:
        kinds[c] = kind
        d_px = rng.uniform(12, 30) / PIXEL_UM
        if kind == "dark_normal":
            continue
        cy, cx = np.argwhere(labels == c).mean(axis=0)
        spec = (cy, cx, d_px / 2) if kind == "small_round_dark" else angular_shape(rng, (cy, cx), d_px)
        replace_cells(labels, [c], [(c, spec)], frozen)
    # render: type 2 / type 1 OD from type_od, SAD and dark decoys 0.8-1.0; texture noise
    all_ids = np.unique(labels)[1:]
    fiber_od = {int(c): type_od[int(rng.random() < type1_fraction)] + rng.normal(0, 0.03)
                for c in all_ids}
    for c, kind in kinds.items():
        if kind in ("sad", "small_round_dark", "dark_normal"):
            fiber_od[c] = rng.uniform(0.8, 1.0)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    for c, v in fiber_od.items():
        lut[c] = v
    od = lut[labels] + 0.03
    od *= 1 + 0.45 * ndi.gaussian_filter(rng.normal(0, 1, shape), 1.5).astype(np.float32)
    rgb = 255.0 * 10.0 ** (-np.clip(od, 0, None)[..., None] * NADH_OD[None, None, :])
    rgb += rng.normal(0, 3, rgb.shape)
    return labels.astype(np.int32), np.clip(rgb, 0, 255).astype(np.uint8), kinds, patches


def rates(pred, truth):
    tp = int(np.count_nonzero(pred & truth))
    sens = tp / max(int(truth.sum()), 1)
    prec = tp / max(int(pred.sum()), 1)
    return sens, prec, tp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", type=int, default=5,
                        help="sections; section k gets the type-1 fraction --mixes[k %% len]")
    parser.add_argument("--mixes", type=float, nargs="+", default=(0.1, 0.3, 0.5, 0.7, 0.9),
                        help="fractions of type 1 (dark) fibers, cycled over the sections")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--type-od", type=float, nargs=2, default=(0.28, 0.40),
                        metavar=("TYPE2", "TYPE1"),
                        help="optical density of type 2 and type 1 fibers (SAD: 0.8-1.0)")
    parser.add_argument("--dark-min-z", type=float, default=None,
                        help="override the settings' darkness threshold")
    args = parser.parse_args()
    settings = ScoringSettings()
    if args.dark_min_z is not None:
        settings = settings.replace(dark_min_z=args.dark_min_z)
    all_pred, all_truth, all_small = [], [], []
    all_angular, all_kind = [], []  # the angular criterion alone, by planted kind
    t_gen = t_measure = t_score = 0.0
    patches_total = [0, 0]
    print(f"{'section':>7} {'type1':>5} {'fibers':>6} {'counted':>7} {'SAD':>4} {'found':>5} "
          f"{'sens':>5} {'prec':>5} {'dark%':>5}  grouping")
    for k in range(args.sections):
        t0 = time.perf_counter()
        mix = args.mixes[k % len(args.mixes)]
        labels, rgb, kinds, patches = synth_section(args.seed + k, type_od=tuple(args.type_od),
                                                    type1_fraction=mix)
        t1 = time.perf_counter()
        fibers = measure_fibers(labels, rgb, pixel_size_um=PIXEL_UM, stain="nadh")
        t2 = time.perf_counter()
        scored, summary = score_slide(fibers, labels, None, settings, stain="nadh")
        t3 = time.perf_counter()
        t_gen, t_measure, t_score = t_gen + t1 - t0, t_measure + t2 - t1, t_score + t3 - t2
        counted = scored["counted"].to_numpy(bool)
        truth = scored["label"].map(lambda v: kinds.get(int(v)) == "sad").to_numpy(bool)[counted]
        pred = scored["is_sad"].to_numpy(bool)[counted]
        small = scored["is_small"].to_numpy(bool)[counted]
        all_angular.append(scored["is_angular"].to_numpy(bool)[counted])
        all_kind.append(scored["label"].map(lambda v: kinds.get(int(v), "normal"))
                        .to_numpy(str)[counted])
        sens, prec, _ = rates(pred, truth)
        group_of = dict(zip(scored["label"].astype(int), scored["atrophy_group"].astype(int)))
        counted_of = dict(zip(scored["label"].astype(int), scored["counted"].astype(bool)))
        whole = [pt for pt in patches if all(counted_of.get(v, False) for v in pt)]
        found = sum(1 for pt in whole if len({group_of[v] for v in pt}) == 1 and group_of[pt[0]] > 0)
        patches_total[0] += found
        patches_total[1] += len(whole)
        p = summary["grouping"]["join_count"]["p_value"]
        plain = counted & scored["label"].map(lambda v: int(v) not in kinds).to_numpy(bool)
        dark_pct = 100.0 * scored["is_dark"].to_numpy(bool)[plain].mean()
        print(f"{k:>7} {mix:>5.2f} {len(scored):>6} {counted.sum():>7} {truth.sum():>4} "
              f"{pred.sum():>5} {sens:>5.3f} {prec:>5.3f} {dark_pct:>5.1f}  "
              f"{found}/{len(whole)} patches found as groups; "
              f"{summary['grouping']['n_groups']} groups, join-count p = {p:.3g}")
        missed = scored[counted][truth & ~pred]
        for _, row in missed.iterrows():
            print(f"        missed SAD {int(row['label'])}: min Feret {row['min_feret_um']:.1f} µm, "
                  f"angularity {row['angularity']:.2f}, darkness {row['darkness']:.1f}")
        all_pred.append(pred)
        all_truth.append(truth)
        all_small.append(small)
    pred, truth, small = map(np.concatenate, (all_pred, all_truth, all_small))
    sens, prec, tp = rates(pred, truth)
    b_sens, b_prec, _ = rates(small, truth)
    print(f"\nSAD classification over {args.sections} sections: {tp} of {int(truth.sum())} planted "
          f"SAD fibers found, {int(pred.sum())} called")
    print(f"  sensitivity {sens:.3f}   precision {prec:.3f}   (target >= 0.95 each: "
          f"{'met' if sens >= 0.95 and prec >= 0.95 else 'NOT met'})")
    print(f"  planted patches of touching SAD fibers found as one atrophy group each: "
          f"{patches_total[0]} of {patches_total[1]}")
    angular, kind = np.concatenate(all_angular), np.concatenate(all_kind)
    print(f"  angular (angularity >= {settings.angular_min}) alone: " + ", ".join(
        f"{name} {int(angular[kind == k].sum())}/{int((kind == k).sum())}"
        for k, name in (("sad", "planted SAD"), ("small_angular_pale", "small angular decoys"),
                        ("small_round_dark", "small round decoys"),
                        ("normal", "normal fibers"))))
    print(f"  baseline 'small' alone: sensitivity {b_sens:.3f}, precision {b_prec:.3f}; "
          f"precision ratio SAD / baseline = {prec / max(b_prec, 1e-9):.2f}x")
    print(f"  time: generate {t_gen:.1f} s, measure_fibers {t_measure:.1f} s, score_slide "
          f"{t_score:.1f} s (score / measure = {t_score / t_measure:.2f})")


if __name__ == "__main__":
    main()
