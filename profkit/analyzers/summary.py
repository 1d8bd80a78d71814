"""What ran and where the time went: totals, busy time, top ops and kernels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .intervals import merge_intervals, self_time_ns

#: GPU work that occupies a device (annotations do not).
DEVICE_WORK_KINDS = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)


def device_work(events: pd.DataFrame) -> pd.DataFrame:
    """Kernels, memcpys and memsets."""
    return events[events["kind"].isin(DEVICE_WORK_KINDS)]


def has_gpu_work(events: pd.DataFrame) -> bool:
    return bool(events["kind"].isin(DEVICE_WORK_KINDS).any())


def busy_intervals(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint intervals when the device computed.

    On a trace with GPU work: the union of kernels/memcpys/memsets (all GPUs
    of all ranks projected on one time axis per trace is what a single-GPU
    user expects; per-device figures come from ``busy_by_device``). On a
    CPU-only trace the "device" is the CPU: the union of all op intervals.
    """
    if has_gpu_work(events):
        work = device_work(events)
    else:
        # Every op, nested or not: the union counts nested time once, and ops inside a range
        # such as Optimizer.step (an annotation, not an op) are still counted.
        work = events[events["kind"] == Kind.CPU_OP.value]
    start = work["start_ns"].to_numpy(np.int64)
    return merge_intervals(start, start + work["duration_ns"].to_numpy(np.int64))


def span_ns(events: pd.DataFrame) -> tuple[int, int]:
    """First start and last end over events that take time (samples excluded)."""
    timed = events[events["kind"] != Kind.SAMPLE.value]
    if timed.empty:
        return 0, 0
    start = int(timed["start_ns"].min())
    end = int((timed["start_ns"] + timed["duration_ns"]).max())
    return start, end


def totals(events: pd.DataFrame) -> dict:
    """Counts and times over the whole trace (all ranks, summed)."""
    kernels = events[events["kind"] == Kind.KERNEL.value]
    ops = events[events["kind"] == Kind.CPU_OP.value]
    busy_ns = 0
    for _, per_rank in events.groupby("rank", observed=True) if "rank" in events else [(0, events)]:
        starts, ends = busy_intervals(per_rank)
        busy_ns += int((ends - starts).sum())
    first, last = span_ns(events)
    return {
        "kernel_count": int(len(kernels)),
        "kernel_time_ns": int(kernels["duration_ns"].sum()),
        "memcpy_count": int((events["kind"] == Kind.MEMCPY.value).sum()),
        "memset_count": int((events["kind"] == Kind.MEMSET.value).sum()),
        "op_count": int(len(ops)),
        "device_busy_ns": busy_ns,
        "span_ns": last - first,
        "device": "gpu" if has_gpu_work(events) else "cpu",
    }


def top_ops(events: pd.DataFrame, n: int) -> pd.DataFrame:
    """CPU ops by self time (time in the op minus its child ops), summed per name."""
    host = events[events["kind"].isin([Kind.CPU_OP.value, Kind.ANNOTATION.value, Kind.RUNTIME.value, Kind.PYTHON_FUNCTION.value])]
    if host.empty:
        return _empty_top()
    ops = host.assign(self_time_ns=self_time_ns(host))
    ops = ops[ops["kind"] == Kind.CPU_OP.value]
    return _top(ops, n, total=ops["duration_ns"])


def top_kernels(events: pd.DataFrame, n: int) -> pd.DataFrame:
    """GPU kernels (and copies) by time, summed per name."""
    work = device_work(events)
    if work.empty:
        return _empty_top()
    return _top(work.assign(self_time_ns=work["duration_ns"]), n, total=work["duration_ns"])


def _top(frame: pd.DataFrame, n: int, total: pd.Series) -> pd.DataFrame:
    grouped = (
        frame.assign(total_time_ns=total, name=frame["name"].astype(str))
        .groupby("name", observed=True)
        .agg(count=("self_time_ns", "size"), self_time_ns=("self_time_ns", "sum"), total_time_ns=("total_time_ns", "sum"))
        .sort_values("self_time_ns", ascending=False)
    )
    grand = grouped["self_time_ns"].sum()
    grouped["share"] = grouped["self_time_ns"] / grand if grand else 0.0
    return grouped.head(n).reset_index()


def _empty_top() -> pd.DataFrame:
    return pd.DataFrame({"name": [], "count": [], "self_time_ns": [], "total_time_ns": [], "share": []})
