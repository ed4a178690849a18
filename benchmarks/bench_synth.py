"""Speed of the synthetic-section generator (histo.synth), one core.

Run: .venv/bin/python benchmarks/bench_synth.py [--n 8] [--size 512] [--quality 12]

Prints, per stain, the CPU and wall time of one ``generate_section`` call at SIZE x SIZE
(generated packings, and NCL-SM crops once the masks are cached), the split between geometry
and rendering, the ratio to the 0.3 s budget of on-the-fly training, and the ratio to reading
the same sample back from a cached .npz file (``make_dataset``), all measured in this process.
OpenCV is limited to one thread so the figures are per core.

``--quality N`` also measures N samples per stain with the project's own yardsticks
(``histo.measure.morphometry.measure_fibers``, ``histo.io.stain.guess_stain``): fiber size against the
request, size spread, and whether planted fibers come out small, angular and dark.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from histo.synth import STAINS, generate_section, load_sample, make_geometry, ncl, save_sample
from histo.synth.render import render

BUDGET_S = 0.3


def timed(fn, *args, **kw):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    return out, time.process_time() - c0, time.perf_counter() - w0


def quality(n: int, shape: tuple[int, int], diameter: float) -> None:
    """Planted fibers and sizes measured by histo.measure.morphometry; stain guessed by histo.io.stain."""
    from collections import Counter

    from histo.io.stain import guess_stain
    from histo.measure.morphometry import measure_fibers

    print(f"\nquality: {n} samples per stain, {shape}, requested diameter {diameter} px "
          "(medians over samples; ratios planted / normal fibers of the same image)")
    print(f"{'stain':9s} {'eqdiam/req':>10s} {'size CV':>8s} {'minFeret':>9s} {'angular':>8s} "
          f"{'darkness':>9s} {'planted':>8s}  guess_stain")
    for stain in STAINS:
        size, cv, feret, ang_p, ang_n, dark_p, dark_n, n_pl = [], [], [], [], [], [], [], 0
        guesses = Counter()
        for i in range(n):
            s = generate_section(shape, stain=stain, fiber_diameter_px=diameter, rng=[11, i], geometry="packing")
            guesses[guess_stain(s.image)] += 1
            df = measure_fibers(s.labels, s.image, stain=stain)
            inner = df[~df.is_edge]
            planted = inner.label.isin(s.planted)
            normal = inner[~planted]
            if len(normal) < 5:
                continue
            size.append(normal.equivalent_diameter_px.mean() / diameter)
            cv.append(normal.equivalent_diameter_px.std() / normal.equivalent_diameter_px.mean())
            pl = inner[planted]
            n_pl += len(pl)
            feret += list(pl.min_feret_px / normal.min_feret_px.mean())
            ang_p += list(pl.angularity)
            ang_n.append(normal.angularity.median())
            dark_p += list(pl.darkness)
            dark_n.append(normal.darkness.median())
        q = np.percentile(feret, [10, 50, 90]) if feret else [np.nan] * 3
        print(f"{stain:9s} {np.median(size):10.2f} {np.median(cv):8.2f} {q[1]:5.2f} ({q[0]:.2f}-{q[2]:.2f}) "
              f"{np.median(ang_p):.2f}/{np.median(ang_n):.2f} {np.nanmedian(dark_p):5.1f}/{np.nanmedian(dark_n):4.1f} "
              f"{n_pl:8d}  {dict(guesses)}")
    print("minFeret: planted min Feret / mean min Feret of normal fibers, median (10-90 %); "
          "angular, darkness: planted / normal medians (darkness = robust z of mean OD)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8, help="samples per stain")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--diameter", type=float, default=40.0)
    parser.add_argument("--quality", type=int, default=0, help="also measure N samples per stain")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    shape = (args.size, args.size)
    generate_section(shape, rng=0, geometry="packing")  # warm-up (imports, caches)

    print(f"generate_section {shape}, fiber diameter {args.diameter} px, {args.n} samples per stain, 1 core")
    print(f"{'stain':9s} {'geometry':9s} {'cpu s':>7s} {'wall s':>7s} {'geom cpu':>9s} {'render cpu':>10s} {'budget/cpu':>10s}")
    all_cpu = []
    for geometry in ("packing", "ncl"):
        if geometry == "ncl":
            if not ncl.available():
                print("NCL-SM masks not found: skipping ncl rows")
                continue
            _, c, w = timed(generate_section, shape, rng=0, geometry="ncl", source=ncl.SOURCES[0])
            _, c2, w2 = timed(generate_section, shape, rng=0, geometry="ncl", source=ncl.SOURCES[1])
            print(f"(NCL-SM first load, once per process: {c + c2:.2f} s cpu, {w + w2:.2f} s wall)")
        for stain in STAINS:
            cpu, wall, gcpu, rcpu = [], [], [], []
            for i in range(args.n):
                rng = np.random.default_rng([7, i])
                geom, gc, _ = timed(make_geometry, shape, args.diameter, rng, geometry=geometry)
                _, rc, _ = timed(render, geom, stain, rng, diameter_px=args.diameter)
                _, c, w = timed(generate_section, shape, stain=stain, fiber_diameter_px=args.diameter,
                                rng=[7, i], geometry=geometry)
                cpu.append(c)
                wall.append(w)
                gcpu.append(gc)
                rcpu.append(rc)
            all_cpu += cpu
            m = float(np.mean(cpu))
            print(f"{stain:9s} {geometry:9s} {m:7.3f} {np.mean(wall):7.3f} {np.mean(gcpu):9.3f} "
                  f"{np.mean(rcpu):10.3f} {BUDGET_S / m:9.1f}x")
    mean_cpu = float(np.mean(all_cpu))
    print(f"all: mean {mean_cpu:.3f} s cpu per sample, p95 {np.percentile(all_cpu, 95):.3f} s; "
          f"{BUDGET_S / mean_cpu:.1f}x under the {BUDGET_S} s budget")

    with tempfile.TemporaryDirectory() as tmp:
        s, gen_c, gen_w = timed(generate_section, shape, stain="he", fiber_diameter_px=args.diameter, rng=1,
                                geometry="packing")
        path = Path(tmp) / "s.npz"
        _, save_c, _ = timed(save_sample, path, s)
        _, load_c, load_w = timed(load_sample, path)
        size_kb = path.stat().st_size / 1024
    print(f"cached .npz: save {save_c:.3f} s, load {load_c:.3f} s cpu ({size_kb:.0f} KB); "
          f"generating costs {gen_c / max(load_c, 1e-6):.1f}x a cached load")
    if args.quality:
        quality(args.quality, shape, args.diameter)


if __name__ == "__main__":
    main()
