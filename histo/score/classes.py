"""Fiber classes shown to the user (overlay, napari colours, report) and their colours.

One place decides the display class of a fiber from the boolean columns the scoring adds
(``is_sad``, ``is_regenerating``, ``is_small``, ``is_dark``, ``is_angular``, ``excluded``, and ``rejected``: objects
the fiber score says are not fibers, shown as ``"not_fiber"`` unless a reviewer flagged them
``"restored"``); missing columns count as False, so a table from ``measure_fibers`` alone is all
``"normal"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Display classes, in priority order (a SAD fiber is also small, dark and angular).
CLASS_NAMES: tuple[str, ...] = ("excluded", "not_fiber", "sad", "regenerating", "small", "dark",
                                 "angular", "normal")

#: RGB colours, 0-255, chosen to stay distinguishable for red-green colour blindness.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "normal": (0, 200, 255),     # cyan
    "small": (255, 200, 0),      # yellow
    "angular": (170, 90, 255),   # violet
    "dark": (0, 90, 255),        # blue
    "sad": (255, 40, 40),        # red
    "regenerating": (255, 130, 0),  # orange: H&E basophilic and centrally nucleated, never SAD
    "excluded": (128, 128, 128), # grey
    "not_fiber": (255, 255, 255),  # white: rejected by the fiber score, not counted
}

#: Integer code of each class (index in CLASS_NAMES), handy for label colouring.
CLASS_CODES: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}


def fiber_class(fibers: pd.DataFrame) -> pd.Series:
    """Display class of every fiber.

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table; uses ``excluded``, ``is_sad``, ``is_regenerating`` (H&E),
        ``is_small``, ``is_dark`` and ``is_angular`` when present.

    Returns
    -------
    Series of str, indexed like ``fibers``.

    Examples
    --------
    >>> df = pd.DataFrame({"is_small": [True, False], "is_sad": [False, False]})
    >>> list(fiber_class(df))
    ['small', 'normal']
    """
    out = np.full(len(fibers), "normal", dtype=object)
    # Lowest priority first so higher-priority classes overwrite.
    for name, column in (
        ("angular", "is_angular"),
        ("dark", "is_dark"),
        ("small", "is_small"),
        ("regenerating", "is_regenerating"),
        ("sad", "is_sad"),
        ("not_fiber", "rejected"),
        ("excluded", "excluded"),
    ):
        if column in fibers:
            hit = fibers[column].fillna(False).to_numpy(dtype=bool)
            if column == "rejected" and "review_flag" in fibers:
                hit = hit & (fibers["review_flag"].fillna("").to_numpy(dtype=object) != "restored")  # to_numpy may be read-only
            out[hit] = name
    return pd.Series(out, index=fibers.index, name="fiber_class")
