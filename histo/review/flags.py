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

#: What a reader sees for each flag (tables, legends, status lines); files keep :data:`FLAGS`.
FLAG_LABELS: dict[str, str] = {
    "excluded": "Excluded",
    "confirmed_sad": "SAD (confirmed)",
    "not_sad": "Not SAD",
    "restored": "Fiber (restored)",
}


def flag_label(flag: str | None) -> str:
    """The human label of a flag (``""`` for no flag; unknown names are shown as they are).

    Examples
    --------
    >>> flag_label("confirmed_sad"), flag_label(None), flag_label("")
    ('SAD (confirmed)', '', '')
    """
    if not flag:
        return ""
    return FLAG_LABELS.get(str(flag), str(flag))


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


class FlagHistory:
    """Undo / redo of flag changes: each step is one action, however many fibers it flagged.

    A step stores every touched label's flag before and after (``None`` = no flag), so a bulk
    exclusion of 40 fibers is undone in one go. A new step after an undo drops the redo steps,
    as in any editor. Pure bookkeeping: the caller applies the returned changes.

    Parameters
    ----------
    limit : int
        Oldest steps are forgotten beyond this many.

    Examples
    --------
    >>> h = FlagHistory()
    >>> flags = h.apply({}, {3: "excluded", 4: "excluded"})
    >>> flags = h.apply(flags, {3: "confirmed_sad"})
    >>> flags
    {3: 'confirmed_sad', 4: 'excluded'}
    >>> flags = h.undo(flags); flags
    {3: 'excluded', 4: 'excluded'}
    >>> flags = h.undo(flags); flags, h.can_undo, h.can_redo
    ({}, False, True)
    >>> h.redo(flags)
    {3: 'excluded', 4: 'excluded'}
    """

    def __init__(self, limit: int = 1000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = int(limit)
        self._undo: list[tuple[dict[int, str | None], dict[int, str | None]]] = []
        self._redo: list[tuple[dict[int, str | None], dict[int, str | None]]] = []

    @property
    def can_undo(self) -> bool:
        """True when there is a step to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """True when there is an undone step to redo."""
        return bool(self._redo)

    def clear(self) -> None:
        """Forget every step (e.g. after the labels were re-measured)."""
        self._undo.clear()
        self._redo.clear()

    def apply(self, flags: Mapping[int, str], changes: Mapping[Any, str | None]) -> dict[int, str]:
        """``flags`` with ``changes`` applied (``None`` clears), recorded as one step.

        Labels whose flag does not change are not recorded; a step changing nothing is not
        a step (the redo steps survive it).

        Raises
        ------
        HistoInputError
            On an unknown flag or a label that is not a positive integer.
        """
        wanted = {int(k): v for k, v in changes.items()}
        validate_flags({k: v for k, v in wanted.items() if v is not None})
        before = {k: flags.get(k) for k, v in wanted.items() if flags.get(k) != v}
        if not before:
            return dict(flags)
        after = {k: wanted[k] for k in before}
        self._undo.append((before, after))
        del self._undo[:-self.limit]
        self._redo.clear()
        return _with(flags, after)

    def undo(self, flags: Mapping[int, str]) -> dict[int, str]:
        """``flags`` with the last step undone (unchanged when there is none)."""
        if not self._undo:
            return dict(flags)
        before, after = self._undo.pop()
        self._redo.append((before, after))
        return _with(flags, before)

    def redo(self, flags: Mapping[int, str]) -> dict[int, str]:
        """``flags`` with the last undone step done again (unchanged when there is none)."""
        if not self._redo:
            return dict(flags)
        before, after = self._redo.pop()
        self._undo.append((before, after))
        return _with(flags, after)

    def last_labels(self, *, undone: bool = False) -> list[int]:
        """Labels of the step :meth:`undo` (or, ``undone=True``, :meth:`redo`) would change."""
        stack = self._redo if undone else self._undo
        return sorted(stack[-1][0]) if stack else []


def _with(flags: Mapping[int, str], changes: Mapping[int, str | None]) -> dict[int, str]:
    out = dict(flags)
    for label, flag in changes.items():
        if flag is None:
            out.pop(label, None)
        else:
            out[label] = flag
    return dict(sorted(out.items()))
