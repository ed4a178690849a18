"""Calibrate the per-object fiber score of a model on validation data only, and store it with the model.

Validation data (never the held-out test images: not cn_img02, not the synthetic test seed
20261125, not the "eval" split of the hand-drawn annotations):

* synthetic validation sections of every stain (seed 777), with their exact truth: an object
  matching a true fiber at IoU >= 0.5 is a fiber, any other object is not; planted small
  angular fibers are tracked apart (the score must keep them);
* the H&E training image data/real/he/cn_img01.tif with its reference mask;
* the "train" split of the hand-drawn partial annotations in data/real/annotations/: an object
  with at least half of its area in a "no_fiber" region is not a fiber, one matching a drawn
  fiber is; other objects are not used.

The model segments each image (at the known fiber size); every object gets its evidence features
(:mod:`histo.segment.evidence`); a logistic regression (each source weighted equally) gives the
weights; the threshold is the highest one that keeps >= 99 % of the validation fibers and
>= 98 % of the planted small angular ones. Prints precision / recall / F1 of the objects before
and after, per source; ``--write`` stores ``fiber_score`` in the model's JSON.

Run: .venv/bin/python benchmarks/calibrate_fiber_score.py --model fibernet_v3 [--n-synth 4] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT / "data" / "real"
KEEP_FIBERS = 0.99
KEEP_PLANTED = 0.98


DIAMETER_RATIOS: dict[str, list[float]] = {"synthetic": [], "real": []}


def _objects(img, model, ref_diameter_px=None, **kw):
    """Segment at the known size; record reference diameter / typical diameter of the true fibers found."""
    from histo.segment.segmenter import segment

    seg = segment(img, model=model, check_scale=False, **kw)
    if ref_diameter_px:
        seg.objects.attrs["ref_d"] = ref_diameter_px
    return np.asarray(seg.labels), seg.objects


def _truth_full(labels, gt):
    """1 for objects matching a reference fiber (IoU >= 0.5), else 0; and the matched gt label."""
    from histo.train.evaluate import match_labels

    r = match_labels(labels, gt, min_feret=False)
    matched = {int(p): int(g) for p, g in r.pairs} if len(r.pairs) else {}
    return matched


def synthetic_cases(n: int, size: int = 384):
    from histo.synth import STAINS, generate_section

    rng = np.random.default_rng(777)
    for stain in STAINS:
        for _ in range(n):
            d = float(np.exp(rng.uniform(np.log(20), np.log(56))))
            s = generate_section((size, size), stain=stain, fiber_diameter_px=d, rng=rng)
            yield f"synth-{stain}", np.asarray(s.image), np.asarray(s.labels).astype(np.int64), d, set(map(int, s.planted))


def collect(model, n_synth: int):
    from histo.segment.evidence import FEATURES
    from histo.segment.targets import median_diameter_px

    rows = []  # (source, features..., y, planted)

    from histo.segment.inference import typical_diameter_px

    def add(source, objects, y, planted):
        ref_d = objects.attrs.get("ref_d")
        fib = objects["area_px"].to_numpy()[np.asarray(y, bool)] if len(y) else np.zeros(0)
        if ref_d and fib.size >= 3:
            DIAMETER_RATIOS["synthetic" if source.startswith("synth") else "real"].append(
                ref_d / typical_diameter_px(fib, weighted=True))
        for (_, o), yy, pp in zip(objects.iterrows(), y, planted):
            rows.append((source, *[float(o[k]) for k in FEATURES], float(o["fiber_score"]), yy, pp))

    for source, img, gt, d, planted in synthetic_cases(n_synth):
        lab, obj = _objects(img, model, ref_diameter_px=median_diameter_px(gt.astype(np.int32)), fiber_diameter_px=d)
        m = _truth_full(lab, gt)
        y = [1 if int(l) in m else 0 for l in obj["label"]]
        p = [1 if m.get(int(l)) in planted else 0 for l in obj["label"]]
        add(source, obj, y, p)
    img = tifffile.imread(REAL / "he" / "cn_img01.tif")
    gt = np.asarray(Image.open(REAL / "he" / "cn_img01_labels.png")).astype(np.int64)
    lab, obj = _objects(img, model, ref_diameter_px=median_diameter_px(gt.astype(np.int32)),
                        fiber_diameter_px=median_diameter_px(gt))
    m = _truth_full(lab, gt)
    add("real-cn_img01", obj, [1 if int(l) in m else 0 for l in obj["label"]], [0] * len(obj))
    for source, img, fib, nofib in partial_cases():
        d = median_diameter_px(fib) if fib.max() else None
        lab, obj = _objects(img, model, fiber_diameter_px=d)
        m = _truth_full(lab, fib)
        n = int(lab.max()) + 1
        area = np.bincount(lab.ravel(), minlength=n)
        neg = np.bincount(lab.ravel(), weights=nofib.ravel(), minlength=n) >= 0.5 * np.maximum(area, 1)
        sel = [i for i, l in enumerate(obj["label"]) if int(l) in m or neg[int(l)]]
        sub = obj.iloc[sel]
        add(source, sub, [1 if int(l) in m else 0 for l in sub["label"]], [0] * len(sub))
    return rows


def partial_cases(split: str = "train"):
    """(name, image, fiber labels, no-fiber mask) of the hand-drawn annotations of ``split``."""
    try:
        from histo.train.partial import read_partial
    except ImportError:
        return
    for ann in sorted((REAL / "annotations").glob("*.geojson")):
        hits = [p for p in REAL.rglob(f"{ann.stem}.*") if p.suffix.lower() in (".tif", ".tiff", ".jpg", ".png")
                and "annotations" not in p.parts]
        if not hits:
            continue
        path = hits[0]
        img = tifffile.imread(path) if path.suffix.lower() in (".tif", ".tiff") else np.asarray(Image.open(path))
        img = img[..., :3] if img.ndim == 3 else img
        fib, known = read_partial(ann, img.shape[:2], split=split)
        if not known.any():
            continue
        yield f"partial-{ann.stem}", img, fib.astype(np.int64), known & (fib == 0)


def prf(y, keep):
    y, keep = np.asarray(y, bool), np.asarray(keep, bool)
    tp, fp, fn = int((y & keep).sum()), int((~y & keep).sum()), int((y & ~keep).sum())
    p = tp / max(1, tp + fp)
    r = tp / max(1, tp + fn)
    return p, r, 2 * p * r / max(1e-9, p + r)


def main(argv=None) -> int:
    from histo.segment.evidence import FEATURES, fiber_score, fit_logistic
    from histo.segment.net import _model_paths
    from histo.segment.segmenter import load_segmenter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--n-synth", type=int, default=4)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    model = load_segmenter(a.model)
    rows = collect(model, a.n_synth)
    src = np.array([r[0] for r in rows])
    x = np.array([r[1:1 + len(FEATURES)] for r in rows], np.float64)
    y = np.array([r[-2] for r in rows], np.float64)
    planted = np.array([r[-1] for r in rows], bool)
    groups = sorted(set(s.split("-")[0] + ("-" + s.split("-")[1] if s.startswith("partial") else "") for s in src))
    # each source (synthetic, each real image) weighs the same; within it, both classes too
    sw = np.ones(len(y))
    for key in set(src):
        for cls in (0, 1):
            m = (src == key) & (y == cls)
            if m.any():
                sw[m] = 1.0 / m.sum()
    sw *= len(y) / sw.sum()
    w = fit_logistic(x, y, sample_weight=sw)
    feats = {k: x[:, i] for i, k in enumerate(FEATURES)}
    score = fiber_score(feats, w)
    ts = np.linspace(0.01, 0.9, 90)
    best = 0.01
    for t in ts:
        keep = score >= t
        if keep[y == 1].mean() >= KEEP_FIBERS and (not planted.any() or keep[planted].mean() >= KEEP_PLANTED):
            best = float(t)
    w["threshold"] = round(best, 3)
    # real and synthetic weigh the same in the diameter convention
    med = [float(np.median(v)) for v in DIAMETER_RATIOS.values() if v]
    w["diameter_ratio"] = round(float(np.exp(np.mean(np.log(med)))), 4) if med else 1.0
    print(f"diameter ratio (reference / area-weighted typical diameter of the fibers found): "
          f"{ {k: round(float(np.median(v)), 3) for k, v in DIAMETER_RATIOS.items() if v} } -> {w['diameter_ratio']}")
    keep = score >= best
    print(f"{len(y)} objects ({int(y.sum())} fibers), {len(set(src))} sources; weights:")
    for k, c in zip(FEATURES, w["coef"]):
        print(f"  {k:<13} {c:+.3f}")
    print(f"threshold {best:.3f}: fibers kept {keep[y == 1].mean():.3f}, planted kept "
          f"{keep[planted].mean() if planted.any() else float('nan'):.3f}, non-fibers rejected {(~keep[y == 0]).mean():.3f}")
    for g in groups:
        m = np.array([s.startswith(g) for s in src])
        p0, r0, f0 = prf(y[m], np.ones(m.sum(), bool))
        p1, r1, f1 = prf(y[m], keep[m])
        print(f"  {g:<24} objects {m.sum():5d}  before P {p0:.3f} R {r0:.3f} F1 {f0:.3f}  "
              f"after P {p1:.3f} R {r1:.3f} F1 {f1:.3f}")
    if a.write:
        _, cfg_path = _model_paths(a.model)
        cfg = json.loads(cfg_path.read_text())
        cfg["fiber_score"] = w
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
        print(f"wrote fiber_score into {cfg_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
