"""Choose the post-processing thresholds of a model on validation data only (never the held-out images).

Validation data: the H&E training image data/real/he/cn_img01.tif (at its reference fiber
size) and synthetic validation sections of every stain (seed 777, a seed used neither in
training nor in the accuracy benchmark's test sets). The network runs once per image; the
watershed is then repeated for every threshold combination: foreground threshold for
brightfield RGB, for a fluorescence channel, and the seed threshold. Prints F1 at IoU 0.5,
the planted small angular fibers' recall and the median signed min-Feret error per
combination, brightfield and fluorescence apart, best first.

Run: .venv/bin/python benchmarks/bench_thresholds.py --model PATH [--n-synth 4]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FG = (0.3, 0.4, 0.5, 0.6, 0.7)
SEEDS = (0.2, 0.3, 0.4, 0.5)


def _cases(n_synth: int, size: int = 384):
    import tifffile
    from PIL import Image

    from histo.segment.targets import median_diameter_px
    from histo.synth import STAINS, generate_section

    img = tifffile.imread(ROOT / "data" / "real" / "he" / "cn_img01.tif")
    gt = np.asarray(Image.open(ROOT / "data" / "real" / "he" / "cn_img01_labels.png")).astype(np.int32)
    yield "cn_img01", img, gt, median_diameter_px(gt), np.zeros(0, np.int64)
    rng = np.random.default_rng(777)
    for stain in STAINS:
        for i in range(n_synth):
            d = float(np.exp(rng.uniform(np.log(20), np.log(56))))
            s = generate_section((size, size), stain=stain, fiber_diameter_px=d, rng=rng)
            yield f"synth-{stain}-{i}", np.asarray(s.image), s.labels.astype(np.int64), d, s.planted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n-synth", type=int, default=4, help="synthetic sections per stain")
    args = parser.parse_args(argv)
    from histo.segment import inference as inf
    from histo.segment.imagesource import image_source
    from histo.segment.scale import aligned_factor
    from histo.segment.segmenter import load_segmenter
    from histo.train.evaluate import match_labels

    net, config = load_segmenter(args.model)
    dev = next(net.parameters()).device
    tallies = {}  # (modality, fg, seed) -> [tp, fp, fn, planted found, planted total, feret errors]
    for name, img, gt, d, planted in _cases(args.n_synth):
        src, _ = image_source(img, None)
        stats = inf.image_stats(src, config.percentiles)
        factor, period = aligned_factor(config.canonical_diameter_px / d, inf.ALIGN_CANONICAL_PX)
        ys, xs = slice(0, src.shape_yx[0]), slice(0, src.shape_yx[1])
        maps = inf.canonical_maps(net, config, src, ys, xs, period, stats, dev, inf.precision_for("auto", dev))
        modality = "rgb" if src.is_rgb else "fluorescence"
        for fg, seed in itertools.product(FG, SEEDS):
            cfg = replace(config, fg_threshold=fg, fg_threshold_fluorescence=fg, seed_threshold=seed)
            pred = inf.region_labels(maps, cfg, period, src.shape_yx, src.is_rgb)
            r = match_labels(pred, gt, min_feret=name == "cn_img01")
            a = r.at(0.5)
            t = tallies.setdefault((modality, fg, seed), [0, 0, 0, 0, 0, []])
            t[0] += a["tp"]
            t[1] += a["fp"]
            t[2] += a["fn"]
            matched = set(r.pairs[:, 1].tolist()) if len(r.pairs) else set()
            t[3] += sum(int(p) in matched for p in planted)
            t[4] += len(planted)
            if r.min_feret is not None:
                t[5].append(r.min_feret.median_rel_error)
        print(f"{name} done", file=sys.stderr, flush=True)
    for modality in ("rgb", "fluorescence"):
        rows = []
        for (m, fg, seed), (tp, fp, fn, pf, pt, fe) in tallies.items():
            if m != modality:
                continue
            f1 = 2 * tp / max(1, 2 * tp + fp + fn)
            rows.append((f1, fg, seed, pf / max(1, pt), np.mean(fe) if fe else float("nan"), tp, fp, fn))
        rows.sort(key=lambda r: -r[0])
        print(f"\n{modality}: F1@0.5, planted recall, cn_img01 median signed min-Feret error (rgb only)")
        for f1, fg, seed, pr, fe, tp, fp, fn in rows[:12]:
            print(f"  fg {fg:.1f} seed {seed:.1f}: F1 {f1:.3f} (TP {tp} FP {fp} FN {fn}) planted recall {pr:.3f} "
                  f"min-Feret {fe:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
