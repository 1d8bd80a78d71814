"""profkit import: Kineto / Chrome-trace JSON -> profkit traces.

Real traces from ../shared/traces (skipped when absent) and small synthetic
ones written here for the cases found in the wild: legacy categories, flow-only
links, float ns timestamps, the JSON Array Format, missing metadata, errors.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import profkit
from profkit.cli.main import cli
from profkit.collectors import json_stream
from profkit.collectors.kineto_json import read_kineto, trace_inputs
from profkit.errors import TraceImportError
from profkit.report import build_report
from profkit.trace.io import write_trace

from conftest import cli_runner, run_profkit, shared_trace

# Kernel counts: the README of ../shared/traces for the first three; for the rank
# files, counted with a plain json.load of each file (events with cat == "kernel").
SHARED_KERNELS = {
    "h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz": 1465,
    "mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz": 1516,
    "benchmark_result_2869224_1695835535_trace.json.gz": 79,
    "sampled_rank-0.json.gz": 1154,
    "sampled_rank-1.json.gz": 1104,
}


def _import(source: Path, tmp_path: Path) -> profkit.Trace:
    imported = read_kineto(source, progress=False)
    target = write_trace(tmp_path / (source.name + ".parquet"), imported.table, imported.metadata)
    return profkit.load(target)


@pytest.mark.parametrize("name", sorted(SHARED_KERNELS))
def test_every_shared_trace_imports_and_reports(name, tmp_path):
    trace = _import(shared_trace(name), tmp_path)
    document = build_report([trace])
    assert document["totals"]["kernel_count"] == SHARED_KERNELS[name]
    assert trace.metadata["producer"] == "profkit import"
    assert trace.metadata["source_file"].endswith(name)
    events = trace.events
    assert events["start_ns"].is_monotonic_increasing
    # host events nest: every parent of a host event is an earlier event
    nested = events[events["parent_id"].notna()]
    assert (nested["parent_id"] < nested["event_id"]).all()


def test_h100_links_kernels_to_their_ops(tmp_path):
    trace = _import(shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"), tmp_path)
    events = trace.events
    kernels = events[events["kind"] == "kernel"]
    # 436 of the 1465 kernels ran before the first CPU op of the profiling window
    # (ts < 1428625746277.044 µs, no runtime call carries their correlation): 1029 can be linked.
    assert kernels["op_id"].notna().sum() == 1029
    assert kernels["launch_id"].notna().sum() == 1029
    by_id = events.set_index("event_id")
    ops = by_id.loc[kernels["op_id"].dropna().astype(int), "name"].astype(str).to_numpy()
    launches = by_id.loc[kernels["launch_id"].dropna().astype(int), "kind"].astype(str)
    assert set(launches) == {"runtime"}
    gemm = kernels["op_id"].notna() & kernels["name"].astype(str).str.contains("gemm")
    gemm_ops = set(by_id.loc[kernels.loc[gemm, "op_id"].astype(int), "name"].astype(str))
    assert gemm_ops and gemm_ops <= {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul"}
    assert "aten::_flash_attention_forward" in set(ops)
    # shapes and dtypes from "Input Dims" / "Input type" of the first aten::embedding
    embedding = events[events["name"] == "aten::embedding"].iloc[0]
    assert json.loads(embedding["input_shapes"])[:2] == [[151936, 1024], [16, 559]]
    assert json.loads(embedding["input_dtypes"])[:2] == ["c10::BFloat16", "long int"]
    # ts 1428625731622.25 µs after baseTimeNanoseconds 1751410836000000000:
    # 1751410836000000000 + 1428625731622250 = 1752839461731622250 ns
    assert kernels["start_ns"].min() == 1752839461731622250
    first = kernels.iloc[0]
    assert first["duration_ns"] == 18112  # dur 18.112 µs
    assert json.loads(first["extra"])["grid"] == [17888, 1, 1]
    device = trace.metadata["devices"][0]
    assert (device["name"], device["total_memory_bytes"], device["compute_capability"]) == (
        "NVIDIA H100 80GB HBM3", 85018279936, "9.0")
    assert trace.metadata["cuda_version"] == "12.4"  # cuda_runtime_version 12040
    # ProfilerStep#6 -> one "step" phase mark
    steps = events[(events["kind"] == "phase") & (events["name"] == "step")]
    assert len(steps) == 1 and json.loads(steps.iloc[0]["extra"])["step"] == 6


def test_amd_trace_maps_gpu_agent_to_device_zero(tmp_path):
    trace = _import(shared_trace("mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"), tmp_path)
    kernels = trace.kernels
    # events say device 2 (ROCm numbers GPU agents after CPU agents); deviceProperties has id 0 only
    assert set(kernels["device_index"].astype(int)) == {0}
    assert trace.metadata["devices"][0]["name"] == "AMD Instinct MI300X VF"
    assert trace.metadata["hip_version"] == "6.4.43483"  # hip_runtime_version 60443483
    assert any("renumbered" in note for note in trace.metadata["notes"])
    # 1053 kernels carry an External id: those launched by hipLaunchKernel inside the window
    assert kernels["op_id"].notna().sum() == 1053


def test_rank_files_become_ranks_0_and_1(tmp_path):
    folder = tmp_path / "ranks"
    folder.mkdir()
    for name in ("sampled_rank-0.json.gz", "sampled_rank-1.json.gz"):
        shutil.copy(shared_trace(name), folder / name)
    out = tmp_path / "out"
    result = cli_runner().invoke(cli, ["import", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(out.glob("*.parquet"))
    assert [p.name for p in written] == ["sampled_rank-0.parquet", "sampled_rank-1.parquet"]
    traces = [profkit.load(p) for p in written]
    assert [t.rank for t in traces] == [0, 1]
    assert {t.metadata["world_size"] for t in traces} == {128}
    document = build_report(traces)
    assert document["run"]["ranks"] == [0, 1]
    assert document["totals"]["kernel_count"] == 1154 + 1104
    # busy time summed over the two GPUs is a share of their two spans, as the idle share is
    totals, idle = document["totals"], document["roofline"]["idle"]
    assert totals["rank_count"] == 2 and totals["device_span_ns"] == idle["span_ns"] > totals["span_ns"]
    assert totals["device_busy_share"] == pytest.approx(1 - idle["idle_share"]) and idle["ranks"] == 2
    # two ProfilerSteps on each rank: steps are counted per rank
    assert document["training"]["steps"] == 4 and document["training"]["ranks"] == 2
    # no deviceProperties: the GPU is listed, its model unknown
    assert traces[1].metadata["devices"] == [{"index": 1, "type": "gpu", "name": "unknown GPU"}]


def test_alexnet_cuda_sync_events_are_kept_as_other(tmp_path):
    trace = _import(shared_trace("benchmark_result_2869224_1695835535_trace.json.gz"), tmp_path)
    other = trace.events[trace.events["kind"] == "other"]
    assert len(other) == 41  # 41 cuda_sync events in the file
    assert trace.kernels["op_id"].notna().all()  # every one of the 79 kernels has its cudaLaunchKernel


# ---------------------------------------------------------------- synthetic traces

BASE_NS = 1_700_000_000_000_000_000


def _legacy_trace() -> dict:
    """PyTorch 1.8-style: capitalised categories, links only through async_cpu_to_gpu flows."""
    return {
        "schemaVersion": 1,
        "traceEvents": [
            {"ph": "X", "cat": "Operator", "name": "aten::mm", "pid": 10, "tid": 11, "ts": 100, "dur": 50,
             "args": {"Input Dims": [[4, 8], [8, 2]], "Input type": ["float", "float"]}},
            {"ph": "X", "cat": "Runtime", "name": "cudaLaunchKernel", "pid": 10, "tid": 11, "ts": 110, "dur": 10},
            {"ph": "s", "cat": "async_cpu_to_gpu", "name": "launch", "id": 7, "pid": 10, "tid": 11, "ts": 110},
            {"ph": "X", "cat": "Kernel", "name": "gemm_kernel", "pid": 0, "tid": "stream 7", "ts": 130, "dur": 20,
             "args": {"device": 0, "stream": 7}},
            {"ph": "f", "cat": "async_cpu_to_gpu", "name": "launch", "id": 7, "pid": 0, "tid": "stream 7", "ts": 130,
             "bp": "e"},
            {"ph": "X", "cat": "Memcpy", "name": "Memcpy HtoD", "pid": 0, "tid": "stream 7", "ts": 160, "dur": 5,
             "args": {"device": 0, "stream": 7, "bytes": 64}},
            {"ph": "X", "cat": "python_function", "name": "model.py(3): forward", "pid": 10, "tid": 11, "ts": 90,
             "dur": 80},
        ],
    }


def _write(tmp_path: Path, document, name: str = "trace.json", gz: bool = False) -> Path:
    path = tmp_path / (name + (".gz" if gz else ""))
    text = document if isinstance(document, str) else json.dumps(document)
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_legacy_categories_and_flow_links(tmp_path):
    trace = _import(_write(tmp_path, _legacy_trace(), gz=True), tmp_path)
    events = trace.events.set_index("name")
    assert events.loc["aten::mm", "kind"] == "cpu_op"
    assert events.loc["cudaLaunchKernel", "kind"] == "runtime"
    assert events.loc["gemm_kernel", "kind"] == "kernel"
    assert events.loc["Memcpy HtoD", "kind"] == "memcpy"
    assert events.loc["Memcpy HtoD", "bytes"] == 64
    assert events.loc["model.py(3): forward", "kind"] == "python_function"
    # the kernel has no args.correlation: the flow with id 7 ties it to the launch
    assert events.loc["gemm_kernel", "op_id"] == events.loc["aten::mm", "event_id"]
    assert events.loc["gemm_kernel", "launch_id"] == events.loc["cudaLaunchKernel", "event_id"]
    assert events.loc["gemm_kernel", "stream"] == 7
    # the op nests in the Python frame: python_function(depth 0) > aten::mm(1) > cudaLaunchKernel(2)
    assert events.loc["cudaLaunchKernel", "depth"] == 2
    # integer µs epoch timestamps: ts 130 -> 130000 ns
    assert events.loc["gemm_kernel", "start_ns"] == 130_000
    assert trace.metadata["rank"] is None
    assert trace.metadata["devices"] == [{"index": 0, "type": "gpu", "name": "unknown GPU"}]


def test_float_ns_timestamps_keep_every_nanosecond(tmp_path):
    # µs epoch floats with ns digits: 1700000000000000.123 µs cannot be held by a double
    # (its spacing there is 0.25 µs), so the importer rounds; relative to baseTimeNanoseconds
    # the same instant is exact: base + 1.123 µs = ...001123 ns.
    document = {
        "baseTimeNanoseconds": BASE_NS,
        "traceEvents": [
            {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 1.123, "dur": 2.001},
            {"ph": "X", "cat": "cpu_op", "name": "aten::mul", "pid": 1, "tid": 1, "ts": 0.999, "dur": 0.001},
        ],
    }
    trace = _import(_write(tmp_path, document), tmp_path)
    events = trace.events.set_index("name")
    assert events.loc["aten::add", "start_ns"] == BASE_NS + 1123
    assert events.loc["aten::add", "duration_ns"] == 2001
    assert events.loc["aten::mul", "start_ns"] == BASE_NS + 999
    assert events.loc["aten::mul", "duration_ns"] == 1


def test_external_id_links_kernels_without_launch_calls(tmp_path):
    document = {
        "traceEvents": [
            {"ph": "X", "cat": "cpu_op", "name": "aten::relu", "pid": 5, "tid": 5, "ts": 10, "dur": 5,
             "args": {"External id": 42}},
            {"ph": "X", "cat": "kernel", "name": "relu_kernel", "pid": 0, "tid": 7, "ts": 20, "dur": 3,
             "args": {"External id": 42, "correlation": 900, "device": 0, "stream": 7}},
        ]
    }
    trace = _import(_write(tmp_path, document), tmp_path)
    events = trace.events.set_index("name")
    assert events.loc["relu_kernel", "op_id"] == events.loc["aten::relu", "event_id"]
    assert any("External id" in note for note in trace.metadata["notes"])


def test_json_array_format_without_closing_bracket(tmp_path):
    text = '[{"ph": "X", "cat": "cpu_op", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": 1},\n' \
           '{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 3, "dur": 1},\n'
    trace = _import(_write(tmp_path, text), tmp_path)
    assert list(trace.events["name"].astype(str)) == ["a", "k"]


def test_streaming_across_tiny_chunks_gives_the_same_trace(tmp_path, monkeypatch):
    path = _write(tmp_path, _legacy_trace())
    whole = read_kineto(path, progress=False).table
    monkeypatch.setattr(json_stream, "_CHUNK_BYTES", 7)
    monkeypatch.setattr(json_stream, "_MARGIN_CHARS", 3)
    chunked = read_kineto(path, progress=False).table
    assert chunked.equals(whole)


def test_without_orjson_the_standard_library_gives_the_same_trace(tmp_path, monkeypatch):
    from profkit.collectors import kineto_events

    path = shared_trace("benchmark_result_2869224_1695835535_trace.json.gz")
    fast = read_kineto(path, progress=False).table
    monkeypatch.setattr(json_stream, "_orjson", None)
    monkeypatch.setattr(kineto_events, "_orjson", None)
    assert read_kineto(path, progress=False).table.equals(fast)


def test_folder_inputs_pick_json_and_json_gz(tmp_path):
    _write(tmp_path, _legacy_trace(), "a.json")
    _write(tmp_path, _legacy_trace(), "b.json", gz=True)
    (tmp_path / "notes.txt").write_text("not a trace")
    assert [p.name for p in trace_inputs([tmp_path])] == ["a.json", "b.json.gz"]


# ---------------------------------------------------------------- errors: one line, exit 2

BAD_INPUTS = {
    "truncated": ('{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "a", "ts": 1, "dur', "malformed JSON"),
    "not_json": ("hello, world", "malformed JSON"),
    "not_a_trace": ('{"name": "package.json", "version": "1.0"}', "no traceEvents"),
    "events_not_objects": ('{"traceEvents": [1, 2, 3]}', "traceEvents holds a number, not event objects"),
    "events_a_number": ('{"traceEvents": 5}', "traceEvents is a number, not an array of events"),
    "events_an_object": ('{"traceEvents": {"ph": "X"}}', "traceEvents is an object, not an array of events"),
    "args_an_array": ('{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "a", "ts": 1, "dur": 1, "args": [1]}]}',
                      "an event's args is an array, not an object"),
    "only_ts_out_of_range": ('{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "a", "ts": 1e30, "dur": 1}]}',
                             "no timed events"),
    "lone_surrogate": ('{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "a \\ud800", "ts": 1, "dur": 1}]}',
                       "not Unicode"),
    "empty": ("", "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_json_gives_one_line_error_and_exit_2(case, tmp_path):
    text, message = BAD_INPUTS[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    result = cli_runner().invoke(cli, ["import", str(path), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("profkit: error:")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.parquet").exists()


def test_times_beyond_int64_nanoseconds_are_skipped_not_wrapped(tmp_path):
    # 1e30 µs cannot be an epoch time in int64 ns: it once wrapped to an arbitrary start. The event is
    # skipped and said so; a duration out of range reads as none.
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "far", "ts": 1e30, "dur": 1},
        {"ph": "X", "cat": "cpu_op", "name": "long", "ts": 5, "dur": 1e300},
        {"ph": "X", "cat": "cpu_op", "name": "ok", "ts": 7, "dur": 2},
    ]}))
    imported = read_kineto(path)
    table = imported.table.to_pandas().set_index("name")
    assert sorted(table.index) == ["long", "ok"]
    assert table.loc["ok", "start_ns"] - table.loc["long", "start_ns"] == 2000 and table.loc["long", "duration_ns"] == 0
    assert "skipped 1 X with ts out of range events" in imported.metadata["notes"]


def test_malformed_event_early_in_a_big_file_fails_without_reading_on(tmp_path, monkeypatch):
    event = json.dumps({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1, "dur": 1})
    lines = [event] * 20_000
    lines[10] = '{"ph": "X", "cat": "cpu_op" "name": "missing comma"}'
    path = _write(tmp_path, '{"traceEvents": [' + ",\n".join(lines) + "]}")
    monkeypatch.setattr(json_stream, "_CHUNK_BYTES", 4096)  # the file is ~1.8 MB: ~440 windows
    monkeypatch.setattr(json_stream, "_MARGIN_CHARS", 1024)
    fills = []
    original = json_stream.JsonStream._fill
    monkeypatch.setattr(json_stream.JsonStream, "_fill", lambda self: fills.append(1) or original(self))
    with pytest.raises(TraceImportError, match=r"malformed JSON at character \d+: Expecting ',' delimiter"):
        read_kineto(path, progress=False)
    assert len(fills) <= 2  # the error is reported from the first window, not after reading the whole file


def test_corrupt_gzip_is_one_line_error(tmp_path):
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_legacy_trace()).encode())[:40])
    with pytest.raises(TraceImportError, match="broken.json.gz"):
        read_kineto(path, progress=False)


def test_several_inputs_need_an_output_folder(tmp_path):
    a = _write(tmp_path, _legacy_trace(), "a.json")
    b = _write(tmp_path, _legacy_trace(), "b.json")
    result = cli_runner().invoke(cli, ["import", str(a), str(b), "-o", str(tmp_path / "one.parquet")])
    assert result.exit_code == 2 and "output folder" in result.stderr


def test_report_reads_chrome_json_directly():
    """`profkit report trace.json.gz` imports on the fly: same totals as report of the imported Parquet."""
    source = shared_trace("benchmark_result_2869224_1695835535_trace.json.gz")
    direct = run_profkit("report", str(source), "--format", "json")
    assert direct.returncode == 0, direct.stderr
    document = json.loads(direct.stdout)
    assert document["totals"]["kernel_count"] == 79  # as ../shared/traces/README.md counts them
    assert document["run"]["device"] == "NVIDIA A100-PG509-200"


def test_report_diff_and_check_read_a_folder_of_chrome_json_as_its_ranks(tmp_path):
    """A tensorboard_trace_handler folder, or a job's rank files: each file a rank, converted on the fly."""
    run = tmp_path / "run"
    run.mkdir()
    for rank in (0, 1):
        document = {**_legacy_trace(), "distributedInfo": {"rank": rank, "world_size": 2}}
        _write(run, document, f"worker{rank}.pt.trace.json", gz=rank == 1)
    result = cli_runner().invoke(cli, ["report", str(run), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["run"]["ranks"] == [0, 1]
    assert document["totals"]["kernel_count"] == 2  # one gemm_kernel a rank
    assert cli_runner().invoke(cli, ["check", str(run), "--baseline", str(run)]).exit_code == 0
    assert cli_runner().invoke(cli, ["diff", str(run), str(run), "--format", "json"]).exit_code == 0
    (tmp_path / "empty").mkdir()
    empty = cli_runner().invoke(cli, ["report", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no .parquet, .json or .json.gz traces" in empty.stderr


def _optimizer_trace(steps: list[tuple[str, int, int]]) -> dict:
    """A host thread: a forward op at 0, then one Optimizer.step#<class>.step range per (class, ts, dur)."""
    events = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0, "dur": 5,
               "args": {"Input Dims": [[4, 8], [8, 2]], "Input type": ["float", "float"]}}]
    events += [{"ph": "X", "cat": "user_annotation", "name": f"Optimizer.step#{cls}.step", "pid": 1, "tid": 1,
                "ts": ts, "dur": dur} for cls, ts, dur in steps]
    return {"schemaVersion": 1, "traceEvents": events}


def test_optimizer_ranges_become_training_steps_without_profiler_steps(tmp_path):
    # Step k runs from the end of optimizer step k-1 (step 1: from the trace's first event) to the end
    # of optimizer step k. A GAN's second optimizer (Adam) and a subclass's inner super().step()
    # (the range at 52 inside the one at 50) are not steps of their own.
    document = _optimizer_trace([("SGD", 10, 5), ("Adam", 17, 2), ("SGD", 30, 10), ("SGD", 50, 10),
                                 ("SGD", 52, 4)])
    trace = _import(_write(tmp_path, document), tmp_path)
    marks = trace.phases
    assert marks["name"].tolist() == ["train_step"] * 3
    assert [json.loads(extra) for extra in marks["extra"]] == [
        {"step": k, "source": "optimizer"} for k in (1, 2, 3)]
    assert marks["start_ns"].tolist() == [0, 15_000, 40_000]
    assert (marks["start_ns"] + marks["duration_ns"]).tolist() == [15_000, 40_000, 60_000]
    # the training summary leaves step 1 out, as for a trace profkit recorded itself
    assert build_report([trace])["training"]["steps"] == 3
    # a ProfilerStep#N in the trace is preferred: its ranges are the steps
    document["traceEvents"].append({"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#4", "pid": 1,
                                    "tid": 1, "ts": 0, "dur": 60})
    marks = _import(_write(tmp_path, document, name="with_step.json"), tmp_path).phases
    assert marks["name"].tolist() == ["step"]


def test_torch_profiler_with_stack_trace_splits_its_steps(tmp_path):
    # torch.profiler without a schedule records no ProfilerStep#N; with_stack, each record_function
    # range (Optimizer.step#AdamW.step) opens inside its __enter__ frame and outlives it.
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    model = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    optimizer = torch.optim.AdamW(model.parameters(), foreach=False)
    inputs = torch.randn(16, 32)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_stack=True) as prof:
        for _ in range(3):
            model(inputs).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    source = tmp_path / "stack.json"
    prof.export_chrome_trace(str(source))
    trace = _import(source, tmp_path)
    events = trace.events
    assert (events["kind"] == "python_function").any()
    # every op AdamW ran sits inside its Optimizer.step range
    by_id = events.set_index("event_id")
    parents = by_id["parent_id"]

    def inside_optimizer_step(event_id) -> bool:
        while not pd.isna(event_id):
            if str(by_id.at[event_id, "name"]).startswith("Optimizer.step#AdamW"):
                return True
            event_id = parents.at[event_id]
        return False

    adam_ops = events.loc[events["name"].isin(["aten::lerp_", "aten::addcdiv_"]), "event_id"]
    assert len(adam_ops) >= 3 and all(inside_optimizer_step(op) for op in adam_ops)
    training = build_report([trace])["training"]
    assert training["steps"] == 3 and training["steps_summarized"] == 2  # step 1 holds the start-up
    assert training["optimizer_ns"] > 0 and training["forward_ns"] > 0 and training["backward_ns"] > 0


def test_events_whose_ph_or_cat_is_no_text_are_skipped_and_counted(tmp_path):
    # A ph (or a flow's cat) that is a list or an object once raised "unhashable type" (found by fuzzing).
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": [
        {"ph": ["X"], "cat": "cpu_op", "name": "a", "ts": 1, "dur": 1},
        {"ph": {"X": 1}, "cat": "cpu_op", "name": "b", "ts": 2, "dur": 1},
        {"ph": "s", "cat": ["ac2g"], "id": 1, "ts": 2},
        {"ph": "X", "cat": "cpu_op", "name": "ok", "ts": 3, "dur": 1},
    ]}))
    imported = read_kineto(path)
    assert imported.table.column("name").to_pylist() == ["ok"]
    assert {"skipped 1 ph=['X'] events", "skipped 1 ph={'X': 1} events"} <= set(imported.metadata["notes"])


