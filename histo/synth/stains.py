"""Brightfield stains as dye concentration maps (Beer-Lambert rendering).

Each builder returns a list of ``(dye_od_vector, concentration_map)`` pairs; the renderer
turns them into RGB with ``I = I0 * 10 ** -(sum_k c_k * v_k)``. Dye vectors are optical
densities per unit concentration for (R, G, B): H&E ones were fitted on the real H&E image
in ``data/real/he`` (fiber and nucleus colours), picrosirius red ones on ``data/real/psr``;
the enzyme stains follow their textbook colours (NADH-TR/SDH formazan blue-purple, ATPase
cobalt sulfide grey-brown, esterase pararosaniline red-brown). Concentrations and vectors
are varied per sample so that no two slides share a colour.
"""

from __future__ import annotations

import numpy as np

from histo.synth.noise import cell_mosaic, collagen_fibres, ridge_network, smooth_noise
from histo.synth.nuclei import nuclei_map
from histo.synth.scene import Scene

HEMATOXYLIN = (0.60, 0.75, 0.28)
EOSIN = (0.17, 0.92, 0.36)
FORMAZAN_NADH = (0.68, 0.70, 0.22)
FORMAZAN_SDH = (0.58, 0.76, 0.29)
COBALT_SULFIDE = (0.54, 0.58, 0.61)
PARAROSANILINE = (0.28, 0.58, 0.76)
PICRIC_ACID = (0.15, 0.38, 0.91)
SIRIUS_RED = (0.17, 0.64, 0.75)


def jitter_vector(v, rng: np.random.Generator, sd: float = 0.05) -> np.ndarray:
    """A dye vector perturbed a little (hue variation between labs), unit length."""
    a = np.clip(np.asarray(v, np.float64) + rng.normal(0, sd, 3), 0.01, None)
    return (a / np.linalg.norm(a)).astype(np.float32)


def _fiber_texture(scene: Scene, rng, fine_amp, mid_amp) -> np.ndarray:
    shape = scene.labels.shape
    d = scene.diameter_px
    tex = 1.0 + fine_amp * smooth_noise(shape, rng.uniform(1.0, 2.2), rng)
    tex += mid_amp * smooth_noise(shape, d * rng.uniform(0.15, 0.4), rng)
    return tex


def _strands(scene: Scene, rng) -> np.ndarray:
    """Collagen texture of the interstitium, made once per scene and reused by every dye."""
    if scene.cache.get("strands") is None:
        scene.cache["strands"] = collagen_fibres(scene.labels.shape, rng.uniform(1.5, 3.0), rng)
    return scene.cache["strands"]


def _interstitium(scene: Scene, rng, endo, conn, contrast: float = 0.85) -> np.ndarray:
    """Concentration of a dye in endomysium (``endo``) and wide connective tissue (``conn``).

    ``contrast`` (0-1) is how much of the connective-tissue dye follows the collagen strands.
    """
    strands = _strands(scene, rng)
    c = (endo * (0.5 + 0.5 * strands)) * (1 - scene.connective)
    c += conn * ((1 - contrast) + contrast * strands) * scene.connective
    c[scene.fg | ~scene.tissue] = 0.0
    return c


def _per_fiber(scene: Scene, rng, base, sd) -> np.ndarray:
    v = base * (1 + rng.normal(0, sd, scene.n_labels + 1))
    v[0] = 0.0
    return np.clip(v, 0, None).astype(np.float32)


