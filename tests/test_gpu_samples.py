"""The real GPU sample traces (recorded by benchmarks/gpu_check.sh on an NVIDIA H200, torch 2.11):
what the recorder and the analyzers made of real CUDA kernels, checked against facts that do not
come from profkit's code: the program's own arguments, the model's arithmetic, Kineto's linking
rules and the GPU's datasheet. They run everywhere (no GPU needed to read a trace).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import profkit
from conftest import SAMPLE_TRACES, run_profkit

TRAINING = SAMPLE_TRACES / "tiny_transformer_nvidia_h200.parquet"
GENERATION = SAMPLE_TRACES / "generation_nvidia_h200.parquet"
#: CUPTI's own records that torch 2.11's events() lists among the CPU events (no activity_type()).
NOT_OPERATORS = ["INVALID", "Lazy Function Loading", "Runtime Triggered Module Loading", "Resource",
                 "Instrumentation", "Activity Buffer Request"]


@pytest.fixture(scope="module", params=[TRAINING, GENERATION], ids=["training", "generation"])
def trace(request):
    return profkit.load(request.param)


@pytest.fixture(scope="module")
def generation_report():
    proc = run_profkit("report", str(GENERATION), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_recorded_on_an_h200_with_an_older_torch(trace):
    gpus = [d for d in trace.metadata["devices"] if d["type"] == "gpu"]
    assert [d["name"] for d in gpus] == ["NVIDIA H200"]
    assert trace.metadata["torch_version"].startswith("2.11")  # events() without activity_type()
    assert not trace.metadata["partial"]


def test_cupti_records_are_not_operators(trace):
    events = trace.events
    names = events["name"].astype(str)
    present = names.isin(NOT_OPERATORS)
    assert present.any()  # the trace does hold them
    assert not (present & (events["kind"] == "cpu_op")).any()
    # Operators' correlation ids are torch's own, one per op: CUPTI's ids no longer collide with them.
    ops = events[events["kind"] == "cpu_op"]["correlation_id"].dropna()
    assert not ops.duplicated().any()


def test_every_kernel_linked_to_the_op_and_the_call_that_launched_it(trace):
    assert len(trace.kernels) > 1000
    assert_linked_by_kinetos_rules(trace)


def assert_linked_by_kinetos_rules(trace) -> None:
    """Every kernel has the op and the launch call with its correlation id; the op encloses the call."""
    events = trace.events.set_index("event_id")
    kernels = trace.kernels
    assert kernels["op_id"].notna().all() and kernels["launch_id"].notna().all()
    calls = events.loc[kernels["launch_id"].astype("int64")]
    ops = events.loc[kernels["op_id"].astype("int64")]
    assert (calls["kind"] == "runtime").all() and (ops["kind"] == "cpu_op").all()
    assert calls["name"].astype(str).str.contains("Launch").all()
    assert (calls["correlation_id"].to_numpy() == kernels["correlation_id"].to_numpy()).all()
    # The launching op encloses its launch call, on the same thread, and the kernel starts after it.
    assert (ops["thread_id"].to_numpy() == calls["thread_id"].to_numpy()).all()
    assert (ops["start_ns"].to_numpy() <= calls["start_ns"].to_numpy()).all()
    assert ((ops["start_ns"] + ops["duration_ns"]).to_numpy() >= (calls["start_ns"] + calls["duration_ns"]).to_numpy()).all()
    assert (kernels["start_ns"].to_numpy() >= calls["start_ns"].to_numpy()).all()
    assert kernels["stream"].notna().all() and (kernels["device_index"] == 0).all()


def test_copies_have_their_sizes(trace):
    copies = trace.events[trace.events["kind"] == "memcpy"]
    assert len(copies) > 10 and (copies["bytes"] > 0).all()  # torch 2.11's nbytes() reads 0: from Kineto's metadata


def test_generation_passes_match_the_command():
    """--generations 3 --new-tokens 32 --prompt 512, batch 2: one prefill and 31 decode passes each."""
    phases = profkit.load(GENERATION).phases
    names = phases["name"].astype(str)
    assert (names == "prefill").sum() == 3 and (names == "decode").sum() == 93
    prefill = phases[names == "prefill"]
    assert (prefill["token_count"] == 2 * 512).all() and (prefill["batch_size"] == 2).all()


def test_prefill_flop_count_matches_the_models_arithmetic(generation_report):
    """Width 1024, FFN 4096, 8 layers, vocabulary 512, batch 2 x 512 tokens, head size 32:
    linear layers 24·T·d² per layer, QKᵀ and AV 2·2·B·S²·d per layer, the LM head 2·T·d·V."""
    d, layers, vocab, batch, seq = 1024, 8, 512, 2, 512
    tokens = batch * seq
    per_pass = layers * (24 * tokens * d * d + 2 * 2 * batch * seq * seq * d) + 2 * tokens * d * vocab
    prefill = {row["phase"]: row for row in generation_report["phases"]}["prefill"]
    contraction = {c["category"]: c for c in prefill["categories"]}["contraction"]
    assert contraction["flops"] == pytest.approx(3 * per_pass, rel=1e-3)


def test_splitwise_roofline_on_a_real_gpu(generation_report):
    """Prefill GEMMs are compute-bound and decode GEMMs memory-bound against the H200's ridge point
    (989 Tflop/s bf16 dense / 4.8 TB/s ≈ 206 flop/B)."""
    ridge = 989e12 / 4.8e12
    phases = {row["phase"]: row for row in generation_report["phases"]}
    prefill = {c["category"]: c for c in phases["prefill"]["categories"]}["contraction"]
    decode = {c["category"]: c for c in phases["decode"]["categories"]}["contraction"]
    assert prefill["arithmetic_intensity"] > ridge and prefill["bound"] == "compute"
    assert decode["arithmetic_intensity"] < ridge / 50 and decode["bound"] == "memory"
    assert phases["decode"]["bound"] == "memory"


def test_nvml_energy_and_power_are_plausible(trace):
    samples = trace.samples
    power = samples[samples["name"] == "power_w"]["value"].to_numpy()
    energy = samples[samples["name"] == "energy_j"].sort_values("start_ns")
    limit = next(d for d in trace.metadata["devices"] if d["type"] == "gpu")["power_limit_w"]
    assert len(power) > 20 and (power > 50).all() and (power <= limit).all()
    joules = energy["value"].iloc[-1] - energy["value"].iloc[0]
    seconds = (energy["start_ns"].iloc[-1] - energy["start_ns"].iloc[0]) / 1e9
    assert 50 < joules / seconds < limit  # the counter's average power lies between idle and the cap
    assert np.all(np.diff(energy["value"].to_numpy()) >= 0)  # a cumulative counter never goes back


def test_top_kernels_table_gives_each_kernel_one_line_that_fits_the_terminal():
    """C++ kernel names run to hundreds of characters; folded, a 15-row table filled screens."""
    proc = run_profkit("report", str(TRAINING), env={"COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.strip() == "Top GPU kernels"))
    rows = [line for line in lines[start + 4:] if line.startswith("│")]
    kernels = profkit.load(TRAINING).kernels["name"].nunique()
    assert len(rows) == min(15, kernels)  # the default --top: one line each, none folded
    assert all(len(line) <= 100 for line in lines[start:start + 4 + len(rows)])
    assert not any(row.startswith("│ void ") for row in rows)  # the return type says nothing
    assert len({row.split("│")[1] for row in rows}) == len(rows)  # what is left still tells them apart
