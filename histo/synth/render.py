"""Render a geometry in a stain: brightfield by Beer-Lambert dye mixing, or membrane IF."""

from __future__ import annotations

import numpy as np

from histo.synth.artefacts import finish_brightfield, tissue_artefacts
from histo.synth.bf_render import faint_endomysium, nonfiber_dyes
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
    nonfiber = scene.cache.get("nonfiber")
    if nonfiber is not None:
        dyes, ninfo = nonfiber_dyes(stain, scene, nonfiber, dyes, rng)
        info = {**info, **ninfo}
    mult, ainfo = tissue_artefacts(scene, rng)
    white = _white(rng)
    img = compose_brightfield(dyes, white, mult)
    if scene.cache.get("low_mag"):
        img, info["faint_endomysium"] = faint_endomysium(img, scene, rng)
    out, finfo = finish_brightfield(img, rng)
    return out, {**info, **ainfo, **finfo, "white_rgb": [float(v) for v in white]}


def render(geom: Geometry, stain: str, rng: np.random.Generator, *, diameter_px: float,
           interstitium=None, low_mag: bool = False) -> tuple[np.ndarray, dict]:
    """Render ``geom`` in ``stain`` (one of :data:`histo.synth.STAINS`).

    ``interstitium``: unlabelled structures, in membrane units for membrane IF (a float32
    array, see :mod:`histo.synth.interstitium`) or a
    :class:`histo.synth.bf_interstitium.NonFiber` for brightfield stains. ``low_mag``: the
    endomysium blends into the fibers (brightfield).
    """
    scene = make_scene(geom, diameter_px)
    if interstitium is not None:
        scene.cache["nonfiber" if stain != "if" else "interstitium"] = interstitium
    scene.cache["low_mag"] = bool(low_mag)
    return render_scene(scene, stain, rng)
