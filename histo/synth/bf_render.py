"""Non-fiber tissue in each brightfield stain's own colours, and the faint low-power look.

:func:`nonfiber_dyes` turns the component maps of :mod:`histo.synth.bf_interstitium` into
extra ``(dye_od_vector, concentration)`` pairs for the Beer-Lambert renderer:

* H&E: nuclei dark purple-blue (hematoxylin), infiltrate cells purplish, red cells bright
  red-orange, collagen and vessel walls pink (eosin), fat and lumens empty white.
* NADH-TR / SDH: infiltrate cells faintly blue with pale unstained nuclei, vessel walls
  moderately stained (smooth muscle mitochondria), connective tissue pale.
* ATPase: cells and connective tissue pale grey, nuclei unstained, smooth muscle grey.
* Esterase: infiltrate cells (macrophages) strongly red-brown, nuclei pale.
* PSR: collagen red, cells and smooth muscle yellow, red cells orange-yellow, nuclei dark
  brown when counterstained (half of the samples).
"""

from __future__ import annotations

import cv2
import numpy as np

from histo.synth.bf_interstitium import NonFiber
from histo.synth.noise import collagen_fibres
from histo.synth.scene import Scene
from histo.synth.stains import (
    COBALT_SULFIDE,
    EOSIN,
    FORMAZAN_NADH,
    FORMAZAN_SDH,
    HEMATOXYLIN,
    PARAROSANILINE,
    PICRIC_ACID,
    SIRIUS_RED,
    jitter_vector,
)

RED_CELL = (0.08, 0.66, 0.75)
GREY = (0.577, 0.577, 0.577)
BROWN = (0.35, 0.55, 0.76)

# component -> [(dye, low, high)] concentration per unit of the component map
_PALETTES = {
    "he": {
        "nuc": [(HEMATOXYLIN, 0.9, 1.5), (EOSIN, 0.05, 0.15)],
        "cyto": [(EOSIN, 0.15, 0.35), (HEMATOXYLIN, 0.06, 0.16)],
        "rbc": [(RED_CELL, 0.7, 1.3)],
        "coll": [(EOSIN, 0.15, 0.4)],
        "wall": [(EOSIN, 0.35, 0.6), (HEMATOXYLIN, 0.02, 0.06)],
        "mem": [(EOSIN, 0.25, 0.5)],
        "nerve": [(EOSIN, 0.12, 0.25), (HEMATOXYLIN, 0.0, 0.03)],
    },
    "nadh": {
        "nuc": [], "cyto": [(FORMAZAN_NADH, 0.12, 0.35)], "rbc": [(BROWN, 0.03, 0.1)],
        "coll": [(FORMAZAN_NADH, 0.02, 0.08)], "wall": [(FORMAZAN_NADH, 0.2, 0.45)],
        "mem": [(FORMAZAN_NADH, 0.05, 0.15)], "nerve": [(FORMAZAN_NADH, 0.05, 0.15)],
    },
    "sdh": {
        "nuc": [], "cyto": [(FORMAZAN_SDH, 0.1, 0.3)], "rbc": [(BROWN, 0.03, 0.1)],
        "coll": [(FORMAZAN_SDH, 0.02, 0.06)], "wall": [(FORMAZAN_SDH, 0.15, 0.4)],
        "mem": [(FORMAZAN_SDH, 0.04, 0.12)], "nerve": [(FORMAZAN_SDH, 0.04, 0.12)],
    },
    "atpase": {
        "nuc": [], "cyto": [(COBALT_SULFIDE, 0.06, 0.2)], "rbc": [(BROWN, 0.02, 0.08)],
        "coll": [(COBALT_SULFIDE, 0.02, 0.06)], "wall": [(COBALT_SULFIDE, 0.15, 0.5)],
        "mem": [(COBALT_SULFIDE, 0.05, 0.15)], "nerve": [(COBALT_SULFIDE, 0.03, 0.1)],
    },
    "esterase": {
        "nuc": [(PARAROSANILINE, 0.05, 0.15)], "cyto": [(PARAROSANILINE, 0.35, 0.8)], "rbc": [(BROWN, 0.05, 0.12)],
        "coll": [(PARAROSANILINE, 0.03, 0.08)], "wall": [(PARAROSANILINE, 0.15, 0.35)],
        "mem": [(PARAROSANILINE, 0.08, 0.2)], "nerve": [(PARAROSANILINE, 0.05, 0.12)],
    },
    "psr": {
        "nuc": [(GREY, 0.05, 0.15)], "cyto": [(PICRIC_ACID, 0.08, 0.2), (GREY, 0.02, 0.06)],
        "rbc": [(PICRIC_ACID, 0.4, 0.8), (SIRIUS_RED, 0.05, 0.15)],
        "coll": [(SIRIUS_RED, 0.6, 1.3)], "wall": [(PICRIC_ACID, 0.2, 0.4), (SIRIUS_RED, 0.1, 0.25)],
        "mem": [(SIRIUS_RED, 0.3, 0.7)], "nerve": [(PICRIC_ACID, 0.08, 0.2), (SIRIUS_RED, 0.1, 0.3)],
    },
}
#: stains whose nuclei stay unstained: the cell body is cleared where a nucleus sits
_PALE_NUCLEI = {"nadh": 0.8, "sdh": 0.8, "atpase": 0.85, "esterase": 0.6}


