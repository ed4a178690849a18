"""Things that are not fibers in a membrane immunofluorescence section.

A laminin / dystrophin / WGA channel lights up far more than fiber membranes: capillaries
(small rings with a dark lumen, 5-15 µm, at the corners between fibers), arterioles and
venules (a thick textured wall around a lumen), nerve bundles (a bright perineurium around a
mass of small bright axon rings and wavy streaks), bright fibrous perimysium and debris. A
segmenter that never saw them calls their dark holes fibers. :func:`carve_interstitium` puts
such structures into a geometry, carving the room they need out of the fibers (the cut
fibers keep their exact labels; fibers mostly covered are dropped), and returns their
fluorescence in membrane units, which :func:`histo.synth.fluorescence.render_if` adds to the
membrane signal. They are never labelled: the ground truth stays the fibers only.

Sizes are fractions of the normal fiber diameter ``d`` (a 50 µm fiber: a capillary of
0.1-0.3 d is 5-15 µm across).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from histo.synth.geometry import Geometry
from histo.synth.labelops import clean_labels
from histo.synth.noise import streak_noise

_SUB = 4  # sub-pixel bits of OpenCV drawing (coordinates x 16)
_SCALE = 1 << _SUB


def _pt(y: float, x: float) -> tuple[int, int]:
    return int(round(x * _SCALE)), int(round(y * _SCALE))


def _ring(canvas, y, x, r, thick, value, axes_ratio=1.0, angle=0.0):
    """Anti-aliased elliptical ring of radius ``r`` (px) and ``thick`` px, max-combined."""
    tmp = np.zeros(canvas.shape, np.float32)
    axes = (max(1, int(round(r * _SCALE))), max(1, int(round(r * axes_ratio * _SCALE))))
    cv2.ellipse(tmp, _pt(y, x), axes, float(angle), 0, 360, float(value), max(1, int(round(thick))),
                cv2.LINE_AA, _SUB)
    np.maximum(canvas, tmp, out=canvas)


def _disk(shape, y, x, r, axes_ratio=1.0, angle=0.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    axes = (max(1, int(round(r * _SCALE))), max(1, int(round(r * axes_ratio * _SCALE))))
    cv2.ellipse(m, _pt(y, x), axes, float(angle), 0, 360, 1, -1, cv2.LINE_8, _SUB)
    return m.astype(bool)


def _pick(candidates: np.ndarray, weights: np.ndarray | None, rng) -> tuple[int, int] | None:
    if not len(candidates):
        return None
    if weights is None:
        i = int(rng.integers(len(candidates)))
    else:
        p = weights / weights.sum()
        i = int(rng.choice(len(candidates), p=p))
    return int(candidates[i, 0]), int(candidates[i, 1])


def _capillary(signal, y, x, r, thick, rng):
    _ring(signal, y, x, r, thick, rng.uniform(0.5, 1.2), rng.uniform(0.75, 1.0), rng.uniform(0, 180))
    if rng.random() < 0.3:  # red cells or plasma in the lumen: a dimmer fill
        fill = _disk(signal.shape, y, x, max(0.5, r - thick))
        signal[fill] = np.maximum(signal[fill], rng.uniform(0.1, 0.4))


def _vessel(signal, y, x, r, thick, rng):
    """Arteriole / venule: thick wall of several bright laminae around a lumen."""
    ratio, angle = rng.uniform(0.6, 1.0), rng.uniform(0, 180)
    wall = r * rng.uniform(0.2, 0.45)
    for k, rr in enumerate(np.linspace(r - wall, r, max(2, int(wall / max(thick, 1.0))))):
        _ring(signal, y, x, rr, thick, rng.uniform(0.4, 1.1) * (1.2 if k == 0 else 1.0), ratio, angle)
    band = _disk(signal.shape, y, x, r, ratio, angle) & ~_disk(signal.shape, y, x, r - wall, ratio, angle)
    signal[band] = np.maximum(signal[band], rng.uniform(0.15, 0.45))


def _nerve(signal, y, x, r, thick, d, rng):
    """Nerve bundle: perineurium ring around densely packed small axon rings and streaks."""
    ratio, angle = rng.uniform(0.3, 0.9), rng.uniform(0, 180)
    _ring(signal, y, x, r, thick * rng.uniform(1.0, 2.5), rng.uniform(0.6, 1.3), ratio, angle)
    inside = _disk(signal.shape, y, x, max(1.0, r - thick), ratio, angle)
    ys, xs = np.nonzero(inside)
    if not len(ys):
        return
    h, w = signal.shape
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = (y1 - y0, x1 - x0)
    axon_r = d * rng.uniform(0.015, 0.05)
    if rng.random() < 0.65:  # transverse: many small bright rings
        n = int(len(ys) / (np.pi * (2 * axon_r) ** 2) * rng.uniform(0.3, 0.8))
        tex = np.zeros(sub, np.float32)
        for k in rng.integers(0, len(ys), min(n, 4000)):
            _ring(tex, ys[k] - y0, xs[k] - x0, axon_r * rng.uniform(0.6, 1.4), 1, rng.uniform(0.3, 1.0))
    else:  # oblique / longitudinal: wavy bright streaks
        s = streak_noise(sub, d * rng.uniform(0.3, 1.0), max(1.0, axon_r), angle, rng)
        tex = np.clip(1 - np.abs(s) / 0.5, 0, 1) ** 2 * rng.uniform(0.5, 1.0)
    tex = tex + rng.uniform(0.05, 0.3)  # diffuse endoneurial signal
    region = signal[y0:y1, x0:x1]
    m = inside[y0:y1, x0:x1]
    region[m] = np.maximum(region[m], tex[m])


def _debris(signal, y, x, d, rng):
    r = d * rng.uniform(0.02, 0.1)
    blob = np.zeros(signal.shape, np.float32)
    for _ in range(int(rng.integers(1, 4))):
        oy, ox = rng.normal(0, r, 2)
        m = _disk(signal.shape, y + oy, x + ox, max(0.7, r * rng.uniform(0.4, 1.0)), rng.uniform(0.4, 1.0),
                  rng.uniform(0, 180))
        blob[m] = rng.uniform(0.3, 1.5)
    np.maximum(signal, blob, out=signal)


def carve_interstitium(geom: Geometry, diameter_px: float, rng: np.random.Generator, *,
                       capillaries: float | None = None, large: float | None = None,
                       debris: float | None = None) -> tuple[Geometry, np.ndarray, dict]:
    """Add unlabelled non-fiber structures to ``geom``.

    Parameters
    ----------
    geom : Geometry
        Fibers to make room in (their labels are cut where a structure sits).
    diameter_px : float
        Normal fiber diameter ``d``.
    rng : numpy.random.Generator
    capillaries : float, optional
        Capillaries per fiber (default: uniform 0-0.2).
    large : float, optional
        Expected nerve bundles + larger vessels per (6 d)^2 of image (default: uniform 0-1.5).
    debris : float, optional
        Expected bright debris particles per d^2 of interstitium (default: uniform 0-0.15).

    Returns
    -------
    (Geometry, signal, info)
        The geometry with cut labels (relabelled 1..n, planted and fiber types mapped),
        float32 ``signal`` (Y, X) in membrane units (0 where nothing was added) and counts.

    Examples
    --------
    >>> from histo.synth.geometry import generate_packing
    >>> g = generate_packing((128, 128), 30.0, np.random.default_rng(1))
    >>> g2, signal, info = carve_interstitium(g, 30.0, np.random.default_rng(2), large=2.0)
    >>> signal.shape == g.labels.shape and int(g2.labels.max()) <= int(g.labels.max())
    True
    """
    d = float(diameter_px)
    labels = geom.labels.astype(np.int32)
    h, w = labels.shape
    n0 = int(labels.max())
    signal = np.zeros((h, w), np.float32)
    carve = np.zeros((h, w), bool)
    planted = np.zeros(n0 + 1, bool)
    planted[np.asarray(geom.planted, np.intp)] = True
    fg = labels > 0
    dout = cv2.distanceTransform((~fg).astype(np.uint8), cv2.DIST_L2, 3) if fg.any() else np.full((h, w), 1e3, np.float32)
    thick = max(1.0, d * rng.uniform(0.02, 0.05))  # a basal lamina at the membrane's apparent width
    margin = max(1.0, 0.5 * thick)
    counts = {"capillaries": 0, "vessels": 0, "nerves": 0, "debris": 0}

    def free_of_planted(mask) -> bool:
        return not planted[labels[mask]].any()

    # nerve bundles and larger vessels: in wide interstitium when there is room, else carved
    lam = (rng.uniform(0.0, 1.5) if large is None else float(large)) * h * w / (6 * d) ** 2
    wide = np.argwhere(geom.tissue & (dout > 0.3 * d))
    tissue_px = np.argwhere(geom.tissue)
    for _ in range(int(rng.poisson(lam))):
        kind = "nerves" if rng.random() < 0.55 else "vessels"
        r = d * (rng.uniform(0.35, 1.3) if kind == "nerves" else rng.uniform(0.15, 0.6))
        use_wide = len(wide) and rng.random() < 0.6
        at = _pick(wide, dout[wide[:, 0], wide[:, 1]] ** 2, rng) if use_wide else _pick(tissue_px, None, rng)
        if at is None:
            continue
        y, x = at
        room = _disk((h, w), y, x, r + margin)
        if not free_of_planted(room):
            continue
        if kind == "nerves":
            _nerve(signal, y, x, r, thick, d, rng)
        else:
            _vessel(signal, y, x, r, thick, rng)
        carve |= room
        counts[kind] += 1

    # capillaries: small rings in the endomysium next to fibers, notching them a little
    per_fiber = rng.uniform(0.0, 0.2) if capillaries is None else float(capillaries)
    near = np.argwhere(geom.tissue & ~fg & (dout <= max(1.5, 0.08 * d)))
    for _ in range(int(rng.poisson(per_fiber * n0))):
        at = _pick(near, None, rng)
        if at is None:
            break
        r = d * rng.uniform(0.05, 0.15)
        room = _disk((h, w), at[0], at[1], r + margin)
        if not free_of_planted(room):
            continue
        _capillary(signal, at[0], at[1], r, max(1.0, thick * rng.uniform(0.6, 1.0)), rng)
        carve |= room
        counts["capillaries"] += 1

    # debris: small bright particles in the interstitium
    rate = rng.uniform(0.0, 0.15) if debris is None else float(debris)
    inter = np.argwhere(geom.tissue & ~fg & (dout > 1))
    for _ in range(int(rng.poisson(rate * len(inter) / d**2))):
        at = _pick(inter, None, rng)
        if at is None:
            break
        _debris(signal, at[0], at[1], d, rng)
        counts["debris"] += 1

    if not carve.any():
        return geom, signal, counts
    # cut the fibers; a fiber that lost most of itself is gone (its remnant is interstitium)
    before = np.bincount(labels.ravel(), minlength=n0 + 1)
    cut = np.where(carve, 0, labels)
    after = np.bincount(cut.ravel(), minlength=n0 + 1)
    gone = after < 0.5 * np.maximum(before, 1)
    gone[0] = False
    cut[gone[cut]] = 0
    new, mapping = clean_labels(cut, min_area_px=max(6.0, 0.03 * np.pi / 4 * d * d))
    new_planted = mapping[np.asarray(geom.planted, np.intp)] if len(geom.planted) else np.zeros(0, np.uint32)
    new_planted = np.unique(new_planted[new_planted > 0]).astype(np.uint32)
    types = {int(mapping[k]): t for k, t in geom.fiber_types.items() if 0 < k < len(mapping) and mapping[k] > 0}
    out = replace(geom, labels=new, planted=new_planted, fiber_types=types, tissue=geom.tissue | carve)
    counts["fibers_removed"] = int(n0 - new.max())
    return out, signal, counts
