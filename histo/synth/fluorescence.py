"""Membrane immunofluorescence (laminin / dystrophin / WGA channel) rendering.

Dark fiber interiors, a thin bright membrane of uneven thickness and brightness around each
fiber (brightest at the fiber border, filling the endomysium between neighbours), brighter
fibrous perimysium, a little interior signal, Poisson-Gaussian camera noise and a camera
offset, in a 12-bit range (0-4095) stored as uint16, like ``data/real/if/fs_rat.tif``.
Unlabelled structures (capillaries, vessels, nerve bundles, debris: :mod:`histo.synth.interstitium`)
arrive as ``scene.cache["interstitium"]`` in membrane units and are added to the membrane signal.
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.synth.artefacts import illumination_field
from histo.synth.noise import collagen_fibres, smooth_noise
from histo.synth.scene import Scene


def render_if(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Render the membrane channel; returns ``(uint16 image, info)``."""
    shape = scene.labels.shape
    d = scene.diameter_px
    n = scene.n_labels
    sigma_in = max(0.5, d * rng.uniform(0.012, 0.035))
    sigma_out = sigma_in * rng.uniform(0.8, 1.6)
    # the fiber label includes its membrane: the ring's crest lies a little inside the label
    # edge (measured on if/fs_rat.tif against its reference labels: ~3 px at 57 px fibers)
    crest = max(0.5, d * rng.uniform(0.03, 0.06))
    thick = np.exp(0.3 * smooth_noise(shape, d * 0.5, rng))  # uneven thickness
    sd = scene.din - scene.dout  # signed distance to the label edge, positive inside
    sig = np.where(sd > crest, sigma_in, sigma_out) * thick
    membrane = np.exp(-((sd - crest) ** 2) / (2 * sig**2))
    # basal laminae and extracellular matrix fill the endomysium between neighbours
    gap_fill = np.exp(-(scene.dout**2) / (2 * (2 * sigma_out) ** 2)) * (~scene.fg) * rng.uniform(0.3, 0.7)
    membrane = np.maximum(membrane, gap_fill)
    membrane[~scene.tissue] = 0.0
    bright = np.clip(1 + 0.35 * smooth_noise(shape, d * 0.4, rng) + 0.2 * smooth_noise(shape, 3.0, rng), 0.15, None)
    membrane *= bright

    # perimysium and vessels: brighter fibrous connective tissue
    # (as bright as the membranes in some sections, with thick streaky bands)
    strands = collagen_fibres(shape, rng.uniform(1.5, 3.0), rng)
    conn = scene.connective * (0.1 + 0.9 * strands) * rng.uniform(0.15, 1.1)
    conn[~scene.tissue] = 0.0

    # interiors: dim, slightly textured; a few fibers with bright granular interiors
    level = rng.uniform(0.01, 0.06) * (1 + rng.normal(0, 0.3, n + 1))
    odd = rng.random(n + 1) < rng.uniform(0.0, 0.08)
    level[odd] = rng.uniform(0.2, 0.6, int(odd.sum()))
    level[0] = 0.0
    interior = scene.per_label(np.clip(level, 0, None).astype(np.float32))
    interior *= 1 + 0.4 * np.clip(smooth_noise(shape, rng.uniform(1.5, 3.0), rng), -1, None)
    if odd.any():  # granular: bright speckles a few px across inside the odd fibers
        grains = np.clip(smooth_noise(shape, max(1.5, d * 0.06), rng) - 1.0, 0, None)
        interior += scene.per_label(odd.astype(np.float32)) * grains * rng.uniform(0.3, 1.0)
    extra = scene.cache.get("interstitium")
    if extra is not None:
        membrane = np.maximum(membrane, extra * np.clip(1 + 0.3 * smooth_noise(shape, d * 0.3, rng), 0.3, None))

    signal = rng.uniform(300, 2200) * (membrane + conn + interior)
    signal *= illumination_field(shape, rng)
    psf = float(rng.uniform(0.4, 1.2))
    signal = cv2.GaussianBlur(signal.astype(np.float32), (0, 0), psf)
    gain = float(rng.uniform(0.3, 2.0))  # detected photons per grey level
    counts = rng.poisson(np.clip(signal, 0, None) * gain) / gain
    offset = float(rng.uniform(60, 130))
    read = float(rng.uniform(3, 12))
    img = counts + offset + rng.normal(0, read, shape)
    out = np.clip(np.rint(img), 0, 4095).astype(np.uint16)
    return out, {"membrane_sigma_px": float(sigma_in), "membrane_crest_px": float(crest), "psf_sigma_px": psf, "offset": offset, "gain": gain}
