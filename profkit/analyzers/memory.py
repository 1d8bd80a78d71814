"""Memory: the most each device held, when, inside which op, and per phase.

Reads the trace's memory samples (``sample`` rows): torch's allocator totals
after each allocation and free (``allocated_bytes``, ``reserved_bytes``: from
``profile_memory``, see collectors/allocator.py) and the telemetry's readings
(NVML's ``memory_used_bytes`` and ``process_memory_bytes``, the host's
``rss_bytes``). Pure functions over the events table; the only per-item Python
is per device and per peak (a handful).

The allocator's figures are exact (every change is a sample); the telemetry's
are readings 100 ms apart, so a short peak between two readings is missed.
"""

from __future__ import annotations

from itertools import count
from typing import Any, Mapping, NamedTuple

import numpy as np

from ..trace.kinds import ALLOCATED_SAMPLE, ALLOCATED_SINCE_START_SAMPLE, RESERVED_SAMPLE, Kind
from .columns import check_nesting, float_values, int_values, is_kind, label_codes, labels_in, positions, texts_at
from .intervals import merge_intervals
from .json_texts import values_of


#: Memory sample name -> its short key in the summary, in the order a reader is shown them. The first
#: present of ``PEAK_SOURCES`` is what a memory budget compares (``check``).
METRICS: dict[str, str] = {
    ALLOCATED_SAMPLE: "allocated",  # torch's allocator: bytes in live tensors (profile_memory)
    # The same counted from when recording started: torch before 2.13 gives each event's size, not the totals.
    ALLOCATED_SINCE_START_SAMPLE: "allocated",
    RESERVED_SAMPLE: "reserved",  # torch's allocator: bytes it holds from the device, in use or cached
    "process_memory_bytes": "process",  # NVML: this process's memory on the GPU (context included)
    "memory_used_bytes": "device_used",  # NVML: the whole GPU's used memory, every process's
    "rss_bytes": "host_rss",  # the host process's resident set
}
PEAK_SOURCES = ("allocated", "allocated_since_start", "process", "device_used", "host_rss")
#: Each peak source in a few words (check's "basis" column).
PEAK_WORDS = {"allocated": "allocator", "allocated_since_start": "allocator (since recording started)",
              "process": "NVML process", "device_used": "NVML device", "host_rss": "host RSS"}

#: Ops that only allocate: a peak "inside" one of them is named after the op that called it.
ALLOCATING_OPS = frozenset({"aten::empty", "aten::empty_strided", "aten::empty_like", "aten::new_empty",
                            "aten::new_empty_strided", "aten::resize_", "aten::zeros", "aten::zeros_like"})


#: A sample's device type by whether its index is negative (the host).
_DEVICE_TYPES = np.array(["gpu", "cpu"], dtype=object)


class Samples(NamedTuple):
    """Memory sample rows as numpy columns, sorted by device (rank, device type, index), measure, time;
    ``groups``: where each (device, measure) run of rows starts (and ``len`` at the end)."""

    row: np.ndarray  # position in the events table
    rank: np.ndarray
    metric: np.ndarray  # the ``METRICS`` key (object)
    since_start: np.ndarray  # an allocator total counted from when recording started
    device_type: np.ndarray  # "cpu" / "gpu" (object)
    device_index: np.ndarray
    start_ns: np.ndarray
    value: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def memory_samples(events) -> Samples:
    """The memory sample rows (``METRICS``) of ``events``; no column but kind and name is read where there
    are none (most imported traces)."""
    at = np.flatnonzero(is_kind(events, Kind.SAMPLE.value))
    codes, labels = label_codes(events["name"])
    at = at[np.append(labels_in(labels, METRICS), False)[codes[at]]]
    value = float_values(events["value"])[at] if len(at) else np.zeros(0)
    at, value = at[np.isfinite(value)], value[np.isfinite(value)]
    if not len(at):
        empty = np.zeros(0, np.int64)
        return Samples(empty, empty, np.zeros(0, object), np.zeros(0, bool), np.zeros(0, object), empty, empty,
                       np.zeros(0), np.zeros(1, np.int64))
    name = codes[at]
    # Each measure once per name in use (the name labels are every kernel's and op's too: thousands).
    used = np.unique(name)
    metric_of = {str(labels[code]): METRICS[str(labels[code])] for code in used.tolist()}
    measures = sorted(set(metric_of.values()))
    metric_code = np.zeros(len(labels), np.int64)
    metric_code[used] = [measures.index(metric_of[str(labels[code])]) for code in used.tolist()]
    metric_code = metric_code[name]
    rank = int_values(events["rank"])[at] if "rank" in events else np.zeros(len(at), np.int64)
    # A sample's device: a GPU's index, -1 for the host (the trace format's rule for samples).
    device_index = int_values(events["device_index"], fill=-1)[at]
    start = int_values(events["start_ns"])[at]
    order = np.lexsort((start, metric_code, device_index, rank))
    keys = np.stack([rank, device_index, metric_code])[:, order]
    changes = np.flatnonzero((keys[:, 1:] != keys[:, :-1]).any(axis=0)) + 1
    return Samples(
        row=at[order], rank=rank[order], metric=np.array(measures, dtype=object)[metric_code][order],
        since_start=(labels == ALLOCATED_SINCE_START_SAMPLE)[name][order],
        device_type=_DEVICE_TYPES[(device_index[order] < 0).astype(np.int8)],
        device_index=device_index[order], start_ns=start[order], value=value[order],
        groups=np.r_[0, changes, len(order)])


