"""Angularity: exact shapes, the NCL-SM calibration of ``angular_min`` and planted SAD shapes.

Run: ``.venv/bin/python benchmarks/bench_angularity.py [--step 4] [--figure docs/angularity.png]``

Prints the three tables of ``docs/angularity.md`` from the code as it is:

1. digitised exact shapes (``draw`` of ``tests/test_morphometry.py``) at several equivalent
   diameters, mean +- half-range over 7 rotations with random sub-pixel offsets;
2. the manual NCL-SM human masks (``data/real/masks``, read at 1/STEP of their resolution):
   percentiles of ``angularity`` of the inner fibers and the share at or above a range of
   thresholds, with the default ``angular_min``;
3. the planted small angular fibers of ``benchmarks/bench_sad.py`` (triangles with 45-75 deg
   corners, 60 deg rhombi, min Feret 24-60 px), digitised alone: percentiles and the share
   found at ``angular_min``.

``--figure`` also draws outlines before and after the elongation is removed, and the
distributions of (2) and (3) against the threshold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon

from histo.measure._ragged import offsets_from_lengths
from histo.measure.morphometry import measure_fibers
from histo.measure.shape import (
    angularity_batch,
    angularity_from_chain,
    inertia_normalised_batch,
    main_outline,
    outer_contours,
)
from histo.score.settings import ScoringSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_sad import PIXEL_UM, angular_shape  # noqa: E402
from test_morphometry import draw  # noqa: E402

SHAPES = ["circle", "ellipse3", "ellipse4", "hexagon", "square", "rect4", "rhombus", "triangle",
          "sliver", "concave_triangle", "banana", "spindle"]
LABELS = {"circle": "disk", "ellipse3": "ellipse 3:1", "ellipse4": "ellipse 4:1",
          "hexagon": "regular hexagon", "square": "square", "rect4": "rectangle 4:1",
          "rhombus": "rhombus 60°", "triangle": "equilateral triangle",
          "sliver": "sliver (15° apex)", "concave_triangle": "triangle, sides bowed in 5 %",
          "banana": "bent fiber (100° arc)", "spindle": "spindle (30° tips)"}
DIAMETERS = (12, 16, 24, 48, 96, 192)


def exact_table(rng) -> None:
    print("| shape | " + " | ".join(f"{d} px" for d in DIAMETERS) + " |")
    print("|---|" + "---|" * len(DIAMETERS))
    for kind in SHAPES:
        cells = []
        for d in DIAMETERS:
            v = [float(measure_one(draw(kind, d, a, tuple(rng.random(2) - 0.5))))
                 for a in (0, 13, 27, 45, 60, 75, 88)]
            cells.append(f"{np.mean(v):.2f} ± {np.ptp(v) / 2:.2f}")
        print(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")


def measure_one(mask: np.ndarray) -> float:
    return angularity_from_chain(main_outline(outer_contours(mask)))


def ncl_angularity(step: int) -> dict[str, np.ndarray]:
    import tifffile

    out = {}
    for name in ("S11", "S60"):
        path = ROOT / "data" / "real" / "masks" / f"nclsm_{name}_labels.tiff"
        lab = np.ascontiguousarray(tifffile.imread(path)[::step, ::step])
        df = measure_fibers(lab)
        out[name] = df.loc[~df["is_edge"], "angularity"].dropna().to_numpy()
    return out


def planted_angularity(rng, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Angularity of bench_sad's planted shapes, digitised alone, and their corner count."""
    mains, corners = [], []
    for _ in range(n):
        vertices = angular_shape(rng, (60, 60), rng.uniform(12, 30) / PIXEL_UM)
        mask = np.zeros((121, 121), bool)
        rr, cc = draw_polygon(vertices[:, 0], vertices[:, 1], mask.shape)
        mask[rr, cc] = True
        mains.append(main_outline(outer_contours(mask)))
        corners.append(len(vertices))
    offsets = offsets_from_lengths([len(c) for c in mains])
    return angularity_batch(np.concatenate(mains), offsets), np.array(corners)


