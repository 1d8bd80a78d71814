"""Small hand-built traces with known numbers, for export, diff and check tests.

Each step is 10 ms long and holds, on the host: aten::mm (launching a GEMM
kernel) and aten::relu (launching an element-wise kernel); on GPU 0:

    gemm_kernel   starts 0.4 ms into the step, runs ``gemm_ns`` (1 ms by default)
    relu_kernel   starts 1.6 ms into the step, runs 0.2 ms

so with the defaults the GPU is busy 1.0 + 0.2 = 1.2 ms per step. Phase marks:
``step`` over each step and ``decode`` from 0.3 ms to 2.0 ms of it (tokens
and batch size given); telemetry: ``power_w`` on GPU 0 every 1 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from profkit.trace.build import build_events
from profkit.trace.io import write_trace

T0 = 1_750_000_000_000_000_000
STEP_NS = 10_000_000
PID, TID = 4242, 4242


def make_trace(
    path: Path,
    *,
    steps: int = 4,
    gemm_ns: int | list[int] = 1_000_000,
    power_w: float = 300.0,
    device: str = "NVIDIA H100 80GB HBM3",
    gemm_kernel: str = "gemm_kernel",
    command: list[str] | None = None,
    decode_from: str = "marks",
    rank: int = 0,
    gpu_uuid: str | None = None,
) -> Path:
    """Write the trace to ``path``; ``gemm_ns`` may give one duration per step. ``decode_from="vllm"``:
    no decode marks, but vLLM's step annotation over 0.9-1.3 ms of each step (a decode pass of 8
    sequences found by the report's engine rule): it holds aten::relu, whose kernel runs after it ends.
    ``rank``, ``gpu_uuid``: one rank's file of a job (two ranks given one UUID sampled the same GPU)."""
    durations = gemm_ns if isinstance(gemm_ns, list) else [gemm_ns] * steps
    rows: list[dict] = []

    def add(**row):
        rows.append(row)

    correlation = 100
    for step in range(steps):
        base = T0 + step * STEP_NS
        add(kind="phase", name="step", start_ns=base, duration_ns=STEP_NS, thread_id=TID,
            extra=json.dumps({"step": step}))
        if decode_from == "marks":
            add(kind="phase", name="decode", start_ns=base + 300_000, duration_ns=1_700_000, thread_id=TID,
                batch_size=8, token_count=8)
        else:
            add(kind="annotation", name="execute_context_0(0)_generation_8(8)", start_ns=base + 900_000,
                duration_ns=400_000, thread_id=TID)
        for name, shapes, op_at, kernel, kernel_at, kernel_ns in (
            ("aten::mm", "[[64,128],[128,256]]", 100_000, gemm_kernel, 400_000, durations[step]),
            ("aten::relu", "[[64,256]]", 1_000_000, "relu_kernel", 1_600_000, 200_000),
        ):
            correlation += 1
            add(kind="cpu_op", name=name, start_ns=base + op_at, duration_ns=200_000, thread_id=TID,
                input_shapes=shapes, input_dtypes=json.dumps(["float"] * shapes.count("[", 1)))
            add(kind="runtime", name="cudaLaunchKernel", start_ns=base + op_at + 50_000, duration_ns=20_000,
                thread_id=TID, correlation_id=correlation)
            add(kind="kernel", name=kernel, start_ns=base + kernel_at, duration_ns=kernel_ns, device_type="gpu",
                device_index=0, stream=7, correlation_id=correlation, linked_correlation_id=correlation,
                extra=json.dumps({"grid": [128, 1, 1]}))
    for ms in range(steps * STEP_NS // 1_000_000 + 1):
        add(kind="sample", name="power_w", start_ns=T0 + ms * 1_000_000, duration_ns=0, device_type="gpu",
            device_index=0, value=power_w)
    raw = pd.DataFrame(rows)
    raw["device_type"] = raw["device_type"].fillna("cpu")
    raw["device_index"] = raw["device_index"].fillna(-1).astype("int16")
    raw["process_id"] = PID
    raw = raw.reindex(columns=[*raw.columns, *{"batch_size", "token_count"} - set(raw.columns)])
    for column in ("thread_id", "correlation_id", "linked_correlation_id", "stream", "token_count"):
        raw[column] = raw[column].astype("Int64")
    raw["batch_size"] = raw["batch_size"].astype("Int32")
    metadata = {
        "producer": "tests", "command": command or ["python", "train.py"], "partial": False, "exit_code": 0,
        "rank": rank, "devices": [{"index": 0, "type": "gpu", "name": device, "total_memory_bytes": 80 << 30,
                                   **({"uuid": gpu_uuid} if gpu_uuid else {})}],
    }
    return write_trace(path, build_events(raw), metadata)