def device_peaks(samples: Samples, origin_ns: int) -> list[dict[str, Any]]:
    """Per device (rank, device_type, device_index): for each metric it has, the peak (``<key>_peak_bytes``),
    when it was reached (``<key>_peak_at_ns``, since ``origin_ns``; the first time, if held several times)
    and the row of that sample (``<key>_peak_row``); the allocator's figure at the first and last sample
    too (``allocated_first_bytes``, ``allocated_last_bytes``: growth over the run), and
    ``allocated_since_start`` where those count from when recording started. Devices in order."""
    if not len(samples):
        return []
    starts, ends = samples.groups[:-1], samples.groups[1:]
    most = np.maximum.reduceat(samples.value, starts)
    group = np.repeat(np.arange(len(starts)), ends - starts)
    # The first row of each group holding its most (rows are in time order within a group).
    at_most = np.where(samples.value == most[group], np.arange(len(samples)), len(samples))
    peak = np.minimum.reduceat(at_most, starts)
    out: dict[tuple, dict[str, Any]] = {}
    for g, first in enumerate(starts.tolist()):  # (one per device and measure: a handful)
        device = (int(samples.rank[first]), str(samples.device_type[first]), int(samples.device_index[first]))
        entry = out.setdefault(device, {"rank": device[0], "device_type": device[1], "device_index": device[2]})
        metric, at = samples.metric[first], int(peak[g])
        entry[f"{metric}_peak_bytes"] = float(samples.value[at])
        entry[f"{metric}_peak_at_ns"] = int(samples.start_ns[at]) - origin_ns
        entry[f"{metric}_peak_row"] = int(samples.row[at])
        if metric == "allocated":
            entry["allocated_peak_index"] = at  # (its position in ``samples``: held_at_peak's)
            entry["allocated_first_bytes"] = float(samples.value[first])
            entry["allocated_last_bytes"] = float(samples.value[ends[g] - 1])
            entry["allocated_since_start"] = bool(samples.since_start[first])
    return [out[device] for device in sorted(out)]


def enclosing_ops(events, rows: list[int]) -> list[tuple[str | None, str | None]]:
    """Per sample row: (the op that allocated, the top-level op around it), by ``_allocating_ops``' rule;
    (None, None) where the sample has no op around it."""
    if not rows:
        return []
    found, outermost = _allocating_ops(events, np.asarray(rows, dtype=np.int64), outermost=True)
    codes, labels = label_codes(events["name"])
    return [(str(labels[codes[op]]), str(labels[codes[top]])) if op >= 0 else (None, None)
            for op, top in zip(found.tolist(), outermost.tolist())]


