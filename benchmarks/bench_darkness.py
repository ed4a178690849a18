"""Darkness against fiber type: constructed NADH sections with no atrophy at all.

Run: ``.venv/bin/python benchmarks/bench_darkness.py [--seed S] [--size PX]``

Each section is a jittered hexagonal Voronoi packing of equal-size fibers (the generator of
``bench_sad.py``: min Feret ~45-60 µm at 0.5 µm/px), rendered as an NADH-TR-like image in
which a given fraction of the fibers (10, 30, 40, 60, 90 %) are type 1 (optical density 0.40)
and the others type 2 (0.28), each fiber +- 0.03, with the same fine texture as
``bench_sad``. Nothing is small, angular or dark beyond its type, so the right answer is:
no fiber dark, no SAD fiber, and the fiber-type proportions of the truth.

Each mix is rendered twice: **flat**, and with a **gradient** of the stain across the slide
(every optical density multiplied by 0.8 at the left edge rising linearly to 1.2 at the
right, as uneven staining or section thickness does).

The labels and image go through the real chain
(:func:`histo.measure.morphometry.measure_fibers`, :func:`histo.score.scoring.score_slide`).
Printed per section: counted fibers, % of them called dark, SAD count, the type-1 fraction
found by fiber typing against the truth (or why typing gave none). Targets (issue 11):
<= 1 % dark, 0 SAD, type proportions within 5 points, flat and gradient alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_sad import NADH_OD, PIXEL_UM, voronoi_fibers
from scipy import ndimage as ndi

from histo.measure.morphometry import measure_fibers
from histo.score.scoring import score_slide
from histo.score.settings import ScoringSettings

TYPE_OD = (0.28, 0.40)      # type 2, type 1 (darker on NADH)
MIXES = (0.1, 0.3, 0.4, 0.6, 0.9)


def constructed_section(seed: int, type1_fraction: float, *, gradient: bool, size_px: int = 2000):
    """Labels, NADH-like RGB image and the true type ("1" / "2") of every label."""
    rng = np.random.default_rng(seed)
    shape = (size_px, size_px)
    labels = voronoi_fibers(rng, shape, spacing_px=55 / PIXEL_UM).astype(np.int32)
    ids = np.unique(labels)[1:]
    is_type1 = rng.random(len(ids)) < type1_fraction
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[ids] = np.where(is_type1, TYPE_OD[1], TYPE_OD[0]) + rng.normal(0, 0.03, len(ids))
    od = lut[labels] + 0.03
    od *= 1 + 0.45 * ndi.gaussian_filter(rng.normal(0, 1, shape), 1.5).astype(np.float32)
    if gradient:
        od *= np.linspace(0.8, 1.2, shape[1], dtype=np.float32)[None, :]
    rgb = 255.0 * 10.0 ** (-np.clip(od, 0, None)[..., None] * NADH_OD[None, None, :])
    rgb += rng.normal(0, 3, rgb.shape)
    truth = dict(zip(ids.tolist(), np.where(is_type1, "1", "2").tolist()))
    return labels, np.clip(rgb, 0, 255).astype(np.uint8), truth


def run_one(seed: int, mix: float, gradient: bool, size_px: int, settings: ScoringSettings) -> dict:
    labels, rgb, truth = constructed_section(seed, mix, gradient=gradient, size_px=size_px)
    fibers = measure_fibers(labels, rgb, pixel_size_um=PIXEL_UM, stain="nadh")
    scored, summary = score_slide(fibers, labels, None, settings, stain="nadh")
    counted = scored["counted"].to_numpy(bool)
    true_type = scored["label"].map(lambda v: truth[int(v)]).to_numpy(object)[counted]
    found = scored["fiber_type"].astype(object).to_numpy()[counted]
    typed = found[np.array([t is not None and t is not np.nan and str(t) != "<NA>" for t in found])]
    info = summary["fiber_types"]
    if info.get("types"):
        type1_found = float(np.mean(typed.astype(str) == "1")) if typed.size else float("nan")
        agree = float(np.mean(found.astype(str) == true_type.astype(str)))
        note = f"{info.get('n_levels', '?')} levels"
    else:
        type1_found, agree = float("nan"), float("nan")
        note = (info.get("reason") or "no types").split(":")[0]
    return {"mix": mix, "gradient": gradient, "counted": int(counted.sum()),
            "dark_pct": 100.0 * scored["is_dark"].to_numpy(bool)[counted].mean(),
            "sad": int(scored["is_sad"].to_numpy(bool)[counted].sum()),
            "type1_true": 100.0 * float(np.mean(true_type == "1")),
            "type1_found": 100.0 * type1_found, "agree": 100.0 * agree, "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=2000, help="section side in pixels")
    args = parser.parse_args()
    settings = ScoringSettings()
    print(f"{'type1':>5} {'stain':>8} {'counted':>7} {'dark%':>6} {'SAD':>4} {'type1 true':>10} "
          f"{'found':>6} {'diff':>5} {'agree%':>6}  typing")
    t0 = time.perf_counter()
    rows = []
    for i, mix in enumerate(MIXES):
        for gradient in (False, True):
            r = run_one(args.seed + i, mix, gradient, args.size, settings)
            rows.append(r)
            diff = r["type1_found"] - r["type1_true"]
            print(f"{100 * mix:>4.0f}% {'gradient' if gradient else 'flat':>8} {r['counted']:>7} "
                  f"{r['dark_pct']:>6.1f} {r['sad']:>4} {r['type1_true']:>9.1f}% "
                  f"{r['type1_found']:>5.1f}% {diff:>+5.1f} {r['agree']:>6.1f}  {r['note']}")
    ok = [r["dark_pct"] <= 1.0 and r["sad"] == 0
          and abs(r["type1_found"] - r["type1_true"]) <= 5.0 for r in rows]
    print(f"\n{sum(ok)} of {len(rows)} sections meet the targets (<= 1 % dark, 0 SAD, type-1 "
          f"fraction within 5 points); {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
