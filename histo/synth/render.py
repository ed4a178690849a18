"""Render a geometry in a stain: brightfield by Beer-Lambert dye mixing, or membrane IF."""

from __future__ import annotations

import numpy as np

from histo.synth.artefacts import finish_brightfield, tissue_artefacts
from histo.synth.fluorescence import render_if
from histo.synth.geometry import Geometry
from histo.synth.scene import Scene, make_scene
from histo.synth.stains import BRIGHTFIELD

_LN10 = float(np.log(10.0))


def _white(rng: np.random.Generator) -> np.ndarray:
    """Light through empty glass (R, G, B): near white, tinted, sometimes underexposed."""
    base = rng.uniform(225, 252)
    if rng.random() < 0.15:
        base *= rng.uniform(0.65, 0.9)  # dim camera exposure (like data/real/psr)
    tint = rng.normal(0, 5, 3)
    return np.clip(base + tint, 120, 255).astype(np.float32)


def compose_brightfield(dyes: list, white: np.ndarray, mult: np.ndarray | None = None) -> np.ndarray:
    """``white * 10 ** -(sum_k c_k v_k)`` as float32 (Y, X, 3) in 0-255."""
    shape = dyes[0][1].shape
    od = np.zeros(shape + (3,), np.float32)
    for vec, conc in dyes:
        c = conc if mult is None else conc * mult
        od += c[..., None] * np.asarray(vec, np.float32)
    return np.exp(-_LN10 * od) * white


def render_scene(scene: Scene, stain: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Image of ``scene`` in ``stain`` and a dict describing the random choices."""
    if stain == "if":
        return render_if(scene, rng)
    dyes, info = BRIGHTFIELD[stain](scene, rng)
    mult, ainfo = tissue_artefacts(scene, rng)
    white = _white(rng)
    img = compose_brightfield(dyes, white, mult)
    out, finfo = finish_brightfield(img, rng)
    return out, {**info, **ainfo, **finfo, "white_rgb": [float(v) for v in white]}


def render(geom: Geometry, stain: str, rng: np.random.Generator, *, diameter_px: float,
           interstitium: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Render ``geom`` in ``stain`` (one of :data:`histo.synth.STAINS`).

    ``interstitium``: unlabelled structures in membrane units (membrane IF only, see
    :mod:`histo.synth.interstitium`).
    """
    scene = make_scene(geom, diameter_px)
    if interstitium is not None:
        scene.cache["interstitium"] = interstitium
    return render_scene(scene, stain, rng)