def figure(path: Path, ncl: dict[str, np.ndarray], planted: np.ndarray, angular_min: float,
           step: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    lab = tifffile.imread(ROOT / "data" / "real" / "masks" / "nclsm_S60_labels.tiff")[::step, ::step]
    fibers = []
    for i, sl in enumerate(ndi.find_objects(lab)):
        if sl is not None and (lab[sl] == i + 1).sum() > 400:
            chain = main_outline(outer_contours(lab[sl] == i + 1))
            fibers.append((angularity_from_chain(chain), chain))
    fibers.sort(key=lambda f: f[0])
    real = [fibers[len(fibers) // 2], fibers[int(0.9 * len(fibers))], fibers[-1]]
    kinds = ["ellipse3", "rect4", "rhombus", "sliver", "concave_triangle", "banana"]
    chains = [outer_contours(draw(k, 60, 20))[0] for k in kinds] + [c for _, c in real]
    titles = [LABELS[k] for k in kinds] + ["NCL-SM S60, median", "NCL-SM S60, 90th pct",
                                           "NCL-SM S60, sharpest"]
    fig = plt.figure(figsize=(13, 7.5), constrained_layout=True)
    grid = fig.add_gridspec(3, len(chains), height_ratios=[1, 1, 1.6])
    for j, (chain, title) in enumerate(zip(chains, titles)):
        norm, elong = inertia_normalised_batch(chain, np.array([0, len(chain)]))
        for row, (pts, colour) in enumerate(((chain - chain.mean(axis=0), "#1f77b4"),
                                             (norm, "#d62728"))):
            ax = fig.add_subplot(grid[row, j])
            closed = np.vstack([pts, pts[:1]])
            ax.plot(closed[:, 0], -closed[:, 1], color=colour, lw=1.2)
            ax.set_aspect("equal")
            ax.axis("off")
            if row == 0:
                ax.set_title(title, fontsize=8)
            else:
                ax.set_title(f"elongation {elong[0]:.1f} removed\nangularity "
                             f"{angularity_from_chain(chain):.2f}", fontsize=8)
    ax = fig.add_subplot(grid[2, :])
    bins = np.linspace(0, 0.8, 81)
    for name, values in ncl.items():
        share = 100 * np.mean(values >= angular_min)
        ax.hist(values, bins, histtype="step", lw=1.5, density=True,
                label=f"NCL-SM {name} manual masks, n={len(values)}: {share:.1f} % angular")
    ax.hist(planted, bins, alpha=0.4, density=True, color="#444",
            label=f"bench_sad planted shapes, n={len(planted)}: "
                  f"{100 * np.mean(planted >= angular_min):.1f} % angular")
    ax.axvline(angular_min, color="k", ls="--", lw=1)
    ax.text(angular_min + 0.005, ax.get_ylim()[1] * 0.9, f"angular_min = {angular_min}", fontsize=9)
    ax.set_xlabel("angularity")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle("Top: outline as drawn (blue) and with its elongation removed (red). "
                 "Bottom: the calibration of angular_min", fontsize=10)
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=4,
                        help="read the NCL-SM masks at 1/STEP of their resolution (1 = full)")
    parser.add_argument("--figure", type=Path, default=None, help="write the figure here (.png)")
    parser.add_argument("--skip-exact", action="store_true", help="skip the exact-shape table")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    angular_min = ScoringSettings().angular_min
    if not args.skip_exact:
        print("Exact shapes, digitised (mean ± half-range over 7 rotations):\n")
        exact_table(rng)
    ncl = ncl_angularity(args.step)
    thresholds = (0.30, 0.32, 0.34, 0.36, 0.40, 0.50)
    print(f"\nNCL-SM manual masks at 1/{args.step} resolution, inner fibers "
          f"(default angular_min = {angular_min}):\n")
    print("| mask | fibers | median | 90 % | 95 % | 98 % | " +
          " | ".join(f"≥ {t:.2f}" for t in thresholds) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(thresholds))
    for name, v in list(ncl.items()) + [("pooled", np.concatenate(list(ncl.values())))]:
        q = np.percentile(v, [50, 90, 95, 98])
        print(f"| {name} | {len(v)} | " + " | ".join(f"{x:.3f}" for x in q) + " | " +
              " | ".join(f"{100 * np.mean(v >= t):.1f} %" for t in thresholds) + " |")
    planted, corners = planted_angularity(rng)
    print("\nbench_sad planted shapes, digitised alone:\n")
    print("| shape | n | min | 1 % | 5 % | median | found at angular_min |")
    print("|---|---|---|---|---|---|---|")
    for name, sel in (("triangle", corners == 3), ("rhombus 60°", corners == 4),
                      ("all", corners > 0)):
        v = planted[sel]
        q = np.percentile(v, [0, 1, 5, 50])
        print(f"| {name} | {sel.sum()} | " + " | ".join(f"{x:.3f}" for x in q) +
              f" | {100 * np.mean(v >= angular_min):.1f} % |")
    if args.figure:
        figure(args.figure, ncl, planted, angular_min, args.step)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
