"""The trace file contract: atomic writes, one-line errors on bad input, nesting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_profkit
from profkit.errors import TraceFormatError
from profkit.trace import build_events, load, write_trace
from profkit.trace.nesting import nest
from profkit.trace.schema import METADATA_KEY


def _raw(rows):
    frame = pd.DataFrame(rows, columns=["kind", "name", "start_ns", "duration_ns", "thread_id", "correlation_id",
                                        "linked_correlation_id"])
    frame["process_id"] = 7
    frame["device_type"] = np.where(frame["kind"].isin(["kernel"]), "gpu", "cpu")
    for col in ("thread_id", "correlation_id", "linked_correlation_id"):
        frame[col] = frame[col].astype("Int64")
    return frame


def test_nesting_depth_and_parent():
    # Thread 1: A[0,10) holds B[1,4) which holds C[2,3); D[5,8) is A's second child. Thread 2: E alone.
    start = np.array([0, 1, 2, 5, 0])
    end = np.array([10, 4, 3, 8, 4])
    thread = np.array([1, 1, 1, 1, 2])
    depth, parent = nest(start, end, thread)
    assert depth.tolist() == [0, 1, 2, 1, 0]
    assert parent.tolist() == [-1, 0, 1, 0, -1]


@pytest.mark.parametrize("walk_rows", [1 << 20, 2])  # 2: every thread too big for _nest_open's tables
def test_a_range_that_outlives_the_frame_it_opened_in_holds_what_runs_inside_it(monkeypatch, walk_rows):
    from profkit.trace import nesting

    monkeypatch.setattr(nesting, "_OPEN_WALK_ROWS", walk_rows)
    # with_stack traces: record_function's range opens inside its __enter__ frame and outlives it.
    # wrapper[0,100) > __enter__[10,30) > range[20,80); the step body[40,70) and its op[50,60) run
    # after __enter__ returned, inside the range; __exit__[75,90) holds the range's end.
    names = ["wrapper", "__enter__", "range", "body", "op", "__exit__", "after"]
    start = np.array([0, 10, 20, 40, 50, 75, 92])
    end = np.array([100, 30, 80, 70, 60, 90, 95])
    # A second, well-nested thread is left as the fast path computes it.
    start, end = np.r_[start, 0, 1], np.r_[end, 10, 4]
    thread = np.r_[np.zeros(7, dtype=int), 1, 1]
    depth, parent = nest(start, end, thread)
    named = {names[i]: (names[parent[i]] if parent[i] >= 0 else None) for i in range(7)}
    assert named == {"wrapper": None, "__enter__": "wrapper", "range": "__enter__", "body": "range",
                     "op": "body", "__exit__": "range", "after": "wrapper"}
    assert depth[:7].tolist() == [0, 1, 2, 3, 4, 3, 1]
    assert parent[7:].tolist() == [-1, 7] and depth[7:].tolist() == [0, 1]


def test_overlapping_ranges_rule_equals_the_stack_rule_on_well_nested_events():
    # _nest_open (latest earlier event still open) and the call-stack arithmetic (_nest_stack, for
    # threads too big for _nest_open's tables) agree wherever events nest properly, zero-length
    # events and identical intervals included; and _nest_stack hands overlapping ranges to _nest_open.
    from profkit.trace.nesting import _nest_open, _nest_stack

    rng = np.random.default_rng(7)
    intervals = []

    def split(lo, hi, level):
        t = lo
        while t < hi:
            a = t + int(rng.integers(0, 3))
            b = a + int(rng.integers(0, max(1, (hi - a) // 2) + 1))
            if b > hi:
                return
            intervals.append((a, b))
            if rng.random() < 0.2:
                intervals.append((a, b))  # an identical interval
            if level < 6 and b - a > 2:
                split(a, b, level + 1)
            t = b + int(rng.integers(0, 2))

    split(0, 200_000, 0)
    start, end = np.array(intervals).T
    order = np.lexsort((-end, start))
    start, end = start[order], end[order]
    assert (end == start).any() and len(start) > 1000
    depth, parent = _nest_stack(start, end)
    open_depth, open_parent = _nest_open(start, end)
    assert (open_parent == parent).all() and (open_depth == depth).all()
    # wrapper[0,100) > __enter__[10,30) > range[20,80) > body[40,70): the body's parent is the range
    start, end = np.array([0, 10, 20, 40]), np.array([100, 30, 80, 70])
    assert _nest_stack(start, end)[1].tolist() == _nest_open(start, end)[1].tolist() == [-1, 0, 1, 2]


def test_kernel_linked_to_op_through_runtime_call(tmp_path):
    raw = _raw([
        ("cpu_op", "aten::mm", 100, 50, 1, 11, None),
        ("runtime", "cudaLaunchKernel", 110, 10, 1, 12, None),
        ("kernel", "sm90_gemm", 130, 40, None, None, 12),
        ("kernel", "orphan", 300, 5, None, None, 99),
    ])
    table = build_events(raw)
    path = write_trace(tmp_path / "t.parquet", table, {"command": []})
    ev = load(path).events.set_index("name")
    assert ev.loc["sm90_gemm", "op_id"] == ev.loc["aten::mm", "event_id"]
    assert ev.loc["sm90_gemm", "launch_id"] == ev.loc["cudaLaunchKernel", "event_id"]
    assert pd.isna(ev.loc["orphan", "op_id"])
    assert ev.loc["cudaLaunchKernel", "parent_id"] == ev.loc["aten::mm", "event_id"]


def _good_trace(tmp_path):
    raw = _raw([("cpu_op", "aten::add", 0, 5, 1, 1, None)])
    return write_trace(tmp_path / "good.parquet", build_events(raw), {"command": ["x"]})


@pytest.mark.parametrize("problem", ["not_parquet", "truncated", "no_metadata", "newer_version", "missing"])
def test_bad_files_give_one_line_error(tmp_path, problem):
    good = _good_trace(tmp_path)
    bad = tmp_path / "bad.parquet"
    if problem == "not_parquet":
        bad.write_text("hello")
    elif problem == "truncated":
        bad.write_bytes(good.read_bytes()[:-40])
    elif problem == "no_metadata":
        pq.write_table(pa.table({"a": [1]}), bad)
    elif problem == "newer_version":
        table = pq.read_table(good)
        meta = json.loads(table.schema.metadata[METADATA_KEY])
        meta["format_version"] = 99
        pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta)}), bad)
    with pytest.raises(TraceFormatError) as info:
        load(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    proc = run_profkit("report", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith("profkit: error:") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    if problem == "newer_version":
        assert "newer" in proc.stderr


def test_write_is_atomic_and_leaves_no_temp_on_failure(tmp_path):
    good = _good_trace(tmp_path)
    before = good.read_bytes()
    with pytest.raises(ValueError):  # a table that is not in the schema
        write_trace(good, pa.table({"not": ["a trace"]}), {})
    assert good.read_bytes() == before, "a failed write never touches the existing file"
    assert [p.name for p in tmp_path.iterdir()] == ["good.parquet"]


def _generic_read(path) -> pd.DataFrame:
    """What load() reads, the generic way: pyarrow's to_pandas with nullable ints, never-null ids unboxed."""
    from profkit.trace.io import _NEVER_NULL, _pandas_types

    events = pq.read_table(path).to_pandas(types_mapper=_pandas_types().get)
    for column in _NEVER_NULL:
        if not events[column].hasnans:
            events[column] = events[column].to_numpy(dtype="int64")
    return events


