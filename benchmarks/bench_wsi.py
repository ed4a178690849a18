"""Whole-slide scoring: peak memory (whole process tree) and throughput on a synthetic slide.

Run: .venv/bin/python benchmarks/bench_wsi.py [--size 40960] [--method model|classical]
                                              [--pixel-size 0.5] [--keep DIR]

1. Writes a synthetic pyramidal slide (tiled JPEG OME-TIFF, levels halving down to one tile,
   pixel size in the OME metadata) of ``size x size`` px: an irregular tissue section covering
   about half the glass, filled with H&E muscle texture rendered by :mod:`histo.synth`
   (a small library of 2048 px sections, mosaicked with flips), white glass around it.
   The slide is written tile by tile and never held in memory.
2. Runs ``histo score SLIDE -o OUT`` in a subprocess and samples the RSS of that process and
   all its children every 0.1 s: the peak is the whole tree's.
3. Prints wall time, peak RSS (target < 2 GB), throughput in megapixels per second (level 0,
   and tissue at the analysis level) and, as a baseline measured in the same process, the
   time to read the analysis level once tile by tile (the floor any tile-wise analysis pays).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 2048


def _library(n: int, diameter_px: float, seed: int) -> list[np.ndarray]:
    from histo.synth.generate import generate_section

    out = []
    for i in range(n):
        s = generate_section((BLOCK, BLOCK), stain="he", fiber_diameter_px=diameter_px,
                             rng=seed + i, geometry="packing", tissue_edge=False)
        out.append(s.image)
    return out


def _tissue_lowres(size_px: int, seed: int, step: int) -> np.ndarray:
    """An irregular blob covering ~half the slide, at 1/step resolution."""
    from scipy import ndimage as ndi

    n = max(8, size_px // step)
    yy, xx = np.mgrid[0:n, 0:n] / n - 0.5
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.normal(size=(n, n)), n / 12)
    noise /= np.abs(noise).max() + 1e-9
    r = np.sqrt((yy / 0.42) ** 2 + (xx / 0.36) ** 2)
    return r + 0.25 * noise < 1.0


class _SlideSource:
    """Pixels of the synthetic slide at one level, computed per tile."""

    def __init__(self, library, tissue, size_px: int, level: int, seed: int):
        self.k = 2 ** level
        self.bsz = BLOCK // self.k
        self.lib = [_down(img, self.k) for img in library]
        self.tissue, self.size = tissue, size_px
        self.shape = ((size_px + self.k - 1) // self.k,) * 2
        self.seed = seed

    def block(self, by: int, bx: int) -> np.ndarray:
        h = (by * 73856093 ^ bx * 19349663 ^ self.seed) & 0xFFFF
        img = self.lib[h % len(self.lib)]
        if h & 0x10:
            img = img[::-1]
        if h & 0x20:
            img = img[:, ::-1]
        return img

    def region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        out = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        for by in range(y0 // self.bsz, (y1 - 1) // self.bsz + 1):
            for bx in range(x0 // self.bsz, (x1 - 1) // self.bsz + 1):
                ys, ye = max(y0, by * self.bsz), min(y1, (by + 1) * self.bsz)
                xs, xe = max(x0, bx * self.bsz), min(x1, (bx + 1) * self.bsz)
                blk = self.block(by, bx)
                out[ys - y0:ye - y0, xs - x0:xe - x0] = blk[ys - by * self.bsz:ye - by * self.bsz,
                                                            xs - bx * self.bsz:xe - bx * self.bsz]
        th, tw = self.tissue.shape
        ty = np.minimum((np.arange(y0, y1) * th) // self.shape[0], th - 1)
        tx = np.minimum((np.arange(x0, x1) * tw) // self.shape[1], tw - 1)
        glass = ~self.tissue[np.ix_(ty, tx)]
        out[glass] = (243, 241, 246)
        return out


def _down(img: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return img
    h, w = img.shape[0] // k, img.shape[1] // k
    return img[:h * k, :w * k].reshape(h, k, w, k, 3).mean(axis=(1, 3)).round().astype(np.uint8)


def _tiles(src: _SlideSource, tile: int):
    h, w = src.shape
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            block = np.full((tile, tile, 3), 243, np.uint8)
            block[:y1 - y0, :x1 - x0] = src.region(y0, y1, x0, x1)
            yield block


def write_synthetic_slide(path: str | Path, size_px: int = 40960, *, pixel_size_um: float = 0.5,
                          fiber_um: float = 50.0, tile: int = 512, n_library: int = 4,
                          seed: int = 0) -> dict:
    """Write the synthetic pyramidal slide; return its description (levels, tissue fraction)."""
    import tifffile

    path = Path(path)
    library = _library(n_library, fiber_um / pixel_size_um, seed)
    tissue = _tissue_lowres(size_px, seed, step=64)
    levels = [0]
    while (size_px >> levels[-1]) > tile:
        levels.append(levels[-1] + 1)
    meta = {"axes": "YXS", "PhysicalSizeX": pixel_size_um, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": pixel_size_um, "PhysicalSizeYUnit": "µm"}
    opts = dict(tile=(tile, tile), photometric="rgb", compression="jpeg",
                compressionargs={"level": 85}, dtype=np.uint8)
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for level in levels:
            src = _SlideSource(library, tissue, size_px, level, seed)
            extra = ({"subifds": len(levels) - 1, "metadata": meta,
                      "resolution": (1e4 / pixel_size_um, 1e4 / pixel_size_um),
                      "resolutionunit": "CENTIMETER"} if level == 0 else {"subfiletype": 1})
            tw.write(_tiles(src, tile), shape=src.shape + (3,), **opts, **extra)
    return {"size_px": size_px, "levels": len(levels), "pixel_size_um": pixel_size_um,
            "tissue_fraction": float(tissue.mean()), "bytes": path.stat().st_size}


def run_with_peak_rss(cmd: list[str], interval: float = 0.1) -> tuple[int, float, float]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS in bytes of the process tree)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(interval)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode:
        print(err[-3000:], file=sys.stderr)
    return proc.returncode, time.perf_counter() - start, float(peak)


def read_level_baseline(path: Path, level: int) -> float:
    """Seconds to read one pyramid level once, tile by tile (decode only)."""
    from histo.io.slide import open_slide

    slide = open_slide(path)
    h, w = slide.level_shapes[level]
    start = time.perf_counter()
    for y in range(0, h, 2048):
        for x in range(0, w, 2048):
            slide.read_region(level, y, x, 2048, 2048)
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40960, help="slide side in px (default 40960)")
    ap.add_argument("--pixel-size", type=float, default=0.5)
    ap.add_argument("--method", default="model", choices=("classical", "model"))
    ap.add_argument("--keep", type=Path, default=None, help="keep slide and results here")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_wsi_"))
    work.mkdir(parents=True, exist_ok=True)
    slide = work / f"synthetic_{args.size}.ome.tif"
    t0 = time.perf_counter()
    if not slide.exists():
        info = write_synthetic_slide(slide, args.size, pixel_size_um=args.pixel_size)
        print(f"wrote {slide.name}: {args.size} x {args.size} px, {info['levels']} levels, "
              f"{info['bytes'] / 1e6:.0f} MB, tissue {100 * info['tissue_fraction']:.0f}% "
              f"({time.perf_counter() - t0:.0f} s)")
    out = work / "results"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(Path(sys.executable).with_name("histo")), "score", str(slide), "-o", str(out),
           "--method", args.method, "--no-progress"]
    code, wall, peak = run_with_peak_rss(cmd)
    if code:
        print(f"histo score failed with exit code {code}")
        return 1
    sid = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    summary = json.loads((sid / "summary.json").read_text())
    s = summary["slide"]
    base = read_level_baseline(slide, s["analysis_level"])
    mp0 = args.size ** 2 / 1e6
    ah, aw = s["analysis_shape"]
    mp_tissue = ah * aw * s["tissue_fraction"] / 1e6
    print(f"method {args.method}; analysis level {s['analysis_level']} "
          f"(downsample {s['analysis_downsample']:g}, {aw} x {ah} px, "
          f"{s['pixel_size_um']:.3g} µm/px); tissue {100 * s['tissue_fraction']:.0f}%")
    print(f"fibers: {summary['n_fibers']} ({summary['statistics']['n_counted']} counted)")
    print(f"wall time: {wall:.1f} s   peak RSS (process tree): {peak / 2**30:.2f} GiB "
          f"(target < 2 GiB: {'OK' if peak < 2 * 2**30 else 'OVER'})")
    print(f"throughput: {mp0 / wall:.2f} MP/s of level 0 ({mp0:.0f} MP); "
          f"{mp_tissue / wall:.3f} MP/s of tissue at the analysis level ({mp_tissue:.0f} MP)")
    print(f"baseline: reading the analysis level once takes {base:.1f} s; scoring = "
          f"{wall / base:.1f} x that")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
