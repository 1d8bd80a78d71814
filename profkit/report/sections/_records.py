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
        read = {name: frame[name].to_numpy(dtype=object) for name in names}
        n = len(frame)
    else:
        read = {name: np.asarray(frame[name], dtype=object) for name in names}
        n = len(next(iter(frame.values()))) if frame else 0
    if at is not None:
        read = {name: values[at] for name, values in read.items()}
        n = len(at)
    if not names:
        return [{} for _ in range(n)]
    values = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):  # column by column: selecting frame[names] first copies the table
        values[:, j] = read[name]
    missing = pd.isna(values)
    if missing.any():
        values[missing] = None
    return [dict(zip(names, row)) for row in values.tolist()]
