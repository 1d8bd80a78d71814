"""Memory: torch's allocator events (profile_memory) imported and recorded as samples, the report's
memory section (peaks, the op at the peak, per phase) and the memory budget of ``profkit check``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import profkit
from profkit.analyzers import memory
from profkit.cli.main import cli
from profkit.collectors.kineto_json import read_kineto
from profkit.report import build_report
from profkit.trace.build import build_events
from profkit.trace.io import write_trace

from conftest import cli_runner, shared_trace

MiB = 2**20


def _memory_event(ts: float, allocated: int, reserved: int, nbytes: int, device_type: int = 1, device: int = 0,
                  tid: int = 7) -> dict:
    return {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", "pid": 100, "tid": tid, "ts": ts,
            "args": {"Total Reserved": reserved, "Total Allocated": allocated, "Bytes": nbytes, "Addr": 1,
                     "Device Id": device, "Device Type": device_type, "Ev Idx": 1}}


def _op(name: str, ts: float, dur: float, tid: int = 7) -> dict:
    return {"ph": "X", "cat": "cpu_op", "name": name, "pid": 100, "tid": tid, "ts": ts, "dur": dur, "args": {}}


def _chrome(tmp_path: Path, events: list[dict], **header) -> Path:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({"traceEvents": events, **header}))
    return path


def _import(source: Path, tmp_path: Path) -> profkit.Trace:
    imported = read_kineto(source, progress=False)
    return profkit.load(write_trace(tmp_path / "imported.parquet", imported.table, imported.metadata))


def _samples(trace: profkit.Trace) -> pd.DataFrame:
    events = trace.events
    return events[events["kind"] == "sample"]


# ---------------------------------------------------------------- import


def test_allocator_events_import_as_allocated_and_reserved_samples(tmp_path):
    events = [
        _op("aten::linear", 0, 100), _op("aten::mm", 10, 50), _op("aten::empty", 20, 5),
        _memory_event(22, allocated=40 * MiB, reserved=64 * MiB, nbytes=8 * MiB),  # in aten::empty, in aten::mm
        _memory_event(70, allocated=32 * MiB, reserved=64 * MiB, nbytes=-8 * MiB),  # the reserve unchanged
        _memory_event(75, allocated=132 * MiB, reserved=160 * MiB, nbytes=100 * MiB),  # the reserve grew
        _memory_event(80, allocated=4096, reserved=0, nbytes=4096, device_type=0, device=-1),  # host
        _memory_event(85, allocated=5 * MiB, reserved=6 * MiB, nbytes=MiB, device_type=6, device=1),  # HIP
        _memory_event(90, allocated=1, reserved=1, nbytes=1, device_type=99),  # a device type without a name
    ]
    trace = _import(_chrome(tmp_path, events), tmp_path)
    samples = _samples(trace)
    got = {(r.name, r.device_type, r.device_index): r.value for r in samples.itertuples()
           if r.start_ns == samples["start_ns"].min()}
    assert got == {("allocated_bytes", "gpu", 0): 40 * MiB, ("reserved_bytes", "gpu", 0): 64 * MiB}
    host = samples[samples["device_type"] == "cpu"]
    assert list(host["name"]) == ["allocated_bytes"] and list(host["value"]) == [4096]  # no reserved on the host
    hip = samples[(samples["device_type"] == "gpu") & (samples["device_index"] == 1)]
    assert sorted(hip["name"]) == ["allocated_bytes", "reserved_bytes"]
    gpu0 = samples[(samples["device_type"] == "gpu") & (samples["device_index"] == 0)]
    assert list(gpu0.loc[gpu0["name"] == "allocated_bytes", "value"]) == [40 * MiB, 32 * MiB, 132 * MiB]
    # The reserve is written where it changes: its value at any time is still the latest row's.
    assert list(gpu0.loc[gpu0["name"] == "reserved_bytes", "value"]) == [64 * MiB, 160 * MiB]
    assert len(samples) == 3 + 2 + 1 + 2  # the unnamed device type's event is left out
    assert set(samples["thread_id"]) == {7}
    # Each sample nests in the op running on its thread: the op that allocated.
    parents = trace.events.set_index("event_id")["name"]
    assert parents[samples["parent_id"].iloc[0]] == "aten::empty"
    notes = " ".join(trace.metadata["notes"])
    assert "5 allocator memory events" in notes and "1 left out" in notes
    assert "instant" not in notes  # nothing else was skipped


def test_the_op_at_the_allocator_peak_is_the_op_that_allocated_not_the_allocation_itself(tmp_path):
    events = [
        _op("aten::linear", 0, 100), _op("aten::mm", 10, 50), _op("aten::empty", 20, 5),
        _op("aten::add", 200, 10, tid=8),  # another thread's op at no sample's time
        _memory_event(22, allocated=40 * MiB, reserved=64 * MiB, nbytes=8 * MiB),
        _memory_event(70, allocated=32 * MiB, reserved=64 * MiB, nbytes=-8 * MiB),
    ]
    document = build_report([_import(_chrome(tmp_path, events), tmp_path)])
    gpu, = document["memory"]["devices"]
    assert gpu["allocated_peak_bytes"] == 40 * MiB and gpu["reserved_peak_bytes"] == 64 * MiB
    assert (gpu["allocated_peak_op"], gpu["allocated_peak_call"]) == ("aten::mm", "aten::linear")
    assert gpu["allocated_peak_at_ns"] == 22_000  # since the trace's first event (aten::linear at 0)
    assert (gpu["allocated_first_bytes"], gpu["allocated_last_bytes"]) == (40 * MiB, 32 * MiB)


@pytest.mark.parametrize("name, device_type", [("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", 1),
                                               ("mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", 6)])
def test_shared_llm_traces_report_the_allocator_peaks_their_json_holds(name, device_type, tmp_path):
    source = shared_trace(name)
    with gzip.open(source, "rt") as handle:  # the figures read straight from the JSON, without profkit
        raw = [e["args"] for e in json.load(handle)["traceEvents"] if e.get("name") == "[memory]"]
    gpu_events = [a for a in raw if a["Device Type"] == device_type]
    assert gpu_events and {a["Device Id"] for a in gpu_events} == {0}
    document = build_report([_import(source, tmp_path)])
    gpu = next(d for d in document["memory"]["devices"] if d["device_type"] == "gpu")
    assert gpu["allocated_peak_bytes"] == max(a["Total Allocated"] for a in gpu_events)
    assert gpu["reserved_peak_bytes"] == max(a["Total Reserved"] for a in gpu_events)
    assert gpu["allocated_first_bytes"] == gpu_events[0]["Total Allocated"]
    assert gpu["total_bytes"] > gpu["reserved_peak_bytes"]  # the device's memory, from deviceProperties
    assert gpu["allocated_peak_op"] and gpu["allocated_peak_op"] not in memory.ALLOCATING_OPS
    phases = {p["phase"]: p["allocated_peak_bytes"] for p in document["memory"]["phases"]}
    assert phases.get("prefill") and phases["prefill"] <= gpu["allocated_peak_bytes"]


@pytest.mark.parametrize("name, device_type", [("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", 1),
                                               ("mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", 6)])
def test_what_is_held_at_the_peak_agrees_with_the_blocks_the_json_pairs_by_address(name, device_type, tmp_path):
    source = shared_trace(name)
    with gzip.open(source, "rt") as handle:  # a walk over the events by hand: each address's live block
        raw = sorted((e for e in json.load(handle)["traceEvents"]
                      if e.get("name") == "[memory]" and e["args"]["Device Type"] == device_type),
                     key=lambda e: e["ts"])
    peak_at = max(range(len(raw)), key=lambda i: (raw[i]["args"]["Total Allocated"], -i))  # (the first such)
    live: dict[int, int] = {}
    for event in raw[:peak_at + 1]:
        if event["args"]["Bytes"] > 0:
            live[event["args"]["Addr"]] = event["args"]["Bytes"]
        else:
            live.pop(event["args"]["Addr"], None)
    trace = _import(source, tmp_path)
    document = build_report([trace])
    gpu = next(d for d in document["memory"]["devices"] if d["device_type"] == "gpu")
    assert gpu["held_at_peak_bytes"] == sum(live.values())
    assert 0 < gpu["held_at_peak_bytes"] < gpu["allocated_peak_bytes"]  # the weights came before the trace
    listed = gpu["held_at_peak"]
    assert [h["allocated_bytes"] for h in listed] == sorted((h["allocated_bytes"] for h in listed), reverse=True)
    assert sum(h["count"] for h in listed) <= len(live)
    # The export writes each block's address and size back: a re-import holds the same.
    exported = tmp_path / "exported.json"
    assert cli_runner().invoke(cli, ["export", str(trace.path), "--format", "chrome", "-o",
                                     str(exported)]).exit_code == 0
    (tmp_path / "again").mkdir()
    again = build_report([_import(exported, tmp_path / "again")])
    regpu = next(d for d in again["memory"]["devices"] if d["device_type"] == "gpu")
    assert (regpu["held_at_peak"], regpu["held_at_peak_bytes"]) == (listed, gpu["held_at_peak_bytes"])


# ---------------------------------------------------------------- record


def _allocate_and_free() -> torch.Tensor:
    kept = torch.zeros(4 * MiB // 4)  # 4 MiB, kept to the end
    for _ in range(3):
        big = torch.ones(24 * MiB // 4)  # 24 MiB, freed each time round (nothing else allocates meanwhile)
        del big
    return kept


@pytest.mark.parametrize("use_activities", [True, False])
def test_record_memory_reads_the_allocator_from_the_profiler(tmp_path, use_activities, monkeypatch):
    from profkit.collectors import torch_events

    if use_activities and not hasattr(torch._C._autograd._ProfilerResult, "trace_activities"):
        pytest.skip(f"torch {torch.__version__} has no trace_activities(): its recordings take the events() path")
    if not use_activities:  # the path of torch before 2.13: events(), not trace_activities()
        original = torch_events.extract_parts
        monkeypatch.setattr(torch_events, "extract_parts",
                            lambda results, **kw: original(results, **{**kw, "use_activities": False}))
    out = tmp_path / "mem.parquet"
    with profkit.record(out, telemetry=False, memory=True):
        kept = _allocate_and_free()
    assert kept.numel()
    trace = profkit.load(out)
    assert not (trace.events["name"] == "[memory]").any()  # samples, not event rows
    document = build_report([trace])
    host, = document["memory"]["devices"]
    assert host["device_type"] == "cpu" and host["rank"] == 0
    # The first event allocated the 4 MiB tensor; each 24 MiB one came on top of it and was freed again.
    # (Relative figures: torch's host totals also hold what earlier recordings in this process allocated
    # and freed after they stopped.)
    assert host["allocated_first_bytes"] >= 4 * MiB
    assert 24 * MiB <= host["allocated_peak_bytes"] - host["allocated_first_bytes"] < 24 * MiB + 64 * 1024
    assert host["allocated_last_bytes"] == host["allocated_first_bytes"]
    assert host["allocated_peak_op"] == "aten::ones"
    # torch's events() give each allocation's size, not the allocator's totals: counted from the start.
    assert host["allocated_since_start"] is (not use_activities)
    # trace_activities() give each block's address too: what the peak holds. The 24 MiB tensor of aten::ones
    # (allocated by its aten::empty, which stands for it) and the kept 4 MiB one, nothing else that large.
    if use_activities:
        held = {h["name"]: (h["count"], h["allocated_bytes"]) for h in host["held_at_peak"]}
        assert held["aten::ones"] == (1, 24 * MiB)
        assert sorted(b for _, b in held.values())[-2:] == [4 * MiB, 24 * MiB]
        assert 28 * MiB <= host["held_at_peak_bytes"] < 28 * MiB + 64 * 1024
    else:
        assert "held_at_peak" not in host
    assert trace.metadata["options"]["memory"] is True


def test_without_memory_the_recording_has_no_allocator_samples_and_the_report_says_how_to_get_them(tmp_path):
    out = tmp_path / "plain.parquet"
    with profkit.record(out, telemetry=False):
        _allocate_and_free()
    document = build_report([profkit.load(out)])
    assert document["memory"]["devices"] == []
    assert "--memory" in document["memory"]["reason"]


# ---------------------------------------------------------------- analyzers


def _sample_table(rows: list[tuple]) -> pd.DataFrame:
    """(name, device_type, device_index, start_ns, value[, rank]) rows as a built events table."""
    rows = sorted(rows, key=lambda r: r[3])  # (build_events orders rows by time: the ranks set after it follow)
    columns = {"kind": ["sample"] * len(rows), "name": [r[0] for r in rows], "device_type": [r[1] for r in rows],
               "device_index": np.array([r[2] for r in rows], np.int16),
               "start_ns": np.array([r[3] for r in rows], np.int64), "duration_ns": np.zeros(len(rows), np.int64),
               "value": np.array([r[4] for r in rows], float)}
    table = build_events(columns).to_pandas()
    table["rank"] = [r[5] if len(r) > 5 else 0 for r in rows]
    return table


def test_device_peaks_take_the_first_time_the_most_was_held_per_device_and_measure():
    events = _sample_table([
        ("allocated_bytes", "gpu", 0, 100, 5.0), ("allocated_bytes", "gpu", 0, 200, 9.0),
        ("allocated_bytes", "gpu", 0, 300, 9.0), ("allocated_bytes", "gpu", 0, 400, 2.0),
        ("memory_used_bytes", "gpu", 0, 150, 50.0), ("allocated_bytes", "gpu", 1, 120, 7.0),
        ("rss_bytes", "cpu", -1, 110, 80.0), ("power_w", "gpu", 0, 100, 300.0),
        ("allocated_bytes", "gpu", 0, 250, 11.0, 1),  # rank 1's GPU 0
    ])
    peaks = {(d["rank"], d["device_type"], d["device_index"]): d
             for d in memory.device_peaks(memory.memory_samples(events), origin_ns=100)}
    assert set(peaks) == {(0, "cpu", -1), (0, "gpu", 0), (0, "gpu", 1), (1, "gpu", 0)}
    gpu0 = peaks[(0, "gpu", 0)]
    assert (gpu0["allocated_peak_bytes"], gpu0["allocated_peak_at_ns"]) == (9.0, 100)  # first of the two 9s
    assert (gpu0["allocated_first_bytes"], gpu0["allocated_last_bytes"]) == (5.0, 2.0)
    assert gpu0["device_used_peak_bytes"] == 50.0 and "power" not in " ".join(gpu0)
    assert peaks[(0, "cpu", -1)]["host_rss_peak_bytes"] == 80.0
    assert peaks[(1, "gpu", 0)]["allocated_peak_bytes"] == 11.0


def test_window_peaks_are_the_most_held_inside_each_labels_windows():
    events = _sample_table([("allocated_bytes", "gpu", 0, t, v) for t, v in
                            [(10, 1.0), (20, 5.0), (30, 2.0), (40, 8.0), (50, 3.0), (60, 4.0)]])
    windows = {"label": np.array(["prefill", "decode", "decode", "idle"], dtype=object),
               "rank": np.zeros(4, np.int64), "start_ns": np.array([15, 28, 45, 100]),
               "end_ns": np.array([25, 32, 60, 120])}
    peaks = memory.window_peaks(memory.memory_samples(events), windows)
    assert peaks == {"prefill": 5.0, "decode": 4.0}  # 40 (8.0) is in no window; nothing falls in "idle"


# ---------------------------------------------------------------- check


def _recorded(tmp_path: Path, name: str, extra_mib: int) -> Path:
    """A recording that allocates ``extra_mib`` MiB (its peak also holds what earlier recordings in this
    process allocated: torch's host totals are not reduced by frees outside a recording)."""
    out = tmp_path / f"{name}.parquet"
    with profkit.record(out, telemetry=False, memory=True):
        kept = torch.ones(extra_mib * MiB // 4)
        kept.mul_(2)
    return out


def _imported(tmp_path: Path, name: str, peak: int) -> Path:
    """An imported profile_memory trace whose GPU 0 held at most ``peak`` bytes."""
    folder = tmp_path / name
    folder.mkdir()
    events = [_op("aten::mm", 10, 50), _memory_event(20, allocated=peak, reserved=2 * peak, nbytes=peak),
              _memory_event(40, allocated=MiB, reserved=2 * peak, nbytes=MiB - peak)]
    return _import(_chrome(folder, events), folder).path


def test_check_fails_a_change_that_holds_more_memory_and_passes_one_within_budget(tmp_path):
    base = _imported(tmp_path, "base", 100 * MiB)
    more = _imported(tmp_path, "more", 125 * MiB)
    runner = cli_runner()
    grown = runner.invoke(cli, ["check", str(more), "--baseline", str(base), "--max-memory-regression", "20%"])
    assert grown.exit_code == 1, grown.output
    assert "memory +25.0 % > 20 %" in grown.stderr
    same = runner.invoke(cli, ["check", str(base), "--baseline", str(base), "--max-memory-regression", "1%",
                               "--format", "json"])
    assert same.exit_code == 0, same.output
    verdict, = json.loads(same.stdout)["budgets"]
    assert verdict["metric"] == "memory" and verdict["target"] == "allocated" and verdict["change"] == 0


def test_check_refuses_a_memory_budget_the_traces_cannot_both_measure(tmp_path):
    base = _recorded(tmp_path, "base", 4)
    plain = tmp_path / "plain.parquet"
    with profkit.record(plain, telemetry=False):
        torch.ones(16)
    result = cli_runner().invoke(cli, ["check", str(plain), "--baseline", str(base), "--max-memory-regression", "5%"])
    assert result.exit_code == 2
    assert "the trace has no memory samples" in result.stderr


def test_diff_compares_the_memory_peaks_per_device_and_phase(tmp_path):
    from profkit.analyzers.diff import diff_sections

    base = build_report([profkit.load(_imported(tmp_path, "base", 16 * MiB))])
    new = build_report([profkit.load(_imported(tmp_path, "new", 24 * MiB))])
    parts = diff_sections(base, new)
    devices = parts["memory.devices"]
    assert devices["key"] == "device"
    gpu, = devices["rows"]
    assert gpu["device"] == "GPU 0"
    assert set(parts) >= {"totals", "categories", "roofline"}  # (single-table sections keep their names)
    assert gpu["delta_allocated_peak_bytes"] == 8 * MiB and gpu["change_allocated_peak_bytes"] == 0.5
    assert gpu["delta_reserved_peak_bytes"] == 16 * MiB


def test_a_chrome_trace_torch_wrote_with_profile_memory_imports_its_allocator(tmp_path):
    """The real thing rather than hand-written events: torch.profiler's own export of a CPU run."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as prof:
        kept = torch.zeros(2 * MiB // 4)  # 2 MiB held to the end
        for _ in range(2):
            big = torch.ones(12 * MiB // 4)  # 12 MiB on top, freed
            del big
    path = tmp_path / "torch_export.json"
    prof.export_chrome_trace(str(path))
    raw = [e["args"] for e in json.loads(path.read_text())["traceEvents"] if e.get("name") == "[memory]"]
    assert raw and kept.numel()
    document = build_report([_import(path, tmp_path)])
    host, = document["memory"]["devices"]
    assert host["allocated_peak_bytes"] == max(a["Total Allocated"] for a in raw)
    assert host["allocated_peak_bytes"] - host["allocated_first_bytes"] == 12 * MiB
    assert host["allocated_peak_op"] == "aten::ones" and not host["allocated_since_start"]


def test_the_ops_that_allocated_most_are_named_after_the_op_that_called_the_allocation(tmp_path):
    events = [
        _op("aten::linear", 0, 100), _op("aten::mm", 10, 50), _op("aten::empty", 20, 5),  # mm allocates via empty
        _op("aten::cat", 200, 10), _op("aten::cat", 300, 10), _op("aten::empty", 400, 5),  # a direct empty
        _memory_event(1, allocated=100 * MiB, reserved=200 * MiB, nbytes=MiB),  # the first: no rise known
        _memory_event(22, allocated=108 * MiB, reserved=200 * MiB, nbytes=8 * MiB),
        _memory_event(205, allocated=112 * MiB, reserved=200 * MiB, nbytes=4 * MiB),
        _memory_event(305, allocated=116 * MiB, reserved=200 * MiB, nbytes=4 * MiB),
        _memory_event(350, allocated=100 * MiB, reserved=200 * MiB, nbytes=-16 * MiB),  # a free: no allocation
        _memory_event(402, allocated=101 * MiB, reserved=200 * MiB, nbytes=MiB),
    ]
    memory_section = build_report([_import(_chrome(tmp_path, events), tmp_path)])["memory"]
    top = {a["name"]: (a["count"], a["allocated_bytes"]) for a in memory_section["top_allocations"]}
    assert top == {"aten::mm": (1, 8 * MiB), "aten::cat": (2, 8 * MiB), "aten::empty": (1, MiB)}
    assert [a["name"] for a in memory_section["top_allocations"]][-1] == "aten::empty"  # most bytes first


def test_an_exported_trace_imports_back_with_its_allocator_samples_whole(tmp_path):
    from profkit.report.chrome_export import write_chrome

    events = [
        _op("aten::linear", 0, 100), _op("aten::mm", 10, 50), _op("aten::empty", 20, 5),
        _memory_event(22, allocated=40 * MiB, reserved=64 * MiB, nbytes=8 * MiB),
        _memory_event(70, allocated=32 * MiB, reserved=64 * MiB, nbytes=-8 * MiB),
        _memory_event(75, allocated=132 * MiB, reserved=160 * MiB, nbytes=100 * MiB),
        _memory_event(80, allocated=4096, reserved=0, nbytes=4096, device_type=0, device=-1),
    ]
    original = _import(_chrome(tmp_path, events), tmp_path)
    exported = tmp_path / "export.json"
    write_chrome(original, exported)
    (tmp_path / "back").mkdir()
    again = _import(exported, tmp_path / "back")
    before, after = _samples(original), _samples(again)
    columns = ["name", "start_ns", "device_type", "device_index", "thread_id", "value"]
    assert before[columns].reset_index(drop=True).equals(after[columns].reset_index(drop=True))
    assert build_report([again])["memory"] == build_report([original])["memory"]


def test_malformed_allocator_events_are_left_out_not_a_traceback(tmp_path):
    events = [
        _op("aten::mm", 0, 50),
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 100, "tid": 7, "ts": 10, "args": [1, 2]},  # args no object
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 100, "tid": "x", "ts": 11,
         "args": {"Total Allocated": "lots", "Device Type": 1, "Device Id": 0}},  # no number
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 100, "tid": 7, "args": {"Total Allocated": 9}},  # no ts
        _memory_event(12, allocated=7, reserved=7, nbytes=7, device=2**40),  # no GPU has that index
        _memory_event(12, allocated=100, reserved=None, nbytes=100),
    ]
    trace = _import(_chrome(tmp_path, events), tmp_path)
    samples = _samples(trace)
    assert list(zip(samples["name"], samples["value"])) == [("allocated_bytes", 100.0)]
    assert build_report([trace])["memory"]["devices"][0]["allocated_peak_op"] == "aten::mm"


def test_allocator_samples_without_a_value_or_a_reserve_export_without_a_traceback(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from profkit.report.chrome_export import write_chrome

    events = [_op("aten::mm", 10, 50), _memory_event(20, allocated=8 * MiB, reserved=16 * MiB, nbytes=8 * MiB),
              _memory_event(30, allocated=4 * MiB, reserved=16 * MiB, nbytes=-4 * MiB)]
    table = pq.read_table(_import(_chrome(tmp_path, events), tmp_path).path)
    names, values = table.column("name").to_pylist(), table.column("value").to_pylist()
    values[names.index("allocated_bytes")] = None  # (a file others wrote: a sample with no value)
    values[names.index("reserved_bytes")] = float("inf")  # and a reserve no int holds
    odd = tmp_path / "odd.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("value"), "value", pa.array(values, pa.float64())),
                   odd)
    out = tmp_path / "odd.json"
    write_chrome(profkit.load(odd), out)
    memory = [e for e in json.loads(out.read_text())["traceEvents"] if e.get("name") == "[memory]"]
    assert [e["args"]["Total Allocated"] for e in memory] == [4 * MiB]
    assert "Total Reserved" not in memory[0]["args"]
