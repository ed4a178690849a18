"""Speed and memory of the segmentation model against the targets of issue 4 (one run, all ratios).

1. The H&E validation image data/real/he/cn_img02.tif (1 MP, fibers ~140 px): histo end to end
   (read, segment, measure) with the fiber diameter given (the reference mask's median
   equivalent diameter, 141 px) and with it estimated by the model; Cellpose-3's CPnet
   (random weights, benchmarks/cellpose_timing.py) given the same diameter, as Cellpose users
   do; the classical baseline. Target: histo >= 10x faster than Cellpose.
2. A 2048 x 2048 crop of data/real/he/regen_section.jpg at the canonical scale (fibers ~28 px,
   nothing rescaled): histo end to end (target <= 1 s per megapixel), Cellpose at diameter 28,
   the classical baseline.
3. Peak memory of segment_image on a 10,000 x 10,000 RGB image (a mosaic of the crop) in a
   fresh subprocess (ru_maxrss, includes the 300 MB input and the 400 MB uint32 labels).
   Target < 3 GB.

Every time is the median of ``--repeats`` runs after one warm-up run on the same image (the
Cellpose harness does the same), all in this one run, so the ratios compare like with like
on a shared machine. OMP_WAIT_POLICY is PASSIVE for both (histo.segment.net sets it before torch
loads; the Cellpose subprocess inherits it), so neither spins on a busy CPU.

Run: .venv/bin/python benchmarks/bench_segment_speed.py [--skip-cellpose] [--skip-memory]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"
CROP = 2048


def _cellpose():
    spec = importlib.util.spec_from_file_location("cellpose_timing", ROOT / "benchmarks" / "cellpose_timing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.cellpose_seconds


def _crop_file(tmp: Path) -> Path:
    import tifffile
    from PIL import Image

    img = np.asarray(Image.open(REAL / "he" / "regen_section.jpg").convert("RGB"))
    h, w = img.shape[:2]
    y0, x0 = (h - CROP) // 2, (w - CROP) // 2
    path = tmp / "regen_crop.tif"
    tifffile.imwrite(path, np.ascontiguousarray(img[y0:y0 + CROP, x0:x0 + CROP]))
    return path


def _reference_diameter(stem: str) -> float:
    from PIL import Image

    from histo.segment.targets import median_diameter_px

    return median_diameter_px(np.asarray(Image.open(REAL / "he" / f"{stem}_labels.png")).astype(np.int32))


def end_to_end(path: Path, *, pixel_size_um=None, fiber_diameter_px=None, method="model", model=None,
               stain="he", repeats=3):
    """Median seconds for read + segment + measure (and its parts) over ``repeats`` runs after a warm-up."""
    from histo.io.image import read_image
    from histo.measure.morphometry import measure_fibers
    from histo.segment.segmenter import segment_image

    runs = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        image = read_image(path, pixel_size_um=pixel_size_um)
        t1 = time.perf_counter()
        labels = segment_image(image, stain=stain, method=method, model=model, fiber_diameter_px=fiber_diameter_px)
        t2 = time.perf_counter()
        table = measure_fibers(labels, image.pixels, pixel_size_um=image.pixel_size_um, stain=stain)
        t3 = time.perf_counter()
        if i:  # the first run warms up (imports, thread pools, oneDNN kernels for these shapes)
            runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    read, seg, meas, total = (statistics.median(r[k] for r in runs) for k in range(4))
    mp = image.shape_yx[0] * image.shape_yx[1] / 1e6
    return {"read": read, "segment": seg, "measure": meas, "total": total, "runs": [r[3] for r in runs],
            "megapixels": mp, "s_per_mp": total / mp, "n_fibers": int(len(table))}


def _fmt(name, r):
    return (f"{name:<48} total {r['total']:6.3f} s = {r['s_per_mp']:.3f} s/MP over {r['megapixels']:.2f} MP "
            f"(read {r['read']:.3f}, segment {r['segment']:.3f}, measure {r['measure']:.3f}; "
            f"{r['n_fibers']} fibers)")


MEMORY_CHILD = r"""
import resource, sys, time, numpy as np, tifffile
from histo.segment.segmenter import segment_image, load_segmenter
crop = tifffile.imread(sys.argv[1])
side = 10000
reps = -(-side // crop.shape[0])
row = np.concatenate([crop if i % 2 == 0 else crop[:, ::-1] for i in range(reps)], 1)[:, :side]
image = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(reps)], 0)[:side]
del row, crop
load_segmenter(None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
out = np.zeros((side, side), np.uint32)
t = time.perf_counter()
labels = segment_image(image, pixel_size_um=float(sys.argv[2]), out=out)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(f"{peak:.3f} {base:.3f} {dt:.1f} {int(labels.max())}")
"""


def memory_10k(crop_path: Path, pixel_size_um: float):
    done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(crop_path), str(pixel_size_um)],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    peak, base, dt, n = done.stdout.split()[-4:]
    return float(peak), float(base), float(dt), int(n)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cellpose", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-crop", action="store_true", help="only the cn_img02 comparison")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from histo.segment.segmenter import load_segmenter, model_info  # sets OMP_WAIT_POLICY before torch loads

    # isort: split
    import torch

    load_segmenter(args.model)  # load once, outside the timings
    canonical_px = load_segmenter(args.model)[1].canonical_pixel_size_um
    print(f"model {model_info('model', args.model)}; torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()[0]:.2f}, "
          f"{args.repeats} timed runs each (median)", flush=True)
    results = {}
    rep = args.repeats
    cellpose_seconds = None if args.skip_cellpose else _cellpose()

    # 1. cn_img02: large fibers, the image Cellpose shrinks most
    he = REAL / "he" / "cn_img02.tif"
    d_ref = _reference_diameter("cn_img02")
    known = end_to_end(he, fiber_diameter_px=d_ref, model=args.model, repeats=rep)
    print(_fmt(f"histo model, cn_img02, diameter given ({d_ref:.0f} px)", known), flush=True)
    est = end_to_end(he, model=args.model, repeats=rep)
    print(_fmt("histo model, cn_img02, diameter estimated", est), flush=True)
    cls = end_to_end(he, method="classical", fiber_diameter_px=d_ref, repeats=rep)
    print(_fmt("classical baseline, cn_img02, diameter given", cls), flush=True)
    results.update(cn_img02_known=known, cn_img02_estimated=est, cn_img02_classical=cls)
    print(f"classical / histo (diameter given): {cls['total'] / known['total']:.1f}x", flush=True)
    if cellpose_seconds:
        cp = cellpose_seconds(he, diameter_px=d_ref, repeats=rep)
        results["cellpose_cn_img02"] = cp
        for name, ours in (("diameter given", known), ("diameter estimated", est)):
            ratio = cp["seconds"] / ours["total"]
            print(f"Cellpose-3 CPnet on cn_img02 (diameter {d_ref:.0f}): {cp['seconds']:.3f} s (CPU {cp['cpu_seconds']:.2f} s, "
                  f"load {cp['load_average_1min']:.1f}) vs histo end to end, {name}, {ours['total']:.3f} s -> "
                  f"{ratio:.1f}x faster (target >= 10x: {_verdict(ratio >= 10)})", flush=True)

    # 2. the canonical scale: a dense 2048^2 crop
    with tempfile.TemporaryDirectory() as tmp:
        crop = _crop_file(Path(tmp))
        if not args.skip_crop:
            r = end_to_end(crop, pixel_size_um=canonical_px, model=args.model, repeats=rep)
            print(_fmt(f"histo model, regen crop {CROP}px (canonical)", r), flush=True)
            c = end_to_end(crop, pixel_size_um=canonical_px, method="classical", repeats=max(1, rep // 2))
            print(_fmt("classical baseline, same crop", c), flush=True)
            results.update(model_canonical=r, classical_canonical=c)
            print(f"target <= 1 s/MP at the canonical scale: {r['s_per_mp']:.3f} s/MP -> {_verdict(r['s_per_mp'] <= 1)}; "
                  f"classical / histo {c['total'] / r['total']:.1f}x", flush=True)
            if cellpose_seconds:
                cp = cellpose_seconds(crop, diameter_px=28, repeats=1)
                results["cellpose_canonical"] = cp
                ratio = cp["seconds"] / r["total"]
                print(f"Cellpose-3 CPnet on the crop (diameter 28): {cp['seconds']:.2f} s vs histo {r['total']:.2f} s -> "
                      f"{ratio:.1f}x faster (target >= 10x: {_verdict(ratio >= 10)})", flush=True)
        if not args.skip_memory:
            peak, base, dt, n = memory_10k(crop, canonical_px)
            print(f"10,000 x 10,000 RGB: peak RSS {peak:.2f} GB (model loaded: {base:.2f} GB), "
                  f"{dt:.0f} s = {dt / 100:.2f} s/MP, {n} fibers; target < 3 GB: {_verdict(peak < 3)}", flush=True)
            results["memory_10k"] = {"peak_gb": peak, "seconds": dt, "n_fibers": n}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
