"""Benchmark: histo.measure.morphometry.measure_fibers on 10,000 fibers vs skimage regionprops_table.

A jittered Voronoi tessellation (about 6000 x 6000 px, 10,000 cells ~60 px across, 3 px
endomysium) is measured by ``measure_fibers`` (labels only, then with an H&E-like RGB image
for mean_od/darkness) and, in the same process, by a plain
``skimage.measure.regionprops_table(labels, properties=("label", "area", "centroid",
"perimeter", "feret_diameter_max", "solidity", "eccentricity"))``. Prints wall and CPU times,
the ratio, and how the shared measurements agree.

Run:  .venv/bin/python benchmarks/bench_morphometry.py [--grid 100] [--spacing 60]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np


def voronoi_labels(grid: int, spacing: int, wall: int = 3, seed: int = 0) -> np.ndarray:
    """Jittered-grid Voronoi cells (grid x grid of them), separated by ``wall`` px of background."""
    rng = np.random.default_rng(seed)
    size = grid * spacing
    yy, xx = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    pts = (np.stack([yy, xx], -1).reshape(-1, 2) + 0.5) * spacing
    pts += rng.uniform(-0.35, 0.35, size=pts.shape) * spacing
    pts = np.clip(np.round(pts), 0, size - 1).astype(np.int64)
    seeds = np.zeros((size, size), np.int32)
    seeds[pts[:, 0], pts[:, 1]] = np.arange(1, len(pts) + 1)
    src = (seeds == 0).astype(np.uint8)
    _, idx = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.concatenate([[0], seeds[seeds > 0]])  # pixel-label order is raster order
    labels = lut[idx].astype(np.int32)
    border = np.zeros(labels.shape, np.uint8)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[1:, :] |= labels[1:, :] != labels[:-1, :]
    if wall > 1:
        border = cv2.dilate(border, np.ones((wall - 1, wall - 1), np.uint8))
    labels[border.astype(bool)] = 0
    return labels


def he_like_image(labels: np.ndarray, seed: int = 1) -> np.ndarray:
    """Pink fibers of varying darkness on pale endomysium."""
    rng = np.random.default_rng(seed)
    n = int(labels.max())
    tone = np.concatenate([[0.0], rng.normal(1.0, 0.15, n)]).astype(np.float32)
    t = tone[labels]
    rgb = np.empty(labels.shape + (3,), np.uint8)
    for c, (bg, fg) in enumerate(((235, 200), (228, 110), (232, 170))):
        rgb[..., c] = np.where(labels > 0, np.clip(bg - (bg - fg) * t, 0, 255), bg)
    return rgb


def timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=100, help="cells per side (100 -> 10,000)")
    parser.add_argument("--spacing", type=int, default=60, help="cell spacing in px")
    parser.add_argument("--skip-skimage", action="store_true", help="time histo only")
    args = parser.parse_args()

    from skimage.measure import regionprops_table

    from histo.measure.morphometry import measure_fibers

    labels, t_make, _ = timed(voronoi_labels, args.grid, args.spacing)
    n = len(np.unique(labels)) - 1
    print(f"labels: {labels.shape[0]} x {labels.shape[1]} px, {n} fibers "
          f"(median area {np.median(np.bincount(labels.ravel())[1:]):.0f} px), built in {t_make:.1f} s")
    rgb = he_like_image(labels)

    measure_fibers(labels[:600, :600], pixel_size_um=0.5)  # warm-up (imports, caches)
    df, t_histo, c_histo = timed(measure_fibers, labels, pixel_size_um=0.5)
    print(f"histo measure_fibers (labels only):   {t_histo:6.2f} s wall, {c_histo:6.2f} s CPU "
          f"-> {1e6 * t_histo / n:.0f} us per fiber, {len(df.columns)} columns")
    df_img, t_img, c_img = timed(measure_fibers, labels, rgb, pixel_size_um=0.5, stain="he")
    print(f"histo measure_fibers (+ H&E image):   {t_img:6.2f} s wall, {c_img:6.2f} s CPU")

    if args.skip_skimage:
        return
    props = ("label", "area", "centroid", "perimeter", "feret_diameter_max", "solidity",
             "eccentricity")
    rp, t_sk, c_sk = timed(regionprops_table, labels, properties=props)
    print(f"skimage regionprops_table:           {t_sk:6.2f} s wall, {c_sk:6.2f} s CPU")
    print(f"ratio skimage / histo (labels only):  {t_sk / t_histo:6.2f}x wall, "
          f"{c_sk / c_histo:.2f}x CPU")
    print(f"ratio skimage / histo (with image):   {t_sk / t_img:6.2f}x wall")

    # agreement on the shared measurements (pixel units)
    assert (rp["label"] == df["label"].to_numpy()).all()
    ps = 0.5
    area_same = np.array_equal(rp["area"], df["area_um2"].to_numpy() / ps**2)
    dc = np.hypot(rp["centroid-0"] - df["centroid_y_px"], rp["centroid-1"] - df["centroid_x_px"])
    feret = df["max_feret_um"].to_numpy() / ps - rp["feret_diameter_max"]
    solid = df["solidity"].to_numpy() - rp["solidity"]
    perim = df["perimeter_um"].to_numpy() / ps / rp["perimeter"] - 1
    print(f"agreement: area identical={area_same}, centroid max diff {dc.max():.2e} px, "
          f"max Feret diff median {np.median(feret):+.2f} px (p1 {np.percentile(feret, 1):+.2f}, "
          f"p99 {np.percentile(feret, 99):+.2f}), solidity diff median {np.median(solid):+.4f}, "
          f"perimeter ratio median {np.median(perim):+.2%}")


if __name__ == "__main__":
    main()
