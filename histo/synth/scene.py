"""Maps shared by every stain renderer, computed once per geometry.

A :class:`Scene` holds the label image with per-fiber attributes as lookup arrays (index =
label) and distance maps to fiber borders, so that renderers build concentration maps with a
few vectorised lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from histo.synth.geometry import Geometry

TYPE_CODES = {"1": 1, "2A": 2, "2B": 3}


@dataclass
class Scene:
    """Per-geometry maps for rendering.

    Attributes
    ----------
    labels : uint32 (Y, X)
    tissue : bool (Y, X), False on empty glass
    fg : bool (Y, X), fiber pixels
    din : float32 (Y, X), distance from a fiber pixel to the nearest non-fiber pixel (0 outside)
    dout : float32 (Y, X), distance from a non-fiber pixel to the nearest fiber (0 inside)
    connective : float32 (Y, X), 0 on and near fibers, rising to 1 in wide interstitium
    planted : bool (n + 1,), planted[label]
    types : int8 (n + 1,), type code per label (1 = type 1, 2 = 2A, 3 = 2B, 0 = background)
    diameter_px : float, mean fiber diameter
    """

    labels: np.ndarray
    tissue: np.ndarray
    fg: np.ndarray
    din: np.ndarray
    dout: np.ndarray
    connective: np.ndarray
    planted: np.ndarray
    types: np.ndarray
    diameter_px: float
    regenerating: bool = False
    cache: dict = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        return len(self.planted) - 1

    def per_label(self, values: np.ndarray) -> np.ndarray:
        """Paint per-label ``values`` (n + 1,) onto the image grid (index 0 = background)."""
        return values[self.labels]

    def signed_distance(self) -> np.ndarray:
        """Positive inside fibers, negative outside (px)."""
        return self.din - self.dout


def make_scene(geom: Geometry, diameter_px: float) -> Scene:
    """Distance maps and per-label lookups for ``geom``."""
    labels = geom.labels
    n = int(labels.max())
    fg = labels > 0
    fg8 = fg.astype(np.uint8)
    din = cv2.distanceTransform(fg8, cv2.DIST_L2, 3)
    dout = cv2.distanceTransform(1 - fg8, cv2.DIST_L2, 3) if fg.any() else np.full(labels.shape, 1e3, np.float32)
    wide = max(2.0, 0.12 * diameter_px)
    connective = np.clip((dout - wide) / wide, 0.0, 1.0).astype(np.float32)
    connective[~geom.tissue] = 0.0
    planted = np.zeros(n + 1, bool)
    if len(geom.planted):
        planted[np.asarray(geom.planted, np.intp)] = True
    types = np.zeros(n + 1, np.int8)
    for lab, t in geom.fiber_types.items():
        if 0 < lab <= n:
            types[lab] = TYPE_CODES.get(t, 0)
    return Scene(
        labels, geom.tissue, fg, din, dout, connective, planted, types, float(diameter_px),
        regenerating=bool(geom.info.get("regenerating", False)),
    )
