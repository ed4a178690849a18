"""Plain JSON values from what histo computes (numpy, pandas, paths, dataclasses).

Every ``summary.json``, ``review.json`` and JSON output goes through :func:`to_jsonable`, so
NaN and infinity are stored as ``null`` (strict JSON) and numpy scalars as plain numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass

import numpy as np
import pandas as pd


def to_jsonable(obj):
    """Plain JSON types from numpy/pandas/paths/dataclasses; NaN and inf become None.

    Examples
    --------
    >>> to_jsonable({"a": np.float32(1.5), "b": np.nan, "c": (np.int64(2), True), "d": np.bool_(False)})
    {'a': 1.5, 'b': None, 'c': [2, True], 'd': False}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (pd.Series, pd.Index)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if obj is pd.NA or obj is pd.NaT:
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")