def _assert_same_frame(fast: pd.DataFrame, reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    for column in reference:
        assert type(fast[column].array) is type(reference[column].array), column
        if isinstance(reference[column].dtype, pd.CategoricalDtype):
            assert fast[column].cat.codes.dtype == reference[column].cat.codes.dtype, column
            assert fast[column].cat.categories.dtype == reference[column].cat.categories.dtype, column


def test_load_builds_the_frame_pyarrow_would(tmp_path):
    """load()'s column-by-column build equals to_pandas: the bundled trace, and one with null text,
    null ids, an all-null text column (an empty dictionary) and several row groups (the generic way)."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet"
    _assert_same_frame(load(sample).events, _generic_read(sample))
    raw = _raw([("cpu_op", "aten::mm", 0, 5, 1, 1, None), ("kernel", "gemm", 2, 2, None, 1, None),
                ("cpu_op", "aten::add", 6, 1, 1, None, None)])
    good = write_trace(tmp_path / "nulls.parquet", build_events(raw), {"command": ["x"]})
    events = load(good).events
    assert events["input_shapes"].isna().all() and events["thread_id"].isna().any()
    _assert_same_frame(events, _generic_read(good))
    split = tmp_path / "groups.parquet"
    table = pq.read_table(good)
    pq.write_table(table, split, row_group_size=1)
    assert pq.ParquetFile(split).metadata.num_row_groups == 3
    _assert_same_frame(load(split).events, _generic_read(split))


@pytest.mark.parametrize("arrow_type", [pa.int16(), pa.int32(), pa.int64()])
def test_nullable_ints_from_buffers_match_pyarrow_for_sliced_arrays(arrow_type):
    """The buffer reading of an integer column with nulls honours the array's offset into its buffers."""
    from profkit.trace.io import _nullable_from_buffers, _pandas_types

    dtype = _pandas_types()[arrow_type]
    whole = pa.array([7, None, -3, 4, None, None, 9, 1, None, 12, 5], type=arrow_type)
    for array in (whole, whole.slice(3), whole.slice(5, 4), pa.array([None, None], type=arrow_type)):
        got = _nullable_from_buffers(array, dtype)
        assert got.dtype == dtype
        assert got.isna().tolist() == [v is None for v in array.to_pylist()]
        assert got.to_numpy(dtype=object, na_value=None).tolist() == array.to_pylist()
        assert got._data[got.isna()].tolist() == [0] * array.null_count  # nulls hold 0, as fill_null(0) gave


def test_the_output_path_of_a_distributed_recording_stands_for_its_rank_files(tmp_path):
    # profkit record -o run.parquet -- torchrun ... writes run.rank<R>.parquet: `profkit report
    # run.parquet` (or run) reads them, in rank order (10 after 2), and nothing else of the folder.
    from profkit.trace.io import expand_paths

    for name in ("run.rank0.parquet", "run.rank2.parquet", "run.rank10.parquet", "run.rankx.parquet",
                 "run.pid7.parquet", "other.rank0.parquet"):
        (tmp_path / name).write_bytes(b"")
    expected = [tmp_path / f"run.rank{r}.parquet" for r in (0, 2, 10)]
    assert expand_paths([tmp_path / "run.parquet"]) == expected == expand_paths([tmp_path / "run"])
    assert expand_paths([tmp_path / "missing.parquet"]) == [tmp_path / "missing.parquet"]  # (load says no such file)
    (tmp_path / "run.parquet").write_bytes(b"")
    assert expand_paths([tmp_path / "run.parquet"]) == [tmp_path / "run.parquet"]  # a file that exists is itself


def test_a_reader_can_skip_row_groups_by_time(tmp_path):
    # Min/max statistics are written for the sorted columns (event_id, start_ns), which is what lets
    # DuckDB, Polars or a pyarrow filter skip row groups outside a time range; not for the others.
    raw = _raw([("cpu_op", "aten::mm", 100, 50, 1, None, None), ("cpu_op", "aten::add", 300, 20, 1, None, None)])
    path = write_trace(tmp_path / "t.parquet", build_events(raw), {"producer": "tests"})
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)}
    assert (stats["start_ns"].min, stats["start_ns"].max) == (100, 300)
    assert stats["event_id"].has_min_max and stats["name"] is None
    assert pq.read_table(path, filters=[("start_ns", ">=", 200)]).column("name").to_pylist() == ["aten::add"]