def allocations_by_op(events, samples: Samples, top: int) -> list[dict[str, Any]]:
    """The ops that allocated the most bytes over the run (``top`` of them, most first): ``name``,
    ``count`` (allocations), ``allocated_bytes``, on the GPUs where the allocator was recorded there, else on the
    host. An allocation is a rise of the allocator's total over its sample before on the same device
    (the first sample of a device has no before: it is left out where the totals are absolute); it
    belongs to the op that allocated (``enclosing_ops``' rule: one that only allocates stands for its
    caller)."""
    allocated = samples.metric == "allocated"
    if not allocated.any():
        return []
    device_type = "gpu" if (allocated & (samples.device_type == "gpu")).any() else "cpu"
    rows, rises = [], []
    for first, end in zip(samples.groups[:-1].tolist(), samples.groups[1:].tolist()):
        if not allocated[first] or samples.device_type[first] != device_type:
            continue
        rise = _rises(samples, first, end)
        grew = rise > 0  # (NaN: the first of absolute totals, compares False)
        rows.append(samples.row[first:end][grew])
        rises.append(rise[grew])
    at, rise = np.concatenate(rows), np.concatenate(rises)
    if not len(at):
        return []
    return [{**record, "device_type": device_type} for record in _by_allocating_op(events, at, rise, top)]


def _rises(samples: Samples, first: int, end: int) -> np.ndarray:
    """The rise of each of one device's samples ``first:end`` (``first``: the device's first) over the one
    before; the first sample's over 0 where the totals count from when recording started, else NaN
    (an absolute total has no before)."""
    values = samples.value[first:end]
    return values - np.r_[0.0 if samples.since_start[first] else np.nan, values[:-1]]


def _by_allocating_op(events, rows: np.ndarray, nbytes: np.ndarray, top: int) -> list[dict[str, Any]]:
    """The sample ``rows`` grouped by the op that allocated (``_allocating_ops``), ``top`` of them with
    the most ``nbytes``, most first: ``name`` ("(no op)" for none), ``count``, ``allocated_bytes``."""
    op, _ = _allocating_ops(events, rows)
    codes, labels = label_codes(events["name"])
    name = np.where(op >= 0, codes[np.maximum(op, 0)], -1) + 1  # (0: no op around the allocation)
    total = np.bincount(name, weights=nbytes, minlength=len(labels) + 1)
    count = np.bincount(name, minlength=len(labels) + 1)
    order = np.argsort(-total, kind="stable")[:top]
    return [{"name": str(labels[i - 1]) if i else "(no op)", "count": int(count[i]), "allocated_bytes": float(total[i])}
            for i in order.tolist() if count[i]]


def sample_blocks(texts) -> tuple[np.ndarray, np.ndarray]:
    """(address, size) of the block in allocator samples' ``extra`` texts (``{"address": N, "bytes": B}``,
    collectors/allocator.py; size negative for a free) as float64 (exact: addresses are below 2**53);
    NaN where a row has none (texts parsed by ``json_texts.values_of``: at once where it can)."""
    documents = [d if type(d) is dict else _NONE for d in values_of(list(texts))]
    return (_numbers([d.get("address", _NAN) for d in documents]), _numbers([d.get("bytes", _NAN) for d in documents]))


_NONE: dict = {}
_NAN = float("nan")


def _numbers(values: list) -> np.ndarray:
    """Numbers as float64 (NaN where missing: the usual case, converted in one call); where some value is
    no number (null, a text, a list), NaN for it."""
    try:
        found = np.array(values, dtype=np.float64)
        if found.ndim == 1:
            return found
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([_number(v) for v in values], dtype=np.float64)


def _number(value) -> float:
    """A number as a float; NaN for anything else, and for an integer beyond float's range."""
    if type(value) in (int, float):
        try:
            return float(value)
        except OverflowError:
            return _NAN
    return _NAN