def nonfiber_dyes(stain: str, scene: Scene, nf: NonFiber, dyes: list, rng: np.random.Generator) -> tuple[list, dict]:
    """``dyes`` of ``stain`` with the non-fiber tissue of ``nf`` added; info of the choices."""
    maps = nf.maps
    keep = 1.0 - maps["clear"]
    out = [(v, c * keep) for v, c in dyes]  # lumens and fat vacuoles carry no dye
    pal = _PALETTES[stain]
    info: dict = {"perimysium": nf.perimysium}
    nuc = maps["nuc"]
    if stain in _PALE_NUCLEI:
        hole = 1.0 - _PALE_NUCLEI[stain] * np.clip(nuc, 0, 1)
        out = [(v, c * hole) for v, c in out]
    palette = dict(pal)
    if stain == "psr" and rng.random() < 0.5:  # Weigert's hematoxylin counterstain
        palette["nuc"] = [(BROWN, 0.6, 1.0), (GREY, 0.2, 0.4)]
        info["psr_counterstain"] = True
    sums: dict[tuple, np.ndarray] = {}
    for comp, entries in palette.items():
        m = maps[comp]
        if comp == "cyto" and stain in _PALE_NUCLEI:
            m = m * (1.0 - _PALE_NUCLEI[stain] * np.clip(nuc, 0, 1))
        for vec, lo, hi in entries:
            acc = sums.get(vec)
            add = m * np.float32(rng.uniform(lo, hi))
            sums[vec] = add if acc is None else acc + add
    # perimysium: loose (wispy, pale, fibrillar with clear spaces) or dense (thick collagen)
    if nf.perimysium != "plain" and scene.connective.any():
        wisps = collagen_fibres(scene.labels.shape, rng.uniform(1.0, 2.0), rng)
        conn = scene.connective
        coll_vec = palette["coll"][0]
        if nf.perimysium == "loose":
            fade = 1.0 - conn * rng.uniform(0.5, 0.9) * (1.0 - wisps)
            out = [(v, c * fade) for v, c in out]
        else:
            sums[coll_vec[0]] = sums.get(coll_vec[0], 0) + conn * keep * (0.5 + 0.5 * wisps) * np.float32(
                rng.uniform(0.5, 1.0) * coll_vec[2])
    for vec, conc in sums.items():
        out.append((jitter_vector(vec, rng, 0.02), conc))
    return out, info


def faint_endomysium(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Low-power look: the 1-2 px endomysium blends into its fibers (mixed with a local blur)."""
    alpha = float(rng.uniform(0.5, 0.85))
    gap = (scene.tissue & ~scene.fg & (scene.dout <= 2.5)).astype(np.float32)
    if not gap.any():
        return img, alpha
    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    a = (alpha * cv2.GaussianBlur(gap, (0, 0), 0.7))[..., None]
    return img * (1 - a) + blurred * a, alpha
