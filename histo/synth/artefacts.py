"""Preparation and imaging artefacts of muscle sections.

Tissue artefacts act on dye concentration (a multiplicative map): freezing-artefact holes
inside fibers (ice crystals), knife cracks, folds (a double layer of tissue) and chatter
(periodic thickness bands from a vibrating blade). Imaging artefacts act on the RGB or
fluorescence image: uneven illumination, blur, noise and JPEG compression. None of them
changes the ground-truth labels: a fiber with holes or a crack is still one fiber.
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.synth.noise import smooth_noise
from histo.synth.scene import Scene


def _freeze_holes(scene: Scene, rng, mult):
    d = scene.diameter_px
    n = scene.n_labels
    affected = rng.random(n + 1) < rng.uniform(0.05, 0.6)
    affected[0] = False
    ys, xs = np.nonzero(affected[scene.labels] & (scene.din > 1.5))
    if not len(ys):
        return 0
    per_fiber = rng.uniform(2, 15)
    k = int(per_fiber * affected.sum())
    sel = rng.integers(0, len(ys), k)
    r_max = max(1.0, 0.07 * d)
    radii = rng.uniform(0.5, r_max, k)
    elong = rng.uniform(0.4, 1.0, k)
    angles = rng.uniform(0, 180, k)
    mask = np.zeros(scene.labels.shape, np.uint8)
    for y, x, r, e, a in zip(ys[sel], xs[sel], radii, elong, angles):
        axes = (max(1, int(r * 4)), max(1, int(r * e * 4)))
        cv2.ellipse(mask, (int(x * 4), int(y * 4)), axes, float(a), 0, 360, 255, -1, cv2.LINE_AA, 2)
    depth = rng.uniform(0.7, 0.95)
    mult *= 1.0 - depth * (mask.astype(np.float32) / 255.0) * scene.fg
    return k


def _cracks(scene: Scene, rng, mult):
    h, w = scene.labels.shape
    mask = np.zeros((h, w), np.uint8)
    n = int(rng.integers(1, 4))
    for _ in range(n):
        p = rng.uniform([0, 0], [w, h])
        ang = rng.uniform(0, 2 * np.pi)
        pts = [p.copy()]
        step = max(4.0, scene.diameter_px / 4)
        for _ in range(int(np.hypot(h, w) / step)):
            ang += rng.normal(0, 0.25)
            p = p + step * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p.copy())
        cv2.polylines(mask, [np.round(np.array(pts) * 4).astype(np.int32)], False, 255,
                      int(rng.integers(1, 3)), cv2.LINE_AA, 2)
    mult *= 1.0 - 0.95 * mask.astype(np.float32) / 255.0
    return n


def _fold(scene: Scene, rng, mult):
    h, w = scene.labels.shape
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sd = (yy - rng.uniform(0, h)) * np.sin(theta) + (xx - rng.uniform(0, w)) * np.cos(theta)
    sd += smooth_noise((h, w), scene.diameter_px * 3, rng) * scene.diameter_px * 0.5
    width = scene.diameter_px * rng.uniform(0.15, 0.8)
    band = np.clip(1.0 - np.abs(sd) / width, 0.0, 1.0) ** 0.3
    # the doubled layer, darker still along the two creases where the section bends over
    crease = np.exp(-(((np.abs(sd) - width) / max(1.0, 0.04 * scene.diameter_px)) ** 2))
    mult *= 1.0 + rng.uniform(0.5, 1.0) * band + rng.uniform(0.3, 0.8) * crease
    return float(width)


def _chatter(scene: Scene, rng, mult):
    h, w = scene.labels.shape
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(8, 40)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (yy * np.sin(theta) + xx * np.cos(theta)) * (2 * np.pi / period)
    mult *= 1.0 + rng.uniform(0.03, 0.12) * np.sin(phase)
    return float(period)


def tissue_artefacts(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray | None, dict]:
    """A multiplicative dye-concentration map with random tissue artefacts (or None)."""
    mult = np.ones(scene.labels.shape, np.float32)
    info: dict = {}
    if rng.random() < 0.2:
        info["freeze_holes"] = _freeze_holes(scene, rng, mult)
    if rng.random() < 0.1:
        info["cracks"] = _cracks(scene, rng, mult)
    if rng.random() < 0.1:
        info["fold_width_px"] = _fold(scene, rng, mult)
    if rng.random() < 0.15:
        info["chatter_period_px"] = _chatter(scene, rng, mult)
    return (mult if info else None), info


def illumination_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative field around 1: vignetting plus a slow random gradient."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / float(max(h, w) ** 2)
    field = 1.0 - rng.uniform(0.0, 0.25) * r2
    field += rng.uniform(0.0, 0.06) * smooth_noise(shape, max(h, w) / 2, rng)
    return field.astype(np.float32)


def finish_brightfield(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Illumination, blur, noise and JPEG on a float RGB image in 0-255; returns uint8."""
    info: dict = {}
    img = img * illumination_field(img.shape[:2], rng)[..., None]
    # camera colour processing: saturation varies between scanners and microscope cameras
    sat = float(rng.uniform(0.7, 1.15))
    grey = img.mean(-1, keepdims=True)
    img = grey + sat * (img - grey)
    info["saturation"] = sat
    if rng.random() < 0.6:
        sigma = float(rng.uniform(0.3, 1.3))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        info["blur_sigma_px"] = sigma
    noise_sd = float(rng.uniform(0.5, 5.0))
    img = img + rng.normal(0, noise_sd, img.shape).astype(np.float32)
    info["noise_sd"] = noise_sd
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        q = int(rng.integers(40, 96))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
            info["jpeg_quality"] = q
    return out, info
