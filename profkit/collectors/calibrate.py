"""Measure the attainable ceilings of this machine: matmul flop/s per dtype and copy bandwidth.

Datasheet peaks are not reachable in practice (REFERENCE.md §3: a bf16 8192³
matmul on an H100 runs at about 800 of 989 TFLOP/s); a roofline should show
both. ``profkit calibrate`` runs a large square matmul per dtype and a large
device-to-device copy (bytes read + written) on a GPU or the CPU, keeps the
best of a few timed blocks, and saves the figures to the calibration file in
the user's cache directory (trace/calibration.py), keyed by device name
so reports of traces recorded on this device find them.

It imports torch lazily, inside the measuring functions: loading and reading
calibrations (trace/calibration.py) needs no torch.
"""

from __future__ import annotations

import datetime as _dt
import socket
import time
from typing import Any, Callable

from ..errors import UsageError

#: Matmul sizes (n for an n×n×n product): large enough to fill the device.
GPU_SIZES = {"fp64": 4096, "fp32": 8192, "tf32": 8192, "bf16": 8192, "fp16": 8192, "fp8": 8192, "int8": 8192}
CPU_SIZES = {"fp64": 1024, "fp32": 1024, "bf16": 1024, "fp16": 512}
GPU_COPY_BYTES = 1 << 30
CPU_COPY_BYTES = 256 << 20
QUICK_DIVISOR = 4  # --quick: sizes / 4, copies / 16, shorter timing blocks


def _torch():
    import torch

    return torch


def _best_rate(run: Callable[[], None], work: float, sync: Callable[[], None], min_time_s: float, blocks: int = 3) -> tuple[float, int]:
    """Best work/s over ``blocks`` timed blocks of enough iterations to last ``min_time_s`` each."""
    run()  # warm-up (allocations, library heuristics)
    sync()
    start = time.perf_counter()
    run()
    sync()
    once = max(time.perf_counter() - start, 1e-9)
    iterations = max(1, min(1000, int(min_time_s / once)))
    best = 0.0
    for _ in range(blocks if once < 5 * min_time_s else 1):
        sync()
        start = time.perf_counter()
        for _ in range(iterations):
            run()
        sync()
        best = max(best, work * iterations / (time.perf_counter() - start))
    return best, iterations


def _matmul_case(torch, dtype: str, n: int, device: str) -> tuple[Callable[[], None], float] | None:
    """A closure doing one n³ product in ``dtype`` and its flop count, or None if unsupported here."""
    flops = 2.0 * n**3
    tdtype = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
              "fp16": torch.float16}.get(dtype)
    if dtype == "tf32" and device == "cpu":
        return None
    if tdtype is not None:
        a = torch.randn(n, n, device=device, dtype=tdtype)
        b = torch.randn(n, n, device=device, dtype=tdtype)
        out = torch.empty(n, n, device=device, dtype=tdtype)
        if device == "cpu":
            return (lambda: torch.mm(a, b, out=out)), flops
        tf32 = dtype == "tf32"

        def run() -> None:  # fp32 and tf32 differ only in this switch
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                torch.mm(a, b, out=out)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = previous

        return run, flops
    if device == "cpu":
        return None
    if dtype == "int8":
        a = torch.randint(-8, 8, (n, n), device=device, dtype=torch.int8)
        b = torch.randint(-8, 8, (n, n), device=device, dtype=torch.int8)
        return (lambda: torch._int_mm(a, b)), flops
    if dtype == "fp8":
        a = torch.randn(n, n, device=device).to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device=device).to(torch.float8_e4m3fn).t()  # column-major second operand
        one = torch.ones((), device=device)
        return (lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)), flops
    return None


def measure(device: str = "auto", *, quick: bool = False, dtypes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Measure ``device`` ('auto', 'cpu', 'cuda', 'cuda:N') and return a calibration entry.

    ``dtypes`` limits the matmul dtypes measured (default: all the device runs).
    """
    torch = _torch()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("no CUDA/ROCm GPU is visible to torch here; use --device cpu")
        index = torch.device(device).index or 0
        device = f"cuda:{index}"
        name = torch.cuda.get_device_properties(index).name
        device_type, sizes, copy_bytes, min_time = "gpu", GPU_SIZES, GPU_COPY_BYTES, 0.3

        def sync() -> None:
            torch.cuda.synchronize(device)
    elif device == "cpu":
        from .metadata import cpu_name

        name, device_type, sizes, copy_bytes, min_time = cpu_name(), "cpu", CPU_SIZES, CPU_COPY_BYTES, 0.5

        def sync() -> None:
            pass
    else:
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if dtypes:
        unknown = set(dtypes) - set(GPU_SIZES)
        if unknown:
            raise UsageError(f"unknown dtype(s) {', '.join(sorted(unknown))}; known: {', '.join(GPU_SIZES)}")
        sizes = {k: v for k, v in sizes.items() if k in dtypes}
    if quick:
        sizes = {k: max(128, v // QUICK_DIVISOR) for k, v in sizes.items()}
        copy_bytes //= 16
        min_time /= 5

    peaks: dict[str, float] = {}
    details: dict[str, Any] = {"matmul": {}, "copy": {}}
    for dtype, n in sizes.items():
        try:
            case = _matmul_case(torch, dtype, n, device)
            if case is None:
                continue
            rate, iterations = _best_rate(case[0], case[1], sync, min_time)
        except (RuntimeError, TypeError, AttributeError) as exc:  # dtype not supported by this device/build
            details["matmul"][dtype] = {"n": n, "skipped": str(exc).splitlines()[0][:200]}
            continue
        peaks[dtype] = rate / 1e12
        details["matmul"][dtype] = {"n": n, "iterations": iterations, "tflop_per_s": rate / 1e12}

    src = torch.empty(copy_bytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    bandwidth, iterations = _best_rate(lambda: dst.copy_(src), 2.0 * copy_bytes, sync, min_time)
    details["copy"] = {"bytes": copy_bytes, "iterations": iterations, "counts": "bytes read + bytes written"}
    return {
        "name": name,
        "device_type": device_type,
        "host": socket.gethostname(),
        "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads() if device_type == "cpu" else None,
        "quick": quick,
        "peak_tflop_per_s": peaks,
        "memory_tb_per_s": bandwidth / 1e12,
        "details": details,
    }
