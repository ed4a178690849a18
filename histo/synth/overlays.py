"""What the camera, the stitcher and the figure maker add to a brightfield image.

* Stitching fill: a black or white rectangle along one edge or in a corner (the part of a
  stitched canvas no tile covered). Not tissue, never labelled.
* Annotations: a scale bar (filled bar) and text drawn with ``cv2.putText`` on figure-like
  images; the pixels under them are not fiber.
* Seams: the tiles of a stitched scan differ a little in brightness and colour, so the image
  shows steps on a grid.
* Tint: a strong colour cast over the whole image, glass included (brown, orange or yellowish
  slides and cameras): red is kept, green and most of all blue are lost.

:func:`plan_overlays` decides where fill and annotations go (they change the labels, so this
happens with the geometry); :func:`apply_overlays` paints everything on the finished RGB.
Planted fibers are never covered.
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.synth.bf_interstitium import cut_fibers
from histo.synth.geometry import Geometry

TINTS = {"brown": (1.0, 0.8, 0.58), "orange": (1.0, 0.76, 0.45), "yellow": (1.0, 0.96, 0.6)}
_WORDS = ("H&E", "HE", "NADH", "SDH", "ATPase 9.4", "PSR", "x20", "x10", "50 um", "100 um", "A", "B", "C",
          "Pt 3", "control", "biopsy 2", "d", "e")


def _guard(geom: Geometry, margin: int) -> np.ndarray:
    n = int(geom.labels.max())
    planted = np.zeros(n + 1, bool)
    if len(geom.planted):
        planted[np.asarray(geom.planted, np.intp)] = True
    pl = planted[geom.labels].astype(np.uint8)
    return cv2.dilate(pl, np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)


def plan_overlays(geom: Geometry, diameter_px: float, rng: np.random.Generator, *,
                  stitch_fill: bool | None = None, annotations: bool | None = None) -> tuple[Geometry, dict, dict]:
    """Place stitching fill and annotations; cut the labels under them.

    Returns ``(geometry, plan, info)``; ``plan`` holds the masks and colours that
    :func:`apply_overlays` paints.
    """
    h, w = geom.labels.shape
    guard = _guard(geom, 2)
    u_fill, u_ann = rng.random(), rng.random()
    use_fill = (u_fill < 0.08) if stitch_fill is None else bool(stitch_fill)
    use_ann = (u_ann < 0.1) if annotations is None else bool(annotations)
    plan: dict = {}
    info: dict = {}
    carve = np.zeros((h, w), bool)
    if use_fill:
        for _ in range(8):
            m = np.zeros((h, w), bool)
            corner = rng.random() < 0.4
            dy, dx = int(h * rng.uniform(0.05, 0.35)), int(w * rng.uniform(0.05, 0.35))
            side = int(rng.integers(4))
            if corner:
                ys = slice(0, dy) if side in (0, 1) else slice(h - dy, h)
                xs = slice(0, dx) if side in (0, 2) else slice(w - dx, w)
            else:
                ys, xs = [(slice(0, dy), slice(None)), (slice(h - dy, h), slice(None)),
                          (slice(None), slice(0, dx)), (slice(None), slice(w - dx, w))][side]
            m[ys, xs] = True
            if not (m & guard).any():
                break
        else:
            m = None
        if m is not None:
            value = 0 if rng.random() < 0.65 else 255
            plan["fill"] = (m, value)
            carve |= m
            info["stitch_fill"] = {"corner": bool(corner), "side": side, "value": value,
                                   "fraction": float(m.mean())}
    if use_ann:
        ink = np.zeros((h, w), np.uint8)
        colour = 0 if rng.random() < 0.5 else 255
        scale = max(0.3, min(h, w) / 400 * rng.uniform(0.6, 1.4))
        thick = max(1, int(round(scale * 2)))
        drawn = []
        bar_len = int(w * rng.uniform(0.12, 0.3))
        bar_h = max(2, int(h * rng.uniform(0.008, 0.02)))
        by = int(h - bar_h - h * rng.uniform(0.03, 0.08))
        bx = int(w - bar_len - w * rng.uniform(0.03, 0.08)) if rng.random() < 0.6 else int(w * rng.uniform(0.03, 0.08))
        cv2.rectangle(ink, (bx, by), (bx + bar_len, by + bar_h), 1, -1)
        drawn.append("scale_bar")
        for _ in range(int(rng.integers(1, 3))):
            text = str(rng.choice(_WORDS))
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            ty = int(rng.uniform(th + 2, max(th + 3, h - base - 2)))
            tx = int(rng.uniform(2, max(3, w - tw - 2)))
            cv2.putText(ink, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, 1, thick, cv2.LINE_AA)
            drawn.append(text)
        m = cv2.dilate(ink, np.ones((3, 3), np.uint8)).astype(bool) & ~guard
        ink_m = ink.astype(bool) & m
        plan["ink"] = (ink_m, colour)
        carve |= m
        info["annotations"] = {"items": drawn, "value": colour}
    if carve.any():
        geom, _ = cut_fibers(geom, carve & ~guard, None, plan.get("fill", (None,))[0], diameter_px=diameter_px)
    return geom, plan, info


def apply_overlays(img: np.ndarray, plan: dict, rng: np.random.Generator, *, seams: bool | None = None,
                   tint: str | bool | None = None, stain: str = "he") -> tuple[np.ndarray, dict]:
    """Seams, tint, stitching fill and annotations on a finished uint8 RGB image.

    All random draws happen whether or not an effect is used, so toggling one effect leaves
    the others unchanged for a given generator state.
    """
    h, w = img.shape[:2]
    info: dict = {}
    u_seam, u_tint = rng.random(), rng.random()
    tile = float(rng.uniform(0.2, 0.6)) * max(h, w)
    off = rng.uniform(0, tile, 2)
    ny, nx = int(np.ceil((h + tile) / tile)) + 1, int(np.ceil((w + tile) / tile)) + 1
    gains = (1 + rng.normal(0, rng.uniform(0.03, 0.08), (ny, nx, 1))
             + rng.normal(0, 0.02, (ny, nx, 3))).astype(np.float32)
    kind = str(rng.choice(list(TINTS)))
    strength = float(rng.uniform(0.5, 1.0))
    use_seams = (u_seam < 0.1) if seams is None else bool(seams)
    if tint is None:
        use_tint = u_tint < (0.15 if stain == "he" else 0.05)
    elif isinstance(tint, str):
        if tint not in TINTS:
            raise ValueError(f"tint must be one of {sorted(TINTS)} or a bool, got {tint!r}")
        use_tint, kind = True, tint
    else:
        use_tint = bool(tint)
    out = img.astype(np.float32)
    if use_seams:
        iy = ((np.arange(h) + off[0]) // tile).astype(np.intp)
        ix = ((np.arange(w) + off[1]) // tile).astype(np.intp)
        out *= gains[iy[:, None], ix[None, :]]
        info["seams"] = {"tile_px": tile, "offset_px": [float(v) for v in off]}
    if use_tint:
        cast = 1.0 - strength * (1.0 - np.asarray(TINTS[kind], np.float32))
        out *= cast
        info["tint"] = {"kind": kind, "strength": strength}
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if "fill" in plan:
        m, value = plan["fill"]
        out[m] = value
    if "ink" in plan:
        m, value = plan["ink"]
        out[m] = value
    return out, info
