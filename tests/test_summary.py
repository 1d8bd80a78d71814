"""Top ops and kernels: the numpy ranking agrees with the pandas groupby-and-sort it replaced, ties included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.summary import _top


def _reference(names: pd.Series, rows: np.ndarray, self_ns: np.ndarray, total_ns: np.ndarray, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({"name": names.astype(object), "self_time_ns": self_ns, "total_time_ns": total_ns})[rows]
    frame = frame[frame["name"].notna()]
    grouped = frame.groupby("name").agg(count=("self_time_ns", "size"), self_time_ns=("self_time_ns", "sum"),
                                         total_time_ns=("total_time_ns", "sum"))
    grouped.index = pd.Index(grouped.index, name="name", dtype="str")
    grouped = grouped.sort_values("self_time_ns", ascending=False)
    grand = grouped["self_time_ns"].sum()
    grouped["share"] = grouped["self_time_ns"] / grand if grand else 0.0
    return grouped.head(n).reset_index()


@pytest.mark.parametrize("seed", range(5))
def test_top_names_equal_a_groupby_sorted_by_self_time(seed):
    rng = np.random.default_rng(seed)
    size = 3000
    labels = [f"op{i:03d}" for i in range(300)]
    names = pd.Series(pd.Categorical(rng.choice(labels + [None], size), categories=labels))
    self_ns = rng.integers(0, 4, size) * 1000  # few distinct values: many tied sums
    total_ns = self_ns + rng.integers(0, 100, size)
    rows = rng.random(size) < 0.8
    for n in (1, 15, 400):
        fast = _top(names, rows, self_ns, total_ns, n)
        pd.testing.assert_frame_equal(fast, _reference(names, rows, self_ns, total_ns, n), check_exact=True,
                                      check_dtype=False)
        assert list(fast.dtypes.astype(str)) == ["str", "int64", "int64", "int64", "float64"]
