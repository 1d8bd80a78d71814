"""Per-group sums, bit for bit what pandas' ``groupby(...).sum()`` returns, without its overhead.

pandas (3.x) sums one block of float columns of a groupby in one of two ways:
``np.add.reduceat`` over the rows when the group numbers never decrease and
the block holds no NaN, else Kahan-compensated summation row by row. Which one
ran shows in the last bits of a sum, and the report's numbers (and golden
files) were computed by pandas' groupby, so a faster sum must pick the same way
for each block. The Kahan loop is pandas' own compiled one; where it cannot be
called, the public groupby computes the same thing. tests/test_group_sums.py
checks these functions against pandas on random tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

try:  # pandas' compiled Kahan group sum (what DataFrameGroupBy.sum runs); the public groupby otherwise
    from pandas._libs.groupby import group_sum as _kahan_group_sum
except ImportError:  # pragma: no cover - another pandas
    _kahan_group_sum = None


def group_ids(keys: list[pd.Series | pd.Categorical]) -> tuple[np.ndarray, np.ndarray]:
    """(group number of each row, first row of each group) as ``groupby(keys, observed=True, dropna=False)``.

    Groups are numbered in sorted key order: a categorical key (or a ``(codes, labels)`` pair) by
    its categories' order, others by value; a null key forms the last group of its key.
    """
    rows = (len(keys[0][0]) if isinstance(keys[0], tuple) else len(keys[0])) if keys else 0
    combined = np.zeros(rows, dtype=np.int64)
    for key in keys:
        if isinstance(key, tuple):  # (codes, labels) of a text column (table.Coded): numbered as a categorical
            codes, size = np.asarray(key[0], np.int64), len(key[1])
        elif isinstance(key.dtype, pd.CategoricalDtype):
            categorical = key.array if isinstance(key, pd.Series) else key
            codes, size = categorical.codes.astype(np.int64), len(categorical.categories)
        else:
            codes, size = _sorted_codes(key)
        combined = combined * (size + 1) + np.where(codes < 0, size, codes)
    _, first, ids = np.unique(combined, return_index=True, return_inverse=True)
    return ids.reshape(-1).astype(np.intp), first


def _sorted_codes(key) -> tuple[np.ndarray, int]:
    """The codes of ``pd.factorize(key, sort=True)`` (-1: null) and the number of values. Text without
    nulls through np.unique, in the same order (by code point; ~25 us, not factorize's ~200 us)."""
    if isinstance(key, (pd.Index, pd.Series)) and isinstance(key.dtype, pd.StringDtype) and not key.hasnans:
        uniques, codes = np.unique(np.asarray(key, dtype=object), return_inverse=True)
        return codes.reshape(-1).astype(np.int64), len(uniques)
    codes, uniques = pd.factorize(key, sort=True, use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques)


def float_sums(block: np.ndarray, ids: np.ndarray, ngroups: int) -> tuple[np.ndarray, bool]:
    """Sums of a block of float columns (shape columns × rows) per group: (columns × groups, kahan).

    ``kahan`` tells which way pandas summed (its result block is then column-major).
    Rows of group -1 are left out.
    """
    block = np.asarray(block, dtype=np.float64)
    if len(ids) and _monotonic(ids) and not np.isnan(block).any():
        dropped = int((ids < 0).sum())  # sorted: the left-out rows come first
        kept = ids[dropped:]
        if len(kept):
            starts = np.flatnonzero(np.concatenate(([True], kept[1:] != kept[:-1])))
            out = np.zeros((block.shape[0], ngroups))
            out[:, kept[starts]] = np.add.reduceat(block[:, dropped:], starts, axis=1)
            return out, False
    return _kahan(block, ids, ngroups), True


def int_sums(values: np.ndarray, ids: np.ndarray, ngroups: int) -> np.ndarray:
    """Exact sums of an integer column per group (rows of group -1 left out)."""
    out = np.zeros(ngroups, dtype=np.int64)
    kept = ids >= 0
    np.add.at(out, ids[kept], np.asarray(values, dtype=np.int64)[kept])
    return out


def _monotonic(ids: np.ndarray) -> bool:
    return bool((ids[1:] >= ids[:-1]).all())


def _kahan(block: np.ndarray, ids: np.ndarray, ngroups: int) -> np.ndarray:
    values = np.ascontiguousarray(block.T)  # rows × columns, as pandas hands it over
    if _kahan_group_sum is not None:
        try:
            out = np.zeros((ngroups, block.shape[0]))
            _kahan_group_sum(out=out, counts=np.zeros(ngroups, dtype=np.int64), values=values,
                             labels=np.asarray(ids, dtype=np.intp), mask=None, result_mask=None, min_count=0,
                             is_datetimelike=False)
            return out.T
        except (TypeError, ValueError):  # pragma: no cover - another pandas' signature
            pass
    frame = pd.DataFrame(values)  # one block; shuffled group numbers never take the reduceat way
    kept = ids >= 0
    sums = frame[kept].groupby(ids[kept], sort=True).sum().reindex(range(ngroups), fill_value=0.0)
    return np.asarray(sums.to_numpy(np.float64).T, order="F")