def held_at_peak(events, samples: Samples, peak: int, top: int) -> dict[str, Any] | None:
    """What the allocator still held at its peak (``peak``: a row of ``samples``, an ``allocated`` one),
    among the blocks allocated while recording: each block's last event up to the peak (its address in
    the sample's ``extra``; its size the rise of the total) is an allocation, not a free. By the op that
    allocated it (``_allocating_ops``' rule; a block's size is the event's own, else the total's rise):
    ``held_at_peak`` (``top`` ops, most first: ``name``,
    ``count`` of blocks, ``allocated_bytes``) and ``held_at_peak_bytes`` (all of them); the rest of the
    peak was allocated before recording started (or by events left out). None without addresses."""
    first = int(samples.groups[np.searchsorted(samples.groups, peak, side="right") - 1])
    rows = samples.row[first:peak + 1]
    texts = texts_at(events["extra"], rows) if "extra" in events else np.full(len(rows), None, dtype=object)
    address, rise = sample_blocks(texts)
    if not np.isfinite(address).any():
        return None
    rise = np.where(np.isfinite(rise), rise, _rises(samples, first, peak + 1))
    known = np.flatnonzero(np.isfinite(address) & np.isfinite(rise) & (rise != 0))
    order = known[np.lexsort((known, address[known]))]  # by address, then in time
    last = order[np.r_[address[order][1:] != address[order][:-1], True]]  # each block's last event
    live = last[rise[last] > 0]
    if not len(live):
        return {"held_at_peak": [], "held_at_peak_bytes": 0.0}
    return {"held_at_peak": _by_allocating_op(events, rows[live], rise[live], top),
            "held_at_peak_bytes": float(rise[live].sum())}


def _allocating_ops(events, rows: np.ndarray, outermost: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Per sample row (a sample taken on a thread nests in the host event running there: its
    ``parent_id``): the op that allocated, i.e. the innermost op around it that does more than allocate
    (``ALLOCATING_OPS`` stand for their caller), else the innermost op; -1 where no op is around it.
    ``outermost``: also the top-level op around each (else None)."""
    codes, labels = label_codes(events["name"])
    kinds, kind_labels = label_codes(events["kind"])
    is_op = np.append(kind_labels == Kind.CPU_OP.value, False)[kinds]
    allocating = np.append(labels_in(labels, ALLOCATING_OPS), False)[codes]
    parent = positions(int_values(events["event_id"]), events["parent_id"])
    innermost = _climb(parent, parent[rows], is_op)
    caller = _climb(parent, innermost, is_op & ~allocating)
    found = np.where(caller >= 0, caller, innermost)
    if not outermost:
        return found, None
    top = innermost.copy()
    for levels in count(1):  # (up an op at a time while one is above)
        check_nesting(levels)
        above = _climb(parent, parent[np.maximum(top, 0)], is_op)
        higher = (top >= 0) & (above >= 0)
        if not higher.any():
            return found, top
        top[higher] = above[higher]


def _climb(parent: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """From each row of ``start`` (-1: none) up its ``parent`` chain to the first row where ``stop`` holds
    (itself included); -1 where none does. All rows a level at a time: a nesting depth of steps."""
    found = start.copy()
    for levels in count(1):
        check_nesting(levels)
        climb = (found >= 0) & ~stop[np.maximum(found, 0)]
        if not climb.any():
            return found
        found[climb] = parent[found[climb]]


def window_peaks(samples: Samples, windows: Mapping[str, Any], metric: str = "allocated") -> dict[str, float]:
    """Per window label (``windows``: label, rank, start_ns, end_ns): the most ``metric`` any device of a
    window's rank held inside any window of that label; labels no sample fell in are left out."""
    labels = np.asarray(windows["label"], dtype=object)
    if not len(labels) or not len(samples):
        return {}
    window_rank = np.asarray(windows["rank"], np.int64)
    starts, ends = np.asarray(windows["start_ns"], np.int64), np.asarray(windows["end_ns"], np.int64)
    peaks: dict[str, float] = {}
    for first, end in zip(samples.groups[:-1].tolist(), samples.groups[1:].tolist()):  # (per device and measure)
        if samples.metric[first] != metric:
            continue
        rank = samples.rank[first]
        times, values = samples.start_ns[first:end], samples.value[first:end]
        for label in dict.fromkeys(labels[window_rank == rank].tolist()):  # (a few labels: phases)
            mine = (labels == label) & (window_rank == rank)
            merged_starts, merged_ends = merge_intervals(starts[mine], ends[mine])
            # The window each sample could be in: the last one starting at or before it.
            at = np.searchsorted(merged_starts, times, "right") - 1
            inside = (at >= 0) & (times <= merged_ends[np.maximum(at, 0)])
            if inside.any():
                peaks[label] = max(peaks.get(label, -np.inf), float(values[inside].max()))
    return peaks
