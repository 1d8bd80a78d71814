"""JSON records of a table's columns (not a section: a helper the sections share)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    """One dict per row of the ``columns`` that ``frame`` has, in that order; missing values are None.

    Column by column (``tolist`` gives Python scalars), not through an object copy of the table.
    """
    names = [c for c in columns if c in frame]
    if not names:
        return [{} for _ in range(len(frame))]
    lists = []
    for name in names:
        column = frame[name]
        values = column.tolist()
        missing = column.isna().to_numpy()
        if missing.any():
            values = [None if gone else value for value, gone in zip(values, missing)]
        lists.append(values)
    return [dict(zip(names, row)) for row in zip(*lists)]