def he(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """H&E: pink fibers, pale endomysium, purple nuclei, basophilic planted fibers.

    Regenerating / inflamed muscle (``scene.regenerating``, as in ``he/regen_section.jpg``):
    a fraction of the non-planted fibers is basophilic with central nuclei, and the
    interstitium is a dense mosaic of small cells (myoblasts, inflammatory cells) with pale
    outlines and many nuclei: tissue that must not be taken for fibers.
    """
    n = scene.n_labels
    e_lab = _per_fiber(scene, rng, rng.uniform(0.25, 0.5), 0.08)
    h_lab = np.full(n + 1, rng.uniform(0.0, 0.03), np.float32)
    h_lab[0] = 0
    dark = scene.planted
    e_lab[dark] *= rng.uniform(0.6, 0.9)
    h_lab[dark] += rng.uniform(0.2, 0.45)
    regenerating = scene.regenerating
    if regenerating:
        basophilic = (rng.random(n + 1) < rng.uniform(0.05, 0.3)) & ~dark
        basophilic[0] = False
        e_lab[basophilic] *= rng.uniform(0.7, 0.95)
        h_lab[basophilic] += rng.uniform(0.08, 0.25)
    eos = scene.per_label(e_lab) * _fiber_texture(scene, rng, 0.05, 0.06)
    eos *= 1 + 0.12 * np.exp(-scene.din / 1.5) * scene.fg
    hem = scene.per_label(h_lab)
    eos += _interstitium(scene, rng, rng.uniform(0.0, 0.14), rng.uniform(0.04, 0.2), rng.uniform(0.3, 0.7))
    hem += _interstitium(scene, rng, 0.02, rng.uniform(0.01, 0.05), 0.5)
    if regenerating:
        cell_px = scene.diameter_px * rng.uniform(0.12, 0.22)
        outline, value = cell_mosaic(scene.labels.shape, cell_px, rng)
        cellular = (scene.tissue & ~scene.fg) * np.clip(scene.dout / 3.0, 0, 1)
        cellular *= np.clip(0.9 + 0.5 * smooth_noise(scene.labels.shape, scene.diameter_px * 2, rng), 0, 1)
        cyto = cellular * (1 - 0.9 * outline) * (0.7 + 0.6 * value)
        eos += cyto * rng.uniform(0.25, 0.45)
        hem += cyto * rng.uniform(0.1, 0.25)
    if regenerating:
        central = rng.uniform(0.2, 0.6)
        inter = rng.uniform(2.5, 6.0)
    else:
        central = 0.0 if rng.random() < 0.5 else rng.uniform(0.02, 0.4)
        inter = rng.uniform(0.2, 1.5)
    nuc, info = nuclei_map(
        scene,
        rng,
        per_fiber=rng.uniform(0.4, 1.6),
        central_fraction=central,
        interstitial_per_fiber_area=inter,
    )
    hem += nuc * rng.uniform(0.8, 1.3)
    eos += nuc * 0.15
    info["central_nuclei_fraction"] = float(central)
    info["regenerating"] = bool(regenerating)
    return [(jitter_vector(HEMATOXYLIN, rng, 0.04), hem), (jitter_vector(EOSIN, rng, 0.03), eos)], info


def _oxidative(scene: Scene, rng, vector, granular: bool) -> tuple[list, dict]:
    levels = {1: rng.uniform(0.6, 0.95), 2: rng.uniform(0.3, 0.5), 3: rng.uniform(0.15, 0.3)}
    lut = np.zeros(4, np.float32)
    for k, v in levels.items():
        lut[k] = v
    lab = lut[scene.types] * (1 + rng.normal(0, 0.08, scene.n_labels + 1))
    # denervated fibers: darker than even the type 1 fibers
    lab[scene.planted] = levels[1] * rng.uniform(1.25, 1.7) * (1 + rng.normal(0, 0.08, int(scene.planted.sum())))
    lab[0] = 0
    c = scene.per_label(lab.astype(np.float32))
    shape = scene.labels.shape
    if granular:
        g = smooth_noise(shape, rng.uniform(1.0, 1.8), rng)
        tex = 0.7 + 0.6 * np.clip(g, 0, None)
    else:
        fine = rng.uniform(1.2, 2.2)
        tex = 0.75 + 0.5 * ridge_network(shape, fine, rng) + 0.1 * smooth_noise(shape, fine / 2, rng)
    tex += 0.08 * smooth_noise(shape, scene.diameter_px * 0.3, rng)
    c *= tex
    c *= 1 + 0.35 * np.exp(-scene.din / 2.0) * scene.fg  # subsarcolemmal mitochondria
    c += _interstitium(scene, rng, rng.uniform(0.02, 0.1), rng.uniform(0.04, 0.12))
    return [(jitter_vector(vector, rng), c)], {"levels": {str(k): float(v) for k, v in levels.items()}}


def nadh(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """NADH-TR: blue-purple, type 1 darkest, intermyofibrillar network, dark planted fibers."""
    return _oxidative(scene, rng, FORMAZAN_NADH, granular=False)


def sdh(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """SDH: purple-blue granular (mitochondria), type 1 darkest, dark planted fibers."""
    return _oxidative(scene, rng, FORMAZAN_SDH, granular=True)


_ATPASE_LEVELS = {  # (type 1, 2A, 2B) concentration per preincubation pH
    "9.4": (0.15, 0.85, 0.7),
    "4.6": (0.9, 0.1, 0.45),
    "4.3": (0.9, 0.08, 0.12),
}


def atpase(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """Myosin ATPase: two or three grey levels by fiber type, white borders."""
    ph = str(rng.choice(list(_ATPASE_LEVELS)))
    levels = np.array((0.0,) + _ATPASE_LEVELS[ph], np.float32) * rng.uniform(0.7, 1.3)
    lab = levels[scene.types] * (1 + rng.normal(0, 0.07, scene.n_labels + 1))
    lab[0] = 0
    c = scene.per_label(lab.astype(np.float32)) * _fiber_texture(scene, rng, 0.06, 0.05)
    c += _interstitium(scene, rng, rng.uniform(0.0, 0.04), rng.uniform(0.02, 0.08))
    return [(jitter_vector(COBALT_SULFIDE, rng, 0.03), c)], {"atpase_ph": ph}


def esterase(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """Non-specific esterase: pale red-brown fibers, dark denervated (planted) fibers."""
    base = rng.uniform(0.15, 0.35)
    lab = base * np.where(scene.types == 1, 1.15, 1.0) * (1 + rng.normal(0, 0.1, scene.n_labels + 1))
    lab[scene.planted] = rng.uniform(0.7, 1.2)
    lab[0] = 0
    c = scene.per_label(lab.astype(np.float32)) * _fiber_texture(scene, rng, 0.1, 0.08)
    c += _interstitium(scene, rng, rng.uniform(0.02, 0.08), rng.uniform(0.05, 0.15))
    nuc, info = nuclei_map(scene, rng, per_fiber=rng.uniform(0.3, 1.0), interstitial_per_fiber_area=0.3)
    c += nuc * rng.uniform(0.2, 0.4)
    return [(jitter_vector(PARAROSANILINE, rng), c)], info


def psr(scene: Scene, rng: np.random.Generator) -> tuple[list, dict]:
    """Picrosirius red: yellow-olive fibers, red collagen lining every fiber and in perimysium."""
    y_lab = _per_fiber(scene, rng, rng.uniform(0.1, 0.25), 0.08)
    yellow = scene.per_label(y_lab)
    streaks = smooth_noise(scene.labels.shape, rng.uniform(1.5, 3.0), rng)
    yellow *= 1 + 0.12 * streaks
    grey = scene.fg * rng.uniform(0.0, 0.04)  # unstained tissue absorbance: olive, not gold
    # collagen: crisp along the fiber surfaces (endomysium), fibrous in wide connective tissue
    inter = scene.tissue & ~scene.fg
    line_w = rng.uniform(1.0, 2.5)
    red = np.where(inter, rng.uniform(1.0, 2.0) * np.exp(-(scene.dout - 1) / line_w), 0.0).astype(np.float32)
    red += _interstitium(scene, rng, rng.uniform(0.05, 0.3), rng.uniform(0.4, 1.1))
    red += np.exp(-np.abs(scene.din - 0.5) / 0.6) * scene.fg * rng.uniform(0.05, 0.25)
    return [
        (jitter_vector(PICRIC_ACID, rng, 0.03), yellow),
        (jitter_vector(SIRIUS_RED, rng), red),
        (np.full(3, 1 / np.sqrt(3), np.float32), grey),
    ], {}


BRIGHTFIELD = {"he": he, "nadh": nadh, "sdh": sdh, "atpase": atpase, "esterase": esterase, "psr": psr}
