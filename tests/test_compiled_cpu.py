"""torch.compile on the CPU: Inductor's C++ kernels get profiler events of their own under profkit record,
and those events are classed by the ops they fuse (not "other" self time of CompiledFunction)."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

import profkit
from profkit.analyzers.classes import classify_name
from profkit.analyzers.classify import classify_events
from profkit.collectors.launch import child_environment
from conftest import run_profkit

KERNEL_PROFILE = "TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE"


def test_the_recorded_program_has_inductor_kernel_events_unless_the_user_says_otherwise(tmp_path):
    env = child_environment({"PATH": "/bin"}, tmp_path / "t.parquet", tmp_path, {})
    assert env[KERNEL_PROFILE] == "1" and env["PATH"] == "/bin" and "PROFKIT_RECORD" in env
    assert child_environment({KERNEL_PROFILE: "0"}, tmp_path / "t.parquet", tmp_path, {})[KERNEL_PROFILE] == "0"


@pytest.mark.parametrize("name, op_class", [
    # Inductor names a C++ kernel after the ops it fuses (with a graph_N_ prefix in newer torch).
    ("graph_0_cpp_fused_gelu_native_layer_norm_0", "normalization"),  # a normalization among them: one
    ("graph_0_cpp_fused_gelu_gelu_backward_native_layer_norm_native_layer_norm_backward_sum_0", "normalization"),
    ("cpp_fused__softmax_0", "normalization"),
    ("cpp_fused_sum_1", "normalization"),
    ("cpp_fused_max_pool2d_with_indices_0", "normalization"),
    ("graph_1_cpp_fused_add_mul_threshold_backward_2", "elementwise"),
    ("cpp_fused_normal_0", "elementwise"),  # a random fill, not a norm
    ("cpp_fused_add_summary_0", "elementwise"),  # "sum" only as a whole op name
    ("cpp_fused_clone_0", "memory"),  # only copies and layout: memory
    ("cpp_fused__to_copy_clone_1", "memory"),
    ("cpp_fused_add_clone_3", "elementwise"),  # arithmetic with a copy: element-wise
])
def test_inductor_cpu_kernels_take_the_class_of_what_they_fuse(name, op_class):
    match = classify_name(name)
    assert (match.op_class.value, match.fused) == (op_class, True)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="Inductor needs a C++ compiler")
def test_a_compiled_models_cpu_kernels_are_recorded_and_classed(tmp_path: Path):
    script = tmp_path / "compiled.py"
    script.write_text(textwrap.dedent("""
        import torch
        model = torch.compile(torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.LayerNorm(64)))
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(8, 32))
    """))
    out = tmp_path / "compiled.parquet"
    env = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    proc = run_profkit("record", "-o", str(out), "--", "python", str(script), cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    trace = profkit.load(out)
    rows = classify_events(trace.events, trace.metadata)
    kernels = rows[rows["name"].astype(str).str.contains("cpp_fused_")]
    # The fused GELU + LayerNorm kernel ran in each of the 3 calls, as its own op, classed normalization.
    assert len(kernels) >= 3 and kernels["time_ns"].sum() > 0
    assert set(kernels["category"].astype(str)) == {"normalization"} and kernels["fused"].all()
