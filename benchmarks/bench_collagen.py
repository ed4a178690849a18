"""PSR collagen fractions (histo.measure.collagen) on the bundled picrosirius red images.

Run: ``.venv/bin/python benchmarks/bench_collagen.py [--figure docs/collagen.png]``

The two images (``data/real/psr``, FiberSight) come without a pixel size; it is assumed from
their fibers (mouse fibers ~35-45 µm: ``fs_psr_crop`` fibers are 60-80 px, so ~0.5 µm/px;
``fs_psr_patch`` fibers 150-200 px, ~0.25 µm/px). Printed: endomysial, perimysial and total
collagen as fractions of the tissue area, with the default septum width (10 µm) and red
threshold (0.10), how they move with both, and the time per image. ``--figure`` draws the
image beside its masks (fibers, endomysial collagen red, perimysial collagen blue).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from histo.measure.collagen import RED_MIN_OD, SEPTUM_MIN_UM, collagen_fractions, collagen_masks

ROOT = Path(__file__).resolve().parents[1]
IMAGES = (("fs_psr_crop", 0.5), ("fs_psr_patch", 0.25))  # (name, assumed µm/px)


def main() -> None:
    import tifffile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figure", type=Path, default=None, help="write the figure here (.png)")
    args = parser.parse_args()
    print("| image | assumed µm/px | septum µm | red OD | endomysial | perimysial | all collagen "
          "| tissue / image | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    images = {}
    for name, px in IMAGES:
        img = tifffile.imread(ROOT / "data" / "real" / "psr" / f"{name}.tif")
        images[name] = img
        for septum, red in ((SEPTUM_MIN_UM, RED_MIN_OD), (5.0, RED_MIN_OD), (20.0, RED_MIN_OD),
                            (SEPTUM_MIN_UM, 0.05), (SEPTUM_MIN_UM, 0.20)):
            t0 = time.perf_counter()
            f = collagen_fractions(img, septum_min_px=septum / px, red_min_od=red)
            dt = time.perf_counter() - t0
            print(f"| {name} | {px} | {septum:g} | {red:.2f} | {f.endomysial_fraction:.3f} | "
                  f"{f.perimysial_fraction:.3f} | {f.collagen_fraction:.3f} | "
                  f"{f.tissue_px / (img.shape[0] * img.shape[1]):.2f} | {dt:.2f} s |")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(12, 10), constrained_layout=True)
        for row, (name, px) in zip(axes, IMAGES):
            img = images[name]
            m = collagen_masks(img, septum_min_px=SEPTUM_MIN_UM / px)
            view = np.full(img.shape, 40, np.uint8)
            view[m.tissue] = (150, 150, 150)
            view[m.fibers] = (215, 205, 120)
            view[m.endomysial] = (220, 30, 30)
            view[m.perimysial] = (30, 110, 255)
            row[0].imshow(img)
            row[0].set_title(f"{name} (assumed {px} µm/px)", fontsize=10)
            f = collagen_fractions(img, septum_min_px=SEPTUM_MIN_UM / px)
            row[1].imshow(view)
            row[1].set_title(f"fibers (yellow), endomysial {100 * f.endomysial_fraction:.1f} % "
                             f"(red), perimysial {100 * f.perimysial_fraction:.1f} % (blue) of "
                             "tissue", fontsize=10)
            for ax in row:
                ax.axis("off")
        fig.savefig(args.figure, dpi=70)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
