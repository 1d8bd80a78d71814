"""build_events links each GPU event to its launch call and its op, keeping torch's two id spaces apart."""

from __future__ import annotations

import pyarrow as pa

from profkit.trace.build import build_events


def _raw(rows):
    """Recorder-style rows: (kind, name, start, duration, thread, correlation id, linked correlation id)."""
    kinds, names, starts, durations, threads, correlations, linked = zip(*rows)
    return {
        "kind": list(kinds),
        "name": list(names),
        "start_ns": list(starts),
        "duration_ns": list(durations),
        "thread_id": pa.array(threads, pa.int64()),
        "process_id": [7] * len(rows),
        "correlation_id": pa.array(correlations, pa.int64()),
        "linked_correlation_id": pa.array(linked, pa.int64()),
    }


def _by_name(table: pa.Table) -> dict[str, dict]:
    return {row["name"]: row for row in table.to_pylist()}


def test_launch_and_op_ids_from_torch_id_spaces_that_collide():
    """torch gives CPU ops correlation ids 1, 2, ... and CUPTI numbers its calls 1, 2, ... too.

    Here op ``aten::add`` has correlation 2 and launches its kernel through the
    runtime call with CUPTI id 1, while the other runtime call (under
    ``aten::mm``) has CUPTI id 2: a lookup that mixed the spaces would hand the
    add kernel the mm launch.
    """
    table = build_events(_raw([
        ("cpu_op", "aten::mm", 100, 50, 1, 1, None),
        ("runtime", "cudaLaunchKernel#mm", 110, 10, 1, 2, 1),
        ("cpu_op", "aten::add", 200, 50, 1, 2, None),
        ("runtime", "cudaLaunchKernel#add", 210, 10, 1, 1, 2),
        ("kernel", "gemm_kernel", 300, 40, None, 2, 1),
        ("kernel", "add_kernel", 400, 40, None, 1, 2),
    ]))
    rows = _by_name(table)
    assert rows["gemm_kernel"]["launch_id"] == rows["cudaLaunchKernel#mm"]["event_id"]
    assert rows["gemm_kernel"]["op_id"] == rows["aten::mm"]["event_id"]
    assert rows["add_kernel"]["launch_id"] == rows["cudaLaunchKernel#add"]["event_id"]
    assert rows["add_kernel"]["op_id"] == rows["aten::add"]["event_id"]


def test_op_found_through_the_launch_call_when_there_is_no_direct_link():
    """Imported traces link by the runtime's correlation only: the op is the innermost one enclosing the call."""
    table = build_events(_raw([
        ("cpu_op", "aten::linear", 100, 100, 1, None, None),
        ("cpu_op", "aten::addmm", 110, 60, 1, None, None),
        ("runtime", "cudaLaunchKernel", 120, 10, 1, 55, None),
        ("kernel", "gemm_kernel", 300, 40, None, 55, 55),
        ("kernel", "orphan_kernel", 400, 40, None, 77, 77),
    ]))
    rows = _by_name(table)
    assert rows["gemm_kernel"]["launch_id"] == rows["cudaLaunchKernel"]["event_id"]
    assert rows["gemm_kernel"]["op_id"] == rows["aten::addmm"]["event_id"]
    assert rows["orphan_kernel"]["launch_id"] is None and rows["orphan_kernel"]["op_id"] is None
