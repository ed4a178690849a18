"""A montage of synthetic sections next to crops of the real images, to judge realism by eye.

Run ``python -m histo.synth.montage docs/synth_montage.png``. Each row is one stain: the first
column is a crop of a real image from ``data/real`` when one exists (H&E, picrosirius red,
membrane IF), the next columns are synthetic samples (generated packings and NCL-SM crops);
the last row shows ground-truth labels with planted fibers in red.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from histo.io.stain import STAINS
from histo.synth import ncl
from histo.synth.generate import generate_section

logger = logging.getLogger(__name__)

TILE = 224
_REAL = Path(__file__).resolve().parents[2] / "data" / "real"
# (file, y, x, size, channel): crops chosen to show typical tissue; scaled to TILE
_REAL_CROPS = {
    "he": ("he/cn_img01.tif", 250, 250, 500, None),
    "he-regenerating": ("he/regen_section.jpg", 1500, 1500, 300, None),
    "psr": ("psr/fs_psr_crop.tif", 150, 250, 450, None),
    "if": ("if/fs_rat.tif", 150, 150, 400, 3),
}
# fiber diameter (px) of the synthetic tiles, matched to the real crop where there is one
_DIAMETER = {"he": 48.0, "psr": 40.0, "if": 36.0}


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        return img[..., :3].astype(np.uint8)
    a = img.astype(np.float32)
    lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.7)
    g = np.clip((a - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
    return np.stack([g, g, g], -1)


def _real_tile(stain: str) -> np.ndarray | None:
    spec = _REAL_CROPS.get(stain)
    if spec is None:
        return None
    name, y, x, size, channel = spec
    path = _REAL / name
    if not path.is_file():
        return None
    if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
        img = np.asarray(Image.open(path).convert("RGB"))
    else:
        import tifffile

        img = tifffile.imread(path)
    if channel is not None:
        img = img[channel]
    crop = _to_rgb(img[y : y + size, x : x + size])
    return np.asarray(Image.fromarray(crop).resize((TILE, TILE), Image.LANCZOS))


def _labels_tile(labels: np.ndarray, planted: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    lut = rng.integers(70, 230, (int(labels.max()) + 1, 3)).astype(np.uint8)
    lut[0] = 30
    rgb = lut[labels]
    rgb[np.isin(labels, planted)] = (230, 20, 20)
    return rgb


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(tile)
    draw = ImageDraw.Draw(im)
    w = 7 * len(text) + 6
    draw.rectangle((0, 0, w, 14), fill=(255, 255, 255))
    draw.text((3, 1), text, fill=(0, 0, 0))
    return np.asarray(im)


def make_montage(path: str | Path, *, seed: int = 0, n_synthetic: int = 3) -> Path:
    """Write the montage PNG to ``path`` and return it."""
    rows = []
    use_ncl = ncl.available()
    for r, row in enumerate(STAINS[:1] + ("he-regenerating",) + STAINS[1:]):
        stain = row.split("-")[0]
        regen = row.endswith("regenerating")
        tiles = []
        real = _real_tile(row)
        tiles.append(_caption(real, f"real {row}") if real is not None else
                     _caption(np.full((TILE, TILE, 3), 255, np.uint8), f"no real {stain} image"))
        for k in range(n_synthetic):
            geometry = "ncl" if (use_ncl and k == n_synthetic - 1 and not regen) else "packing"
            d = _DIAMETER.get(stain, 40.0) * (1.0 if k != 1 else 0.7) * (0.6 if regen else 1.0)
            s = generate_section((TILE, TILE), stain=stain, fiber_diameter_px=d, rng=[seed, r, k],
                                 geometry=geometry, regenerating=regen)
            tiles.append(_caption(_to_rgb(s.image), f"synthetic {row} ({geometry})"))
        rows.append(np.concatenate(tiles, 1))
    # geometry row: labels of a packing and of an NCL-SM crop, planted fibers in red
    geo = []
    for k, geometry in enumerate(("packing", "packing", "ncl", "ncl")):
        if geometry == "ncl" and not use_ncl:
            geometry = "packing"
        s = generate_section((TILE, TILE), stain="he", fiber_diameter_px=40, rng=[seed, 99, k], geometry=geometry)
        geo.append(_caption(_labels_tile(s.labels, s.planted), f"labels ({geometry}), planted red"))
    rows.append(np.concatenate(geo[: n_synthetic + 1], 1))
    sep = 4
    width = max(r.shape[1] for r in rows)
    canvas = np.full((len(rows) * (TILE + sep), width + (n_synthetic) * 0, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        canvas[i * (TILE + sep) : i * (TILE + sep) + TILE, : row.shape[1]] = row
    out = Path(path)
    Image.fromarray(canvas).save(out, optimize=True)
    logger.info("montage written to %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry: ``python -m histo.synth.montage [OUTPUT] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="docs/synth_montage.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_montage(args.output, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
