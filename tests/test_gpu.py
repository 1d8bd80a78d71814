"""GPU tests: run only where an NVIDIA GPU is present (pytest -m gpu; benchmarks/gpu_check.sh runs them).

Without a GPU they are skipped, unless PROFKIT_REQUIRE_GPU=1 (set by the GPU check script), which
turns a missing GPU into a failure so a broken GPU run can never pass by skipping.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

import profkit
from conftest import run_profkit

torch = pytest.importorskip("torch")

if not torch.cuda.is_available():
    if os.environ.get("PROFKIT_REQUIRE_GPU") == "1":
        raise RuntimeError("PROFKIT_REQUIRE_GPU=1 but torch.cuda.is_available() is False")
    pytest.skip("no CUDA GPU", allow_module_level=True)

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "demo_gpu.parquet"
    proc = run_profkit("record", "-o", str(out), "--", sys.executable, "-m", "profkit.examples.tiny_transformer",
                       "--device", "cuda", "--dtype", "bfloat16", "--steps", "4", "--new-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    return profkit.load(out)


def test_kernels_linked_to_ops_with_streams_and_devices(gpu_trace):
    kernels = gpu_trace.kernels
    assert len(kernels) > 100
    linked = kernels["op_id"].notna().mean()
    assert linked > 0.9, f"only {linked:.0%} of kernels linked to their op"
    assert kernels["stream"].notna().all() and (kernels["device_index"] >= 0).all()
    ops = gpu_trace.events.set_index("event_id").loc[kernels["op_id"].dropna().astype("int64")]
    assert (ops["kind"] == "cpu_op").all()
    # A GEMM kernel is launched by a matmul-family op.
    gemm = kernels[kernels["name"].astype(str).str.contains("gemm|Gemm|cutlass|sm90|ampere", regex=True)]
    assert len(gemm) > 0
    gemm_ops = set(gpu_trace.events.set_index("event_id").loc[gemm["op_id"].dropna().astype("int64"), "name"].astype(str))
    assert gemm_ops & {"aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"}
    devices = [d for d in gpu_trace.metadata["devices"] if d.get("type") == "gpu"]
    assert devices and devices[0]["name"]


def test_kernels_linked_to_their_launch_call(gpu_trace):
    """launch_id is the runtime call with the kernel's own correlation id, inside the kernel's op."""
    events = gpu_trace.events.set_index("event_id")
    kernels = gpu_trace.kernels
    launched = kernels[kernels["launch_id"].notna()]
    assert len(launched) > 0.9 * len(kernels)
    calls = events.loc[launched["launch_id"].astype("int64")]
    assert (calls["kind"] == "runtime").all()
    assert calls["name"].astype(str).str.contains("Launch").all()
    assert (calls["correlation_id"].to_numpy() == launched["correlation_id"].to_numpy()).all()
    with_op = launched[launched["op_id"].notna()]
    ops = events.loc[with_op["op_id"].astype("int64")]
    op_calls = events.loc[with_op["launch_id"].astype("int64")]
    assert (ops["start_ns"].to_numpy() <= op_calls["start_ns"].to_numpy()).all()
    assert ((ops["start_ns"] + ops["duration_ns"]).to_numpy()
            >= (op_calls["start_ns"] + op_calls["duration_ns"]).to_numpy()).all()


def test_copies_have_sizes(gpu_trace):
    copies = gpu_trace.events[gpu_trace.events["kind"].isin(["memcpy", "memset"])]
    assert len(copies) > 0
    assert (copies["bytes"] > 0).all()


def test_telemetry_samples_plausible(gpu_trace):
    samples = gpu_trace.samples
    power = samples[samples["name"] == "power_w"]["value"]
    assert len(power) > 3, "no power samples"
    assert power.between(10, 1500).all()
    memory = samples[samples["name"].astype(str).str.startswith("memory_used")]["value"]
    assert (memory > 0).any()


def test_phases_and_classes_on_a_real_generation(gpu_trace, tmp_path):
    phases = gpu_trace.phases
    names = phases["name"].astype(str).tolist()
    assert names.count("prefill") == 1 and names.count("decode") == 7
    assert names.count("train_step") == 4
    report = json.loads(run_profkit("report", str(gpu_trace.path), "--format", "json").stdout)
    categories = {row["category"]: row for row in report.get("categories") or []}
    assert categories.get("contraction", {}).get("time_ns", 0) > 0
    assert report["totals"]["kernel_count"] == len(gpu_trace.kernels)