def test_ids_and_times_of_no_number_read_as_missing_without_a_warning(tmp_path, recwarn):
    """A window of one event (the stream reads item by item after a NaN) whose pid is a list, a size
    no int64 holds: no traceback, no numpy warning on the user's terminal, the event still imported."""
    events = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": [1, 2], "tid": 1e30, "ts": 1, "dur": 5, "args": {}},
        {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 2, "dur": 1,
         "args": {"device": 1e30, "stream": 7, "correlation": 1e300}},
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": [1], "ts": 3,
         "args": {"Total Allocated": 1e30, "Device Type": 1, "Device Id": 0}},
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"traceEvents": events}))
    trace = profkit.load(write_trace(tmp_path / "odd.parquet", *_read(path)))
    assert sorted(trace.events["name"].astype(str)) == ["aten::mm", "k"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def _read(path: Path):
    imported = read_kineto(path, progress=False)
    return imported.table, imported.metadata


def test_a_base_time_no_int64_holds_is_a_one_line_error(tmp_path):
    path = tmp_path / "based.json"
    path.write_text(json.dumps({"baseTimeNanoseconds": 2**70, "traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1, "dur": 5}]}))
    result = cli_runner().invoke(cli, ["import", str(path), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 2 and "baseTimeNanoseconds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.parquet").exists()
