"""Membrane-IF accuracy by 4-fold cross-validation on data/real/if/fs_rat.tif (channel 3).

The one real annotated fluorescence image is split into its four quadrants. For each fold the
base model (trained without any real fluorescence) is fine-tuned on three quadrants (plus the
usual synthetic / H&E mix) and tested on the fourth, which it never saw: the held-out
quadrant is segmented on its own (0.9224 µm/px) and compared with the reference cut to the
same quadrant (cut edge fibers included, as in the reference). The folds are pooled: F1 from
the summed TP / FP / FN, the min-Feret error as the median over every matched fiber of all
folds. The base model on the same quadrants is printed for comparison. With ``--final`` the
same recipe is run once more on all four quadrants: that is the shipped model, and these
cross-validated figures are its IF metric (the card says so).

Run (about 8 min per fold on the 2-core CPU):
  .venv/bin/python benchmarks/bench_if_crossval.py --base models/fibernet_v2_base --out /tmp/ifcv \
      [--final models/fibernet_v2] [--folds 0 1 2 3] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IF_IMAGE = ROOT / "data" / "real" / "if" / "fs_rat.tif"
IF_LABELS = ROOT / "data" / "real" / "if" / "fs_rat_labels.tif"
HE_TRAIN = ROOT / "data" / "real" / "he" / "cn_img01.tif"
PIXEL_SIZE_UM = 0.9224
CHANNEL = 3


def quadrants(shape):
    h, w = shape
    ys, xs = (slice(0, h // 2), slice(h // 2, h)), (slice(0, w // 2), slice(w // 2, w))
    return [(y, x) for y in ys for x in xs]


def write_pairs(folder: Path, plane, labels, keep) -> None:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for k, (ys, xs) in enumerate(quadrants(plane.shape)):
        if k in keep:
            tifffile.imwrite(folder / f"fs_rat_q{k}.tif", np.ascontiguousarray(plane[ys, xs]))
            tifffile.imwrite(folder / f"fs_rat_q{k}_labels.tif", np.ascontiguousarray(labels[ys, xs]))


def fine_tune(base: str, data: Path, out: Path, steps: int, seed: int) -> Path:
    from histo.train.loop import TrainSettings, train

    settings = TrainSettings(steps=steps, lr=1e-3, seed=seed, init_from=str(base), real_fraction=0.4,
                             membrane_fraction=0.15, synth_pool=100, checkpoint_every=steps)
    return train(settings, out, data_dirs=[data, HE_TRAIN])


def _pad_real_borders(labels, k):
    """Pad the quadrant's sides that are the image's own borders by 1 px (cut sides stay at the edge)."""
    top, left = k // 2 == 0, k % 2 == 0
    return np.pad(labels, ((int(top), int(not top)), (int(left), int(not left))))


def score(pred, gt, k):
    """Counts at IoU 0.5 three ways, and the signed relative min-Feret error of every matched pair.

    ``all``: every object, cut ones included (the quadrant has four times the cut border of
    the whole image); ``cut``: objects cut by the quadrant's inner sides left out (the
    reference includes fibers cut by the image border, as the whole-image figure does);
    ``ne``: every object touching any side left out.
    """
    from histo.measure.morphometry import measure_fibers
    from histo.train.evaluate import match_labels

    r = match_labels(pred, gt, min_feret=False)
    a = r.at(0.5)
    rel = []
    if len(r.pairs):
        fp = measure_fibers(pred, pixel_size_um=PIXEL_SIZE_UM).set_index("label")["min_feret_um"]
        fg = measure_fibers(gt, pixel_size_um=PIXEL_SIZE_UM).set_index("label")["min_feret_um"]
        for p, g in r.pairs:
            rel.append((fp[int(p)] - fg[int(g)]) / fg[int(g)])
    c = match_labels(_pad_real_borders(pred, k), _pad_real_borders(gt, k), exclude_edge=True, min_feret=False).at(0.5)
    e = match_labels(pred, gt, exclude_edge=True, min_feret=False).at(0.5)
    return {"tp": a["tp"], "fp": a["fp"], "fn": a["fn"], "rel": rel,
            "tp_cut": c["tp"], "fp_cut": c["fp"], "fn_cut": c["fn"],
            "tp_ne": e["tp"], "fp_ne": e["fp"], "fn_ne": e["fn"]}


def _f1(tp, fp, fn):
    return 2 * tp / max(1, 2 * tp + fp + fn)


def _line(name, s):
    rel = np.asarray(s["rel"])
    fe = f"{np.median(np.abs(rel)):.1%} (signed {np.median(rel):+.1%}, {len(rel)} fibers)" if len(rel) else "n/a"
    cut = (s["tp_cut"], s["fp_cut"], s["fn_cut"])
    return (f"{name:<28} all objects: TP {s['tp']:3d} FP {s['fp']:3d} FN {s['fn']:3d} F1@0.5 "
            f"{_f1(s['tp'], s['fp'], s['fn']):.3f} (P {s['tp'] / max(1, s['tp'] + s['fp']):.3f} "
            f"R {s['tp'] / max(1, s['tp'] + s['fn']):.3f}) | quadrant cuts excluded: TP {cut[0]} FP {cut[1]} "
            f"FN {cut[2]} F1 {_f1(*cut):.3f} | no edge F1 {_f1(s['tp_ne'], s['fp_ne'], s['fn_ne']):.3f} | "
            f"min-Feret err {fe}")


def _pool(scores):
    out = {k: sum(s[k] for s in scores) for k in ("tp", "fp", "fn", "tp_cut", "fp_cut", "fn_cut", "tp_ne", "fp_ne", "fn_ne")}
    out["rel"] = [v for s in scores for v in s["rel"]]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="model to fine-tune (trained without real IF)")
    parser.add_argument("--out", type=Path, required=True, help="working folder for the fold models")
    parser.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--final", type=Path, default=None, help="also fine-tune on all four quadrants, save here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import tifffile

    from histo.segment.segmenter import segment_image  # sets OMP_WAIT_POLICY before torch loads

    # isort: split
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    plane = tifffile.imread(IF_IMAGE)[CHANNEL]
    labels = tifffile.imread(IF_LABELS).astype(np.int32)
    quads = quadrants(plane.shape)
    base_scores, fold_scores, record = [], [], {"folds": {}}
    for k in args.folds:
        ys, xs = quads[k]
        test_img, test_gt = np.ascontiguousarray(plane[ys, xs]), np.ascontiguousarray(labels[ys, xs])
        base_pred = segment_image(test_img, pixel_size_um=PIXEL_SIZE_UM, model=args.base)
        sb = score(base_pred, test_gt, k)
        print(_line(f"fold {k} base model", sb), flush=True)
        folder = args.out / f"fold{k}"
        write_pairs(folder / "data", plane, labels, keep={0, 1, 2, 3} - {k})
        t0 = time.perf_counter()
        model = folder / "model"
        if not Path(f"{model}.safetensors").exists():
            fine_tune(args.base, folder / "data", model, args.steps, args.seed)
        minutes = (time.perf_counter() - t0) / 60
        pred = segment_image(test_img, pixel_size_um=PIXEL_SIZE_UM, model=str(model))
        s = score(pred, test_gt, k)
        print(_line(f"fold {k} fine-tuned ({minutes:.0f} min)", s), flush=True)
        base_scores.append(sb)
        fold_scores.append(s)
        record["folds"][k] = {"base": sb, "fine_tuned": s, "minutes": minutes}
    pb, pf = _pool(base_scores), _pool(fold_scores)
    print(_line("pooled base model", pb))
    print(_line("pooled cross-validated", pf))
    record["pooled_base"], record["pooled_cv"] = pb, pf
    if args.final:
        all_data = args.out / "all" / "data"
        write_pairs(all_data, plane, labels, keep={0, 1, 2, 3})
        t0 = time.perf_counter()
        fine_tune(args.base, all_data, args.final, args.steps, args.seed)
        print(f"final model (all four quadrants): {args.final} ({(time.perf_counter() - t0) / 60:.0f} min)")
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
