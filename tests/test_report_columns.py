"""A loaded trace reads its columns on first use; the report reads all but UNREAD_COLUMNS."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

import profkit
from profkit.analyzers.table import Deferred, EventTable
from profkit.report import build_report
from profkit.report.context import UNREAD_COLUMNS, ReportContext
from conftest import run_profkit, shared_trace
from test_table import SAMPLE


def test_the_report_on_a_gpu_trace_reads_no_unread_column_and_the_numbers_of_a_whole_table(tmp_path):
    # (the A100 trace: kernels and ops, no telemetry or allocator samples, whose rows are read on demand)
    source = shared_trace("benchmark_result_2869224_1695835535_trace.json.gz")
    path = tmp_path / "a100.parquet"
    assert run_profkit("import", str(source), "-o", str(path)).returncode == 0
    trace = profkit.load(path)
    document = build_report([trace])
    read = set(trace._reader._read)
    assert not read & set(UNREAD_COLUMNS), "a section now reads one of UNREAD_COLUMNS: update the list"
    assert read | set(UNREAD_COLUMNS) == set(trace.column_names)
    whole = profkit.load(path)
    assert whole.arrow.num_rows == trace.num_rows  # every column read up front
    assert build_report([whole]) == document


def test_allocator_samples_are_read_with_the_columns_that_place_them(tmp_path):
    """The H100 trace holds torch's allocator events: the memory section reads their values and devices
    (and nothing else that a report leaves unread), and the whole-table report agrees."""
    source = shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
    path = tmp_path / "h100.parquet"
    assert run_profkit("import", str(source), "-o", str(path)).returncode == 0
    trace = profkit.load(path)
    document = build_report([trace])
    assert document["memory"]["devices"], "the allocator's samples made no memory figures"
    read = set(trace._reader._read) & set(UNREAD_COLUMNS)
    assert read == {"device_index", "value"}  # (a sample nests in its op: no thread is looked up)
    assert build_report([profkit.load(path)]) == document


def test_the_report_on_a_lazy_cpu_trace_equals_the_report_on_its_events():
    from profkit.trace.io import Trace

    trace = profkit.load(SAMPLE)
    eager = Trace(trace.events.copy(), trace.metadata, trace.path)  # pandas events only: the table from them
    assert build_report([trace]) == build_report([eager])


def test_a_lazy_trace_reads_what_the_file_holds():
    trace = profkit.load(SAMPLE)
    assert trace.one_chunk and trace.num_rows == pq.ParquetFile(SAMPLE).metadata.num_rows
    first = trace.chunk("name")
    assert set(trace._reader._read) == {"name"} and trace.chunk("name").equals(first)  # read once
    assert trace._reader.column("name") is trace._reader.column("name")
    table = pq.read_table(SAMPLE)
    assert trace.arrow.equals(table) and trace.arrow.schema.metadata == table.schema.metadata
    assert trace.chunk("thread_id").equals(table.column("thread_id").chunk(0))
    assert len(trace.events) == table.num_rows
    trace.arrow = table.slice(0, 3)  # an assigned table replaces the file's columns
    assert trace.num_rows == 3 and trace.chunk("event_id").equals(table.column("event_id").chunk(0)[:3])


def test_a_deferred_column_is_read_once_on_first_access():
    calls = []

    def read():
        calls.append(1)
        return np.arange(4)

    table = EventTable({"a": Deferred(read), "b": np.ones(4)}, 4)
    assert "a" in table and table.columns == ["a", "b"] and not calls
    assert table.ids("b")[0].tolist() == [1, 1, 1, 1] and not calls
    assert table["a"].to_numpy().tolist() == [0, 1, 2, 3] and table.ints("a").tolist() == [0, 1, 2, 3]
    assert len(calls) == 1
    ctx = ReportContext(traces=[profkit.load(SAMPLE)])
    assert isinstance(ctx.table, EventTable) and len(ctx.table) == ctx.traces[0].num_rows


def test_roofline_header_names_the_peaks_a_run_uses_not_the_fp8_maximum():
    from profkit.report.sections.categories import _peaks_text

    h200 = {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12, "fp8": 1978.9e12, "int8": 1978.9e12}
    text = _peaks_text(h200)
    assert "bf16/fp16 989" in text and "fp32 67" in text and "1.98" not in text
    assert _peaks_text({"bf16": 2e12, "fp16": 1e12}).startswith("bf16 2")  # unequal: both named
    assert _peaks_text({"fp64": 5e12}) == "up to 5 Tflop/s"
