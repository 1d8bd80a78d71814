"""What ran and where the time went: totals, busy time, top ops and kernels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .columns import descending_order, id_values, kind_mask, label_codes, positions, ranks
from .intervals import merge_intervals

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
    timed = ~kind_mask(label_codes(events["kind"]), Kind.SAMPLE.value)
    if not timed.any():
        return 0, 0
    start = events["start_ns"].to_numpy(np.int64)
    duration, known = id_values(events["duration_ns"])  # a null duration has no end
    ends = (start + duration)[timed & known]
    return int(start[timed].min()), int(ends.max())


def totals(events: pd.DataFrame, span: tuple[int, int] | None = None) -> dict:
    """Counts and times over the whole trace (all ranks, summed); ``span``: ``span_ns(events)`` when known."""
    kinds = label_codes(events["kind"])
    kernels = kind_mask(kinds, Kind.KERNEL.value)
    work = kind_mask(kinds, *DEVICE_WORK_KINDS)
    ops = kind_mask(kinds, Kind.CPU_OP.value)
    start = events["start_ns"].to_numpy(np.int64)
    end = start + events["duration_ns"].to_numpy(np.int64)
    rank = ranks(events)
    timed = ~kind_mask(kinds, Kind.SAMPLE.value) & id_values(events["duration_ns"])[1]
    busy_ns = device_span = 0
    unique_ranks = np.unique(rank)
    for r in unique_ranks:  # per rank: its GPU work, or its CPU ops on a CPU-only rank
        mine = rank == r
        busy = mine & (work if (mine & work).any() else ops)
        starts, ends = merge_intervals(start[busy], end[busy])
        busy_ns += int((ends - starts).sum())
        if (mine & timed).any():  # the time this rank's device could have been busy
            device_span += int(end[mine & timed].max() - start[mine & timed].min())
    first, last = span_ns(events) if span is None else span
    return {
        "kernel_count": int(kernels.sum()),
        "kernel_time_ns": int(events["duration_ns"].to_numpy(np.int64)[kernels].sum()),
        "memcpy_count": int(kind_mask(kinds, Kind.MEMCPY.value).sum()),
        "memset_count": int(kind_mask(kinds, Kind.MEMSET.value).sum()),
        "op_count": int(ops.sum()),
        "device_busy_ns": busy_ns,
        "span_ns": last - first,
        "rank_count": len(unique_ranks),
        # Each rank's span, summed: busy time is summed over ranks, so its share is of this, not of span_ns.
        "device_span_ns": device_span,
        "device_busy_share": busy_ns / device_span if device_span else None,
        "device": "gpu" if work.any() else "cpu",
    }


_HOST_KINDS = (Kind.CPU_OP.value, Kind.ANNOTATION.value, Kind.RUNTIME.value, Kind.PYTHON_FUNCTION.value)


def top_ops(events: pd.DataFrame, n: int) -> pd.DataFrame:
    """CPU ops by self time (time in the op minus its child ops), summed per name."""
    return _top_frame(top_op_columns(events, n))


def top_kernels(events: pd.DataFrame, n: int) -> pd.DataFrame:
    """GPU kernels (and copies) by time, summed per name."""
    return _top_frame(top_kernel_columns(events, n))


def top_records(columns: dict[str, np.ndarray] | None) -> list[dict]:
    """``top_ops(...).to_dict("records")`` (or top_kernels') from ``top_op_columns`` (``top_kernel_columns``):
    Python values, no table in between."""
    if columns is None:
        return []
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*(columns[c].tolist() for c in names))]


def top_op_columns(events: pd.DataFrame, n: int) -> dict[str, np.ndarray] | None:
    """``top_ops`` as a dict of its columns (None: no host events)."""
    kinds = label_codes(events["kind"])
    host = kind_mask(kinds, *_HOST_KINDS)
    if not host.any():
        return None
    duration = events["duration_ns"].to_numpy(np.int64)
    # Self time: duration minus the time of direct children among the host events.
    parent = positions(events["event_id"].to_numpy(np.int64), events["parent_id"])
    children = host & (parent >= 0)
    child_ns = np.zeros(len(events), np.int64)
    np.add.at(child_ns, parent[children], duration[children])
    self_ns = np.where(host, np.maximum(duration - child_ns, 0), 0)
    ops = kind_mask(kinds, Kind.CPU_OP.value)
    return _top(events["name"], ops, self_ns, duration, n)


def top_kernel_columns(events: pd.DataFrame, n: int) -> dict[str, np.ndarray] | None:
    """``top_kernels`` as a dict of its columns (None: no device work)."""
    work = kind_mask(label_codes(events["kind"]), *DEVICE_WORK_KINDS)
    if not work.any():
        return None
    duration = events["duration_ns"].to_numpy(np.int64)
    return _top(events["name"], work, duration, duration, n)


def _top_frame(columns: dict[str, np.ndarray] | None) -> pd.DataFrame:
    if columns is None:
        return _empty_top()
    return pd.DataFrame({**columns, "name": pd.array(columns["name"], dtype="str")})


def _top(names: pd.Series, rows: np.ndarray, self_ns: np.ndarray, total_ns: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per name of ``rows``: count, self and total time, in descending self time, the first ``n``."""
    codes, labels = label_codes(names)
    codes = codes[rows]
    named = codes >= 0  # a null name is in no group
    codes, self_ns, total_ns = codes[named], self_ns[rows][named], total_ns[rows][named]
    used = np.unique(codes)
    order = used[_text_order(labels[used])]  # groups in name order, as a groupby gives
    slot = np.full(len(labels), -1, np.int64)
    slot[order] = np.arange(len(order))
    group = slot[codes]
    count = np.bincount(group, minlength=len(order)).astype(np.int64)
    self_sums = _int_sums(group, self_ns, len(order))
    total_sums = _int_sums(group, total_ns, len(order))
    top = descending_order(self_sums)[:n]  # as sort_values(ascending=False) ranked the grouped table
    grand = self_sums.sum()
    return {
        "name": labels[order][top],
        "count": count[top],
        "self_time_ns": self_sums[top],
        "total_time_ns": total_sums[top],
        "share": self_sums[top] / grand if grand else np.zeros(len(top)),
    }


def _text_order(texts: np.ndarray) -> np.ndarray:
    """Positions of ``texts`` in code-point order (stable), as numpy orders them as str: compared as
    the Python strings they are, not copied into a fixed-width array as wide as the longest kernel name."""
    try:
        return np.argsort(np.asarray(texts, dtype=object), kind="stable")
    except TypeError:  # a label that is no str
        return np.argsort(np.asarray(texts).astype(str), kind="stable")


def _int_sums(group: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    sums = np.zeros(size, np.int64)
    np.add.at(sums, group, values)
    return sums


def _empty_top() -> pd.DataFrame:
    return pd.DataFrame({"name": [], "count": [], "self_time_ns": [], "total_time_ns": [], "share": []})
