"""Numbers out of JSON values, shared by the Chrome-trace importer and the allocator's events: what a
trace's producers write where a number belongs (a number, a text such as "stream 7", nothing)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_TRAILING_INT = re.compile(r"(-?\d+)\s*$")


def floats(values: list, *, ids: bool = True) -> np.ndarray:
    """Numbers as float64, NaN where missing; strings such as "stream 7" by their trailing digits.
    ``ids``: numbers no int64 holds read as missing too (times are checked against their own range)."""
    try:
        found = np.array(values, dtype=np.float64)
        if found.ndim != 1:  # (lists of equal length, a window of one event's, would read as a table)
            raise ValueError
    except (TypeError, ValueError):  # a few strings among numbers (Kineto's one "Spans" pid): convert only those
        found = np.array([v if type(v) is float or type(v) is int else number(v) for v in values], dtype=np.float64)
    return within_int64(found) if ids else found


def within_int64(values: np.ndarray) -> np.ndarray:
    """NaN (unknown) for numbers no int64 holds (an id, a time or a size of 1e30 is no value)."""
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) >= 2.0**63
    if beyond.any():
        values = np.where(beyond, np.nan, values)
    return values


def number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _TRAILING_INT.search(value)
        if match:
            return float(match.group(1))
    return np.nan
