"""Accuracy and speed of the classical baseline (histo.segment.classical) on the real references.

Prints, per image: F1 at IoU 0.5 (all objects and edge objects ignored), mean matched IoU,
the min-Feret median relative error, seconds and seconds per megapixel of the segmentation,
and the same for a naive baseline measured in the same run (Otsu threshold of the same
interior map + distance-transform watershed, the 20-line script the classical pipeline must
beat), with the ratios. ``--cellpose`` also times a Cellpose-3 network on each image
(benchmarks/cellpose_timing.py, a throwaway venv) and prints the speed ratio.

    .venv/bin/python benchmarks/bench_classical.py [--repeats 3] [--cellpose] [--large] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from histo.segment.classical import estimate_fiber_diameter, interior_map, segment_classical
from histo.train.evaluate import match_labels

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"

# (name, image, reference, stain, channel, fiber diameter in px or None = estimated)
CASES = [
    ("cn_img01 H&E d=100", "he/cn_img01.tif", "he/cn_img01_labels.png", "he", None, 100.0),
    ("cn_img01 H&E d=est", "he/cn_img01.tif", "he/cn_img01_labels.png", "he", None, None),
    ("cn_img02 H&E d=100", "he/cn_img02.tif", "he/cn_img02_labels.png", "he", None, 100.0),
    ("cn_img02 H&E d=est", "he/cn_img02.tif", "he/cn_img02_labels.png", "he", None, None),
    ("fs_rat IF ch3 d=est", "if/fs_rat.tif", "if/fs_rat_labels.tif", "if", 3, None),
]


def _read_labels(path: Path) -> np.ndarray:
    return tifffile.imread(path) if path.suffix == ".tif" else np.array(Image.open(path))


def naive_baseline(image, *, stain, channel, fiber_diameter_px) -> np.ndarray:
    """Otsu on the interior map, distance-transform peaks as seeds, watershed."""
    f = interior_map(image, stain=stain, channel=channel)
    fg = f > threshold_otsu(f)
    dist = ndi.distance_transform_edt(fg)
    d = fiber_diameter_px or estimate_fiber_diameter(image, stain=stain, channel=channel)
    peaks = peak_local_max(dist, min_distance=max(1, int(d / 4)), labels=ndi.label(fg)[0])
    seeds = np.zeros(fg.shape, np.int32)
    seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-dist, seeds, mask=fg)


def _timed(fn, repeats: int):
    """(result, median wall seconds, median process CPU seconds): on a shared machine the CPU
    time is the steadier figure."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return out, statistics.median(times), statistics.median(cpu)


