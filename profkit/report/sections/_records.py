"""JSON records of a table's columns (not a section: a helper the sections share)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def records(frame: pd.DataFrame | Mapping[str, Any], columns: Iterable[str],
            at: np.ndarray | None = None) -> list[dict]:
    """One dict per row of the ``columns`` that ``frame`` has, in that order; missing values are None.

    ``frame`` is a DataFrame or a dict of equal-length columns (arrays, categoricals, indexes);
    ``at``: the row positions to list, in that order (all rows when None). The values are the
    table's as Python objects (``to_numpy(dtype=object)``), column by column into one array,
    with one null test for the whole table.
    """
    names = [c for c in columns if c in frame]
    if isinstance(frame, pd.DataFrame):
        n = len(frame)
    else:
        n = len(next(iter(frame.values()))) if frame else 0
    if at is not None:
        n = len(at)
    # The rows are taken before the conversion to objects: a top-10 list converts 10 values a column.
    read = {name: _object_values(frame[name], at) for name in names}
    if not names:
        return [{} for _ in range(n)]
    values = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):  # column by column: selecting frame[names] first copies the table
        values[:, j] = read[name]
    missing = pd.isna(values)
    if missing.any():
        values[missing] = None
    return [dict(zip(names, row)) for row in values.tolist()]


def _object_values(column: Any, at: np.ndarray | None) -> np.ndarray:
    """A column's values (``at``: those rows, by position) as Python objects."""
    if at is not None:
        column = column.take(at) if hasattr(column, "take") else np.asarray(column, dtype=object)[at]
    return column.to_numpy(dtype=object) if hasattr(column, "to_numpy") else np.asarray(column, dtype=object)
