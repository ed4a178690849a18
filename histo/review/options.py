"""The scoring choices a reviewer makes in the napari widget, as :class:`ScoringSettings`.

The widget offers what the command line offers (``--reference``, ``--age``, ``--sex``,
``--type-channels``, ``--nuclei-channel``); :func:`settings_from_choices` turns its plain values
into the same frozen :class:`histo.score.settings.ScoringSettings` the CLI builds, so a slide
scored in napari and with ``histo score`` is scored alike. Pure, no Qt.

Examples
--------
>>> parse_type_channels("I=1, IIa=2")
{'I': 1, 'IIa': 2}
>>> s = settings_from_choices(reference="adult-female", type_channels="I=1", nuclei_channel=0)
>>> s.normal_range, s.fiber_types.type_channels, s.nuclei.channel
((30.0, 70.0), (('I', 1),), 0)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.score.reference import REFERENCES
from histo.score.settings import ScoringSettings

#: The references the widget offers (the CLI's ``--reference``).
REFERENCE_CHOICES: tuple[str, ...] = REFERENCES


def parse_type_channels(text: str) -> dict[str, int]:
    """``"I=1, IIa=2"`` as ``{"I": 1, "IIa": 2}`` (empty text: no channels).

    Raises
    ------
    HistoInputError
        For anything that is not NAME=CHANNEL pairs separated by commas.
    """
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, ch = part.partition("=")
        if not sep or not name.strip() or not ch.strip().isdigit():
            raise HistoInputError(f"type channels {text!r}: expected NAME=CHANNEL pairs separated "
                                  "by commas, e.g. I=1, IIa=2")
        out[name.strip()] = int(ch)
    return out


def settings_from_choices(base: ScoringSettings | None = None, *, reference: str = "adult-male",
                          age_years: float | None = None, type_channels: str = "",
                          nuclei_channel: int | None = None) -> ScoringSettings:
    """Scoring settings for the widget's choices, on top of ``base`` (defaults when None).

    Parameters
    ----------
    reference : str
        One of :data:`REFERENCE_CHOICES`.
    age_years : float, optional
        Age, for the child reference.
    type_channels : str
        IF fiber-type channels, ``"I=1, IIa=2"`` (0-based).
    nuclei_channel : int, optional
        IF nuclear channel (0-based).
    """
    if reference not in REFERENCE_CHOICES:
        raise HistoInputError(f"unknown reference {reference!r}; use one of {', '.join(REFERENCE_CHOICES)}")
    base = base or ScoringSettings()
    changes: dict[str, Any] = {"reference": reference, "age_years": age_years}
    channels = parse_type_channels(type_channels)
    changes["fiber_types"] = dataclasses.replace(base.fiber_types, type_channels=tuple(channels.items()))
    changes["nuclei"] = dataclasses.replace(base.nuclei, channel=nuclei_channel)
    return dataclasses.replace(base, **changes)


def choices_from_settings(settings: ScoringSettings) -> dict[str, Any]:
    """The widget's values for ``settings`` (the inverse of :func:`settings_from_choices`).

    >>> choices_from_settings(settings_from_choices(reference="adult-female"))["reference"]
    'adult-female'
    """
    reference = settings.reference or f"adult-{settings.sex or 'male'}"
    return {
        "reference": reference,
        "age_years": settings.age_years,
        "type_channels": ", ".join(f"{k}={v}" for k, v in settings.fiber_types.type_channels),
        "nuclei_channel": settings.nuclei.channel,
    }


#: Sizes of the per-fiber table that follow the pixel size (name -> power of the pixel size).
SIZE_POWERS: dict[str, int] = {"centroid_y": 1, "centroid_x": 1, "area": 2, "perimeter": 1,
                               "min_feret": 1, "max_feret": 1, "equivalent_diameter": 1}


def with_pixel_size(fibers: pd.DataFrame, pixel_size_um: float, *,
                    previous_um: float | None = None) -> pd.DataFrame:
    """The per-fiber table with its micrometre sizes for a new pixel size (a new table).

    Each size is taken from its pixel column (``area_px``, ``min_feret_px``, ...) when the
    table has one, else rescaled from its micrometre column by ``pixel_size_um / previous_um``;
    a size with neither stays as it is.

    Raises
    ------
    HistoInputError
        For a pixel size that is not a positive number, or micrometre sizes without their
        pixel column and without the previous pixel size.

    Examples
    --------
    >>> df = pd.DataFrame({"label": [1], "area_px": [100.0], "min_feret_px": [10.0]})
    >>> out = with_pixel_size(df, 0.5)
    >>> out[["area_um2", "min_feret_um"]].iloc[0].tolist()
    [25.0, 5.0]
    >>> with_pixel_size(out.drop(columns=["area_px", "min_feret_px"]), 1.0, previous_um=0.5)["min_feret_um"].tolist()
    [10.0]
    """
    try:
        ps = float(pixel_size_um)
    except (TypeError, ValueError):
        ps = float("nan")
    if not (ps > 0 and np.isfinite(ps)):
        raise HistoInputError(f"pixel size {pixel_size_um!r} µm: give a positive number of micrometres per pixel")
    out = fibers.copy()
    for name, power in SIZE_POWERS.items():
        um = f"{name}_um2" if power == 2 else f"{name}_um"
        px = f"{name}_px"
        if px in out:
            out[um] = pd.to_numeric(out[px], errors="coerce").astype(float) * ps ** power
        elif um in out:
            if not previous_um:
                raise HistoInputError(f"the fiber table has {um} but no {px} and no previous pixel size; "
                                      "measure the slide again with `histo measure --pixel-size`")
            out[um] = pd.to_numeric(out[um], errors="coerce").astype(float) * (ps / float(previous_um)) ** power
    return out
