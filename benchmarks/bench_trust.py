"""Trust on unseen slides (issue 10): what is not a fiber, the scale from the image, the QC verdict.

Prints every figure the issue asks for that this repository can measure:

1. **regen_section.jpg whole, default settings, no pixel size** (``histo score``): objects, counted,
   share of counted objects under 50 px², share of counted objects whose centre lies in the
   hand-drawn ``no_fiber`` regions (``data/real/annotations/regen_section.geojson``; the "eval" split,
   never trained on, and all of them), the scale used, the QC verdict, seconds.
2. **cn_img02 with a pixel size wrong by 2x both ways**: the image written as an ImageJ TIFF with
   0.34 µm/px (its fibers, ~141 px, are then ~48 µm), 0.68 and 0.17 µm/px, each scored by
   ``histo score``; F1 / precision / recall at IoU 0.5 against the reference mask, the scale
   warning in summary.json and cohort.csv.
3. **Held-out real images** (``cn_img02``; ``cn_img01`` and ``fs_rat`` are in the shipped model's
   training data and shown for reference): F1 / precision / recall at IoU 0.5 of the counted
   fibers, and the share of the objects counted as *small* that match a reference fiber.

Run: .venv/bin/python benchmarks/bench_trust.py [--skip-regen]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT / "data" / "real"
HISTO = [sys.executable, "-m", "histo.cli"]


def _score(inputs, out, *extra) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run([*HISTO, "score", *map(str, inputs), "-o", str(out), "--no-progress", *extra],
                       capture_output=True, text=True)
    return time.perf_counter() - t, p


def _counted(slide_dir: Path) -> tuple[pd.DataFrame, np.ndarray, dict]:
    fibers = pd.read_parquet(slide_dir / "fibers.parquet")
    labels = tifffile.imread(slide_dir / "labels.tif")
    summary = json.loads((slide_dir / "summary.json").read_text())
    return fibers, labels, summary


def regen(tmp: Path) -> dict:
    from histo.train.partial import read_partial

    seconds, p = _score([REAL / "he" / "regen_section.jpg"], tmp / "regen")
    fibers, labels, summary = _counted(tmp / "regen" / "regen_section")
    counted = fibers[fibers["counted"]]
    area = counted["area_px"].to_numpy() if "area_px" in counted else np.bincount(labels.ravel())[counted["label"]]
    out = {"seconds": round(seconds, 1), "objects": len(fibers), "counted": len(counted),
           "rejected": int(fibers.get("rejected", pd.Series(False, index=fibers.index)).sum()),
           "under_50px2": float((area < 50).mean()) if len(counted) else None,
           "scale": summary.get("segmentation", {}).get("scale"), "qc": summary.get("qc")}
    ann = REAL / "annotations" / "regen_section.geojson"
    cy = counted["centroid_y_px"].round().astype(int).clip(0, labels.shape[0] - 1).to_numpy()
    cx = counted["centroid_x_px"].round().astype(int).clip(0, labels.shape[1] - 1).to_numpy()
    for split in ("eval", "train"):
        fib, known = read_partial(ann, labels.shape, split=split)
        nofib = known & (fib == 0)
        out[f"counted_in_no_fiber_{split}"] = int(nofib[cy, cx].sum())
        out[f"counted_in_no_fiber_{split}_share"] = float(nofib[cy, cx].mean()) if len(cy) else None
        out[f"no_fiber_{split}_area_px"] = int(nofib.sum())
    return out


def wrong_pixel_size(tmp: Path) -> dict:
    from histo.train.evaluate import match_labels

    img = tifffile.imread(REAL / "he" / "cn_img02.tif")
    gt = np.asarray(Image.open(REAL / "he" / "cn_img02_labels.png")).astype(np.int32)
    res = {}
    for name, um in (("right", 0.34), ("2x_too_large", 0.68), ("2x_too_small", 0.17)):
        folder = tmp / f"px_{name}"
        folder.mkdir()
        tifffile.imwrite(folder / "cn_img02.tif", img, imagej=True, resolution=(1 / um, 1 / um),
                         metadata={"unit": "micron"})
        seconds, p = _score([folder / "cn_img02.tif"], tmp / f"out_{name}")
        fibers, labels, summary = _counted(tmp / f"out_{name}" / "cn_img02")
        r = match_labels(labels, gt, min_feret=False).at(0.5)
        cohort = pd.read_csv(tmp / f"out_{name}" / "cohort.csv")
        res[name] = {"pixel_size_um": um, "f1": r["f1"], "precision": r["precision"], "recall": r["recall"],
                     "scale_warning": (summary.get("segmentation") or {}).get("scale", {}).get("warning"),
                     "qc_status": summary.get("qc", {}).get("status"),
                     "cohort_qc_reasons": str(cohort.get("qc_reasons", pd.Series([""])).iloc[0]),
                     "cli_mentions_scale": "pixel size" in (p.stdout + p.stderr), "seconds": round(seconds, 2)}
    return res


def held_out(tmp: Path) -> dict:
    from histo.train.evaluate import match_labels

    out = {}
    cases = [("cn_img02 (held out)", REAL / "he" / "cn_img02.tif", REAL / "he" / "cn_img02_labels.png", []),
             ("cn_img01 (trained on)", REAL / "he" / "cn_img01.tif", REAL / "he" / "cn_img01_labels.png", [])]
    for name, path, gt_path, extra in cases:
        _, p = _score([path], tmp / f"ho_{path.stem}", *extra)
        fibers, labels, summary = _counted(tmp / f"ho_{path.stem}" / path.stem)
        gt = np.asarray(Image.open(gt_path)).astype(np.int32)
        keep = np.zeros(int(labels.max()) + 1, bool)
        keep[fibers.loc[~fibers.get("rejected", pd.Series(False, index=fibers.index)), "label"]] = True
        pred = np.where(keep[labels], labels, 0)
        r = match_labels(pred, gt, min_feret=False)
        a = r.at(0.5)
        matched = set(int(x) for x in r.pairs[:, 0]) if len(r.pairs) else set()
        small = fibers[fibers["counted"] & fibers["is_small"]]["label"].astype(int).tolist()
        out[name] = {"f1": a["f1"], "precision": a["precision"], "recall": a["recall"],
                     "n_small": len(small), "small_matching_reference": sum(s in matched for s in small),
                     "qc": summary.get("qc", {}).get("status")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-regen", action="store_true")
    a = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results["held_out"] = held_out(tmp)
        for k, v in results["held_out"].items():
            print(f"{k:<24} F1@0.5 {v['f1']:.3f} (P {v['precision']:.3f} R {v['recall']:.3f})  small counted "
                  f"{v['n_small']}, matching a reference fiber {v['small_matching_reference']}  QC {v['qc']}", flush=True)
        results["wrong_pixel_size"] = wrong_pixel_size(tmp)
        for k, v in results["wrong_pixel_size"].items():
            print(f"cn_img02 {k:<14} {v['pixel_size_um']:.2f} µm/px  F1 {v['f1']:.3f} (P {v['precision']:.3f} "
                  f"R {v['recall']:.3f})  QC {v['qc_status']}  warning: {v['scale_warning']}  "
                  f"cohort qc_reasons: {v['cohort_qc_reasons'][:80]!r}  CLI: {v['cli_mentions_scale']}", flush=True)
        if not a.skip_regen:
            results["regen"] = r = regen(tmp)
            print(f"regen_section whole: {r['objects']} objects, {r['counted']} counted, {r['rejected']} rejected, "
                  f"under 50 px² {r['under_50px2']:.2%}, counted in no-fiber eval regions "
                  f"{r['counted_in_no_fiber_eval']} ({r['counted_in_no_fiber_eval_share']:.2%}), in train regions "
                  f"{r['counted_in_no_fiber_train']} ({r['counted_in_no_fiber_train_share']:.2%}); "
                  f"{r['seconds']} s", flush=True)
            print(f"  scale {r['scale']}\n  QC {r['qc']}", flush=True)
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
