"""profkit.load: a small file read whole into memory gives what reading it from disk gives."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from conftest import run_profkit
from profkit.errors import TraceFormatError
from profkit.trace import build_events, io, load, write_trace
from test_trace_io import _raw


def _trace(tmp_path):
    raw = _raw([("cpu_op", "aten::add", 0, 5, 1, 1, None), ("cpu_op", "aten::mm", 6, 9, 1, 1, None)])
    return write_trace(tmp_path / "t.parquet", build_events(raw), {"command": ["x"]})


def test_load_in_memory_equals_load_from_disk(tmp_path, monkeypatch):
    path = _trace(tmp_path)
    whole = load(path)
    monkeypatch.setattr(io, "_WHOLE_BYTES", 0)  # every file now too big to read whole
    from_disk = load(path)
    assert whole.arrow.equals(from_disk.arrow) and whole.arrow.num_rows == 2
    assert whole.metadata == from_disk.metadata and whole.arrow.schema.metadata == from_disk.arrow.schema.metadata


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_a_truncated_file_is_a_one_line_error_either_way(tmp_path, monkeypatch, limit):
    path = _trace(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(path.read_bytes()[:-40])
    monkeypatch.setattr(io, "_WHOLE_BYTES", limit)
    with pytest.raises(TraceFormatError, match="not a Parquet file or truncated") as info:
        load(bad)
    assert "\n" not in str(info.value)


def test_traces_without_distinct_ranks_are_numbered_in_the_order_given(tmp_path):
    # a pool's workers write .pid<PID> traces with no rank: read together, each is a rank of its own
    # (merged as one rank, the two processes' timelines would overlap on one rank's line)
    from profkit.cli.inputs import load_any
    from profkit.report import build_report

    first = _trace(tmp_path)
    second = tmp_path / "second.parquet"
    second.write_bytes(first.read_bytes())
    traces = load_any([first, second])
    assert [trace.rank for trace in traces] == [0, 1]
    assert any("t.parquet as rank 0, second.parquet as rank 1" in n for n in traces[0].metadata["notes"])
    document = build_report(traces)
    assert document["run"]["ranks"] == [0, 1] and document["totals"]["rank_count"] == 2
    alone = build_report(load_any([first]))["totals"]
    assert document["totals"]["device_busy_ns"] == 2 * alone["device_busy_ns"] > 0
    assert document["totals"]["device_span_ns"] == 2 * alone["device_span_ns"]
    # traces that have distinct ranks keep them, without a note
    assert [t.rank for t in load_any([first])] == [0] and not load_any([first])[0].metadata.get("notes")


def test_a_trace_of_no_rows_reports_that_it_holds_nothing(tmp_path):
    # A file of no rows (here written by plain pyarrow: no row group, no chunk) once failed with
    # "Chunk index out of range".
    import pyarrow.parquet as pq

    from synthetic_traces import make_trace

    source = pq.read_table(make_trace(tmp_path / "t.parquet"))
    empty = tmp_path / "empty.parquet"
    pq.write_table(source.slice(0, 0), empty)
    result = run_profkit("report", str(empty), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "the trace holds no events: nothing below is measured" in document["run"]["notes"]
    assert document["totals"]["op_count"] == 0 and document["totals"]["kernel_count"] == 0


def test_two_events_with_one_id_are_a_one_line_error(tmp_path):
    import pyarrow.parquet as pq

    from synthetic_traces import make_trace

    table = pq.read_table(make_trace(tmp_path / "t.parquet"))
    ids = table.column("event_id").to_pylist()
    ids[5] = ids[6]
    shared = tmp_path / "shared_id.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("event_id"), "event_id", pa.array(ids, pa.int64())),
                   shared)
    result = run_profkit("report", str(shared))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "profkit: error: two events share an event_id: not a valid trace (event_id is unique in a file; "
        "see docs/trace-format.md)"]


@pytest.mark.parametrize("loop", ["own parent", "two-event loop"])
@pytest.mark.parametrize("command", ["report", "diff"])
def test_events_that_are_their_own_ancestors_are_a_one_line_error(tmp_path, loop, command):
    # A walk up the parents stops at the top: round a loop it once never stopped (found by a fuzz).
    import pyarrow.parquet as pq

    from synthetic_traces import make_trace

    table = pq.read_table(make_trace(tmp_path / "t.parquet"))
    ids, parents = table.column("event_id").to_pylist(), table.column("parent_id").to_pylist()
    kinds = table.column("kind").to_pylist()
    first, second = [i for i, kind in enumerate(kinds) if kind == "cpu_op"][:2]  # (two top-level ops)
    if loop == "own parent":
        parents[first] = ids[first]
    else:
        parents[first], parents[second] = ids[second], ids[first]
    looped = tmp_path / "looped.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("parent_id"), "parent_id",
                                    pa.array(parents, pa.int64())), looped)
    args = ["report", str(looped)] if command == "report" else ["diff", str(tmp_path / "t.parquet"), str(looped)]
    result = run_profkit(*args, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "profkit: error: parent_id chains loop or nest over 10000 levels deep: an event is its own ancestor "
        "(see docs/trace-format.md)"]


@pytest.mark.parametrize("command", ["report", "check", "export"])
def test_an_event_without_a_start_is_a_one_line_error(tmp_path, command):
    import pyarrow.parquet as pq

    from synthetic_traces import make_trace

    good = make_trace(tmp_path / "t.parquet")
    table = pq.read_table(good)
    starts = table.column("start_ns").to_pylist()
    starts[3] = None
    broken = tmp_path / "no_start.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("start_ns"), "start_ns", pa.array(starts, pa.int64())),
                   broken)
    args = {"report": [str(broken)], "check": [str(broken), "--baseline", str(good)],
            "export": [str(broken), "--format", "chrome", "-o", str(tmp_path / "out.json")]}[command]
    result = run_profkit(command, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"profkit: error: {broken}: 1 event has no start_ns (every event has one: see docs/trace-format.md)"]


def test_an_event_without_a_duration_is_a_one_line_error(tmp_path):
    import pyarrow.parquet as pq

    from synthetic_traces import make_trace

    table = pq.read_table(make_trace(tmp_path / "t.parquet"))
    durations = table.column("duration_ns").to_pylist()
    durations[4] = None
    broken = tmp_path / "no_duration.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("duration_ns"), "duration_ns",
                                    pa.array(durations, pa.int64())), broken)
    result = run_profkit("report", str(broken))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"profkit: error: {broken}: 1 event has no duration_ns (every event has one: see docs/trace-format.md)"]
