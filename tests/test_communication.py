"""The communication section: collective kernels' time, the part other GPU work overlapped, the exposed
rest. Hand-built kernels with known overlaps, and the 2-rank NCCL job in ../shared/traces checked against
a plain-Python sweep of its JSON (no profkit code)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import profkit
from profkit.analyzers import communication
from profkit.analyzers.diff import diff_sections
from profkit.report import build_report
from profkit.trace.build import build_events
from profkit.trace.io import write_trace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
NCCL = "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)"
T0 = 1_750_000_000_000_000_000
US = 1_000


def _kernels(path: Path, kernels: list[tuple[str, int, int, int]], rank: int = 0) -> Path:
    """A trace of GPU kernels only: (name, stream, start µs, duration µs) each, on GPU 0 of ``rank``."""
    raw = pd.DataFrame([{"kind": "kernel", "name": name, "start_ns": T0 + start * US, "duration_ns": duration * US,
                         "device_type": "gpu", "device_index": 0, "stream": stream, "thread_id": stream}
                        for name, stream, start, duration in kernels])
    raw["device_index"] = raw["device_index"].astype("int16")
    raw["process_id"] = 1
    for column in ("thread_id", "stream"):
        raw[column] = raw[column].astype("Int64")
    metadata = {"producer": "tests", "command": ["python", "train.py"], "partial": False, "exit_code": 0, "rank": rank,
                "devices": [{"index": 0, "type": "gpu", "name": "NVIDIA H100 80GB HBM3"}]}
    return write_trace(path, build_events(raw), metadata)


def test_overlapped_and_exposed_time_of_hand_built_kernels(tmp_path):
    # all-reduce 0-100 µs beside a GEMM 50-150 µs: 50 µs overlapped; a second all-reduce 200-260 µs alone;
    # a third 220-240 µs inside the second (one union: counted once per rank, twice per name).
    path = _kernels(tmp_path / "t.parquet", [
        (NCCL, 20, 0, 100), ("gemm_kernel", 7, 50, 100), (NCCL, 20, 200, 60), (NCCL, 21, 220, 20),
    ])
    section = build_report([profkit.load(path)])["communication"]
    (rank,) = section["ranks"]
    assert rank["communication_ns"] == 160 * US  # [0, 100) ∪ [200, 260)
    assert rank["overlapped_ns"] == 50 * US and rank["exposed_ns"] == 110 * US
    assert rank["overlapped_share"] == pytest.approx(50 / 160)
    assert rank["span_ns"] == 260 * US and rank["exposed_share"] == pytest.approx(110 / 260)
    (collective,) = section["collectives"]
    assert collective["count"] == 3 and collective["time_ns"] == 180 * US
    assert collective["exposed_ns"] == (50 + 60 + 20) * US  # each kernel's own exposed time
    assert section["reason"] is None
    assert rank["waiting_ns"] is None and section["waiting"] is None  # (one rank: nobody to wait for)


GATHER = "ncclKernel_AllGather_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)"


def test_each_rank_waits_for_the_slowest_collective_by_collective(tmp_path, capsys):
    # Three all-reduces on each of two ranks, whose clocks are 5 s apart (durations only are compared):
    # rank 0 runs them 100, 40, 70 µs, rank 1 60, 90, 70 µs. Rank 0 waits 40 µs in the first (rank 1
    # came late), rank 1 50 µs in the second. An all-gather ran twice on rank 0, once on rank 1 (a
    # window that cut one off): not matched, and named.
    from rich.console import Console

    from profkit.report.sections.communication import render

    rank0 = _kernels(tmp_path / "r0.parquet", [(NCCL, 20, 0, 100), (NCCL, 20, 200, 40), (NCCL, 20, 400, 70),
                                               (GATHER, 21, 600, 500), (GATHER, 21, 1200, 30)], rank=0)
    later = 5_000_000  # µs
    rank1 = _kernels(tmp_path / "r1.parquet", [(NCCL, 20, later, 60), (NCCL, 20, later + 200, 90),
                                               (NCCL, 20, later + 400, 70), (GATHER, 21, later + 600, 10)], rank=1)
    section = build_report([profkit.load(rank0), profkit.load(rank1)])["communication"]
    by_rank = {r["rank"]: r for r in section["ranks"]}
    assert by_rank[0]["waiting_ns"] == 40 * US and by_rank[1]["waiting_ns"] == 50 * US
    assert by_rank[0]["waiting_share"] == pytest.approx(40 / 210) and by_rank[1]["waiting_share"] == pytest.approx(50 / 220)
    assert section["waiting"] == {"instances": 3, "skipped": [GATHER]}
    console = Console(file=None, force_terminal=False, width=200)
    render(section, console)
    out = capsys.readouterr().out
    assert "rank 0 40 µs" in out and "rank 1 50 µs" in out and "ncclKernel_AllGather" in out
    assert "over the 3 collectives matched on every rank" in out
    # Rank 1 came last to the first, rank 0 to the second, both ran the third alike (a tie counts for each).
    assert by_rank[0]["last_arrivals"] == 2 and by_rank[1]["last_arrivals"] == 2
    assert "last to arrive most often: ranks 0, 1, at 2 of 3 each" in out


def test_a_trace_without_collectives_says_so_and_prints_nothing(tmp_path, capsys):
    from rich.console import Console

    from profkit.report.sections.communication import render

    path = _kernels(tmp_path / "t.parquet", [("gemm_kernel", 7, 0, 100)])
    section = build_report([profkit.load(path)])["communication"]
    assert section["ranks"] == [] and "no collective kernels" in section["reason"]
    render(section, Console(file=None, force_terminal=False))
    assert capsys.readouterr().out == ""


def test_each_rank_is_measured_against_its_own_work():
    # Rank 1's GEMM overlaps rank 0's all-reduce in time but runs on another GPU: it hides nothing.
    rows = communication.DeviceRows(rank=np.array([0, 1, 1]), device_work=np.ones(3, dtype=bool),
                                    collective=np.array([True, False, True]), start_ns=np.array([0, 0, 100]),
                                    end_ns=np.array([100, 100, 150]))
    exposed = communication.exposed_intervals(rows)
    by_rank = communication.overlap_by_rank(rows, exposed)
    assert [(r["rank"], r["overlapped_ns"], r["exposed_ns"]) for r in by_rank] == [(0, 0, 100), (1, 0, 50)]
    assert communication.exposed_by_kernel(rows, exposed).tolist() == [100, 0, 50]


def test_diff_compares_exposed_communication_per_rank(tmp_path):
    base = _kernels(tmp_path / "base.parquet", [(NCCL, 20, 0, 100), ("gemm_kernel", 7, 0, 100)])
    new = _kernels(tmp_path / "new.parquet", [(NCCL, 20, 0, 100), ("gemm_kernel", 7, 0, 40)])
    parts = diff_sections(build_report([profkit.load(base)]), build_report([profkit.load(new)]))
    ranks = parts["communication.ranks"]
    assert ranks["key"] == "rank"
    (row,) = ranks["rows"]
    assert row["delta_exposed_ns"] == 60 * US and row["delta_overlapped_ns"] == -60 * US


# ---------------------------------------------------------------- the shared 2-rank NCCL job


def _sweep(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of [start, end) intervals, the textbook way."""
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _covered(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


@pytest.mark.parametrize("rank", [0, 1])
def test_the_shared_nccl_job_agrees_with_a_sweep_of_its_json(rank, tmp_path):
    source = SHARED / f"sampled_rank-{rank}.json.gz"
    if not source.exists():
        pytest.skip("../shared/traces is not here")
    with gzip.open(source) as f:
        events = json.load(f)["traceEvents"]
    base_us = min(e["ts"] for e in events if e.get("ph") == "X")
    work = [(round((e["ts"] - base_us) * 1000), round((e["ts"] - base_us + e["dur"]) * 1000), e["name"])
            for e in events if e.get("ph") == "X" and str(e.get("cat")).lower() in ("kernel", "gpu_memcpy", "gpu_memset")]
    nccl = _sweep([(s, e) for s, e, name in work if name.startswith("nccl")])
    other = _sweep([(s, e) for s, e, name in work if not name.startswith("nccl")])
    total = sum(e - s for s, e in nccl)
    overlapped = _covered(nccl, other)

    target = tmp_path / "rank.parquet"
    from profkit.collectors.kineto_json import import_paths

    import_paths([source], target, progress=False)
    (measured,) = build_report([profkit.load(target)])["communication"]["ranks"]
    # (µs in the file: each converted end may differ by a ns of rounding)
    assert measured["communication_ns"] == pytest.approx(total, abs=100)
    assert measured["overlapped_ns"] == pytest.approx(overlapped, abs=100)
    assert 0 < measured["overlapped_ns"] < measured["communication_ns"]  # NCCL overlapped only in part


def test_the_html_report_has_a_communication_panel_only_where_there_are_collectives(tmp_path):
    from profkit.report.html import render_html

    with_nccl = _kernels(tmp_path / "a.parquet", [(NCCL, 20, 0, 100), ("gemm_kernel", 7, 50, 100)])
    page = render_html(build_report([profkit.load(with_nccl)]))
    assert 'id="communication"' in page
    assert "50 µs" in page and "50.0 %" in page  # exposed, and overlapped share of 100 µs
    without = _kernels(tmp_path / "b.parquet", [("gemm_kernel", 7, 0, 100)])
    assert 'id="communication"' not in render_html(build_report([profkit.load(without)]))


def test_check_gates_on_exposed_communication(tmp_path):
    from conftest import cli_runner

    from profkit.cli.main import cli

    # The same all-reduce, hidden behind 50 µs of GEMM in the baseline and 40 µs in the new trace:
    # exposed 50 -> 60 µs, +20 %.
    base = _kernels(tmp_path / "base.parquet", [(NCCL, 20, 0, 100), ("gemm_kernel", 7, 0, 50)])
    new = _kernels(tmp_path / "new.parquet", [(NCCL, 20, 0, 100), ("gemm_kernel", 7, 0, 40)])

    def run(limit: str, *paths: Path):
        return cli_runner().invoke(cli, ["check", str(paths[0]), "--baseline", str(paths[1]),
                                         "--max-exposed-communication-regression", limit, "--format", "json"])

    failed = run("10%", new, base)
    assert failed.exit_code == 1 and "exposed communication +20.0 % > 10 %" in failed.stderr
    (verdict,) = json.loads(failed.stdout)["budgets"]
    assert (verdict["base"], verdict["new"], verdict["base_basis"]) == (50 * US, 60 * US, "total")
    assert run("25%", new, base).exit_code == 0
    plain = _kernels(tmp_path / "plain.parquet", [("gemm_kernel", 7, 0, 50)])
    unmeasurable = run("10%", plain, plain)
    assert unmeasurable.exit_code == 2 and "neither trace has collective kernels" in unmeasurable.stderr


def test_check_compares_the_median_step_of_a_job_with_steps(tmp_path):
    from conftest import cli_runner

    from profkit.cli.main import cli

    if not (SHARED / "sampled_rank-0.json.gz").exists():
        pytest.skip("../shared/traces is not here")
    run = tmp_path / "run"
    run.mkdir()
    for rank in (0, 1):
        (run / f"sampled_rank-{rank}.json.gz").write_bytes((SHARED / f"sampled_rank-{rank}.json.gz").read_bytes())
    result = cli_runner().invoke(cli, ["check", str(run), "--baseline", str(run),
                                       "--max-exposed-communication-regression", "0%", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    (verdict,) = json.loads(result.stdout)["budgets"]
    assert verdict["base_basis"] == "median of 2 steps × 2 ranks"
    # A step's exposed time is part of its rank's: at most the 336 ms rank 0 shows over its whole run.
    assert 0 < verdict["base"] <= 336.1e6


SENDRECV = "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)"


def _rank_json(path: Path, rank: int, calls: list[tuple], groups: list[str] | None = None) -> Path:
    """A Kineto trace of one rank: one ProfilerStep#7 holding collective calls (c10d op name, message
    elements, start µs, kernel µs), each as torch writes one: the c10d:: op, record_param_comms inside it
    with its nccl:* annotation (the message's dims) and the launch, and one NCCL kernel, named alike for
    every call (as SendRecv kernels are); ``groups``: each call's process group, on record_param_comms
    as recent torch writes it."""
    cpu = {"ph": "X", "pid": 1, "tid": 1}
    events = [{**cpu, "cat": "user_annotation", "name": "ProfilerStep#7", "ts": 0, "dur": 10_000}]
    for i, (call, elements, at, kernel_us) in enumerate(calls):
        events += [
            {**cpu, "cat": "cpu_op", "name": call, "ts": at, "dur": 50, "args": {"External id": 10 * i + 1}},
            {**cpu, "cat": "cpu_op", "name": "record_param_comms", "ts": at + 1, "dur": 40,
             "args": {"External id": 10 * i + 2, **({"Process Group Name": groups[i]} if groups else {})}},
            {**cpu, "cat": "user_annotation", "name": "nccl:" + call.split("::")[1].strip("_"), "ts": at + 2,
             "dur": 5, "args": {"External id": 10 * i + 3, "Input Dims": [[elements]], "Input type": ["float"]}},
            {**cpu, "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": at + 10, "dur": 5,
             "args": {"correlation": 100 + i, "External id": 10 * i + 2}},
            {"ph": "X", "pid": 0, "tid": 20, "cat": "kernel", "name": SENDRECV, "ts": at + 20, "dur": kernel_us,
             "args": {"correlation": 100 + i, "device": 0, "stream": 20, "External id": 10 * i + 2}},
        ]
    document = {"schemaVersion": 1, "distributedInfo": {"backend": "nccl", "rank": rank, "world_size": 2},
                "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}], "traceEvents": events}
    path.write_text(json.dumps(document))
    return path


def _imported_section(tmp_path: Path, sources: list[Path]) -> tuple[dict, dict[int, dict]]:
    """The communication section of the rank files ``sources`` (Chrome-trace JSON) imported and reported
    together, and its rank objects by rank."""
    from profkit.collectors.kineto_json import import_paths

    targets = [tmp_path / f"{source.name}.parquet" for source in sources]
    for source, target in zip(sources, targets):
        import_paths([source], target, progress=False)
    section = build_report([profkit.load(t) for t in targets])["communication"]
    return section, {r["rank"]: r for r in section["ranks"]}


def test_collectives_are_matched_by_call_and_message_not_by_kernel_name_and_order(tmp_path):
    # Two all-reduces per rank, A (1000 elements) and B (2000), issued in the other order on rank 1, every
    # kernel named alike. A: rank 0 100 µs, rank 1 70 µs -> rank 0 waited 30; B: rank 0 40, rank 1 90 ->
    # rank 1 waited 50. (Pairing the k-th kernels would give 10 and 30.) An all-to-all, whose message is
    # each rank's own (300 and 500 elements): rank 0 50 µs, rank 1 20 -> rank 0 waited 30 more. An
    # all-gather only rank 0 ran is left out, and named.
    sources = [_rank_json(tmp_path / "r0.json", 0, [("c10d::allreduce_", 1000, 100, 100),
                                                    ("c10d::allreduce_", 2000, 1000, 40),
                                                    ("c10d::alltoall_base_", 300, 3000, 50),
                                                    ("c10d::_allgather_base_", 500, 2000, 30)]),
               _rank_json(tmp_path / "r1.json", 1, [("c10d::allreduce_", 2000, 100, 90),
                                                    ("c10d::allreduce_", 1000, 1000, 70),
                                                    ("c10d::alltoall_base_", 500, 3000, 20)])]
    section, by_rank = _imported_section(tmp_path, sources)
    assert by_rank[0]["waiting_ns"] == 60 * US and by_rank[1]["waiting_ns"] == 50 * US
    assert by_rank[0]["waiting_share"] == pytest.approx(60 / 190) and by_rank[1]["waiting_share"] == pytest.approx(50 / 180)
    assert section["waiting"] == {"instances": 3, "skipped": ["c10d::_allgather_base_"]}
    assert by_rank[0]["last_arrivals"] == 1 and by_rank[1]["last_arrivals"] == 2  # (B; A and the all-to-all)


def test_calls_of_two_process_groups_are_told_apart_by_the_group_torch_records(tmp_path):
    # Two groups all-reduce the same 1000 elements from the same place; their communicators order them
    # apart, so rank 1 runs group "1"'s first. Group "0": rank 0 100 µs, rank 1 60 -> rank 0 waited 40;
    # group "1": rank 0 30, rank 1 80 -> rank 1 waited 50. (Without the group, the k-th pairing: 70 and 0.)
    call = "c10d::allreduce_"
    sources = [_rank_json(tmp_path / "r0.json", 0, [(call, 1000, 100, 100), (call, 1000, 1000, 30)], groups=["0", "1"]),
               _rank_json(tmp_path / "r1.json", 1, [(call, 1000, 100, 80), (call, 1000, 1000, 60)], groups=["1", "0"])]
    section, by_rank = _imported_section(tmp_path, sources)
    assert by_rank[0]["waiting_ns"] == 40 * US and by_rank[1]["waiting_ns"] == 50 * US
    assert section["waiting"] == {"instances": 2, "skipped": []}


def _waiting_of_pairs_ending_together(sources: list[Path], within_us: float = 1000.0) -> tuple[list[int], list[int], int]:
    """Each rank's waiting, found without profkit from what a collective is: its kernels end together on
    every rank. The two ranks of the shared job share a clock (their ProfilerStep#551 starts 0.2 ms apart),
    so a rank-0 NCCL kernel and the rank-1 one that ends within ``within_us`` of it are one collective; a
    rank waited for its kernel's time beyond the shorter one's, and the shorter one's rank came last.
    (Waiting ns and last arrivals, per rank; and the pairs found.)"""
    kernels = []
    for source in sources:
        with gzip.open(source) as f:
            events = json.load(f)["traceEvents"]
        kernels.append([(e["ts"] + e["dur"], e["dur"]) for e in events
                        if e.get("ph") == "X" and str(e.get("cat")).lower() == "kernel" and e["name"].startswith("nccl")])
    waited, last, pairs = [0.0, 0.0], [0, 0], 0
    for end0, dur0 in kernels[0]:
        partners = [dur1 for end1, dur1 in kernels[1] if abs(end1 - end0) <= within_us]
        if len(partners) == 1:
            pairs += 1
            waited[0] += (dur0 - min(dur0, partners[0])) * 1000
            waited[1] += (partners[0] - min(dur0, partners[0])) * 1000
            last[0] += dur0 <= partners[0]  # (the shorter kernel: its rank started last)
            last[1] += partners[0] <= dur0
    return [round(w) for w in waited], last, pairs


def test_the_shared_nccl_job_waits_agree_with_the_kernels_that_end_together(tmp_path):
    # Two ranks of a 128-rank job whose traces keep a sample of the events: of the 10 NCCL kernels on each,
    # all named alike, only 5 collectives are on both ranks in the same step. Pairing the k-th kernels of a
    # name (what profkit did before) matched 6 pairs of kernels that ended 14-134 ms apart.
    sources = [SHARED / f"sampled_rank-{rank}.json.gz" for rank in (0, 1)]
    if not all(source.exists() for source in sources):
        pytest.skip("../shared/traces is not here")
    section, _ = _imported_section(tmp_path, sources)
    expected, last, pairs = _waiting_of_pairs_ending_together(sources)
    measured = [r["waiting_ns"] for r in sorted(section["ranks"], key=lambda r: r["rank"])]
    assert [r["last_arrivals"] for r in sorted(section["ranks"], key=lambda r: r["rank"])] == last == [1, 4]
    assert pairs == 5 and section["waiting"]["instances"] == pairs
    assert measured == pytest.approx(expected, abs=2_000)  # (µs in the file: a ns of rounding per kernel)
    assert measured[0] > 20 * 10**6 > 10**6 > measured[1]  # rank 0 waited ~32 ms, rank 1 well under 1 ms
    assert section["waiting"]["skipped"] == ["c10d::allreduce_", "c10d::alltoall_base_"]
