"""A review applied to a per-fiber table: the reviewer's flags and what they change.

A pathologist may flag a fiber ``"excluded"`` (measured but not counted), ``"confirmed_sad"``
or ``"not_sad"`` (overriding the classifier's small-dark-angular call), or ``"restored"`` (an
object the fiber score rejected as not a fiber is a fiber after all: it is counted). :func:`apply_review`
turns flags into the ``excluded``, ``counted`` and ``is_sad`` columns every figure honours
(the override rule is :func:`histo.score.scoring.reviewed_sad`), and
:func:`strip_review` undoes it. How a review is stored is :mod:`histo.review.state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from histo.errors import HistoInputError
from histo.score.scoring import reviewed_sad

#: Flags a reviewer can set on a fiber.
FLAGS: tuple[str, ...] = ("excluded", "confirmed_sad", "not_sad", "restored")

#: Columns :func:`apply_review` derives; they are never stored with a reviewed table.
REVIEW_COLUMNS: tuple[str, ...] = ("review_flag", "excluded", "is_sad_auto")


def validate_flags(flags: Mapping[Any, str] | None) -> dict[int, str]:
    """Flags as a plain ``{int label: flag}`` dict, sorted by label, checked.

    Raises
    ------
    HistoInputError
        On a label that is not a positive integer or an unknown flag.

    Examples
    --------
    >>> validate_flags({"5": "excluded", 2: "confirmed_sad"})
    {2: 'confirmed_sad', 5: 'excluded'}
    """
    out: dict[int, str] = {}
    for key, flag in (flags or {}).items():
        try:
            label = int(key)
        except (TypeError, ValueError) as err:
            raise HistoInputError(f"review flag key {key!r} is not a fiber label (an integer)") from err
        if label <= 0 or label != float(key):
            raise HistoInputError(f"review flag key {key!r} is not a fiber label (a positive integer)")
        if flag not in FLAGS:
            raise HistoInputError(f"unknown review flag {flag!r} for fiber {label}; use one of {', '.join(FLAGS)}")
        out[label] = str(flag)
    return dict(sorted(out.items()))


def apply_review(fibers: pd.DataFrame, review) -> pd.DataFrame:
    """The per-fiber table with a review applied (a new table; the input is not changed).

    Adds or replaces

    * ``review_flag``: the flag of each fiber, ``""`` when none;
    * ``excluded``: True for fibers flagged ``"excluded"`` (the review decides alone);
    * ``is_sad_auto``: the classifier's SAD call (kept from the first application);
    * ``is_sad``: ``True`` when ``"confirmed_sad"``, ``False`` when ``"not_sad"``, else the
      classifier's call (only when the table has ``is_sad``);
    * ``counted``: not edge, not excluded and not rejected by the fiber score unless flagged
      ``"restored"`` (only when the table has ``counted``).

    Applying twice gives the same table as applying once.

    Parameters
    ----------
    fibers : DataFrame
        Per-fiber table with a ``label`` column.
    review : histo.review.state.Review or mapping of label to flag or None

    Examples
    --------
    >>> df = pd.DataFrame({"label": [1, 2, 3], "is_sad": [True, False, False]})
    >>> out = apply_review(df, {1: "not_sad", 2: "confirmed_sad", 3: "excluded"})
    >>> out["is_sad"].tolist(), out["excluded"].tolist()
    ([False, True, False], [False, False, True])
    """
    if "label" not in fibers:
        raise HistoInputError("the fibers table has no 'label' column; pass a table from measure_fibers")
    flags = validate_flags(getattr(review, "flags", review))
    out = fibers.copy()
    flag = pd.Series([flags.get(int(v), "") for v in out["label"].to_numpy()], index=out.index, dtype=object)
    out["review_flag"] = flag.to_numpy()
    out["excluded"] = (flag == "excluded").to_numpy()
    if "is_sad" in out:
        auto = out["is_sad_auto"] if "is_sad_auto" in out else out["is_sad"]
        auto = auto.fillna(False).astype(bool)
        out["is_sad_auto"] = auto.to_numpy()
        out["is_sad"] = reviewed_sad(auto.to_numpy(), flag.to_numpy())
    if "counted" in out:
        edge = out["is_edge"].fillna(False).astype(bool) if "is_edge" in out else False
        out["counted"] = (~(edge | out["excluded"] | _rejected(out, flag))).to_numpy()
    return out


def _rejected(fibers: pd.DataFrame, flag=None) -> np.ndarray:
    """The objects the fiber score rejected that no reviewer restored."""
    if "rejected" not in fibers:
        return np.zeros(len(fibers), bool)
    rej = fibers["rejected"].fillna(False).astype(bool).to_numpy()
    if flag is None:
        return rej
    return rej & (np.asarray(flag, dtype=object) != "restored")


def strip_review(fibers: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`apply_review`: the classifier's own calls, without review columns.

    ``is_sad`` goes back to ``is_sad_auto``, ``counted`` to "not edge", and the review columns
    (:data:`REVIEW_COLUMNS`) are dropped. A table never reviewed is returned unchanged (copied).
    """
    out = fibers.copy()
    if "is_sad_auto" in out and "is_sad" in out:
        out["is_sad"] = out["is_sad_auto"].fillna(False).astype(bool).to_numpy()
    if "excluded" in out and "counted" in out and "is_edge" in out:
        out["counted"] = (~out["is_edge"].fillna(False).astype(bool)).to_numpy() & ~_rejected(out)
    return out.drop(columns=[c for c in REVIEW_COLUMNS if c in out])
