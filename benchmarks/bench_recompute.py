"""Recompute after a label edit: re-measuring only the changed fibers vs measuring everything.

A 4 x 4 mosaic of the bundled H&E sample and its labels (4008 x 4008 px, ~850 fibers) is
measured once; then one fiber is erased and another split, and the table is brought up to
date twice: by ``histo.review.recompute.recompute_changed`` (window around the edit) and by a full
``histo.measure.morphometry.measure_fibers`` (the baseline). Both tables must be equal.

Run: .venv/bin/python benchmarks/bench_recompute.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from histo.io.image import ImageData, read_image
from histo.io.masks import read_labels
from histo.measure.morphometry import measure_fibers
from histo.review.recompute import changed_labels, recompute_changed
from histo.sample_data import demo_image_path, demo_labels_path

TILES = 4


def mosaic() -> tuple[ImageData, np.ndarray]:
    image = read_image(demo_image_path())
    labels = np.asarray(read_labels(demo_labels_path(), shape=image.shape_yx)).astype(np.uint32)
    top = int(labels.max())
    rows = []
    for i in range(TILES):
        row = []
        for j in range(TILES):
            k = i * TILES + j
            row.append(np.where(labels > 0, labels + k * top, 0).astype(np.uint32))
        rows.append(np.concatenate(row, axis=1))
    big = np.concatenate(rows, axis=0)
    pixels = np.tile(image.pixels, (TILES, TILES, 1))
    return ImageData(pixels=pixels, axes="YXS", pixel_size_um=0.5), big


def best_of(n: int, fn):
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    image, labels = mosaic()
    kw = {"pixel_size_um": 0.5, "stain": "he"}
    t_first, before = best_of(1, lambda: measure_fibers(labels, image.pixels, **kw))
    edited = labels.copy()
    ids = before.loc[~before["is_edge"]].sort_values("area_um2")["label"].to_numpy()
    edited[edited == ids[-1]] = 0  # erase the largest inner fiber
    ys, xs = np.nonzero(edited == ids[-2])  # split the next one in two
    edited[(edited == ids[-2]) & (np.arange(edited.shape[0])[:, None] > int(ys.mean()))] = labels.max() + 1
    n_changed = len(changed_labels(labels, edited))

    t_full, full = best_of(3, lambda: measure_fibers(edited, image.pixels, **kw))
    t_fast, fast = best_of(3, lambda: recompute_changed(labels, edited, before, image, **kw))
    pd.testing.assert_frame_equal(fast, full, check_exact=False, rtol=1e-6, atol=1e-9)
    print(f"labels {labels.shape[0]} x {labels.shape[1]} px, {len(before)} fibers, {n_changed} changed")
    print(f"full measure_fibers (baseline): {t_full:.3f} s   (first measurement {t_first:.3f} s)")
    print(f"recompute_changed:              {t_fast:.3f} s")
    print(f"speed-up: {t_full / t_fast:.1f}x, tables equal")


if __name__ == "__main__":
    main()