def _cellpose_timing():
    path = Path(__file__).with_name("cellpose_timing.py")
    spec = importlib.util.spec_from_file_location("cellpose_timing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(repeats: int = 3, cellpose: bool = False) -> list[dict]:
    rows = []
    cp = _cellpose_timing() if cellpose else None
    for name, image_rel, gt_rel, stain, channel, diameter in CASES:
        t0 = time.perf_counter()
        image = tifffile.imread(REAL / image_rel)
        read_s = time.perf_counter() - t0
        gt = _read_labels(REAL / gt_rel)
        mp = gt.size / 1e6
        kw = dict(stain=stain, channel=channel, fiber_diameter_px=diameter)
        labels, seg_s, seg_cpu = _timed(lambda: segment_classical(image, **kw), repeats)
        naive, naive_s, naive_cpu = _timed(lambda: naive_baseline(image, **kw), repeats)
        res = match_labels(labels, gt, thresholds=[0.5])
        res_edge = match_labels(labels, gt, thresholds=[0.5], exclude_edge=True, min_feret=False)
        res_naive = match_labels(naive, gt, thresholds=[0.5], min_feret=False)
        row = {
            "case": name, "megapixels": mp, "n_reference": res.n_gt, "n_found": int(labels.max()),
            "f1_iou50": res.f1[0], "f1_iou50_no_edge": res_edge.f1[0],
            "precision": res.precision[0], "recall": res.recall[0],
            "mean_matched_iou": res.mean_matched_iou,
            "min_feret_median_rel_error": res.min_feret.median_rel_error if res.min_feret else None,
            "read_seconds": read_s, "seconds": seg_s, "seconds_per_mp": seg_s / mp,
            "cpu_seconds": seg_cpu, "cpu_seconds_per_mp": seg_cpu / mp,
            "naive_f1_iou50": res_naive.f1[0], "naive_seconds": naive_s, "naive_cpu_seconds": naive_cpu,
        }
        row["diameter_px"] = diameter or estimate_fiber_diameter(image, stain=stain, channel=channel)
        if diameter is None:
            row["case"] = name.replace("d=est", f"d~{row['diameter_px']:.0f}")
        if cp is not None:
            d_cp = row["diameter_px"]  # the same fiber size, given or estimated
            timing = cp.cellpose_seconds(REAL / image_rel, d_cp, channel)
            row["cellpose_seconds"] = timing["seconds"]
            row["cellpose_cpu_seconds"] = timing["cpu_seconds"]
            row["cellpose_diameter_px"] = d_cp
        rows.append(row)
    return rows


def run_large(repeats: int = 1, cellpose: bool = False) -> dict:
    """Timing only (no reference): the central 2048 x 2048 crop of he/regen_section.jpg."""
    rgb = np.asarray(Image.open(REAL / "he" / "regen_section.jpg").convert("RGB"))
    y, x = (rgb.shape[0] - 2048) // 2, (rgb.shape[1] - 2048) // 2
    crop = np.ascontiguousarray(rgb[y:y + 2048, x:x + 2048])
    d = estimate_fiber_diameter(crop, stain="he")
    labels, seg_s, seg_cpu = _timed(lambda: segment_classical(crop, stain="he", fiber_diameter_px=d), repeats)
    row = {"case": f"regen 2048^2 H&E d~{d:.0f}", "megapixels": crop.size / 3e6, "diameter_px": d,
           "n_found": int(labels.max()), "seconds": seg_s, "cpu_seconds": seg_cpu}
    if cellpose:
        timing = _cellpose_timing().cellpose_seconds(REAL / "he" / "regen_section.jpg", d, None, crop=2048)
        row["cellpose_seconds"], row["cellpose_cpu_seconds"] = timing["seconds"], timing["cpu_seconds"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cellpose", action="store_true", help="also time Cellpose-3 (throwaway venv)")
    parser.add_argument("--large", action="store_true",
                        help="also time the 2048 x 2048 crop of he/regen_section.jpg (no reference)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    print(f"classical baseline, median of {args.repeats} runs; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    rows = run(args.repeats, args.cellpose)
    head = (f"{'case (d px)':<21}{'MP':>5}{'ref':>4}{'found':>6}{'F1@.5':>6}{'noedge':>7}{'mIoU':>6}"
            f"{'Feret':>7}{'s':>6}{'cpu s':>6}{'cpu/MP':>7} | {'naive F1':>8}{'cpu s':>6}"
            f"{'F1 gain':>8}{'cpu x':>6}")
    print(head)
    for r in rows:
        feret = r["min_feret_median_rel_error"]
        print(f"{r['case'][:21]:<21}{r['megapixels']:5.2f}{r['n_reference']:4d}{r['n_found']:6d}"
              f"{r['f1_iou50']:6.3f}{r['f1_iou50_no_edge']:7.3f}{r['mean_matched_iou']:6.3f}"
              f"{feret:+7.1%}{r['seconds']:6.2f}{r['cpu_seconds']:6.2f}{r['cpu_seconds_per_mp']:7.2f} | "
              f"{r['naive_f1_iou50']:8.3f}{r['naive_cpu_seconds']:6.2f}"
              f"{r['f1_iou50'] - r['naive_f1_iou50']:+8.3f}{r['cpu_seconds'] / r['naive_cpu_seconds']:6.1f}")
        if "cellpose_seconds" in r:
            print(f"{'':<21}Cellpose-3 CPnet (d={r['cellpose_diameter_px']:.0f}): "
                  f"{r['cellpose_seconds']:.2f} s "
                  f"({r['cellpose_cpu_seconds']:.2f} cpu s) -> classical is "
                  f"{r['cellpose_seconds'] / r['seconds']:.1f}x faster in wall time, "
                  f"{r['cellpose_cpu_seconds'] / r['cpu_seconds']:.1f}x in cpu time")
    print("s = wall seconds, cpu s = process CPU seconds (all threads); cpu x = classical / naive cpu time")
    if args.large:
        big = run_large(1, args.cellpose)
        rows.append(big)
        print(f"{big['case']}: {big['n_found']} objects, {big['seconds']:.2f} s, "
              f"{big['cpu_seconds']:.2f} cpu s "
              f"({big['cpu_seconds'] / big['megapixels']:.2f} cpu s/MP)")
        if "cellpose_seconds" in big:
            print(f"  Cellpose-3 CPnet (d={big['diameter_px']:.0f}): {big['cellpose_seconds']:.1f} s "
                  f"({big['cellpose_cpu_seconds']:.1f} cpu s) -> classical is "
                  f"{big['cellpose_seconds'] / big['seconds']:.1f}x faster in wall time, "
                  f"{big['cellpose_cpu_seconds'] / big['cpu_seconds']:.1f}x in cpu time")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
