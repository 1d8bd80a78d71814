"""Top ops and kernels: the numpy ranking agrees with the pandas groupby-and-sort it replaced, ties included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.summary import _top, _top_frame


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
        fast = _top_frame(_top(names, rows, self_ns, total_ns, n))
        pd.testing.assert_frame_equal(fast, _reference(names, rows, self_ns, total_ns, n), check_exact=True,
                                      check_dtype=False)
        text = str(pd.Series(np.array(["text"], dtype=object)).dtype)  # pandas 3: "str"; pandas 2: "object"
        assert list(fast.dtypes.astype(str)) == [text, "int64", "int64", "int64", "float64"]


def test_top_records_are_the_top_tables_records():
    """The report lists top ops/kernels from the columns, with no DataFrame: the same Python values."""
    from pathlib import Path

    import profkit
    from profkit.analyzers.summary import (
        top_kernel_columns,
        top_kernels,
        top_op_columns,
        top_ops,
        top_records,
    )

    events = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet").events
    for n in (1, 5, 1000):
        ops = top_records(top_op_columns(events, n))
        assert ops == top_ops(events, n).to_dict("records") and len(ops) > 0
        assert [type(v) for v in ops[0].values()] == [str, int, int, int, float]
    assert top_records(top_kernel_columns(events, 5)) == top_kernels(events, 5).to_dict("records") == []
    no_host = events[events["kind"] == "sample"]
    assert top_records(top_op_columns(no_host, 5)) == top_ops(no_host, 5).to_dict("records") == []


def test_busy_share_of_several_ranks_is_of_their_spans():
    # Two ranks over the same 100 ns, each GPU busy 60 ns: 120 ns of busy time in 200 ns of GPU time
    # (60 %), not 120 % of the 100 ns span.
    from profkit.analyzers.summary import totals

    events = pd.DataFrame({
        "kind": ["kernel", "kernel", "cpu_op", "kernel", "cpu_op"],
        "rank": [0, 0, 0, 1, 1],
        "start_ns": [10, 50, 0, 0, 40],
        "duration_ns": [30, 30, 100, 60, 60],
    })
    result = totals(events)
    assert result["span_ns"] == 100 and result["rank_count"] == 2
    assert result["device_busy_ns"] == 120 and result["device_span_ns"] == 200
    assert result["device_busy_share"] == pytest.approx(0.6)
