"""Nuclei for brightfield renderings: peripheral, central and interstitial.

Muscle nuclei sit under the sarcolemma at the fiber edge, flattened along it; regenerating
fibers carry central nuclei; connective tissue holds elongated fibroblast and endothelial
nuclei. All are drawn as anti-aliased ellipses into an 8-bit density map (fast OpenCV
drawing), returned as float32 in [0, ~1.2].
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.synth.noise import smooth_noise
from histo.synth.scene import Scene


def _draw(canvas, cy, cx, half_len, half_wid, angle_deg, value):
    for y, x, a, b, ang, v in zip(cy, cx, half_len, half_wid, angle_deg, value):
        cv2.ellipse(
            canvas,
            (int(round(x * 16)), int(round(y * 16))),
            (max(1, int(round(a * 16))), max(1, int(round(b * 16)))),
            float(ang),
            0,
            360,
            int(v),
            -1,
            cv2.LINE_AA,
            4,
        )


def nuclei_map(
    scene: Scene,
    rng: np.random.Generator,
    *,
    per_fiber: float = 1.5,
    central_fraction: float = 0.0,
    interstitial_per_fiber_area: float = 0.5,
    size_scale: float = 1.0,
) -> tuple[np.ndarray, dict]:
    """Nuclear density map for a scene.

    Parameters
    ----------
    per_fiber : float
        Mean number of peripheral nuclei visible per fiber profile.
    central_fraction : float
        Fraction of fibers with one or two central nuclei.
    interstitial_per_fiber_area : float
        Interstitial nuclei per area of one mean fiber of connective tissue.
    size_scale : float
        Multiplies the nucleus size (about 0.15-0.2 fiber diameters long by default).

    Returns
    -------
    (density, info)
    """
    h, w = scene.labels.shape
    d = scene.diameter_px
    canvas = np.zeros((h, w), np.uint8)
    length = max(3.0, d * rng.uniform(0.1, 0.2) * size_scale)
    sdist = scene.signed_distance()

    # peripheral nuclei on fiber borders
    by, bx = np.nonzero(scene.fg & (scene.din <= 1.5))
    p = per_fiber / max(np.pi * d, 1.0)
    pick = rng.random(len(by)) < p
    by, bx = by[pick], bx[pick]
    y0, y1 = np.clip(by - 1, 0, h - 1), np.clip(by + 1, 0, h - 1)
    x0, x1 = np.clip(bx - 1, 0, w - 1), np.clip(bx + 1, 0, w - 1)
    gy = sdist[y1, bx] - sdist[y0, bx]
    gx = sdist[by, x1] - sdist[by, x0]
    norm = np.hypot(gy, gx) + 1e-6
    gy, gx = gy / norm, gx / norm  # points into the fiber
    n_p = len(by)
    half_len = length / 2 * rng.uniform(0.8, 1.3, n_p)
    half_wid = half_len * rng.uniform(0.35, 0.6, n_p)
    inset = half_wid * rng.uniform(0.2, 1.0, n_p)
    angle = np.degrees(np.arctan2(gx, -gy))  # tangent (-gy, gx) as an (x, y) angle for OpenCV
    _draw(canvas, by + gy * inset, bx + gx * inset, half_len, half_wid, angle, rng.uniform(170, 255, n_p))

    # central nuclei in a fraction of fibers
    n_c = 0
    if central_fraction > 0 and scene.n_labels > 0:
        labs = scene.labels.ravel()
        n = scene.n_labels + 1
        area = np.bincount(labs, minlength=n).astype(float)
        yy, xx = np.divmod(np.arange(labs.size), w)
        with np.errstate(invalid="ignore", divide="ignore"):
            cy = np.bincount(labs, yy, minlength=n) / area
            cx = np.bincount(labs, xx, minlength=n) / area
        chosen = np.flatnonzero((rng.random(n) < central_fraction) & (area > 0.2 * d * d))
        chosen = chosen[chosen > 0]
        if len(chosen):
            r = np.sqrt(area[chosen] / np.pi)
            k = 1 + (rng.random(len(chosen)) < 0.25)
            chosen, r = np.repeat(chosen, k), np.repeat(r, k)
            n_c = len(chosen)
            jit = rng.normal(0, 0.12, (n_c, 2)) * r[:, None]
            hl = length / 2 * rng.uniform(0.7, 1.1, n_c)
            _draw(
                canvas,
                cy[chosen] + jit[:, 0],
                cx[chosen] + jit[:, 1],
                hl,
                hl * rng.uniform(0.55, 0.9, n_c),
                rng.uniform(0, 180, n_c),
                rng.uniform(150, 240, n_c),
            )

    # interstitial nuclei in endomysium and connective tissue
    inter = scene.tissue & ~scene.fg
    iy, ix = np.nonzero(inter)
    n_i = int(rng.poisson(interstitial_per_fiber_area * len(iy) / (np.pi / 4 * d * d))) if len(iy) else 0
    if n_i:
        sel = rng.integers(0, len(iy), n_i)
        hl = length / 2 * rng.uniform(0.6, 1.2, n_i)
        _draw(canvas, iy[sel], ix[sel], hl, hl * rng.uniform(0.25, 0.55, n_i), rng.uniform(0, 180, n_i),
              rng.uniform(190, 255, n_i))

    dens = canvas.astype(np.float32) / 255.0
    if dens.any():
        chromatin = 1.0 + 0.25 * smooth_noise((h, w), max(1.0, length / 5), rng)
        dens *= chromatin
    return dens, {"n_peripheral_nuclei": int(n_p), "n_central_nuclei": int(n_c), "n_interstitial_nuclei": n_i}
