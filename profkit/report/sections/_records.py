"""JSON records of a table's columns (not a section: a helper the sections share)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    """One dict per row of the ``columns`` that ``frame`` has, in that order; missing values are None.

    The values are the table's as Python objects (``to_numpy(dtype=object)``), column by
    column into one array, with one null test for the whole table.
    """
    names = [c for c in columns if c in frame]
    if not names:
        return [{} for _ in range(len(frame))]
    values = np.empty((len(frame), len(names)), dtype=object)
    for j, name in enumerate(names):  # column by column: selecting frame[names] first copies the table
        values[:, j] = frame[name].to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values[missing] = None
    return [dict(zip(names, row)) for row in values.tolist()]
