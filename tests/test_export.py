"""profkit export --format chrome: a file Perfetto / chrome://tracing open, and that re-imports unchanged."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import profkit
from profkit.cli.main import cli
from profkit.collectors.kineto_json import read_kineto
from profkit.report.chrome_export import write_chrome
from profkit.trace.io import write_trace

from conftest import cli_runner, shared_trace
from synthetic_traces import T0, make_trace


def _reimport(source, tmp_path) -> profkit.Trace:
    imported = read_kineto(source, progress=False)
    return profkit.load(write_trace(tmp_path / "reimported.parquet", imported.table, imported.metadata))


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_export_is_a_chrome_trace(tmp_path, suffix):
    trace = profkit.load(make_trace(tmp_path / "t.parquet", steps=2))
    out = tmp_path / f"t{suffix}"
    result = cli_runner().invoke(cli, ["export", str(tmp_path / "t.parquet"), "--format", "chrome", "-o", str(out)])
    assert result.exit_code == 0, result.output
    opener = gzip.open if suffix.endswith(".gz") else open
    with opener(out, "rt") as handle:
        document = json.load(handle)
    events = document["traceEvents"]
    by_phase: dict[str, list] = {}
    for event in events:
        by_phase.setdefault(event["ph"], []).append(event)
    # 2 steps x (2 ops + 2 launches + 2 kernels + 2 phase marks) = 16 ranges
    assert len(by_phase["X"]) == 16
    # power_w every ms over 2 x 10 ms, both ends included: 21 counter samples on GPU 0's track
    counters = by_phase["C"]
    assert len(counters) == 21 and {c["name"] for c in counters} == {"power_w"}
    assert {c["pid"] for c in counters} == {0} and counters[0]["args"] == {"value": 300.0}
    # one launch arrow per kernel: a start at the runtime call, an end bound to the kernel
    assert len(by_phase["s"]) == len(by_phase["f"]) == 4
    phases = [e for e in by_phase["X"] if e["cat"] == "profkit_phase"]
    assert sorted({e["name"] for e in phases}) == ["decode", "step"]
    assert len({e["tid"] for e in phases}) == 2  # one track per phase name
    labels = {e["args"].get("labels") for e in by_phase["M"] if e["name"] == "process_labels"}
    assert labels == {"CPU", "GPU 0"}
    kernel = next(e for e in by_phase["X"] if e["name"] == "gemm_kernel")
    # first kernel: 0.4 ms into the trace; ts relative to baseTimeNanoseconds (T0 rounded down to the second)
    assert document["baseTimeNanoseconds"] == T0 // 10**9 * 10**9
    assert kernel["ts"] == pytest.approx((T0 - document["baseTimeNanoseconds"] + 400_000) / 1000)
    assert kernel["dur"] == 1000.0 and kernel["args"]["grid"] == [128, 1, 1]
    assert document["deviceProperties"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert trace.metadata["producer"] == "tests"


def test_round_trip_keeps_kernels_links_samples_and_phases(tmp_path):
    original = profkit.load(make_trace(tmp_path / "t.parquet"))
    write_chrome(original, tmp_path / "t.json.gz")
    again = _reimport(tmp_path / "t.json.gz", tmp_path)
    a, b = original.events, again.events
    for kind in ("kernel", "cpu_op", "runtime", "sample", "phase"):
        assert (a["kind"] == kind).sum() == (b["kind"] == kind).sum(), kind
    ka, kb = original.kernels, again.kernels
    assert len(kb) == 8  # 4 steps x 2 kernels
    assert kb["duration_ns"].sum() == ka["duration_ns"].sum() == 4 * (1_000_000 + 200_000)
    assert list(kb["start_ns"]) == list(ka["start_ns"])  # exact to the ns
    # every kernel still points at the op that launched it
    ops_a = a.set_index("event_id").loc[ka["op_id"].astype(int), "name"].astype(str).tolist()
    ops_b = b.set_index("event_id").loc[kb["op_id"].astype(int), "name"].astype(str).tolist()
    assert ops_a == ops_b == ["aten::mm", "aten::relu"] * 4
    assert list(b.loc[b["kind"] == "cpu_op", "input_shapes"].astype(str)) == list(
        a.loc[a["kind"] == "cpu_op", "input_shapes"].astype(str))
    assert np.allclose(again.samples["value"].astype(float), 300.0)
    assert set(again.samples["device_index"].astype(int)) == {0}
    decode = b[(b["kind"] == "phase") & (b["name"] == "decode")]
    assert list(decode["batch_size"]) == [8] * 4 and list(decode["token_count"]) == [8] * 4
    assert again.metadata["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_round_trip_of_the_h100_trace(tmp_path):
    imported = read_kineto(shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"), progress=False)
    first = profkit.load(write_trace(tmp_path / "first.parquet", imported.table, imported.metadata))
    write_chrome(first, tmp_path / "h100.json")
    again = _reimport(tmp_path / "h100.json", tmp_path)
    assert len(again.kernels) == len(first.kernels) == 1465
    assert again.kernels["duration_ns"].sum() == first.kernels["duration_ns"].sum()
    assert again.kernels["op_id"].notna().sum() == first.kernels["op_id"].notna().sum() == 1029
    assert len(again.events) == len(first.events)


def test_export_writes_extras_back_under_the_names_import_reads():
    from profkit.collectors.kineto_events import ARG_KEYS
    from profkit.report.chrome_export import EXTRA_ARGS

    for key, kineto_name in EXTRA_ARGS.items():
        assert ARG_KEYS[kineto_name] == key
    assert set(EXTRA_ARGS) == {v for v in ARG_KEYS.values() if v}


def test_export_refuses_other_suffixes(tmp_path):
    make_trace(tmp_path / "t.parquet", steps=1)
    result = cli_runner().invoke(cli, ["export", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "t.txt")])
    assert result.exit_code == 2 and ".json" in result.stderr


def test_events_without_a_process_export_on_the_host_process(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from profkit.trace import load
    from synthetic_traces import make_trace

    table = pq.read_table(make_trace(tmp_path / "t.parquet"))
    for column in ("process_id",):  # (profkit writes one for every event; others may not)
        values = table.column(column).to_pylist()
        values[2] = None
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.int64()))
    odd = tmp_path / "odd.parquet"
    pq.write_table(table, odd)
    out = tmp_path / "odd.json"
    write_chrome(load(odd), out)
    events = json.loads(out.read_text())["traceEvents"]
    host = table.column("process_id").to_pandas().mode().iloc[0]
    named = table.column("name").to_pylist()[2]
    moved = [e for e in events if e.get("name") == named and e.get("ph") == "X"]
    assert moved and any(e["pid"] == host for e in moved)


def test_a_gpu_event_without_a_device_index_exports_beside_the_named_gpus(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from profkit.trace import load
    from synthetic_traces import make_trace

    table = pq.read_table(make_trace(tmp_path / "t.parquet", steps=1))
    kinds = table.column("kind").to_pylist()
    gpu_rows = [i for i, t in enumerate(table.column("device_type").to_pylist()) if t == "gpu"]
    kernel = next(i for i in gpu_rows if kinds[i] == "kernel")
    sample = next(i for i in gpu_rows if kinds[i] == "sample")
    values = table.column("device_index").to_pylist()
    values[kernel] = values[sample] = None  # (profkit names every GPU event's device; a file others wrote may not)
    table = table.set_column(table.schema.get_field_index("device_index"), "device_index", pa.array(values, pa.int16()))
    odd = tmp_path / "odd.parquet"
    pq.write_table(table, odd)
    out = tmp_path / "odd.json"
    write_chrome(load(odd), out)
    events = json.loads(out.read_text())["traceEvents"]
    names = [e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"]
    assert "GPU 0" in names  # the other GPU events still name their GPU's track
    kernels = [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    assert len(kernels) == kinds.count("kernel") and sum("device" not in e["args"] for e in kernels) == 1


def _with_column(table, column: str, values: list):
    import pyarrow as pa

    field = table.schema.field(column)
    kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, kind))


def test_an_event_of_no_kind_exports_as_other(tmp_path):
    import pyarrow.parquet as pq

    table = pq.read_table(make_trace(tmp_path / "t.parquet", steps=1))
    kinds = table.column("kind").to_pylist()
    row = kinds.index("cpu_op")
    kinds[row] = None  # (profkit gives every event a kind; a file others wrote may not)
    odd = tmp_path / "odd.parquet"
    pq.write_table(_with_column(table, "kind", kinds), odd)
    out = tmp_path / "odd.json"
    result = cli_runner().invoke(cli, ["export", str(odd), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    events = json.loads(out.read_text())["traceEvents"]
    named = [e for e in events if e.get("ph") == "X" and e["name"] == table.column("name")[row].as_py()]
    assert any(e["cat"] == "other" for e in named)
    assert "1 other" in result.stderr


def test_two_events_with_one_id_are_a_one_line_error_and_no_file(tmp_path):
    import pyarrow.parquet as pq

    table = pq.read_table(make_trace(tmp_path / "t.parquet", steps=1))
    ids = table.column("event_id").to_pylist()
    launched = [i for i in table.column("launch_id").to_pylist() if i is not None]
    assert launched  # (the ids a flow arrow looks up)
    ids[ids.index(launched[0]) + 1] = launched[0]
    odd = tmp_path / "odd.parquet"
    pq.write_table(_with_column(table, "event_id", ids), odd)
    out = tmp_path / "odd.json"
    result = cli_runner().invoke(cli, ["export", str(odd), "-o", str(out)])
    assert result.exit_code == 2
    assert "share an event_id" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert set(tmp_path.iterdir()) == {tmp_path / "t.parquet", odd}  # (no output, no temporary file left)
