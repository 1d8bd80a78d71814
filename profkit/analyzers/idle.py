"""Device idle time, attributed to what the host was doing meanwhile.

When the device (the GPU; the CPU's op stream on a CPU-only trace) sits idle
inside the recorded span, the cause is on the host. Each idle nanosecond is
given to the first host activity in this list that covers it:

1. ``synchronization``: the host waits on the device (cudaDeviceSynchronize,
   stream/event synchronize, blocking memcpy, aten::item / _local_scalar_dense);
2. ``data_loading``: a DataLoader iteration (its record_function range);
3. ``kernel_launch``: launch calls (cudaLaunchKernel, cuLaunchKernel, hipLaunchKernel...);
4. ``other_runtime``: other runtime/driver calls (allocation, context and stream setup...);
5. ``host_ops``: inside framework ops or Python, but not in the runtime;
6. ``no_host_activity``: nothing recorded on the host (unprofiled code).

Pure interval arithmetic over merged intervals; per rank.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .intervals import merge_intervals

DEVICE_KINDS = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)
IDLE_CAUSES = ("synchronization", "data_loading", "kernel_launch", "other_runtime", "host_ops", "no_host_activity")

_SYNC = re.compile(
    r"(?i)synchronize|^(?:cuda|hip)Memcpy(?:2D|3D)?$|^(?:cuda|hip)Memcpy(?:2D|3D)?(?:To|From)Symbol$|^cuMemcpy[DH]to[DH](?:_v2)?$|"
    r"^aten::(?:item|_local_scalar_dense)$|^cudaStreamWaitEvent$"
)
_LAUNCH = re.compile(r"(?i)launch")
_DATA = re.compile(r"(?i)dataloader|data_loader|_next_data|__next__")


def _interval_op(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], keep_b: bool) -> tuple[np.ndarray, np.ndarray]:
    """Intersection (keep_b) or difference (not keep_b) of two sets of disjoint intervals."""
    (sa, ea), (sb, eb) = a, b
    points = np.concatenate([sa, ea, sb, eb]).astype(np.int64)
    da = np.concatenate([np.ones(len(sa)), -np.ones(len(ea)), np.zeros(len(sb) + len(eb))])
    db = np.concatenate([np.zeros(len(sa) + len(ea)), np.ones(len(sb)), -np.ones(len(eb))])
    if len(points) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(points, kind="stable")
    points, da, db = points[order], da[order], db[order]
    # State after each unique point; a segment runs from that point to the next.
    unique, first = np.unique(points, return_index=True)
    last = np.r_[first[1:], len(points)] - 1
    in_a = np.cumsum(da)[last] > 0
    in_b = np.cumsum(db)[last] > 0
    keep = in_a & (in_b if keep_b else ~in_b)
    starts, ends = unique[:-1][keep[:-1]], unique[1:][keep[:-1]]
    return merge_intervals(starts, ends)


def _matches(names: pd.Series, regex: re.Pattern) -> pd.Series:
    """regex.search over each unique name once, mapped back to the rows."""
    unique = pd.unique(names.astype(str))
    hits = {n for n in unique if regex.search(n)}
    return names.astype(str).isin(hits)


def _length(intervals: tuple[np.ndarray, np.ndarray]) -> int:
    return int((intervals[1] - intervals[0]).sum())


def _union(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    start = frame["start_ns"].to_numpy(np.int64)
    return merge_intervals(start, start + frame["duration_ns"].fillna(0).to_numpy(np.int64))


def idle_attribution(events: pd.DataFrame) -> dict:
    """Idle time of the device inside the recorded span, split by host cause (summed over ranks)."""
    gpu = bool(events["kind"].isin(DEVICE_KINDS).any())
    totals = dict.fromkeys(IDLE_CAUSES, 0)
    span_total = busy_total = 0
    groups = events.groupby("rank", observed=True) if "rank" in events else [(0, events)]
    for _, per_rank in groups:
        timed = per_rank[per_rank["kind"] != Kind.SAMPLE.value]
        if timed.empty:
            continue
        name = timed["name"]
        kind = timed["kind"].astype(str)
        host = kind.isin([Kind.CPU_OP.value, Kind.RUNTIME.value, Kind.ANNOTATION.value, Kind.PYTHON_FUNCTION.value])
        if gpu:
            busy = _union(timed[kind.isin(DEVICE_KINDS)])
        else:
            ops = timed[kind == Kind.CPU_OP.value]
            busy = _union(ops[~ops["parent_id"].isin(ops["event_id"])]) if len(ops) else _union(ops)
        first = int(timed["start_ns"].min())
        last = int((timed["start_ns"] + timed["duration_ns"].fillna(0)).max())
        idle = _interval_op((np.array([first]), np.array([last])), busy, keep_b=False)
        span_total += last - first
        busy_total += _length(busy)
        causes = {
            "synchronization": timed[host & _matches(name, _SYNC)],
            "data_loading": timed[host & _matches(name, _DATA)],
            "kernel_launch": timed[(kind == Kind.RUNTIME.value) & _matches(name, _LAUNCH)],
            "other_runtime": timed[kind == Kind.RUNTIME.value],
            "host_ops": timed[host],
        }
        for cause, frame in causes.items():
            covered = _interval_op(idle, _union(frame), keep_b=True)
            totals[cause] += _length(covered)
            idle = _interval_op(idle, covered, keep_b=False)
        totals["no_host_activity"] += _length(idle)
    idle_ns = sum(totals.values())
    return {
        "device": "gpu" if gpu else "cpu",
        "span_ns": span_total,
        "busy_ns": busy_total,
        "idle_ns": idle_ns,
        "idle_share": idle_ns / span_total if span_total else None,
        "causes": [
            {"cause": cause, "time_ns": totals[cause], "share_of_idle": totals[cause] / idle_ns if idle_ns else None}
            for cause in IDLE_CAUSES
        ],
    }
