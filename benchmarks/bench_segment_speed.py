"""Speed and memory of the segmentation model against the targets of issue 4.

1. End to end (read, segment, measure) on a real image at the canonical scale: a 2048 x 2048
   crop of data/real/he/regen_section.jpg (fibers ~28 px, close to the canonical 32 px), run
   with the canonical pixel size so nothing is rescaled. Target <= 1 s per megapixel.
2. The same crop through Cellpose-3's CPnet (random weights, benchmarks/cellpose_timing.py) at
   its diameter, and the classical baseline: times and ratios from one run. Target >= 10x.
3. The H&E validation image cn_img02 (1 MP, fibers ~130 px, pixel size unknown so the model
   estimates the scale): histo end to end vs Cellpose at diameter 130.
4. Peak memory of segment_image on a 10,000 x 10,000 RGB image (a mosaic of the crop) in a
   fresh subprocess (ru_maxrss, includes the 300 MB input and the 400 MB uint32 labels).
   Target < 3 GB.

Run: .venv/bin/python benchmarks/bench_segment_speed.py [--skip-cellpose] [--skip-memory]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def end_to_end(path: Path, *, pixel_size_um=None, method="model", model=None, stain="he"):
    """Seconds for read + segment + measure, and the parts."""
    from histo.io import read_image
    from histo.morphometry import measure_fibers
    from histo.segment import segment_image

    t0 = time.perf_counter()
    image = read_image(path, pixel_size_um=pixel_size_um)
    t1 = time.perf_counter()
    labels = segment_image(image, stain=stain, method=method, model=model)
    t2 = time.perf_counter()
    table = measure_fibers(labels, image.pixels, pixel_size_um=image.pixel_size_um, stain=stain)
    t3 = time.perf_counter()
    mp = image.shape_yx[0] * image.shape_yx[1] / 1e6
    return {"read": t1 - t0, "segment": t2 - t1, "measure": t3 - t2, "total": t3 - t0,
            "megapixels": mp, "s_per_mp": (t3 - t0) / mp, "n_fibers": int(len(table))}


def _fmt(name, r):
    return (f"{name:<44} total {r['total']:6.2f} s = {r['s_per_mp']:.3f} s/MP over {r['megapixels']:.2f} MP "
            f"(read {r['read']:.2f}, segment {r['segment']:.2f}, measure {r['measure']:.2f}; "
            f"{r['n_fibers']} fibers)")


MEMORY_CHILD = r"""
import resource, sys, time, numpy as np, tifffile
from histo.segment import segment_image, load_segmenter
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip-cellpose", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from histo.segment import load_segmenter

    load_segmenter(args.model)  # load once, outside the timings
    canonical_px = load_segmenter(args.model)[1].canonical_pixel_size_um
    print(f"torch threads {torch.get_num_threads()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        crop = _crop_file(Path(tmp))
        end_to_end(crop, pixel_size_um=canonical_px, model=args.model)  # warm-up
        r = end_to_end(crop, pixel_size_um=canonical_px, model=args.model)
        print(_fmt(f"histo model, regen crop {CROP}px (canonical)", r), flush=True)
        results["model_canonical"] = r
        c = end_to_end(crop, pixel_size_um=canonical_px, method="classical")
        print(_fmt("classical baseline, same crop", c), flush=True)
        results["classical_canonical"] = c
        he = REAL / "he" / "cn_img02.tif"
        r2 = end_to_end(he, model=args.model)
        print(_fmt("histo model, cn_img02 (scale estimated)", r2), flush=True)
        results["model_cn_img02"] = r2
        print(f"target <= 1 s/MP at the canonical scale: {r['s_per_mp']:.3f} s/MP -> "
              f"{'met' if r['s_per_mp'] <= 1 else 'NOT met'}; model / classical time "
              f"{r['total'] / c['total']:.2f}x")
        if not args.skip_cellpose:
            cellpose_seconds = _cellpose()
            cp = cellpose_seconds(crop, diameter_px=28)
            cp2 = cellpose_seconds(he, diameter_px=130)
            results["cellpose_canonical"], results["cellpose_cn_img02"] = cp, cp2
            for name, ours, theirs in (("regen crop", r, cp), ("cn_img02", r2, cp2)):
                ratio = theirs["seconds"] / ours["total"]
                print(f"Cellpose-3 CPnet on {name}: {theirs['seconds']:.2f} s ({theirs['seconds_per_mp']:.2f} s/MP "
                      f"of its input) vs histo end to end {ours['total']:.2f} s -> {ratio:.1f}x faster "
                      f"(target >= 10x: {'met' if ratio >= 10 else 'NOT met'})", flush=True)
        if not args.skip_memory:
            peak, base, dt, n = memory_10k(crop, canonical_px)
            print(f"10,000 x 10,000 RGB: peak RSS {peak:.2f} GB (model loaded: {base:.2f} GB), "
                  f"{dt:.0f} s = {dt / 100:.2f} s/MP, {n} fibers; target < 3 GB: "
                  f"{'met' if peak < 3 else 'NOT met'}", flush=True)
            results["memory_10k"] = {"peak_gb": peak, "seconds": dt, "n_fibers": n}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
