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

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..trace.kinds import Kind
from .columns import float_values, int_values, is_kind, label_codes, labels_in
from .intervals import merge_intervals

#: torch's allocator totals counted from when recording started (collectors/allocator.py).
ALLOCATED_SINCE_START = "allocated_since_start_bytes"

#: Memory sample name -> its short key in the summary, in the order a reader is shown them. The first
#: present of ``PEAK_SOURCES`` is what a memory budget compares (``check``).
METRICS: dict[str, str] = {
    "allocated_bytes": "allocated",  # torch's allocator: bytes in live tensors (profile_memory)
    # The same counted from when recording started: torch before 2.13 gives each event's size, not the totals.
    ALLOCATED_SINCE_START: "allocated",
    "reserved_bytes": "reserved",  # torch's allocator: bytes it holds from the device, in use or cached
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


def memory_samples(events) -> pd.DataFrame:
    """The memory sample rows (``METRICS``) in plain columns: row (position in ``events``), rank, metric
    (its ``METRICS`` key), since_start (an allocator total counted from when recording started),
    device_type, device_index, start_ns, value; sorted by device, metric, time."""
    at = np.flatnonzero(is_kind(events, Kind.SAMPLE.value))
    codes, labels = label_codes(events["name"])
    at = at[np.append(labels_in(labels, METRICS), False)[codes[at]]]
    if not len(at):  # (no other column is read: most imported traces have no samples)
        return pd.DataFrame({"row": [], "rank": [], "metric": [], "since_start": [], "device_type": [],
                             "device_index": [], "start_ns": [], "value": []})
    value = float_values(events["value"])[at]
    at, value = at[np.isfinite(value)], value[np.isfinite(value)]
    type_codes, type_labels = label_codes(events["device_type"])
    frame = pd.DataFrame({
        "row": at,
        "rank": int_values(events["rank"])[at] if "rank" in events else np.zeros(len(at), np.int64),
        "metric": np.array([METRICS.get(str(label)) for label in labels] + [None], dtype=object)[codes[at]],
        "since_start": np.append(labels == ALLOCATED_SINCE_START, False)[codes[at]],
        "device_type": np.append(np.asarray(type_labels, dtype=object), "cpu")[type_codes[at]],
        "device_index": int_values(events["device_index"], fill=-1)[at],
        "start_ns": int_values(events["start_ns"])[at],
        "value": value,
    })
    return frame.sort_values(["rank", "device_type", "device_index", "metric", "start_ns"], kind="stable",
                             ignore_index=True)


def device_peaks(samples: pd.DataFrame, origin_ns: int) -> list[dict[str, Any]]:
    """Per device (rank, device_type, device_index): for each metric it has, the peak (``<key>_peak_bytes``),
    when it was reached (``<key>_peak_at_ns``, since ``origin_ns``; the first time, if held several times)
    and the row of that sample (``<key>_peak_row``); the allocator's figure at the first and last sample
    too (``allocated_first_bytes``, ``allocated_last_bytes``: growth over the run), and
    ``allocated_since_start`` where those count from when recording started. Devices in order."""
    if samples.empty:
        return []
    keys = ["rank", "device_type", "device_index", "metric"]
    # Per (device, metric) group: the first row holding its largest value (the samples are in time order).
    order = np.lexsort((samples["start_ns"].to_numpy(), -samples["value"].to_numpy(),
                        *(samples[k].to_numpy() for k in reversed(keys))))
    ranked = samples.iloc[order]
    group = ranked[keys].ne(ranked[keys].shift()).any(axis=1).to_numpy()
    peaks = ranked[group]
    ends = samples.groupby(keys, sort=False)["value"].agg(["first", "last"])
    out: dict[tuple, dict[str, Any]] = {}
    for row in peaks.itertuples(index=False):  # (one per device and metric)
        device = (int(row.rank), str(row.device_type), int(row.device_index))
        entry = out.setdefault(device, {"rank": device[0], "device_type": device[1], "device_index": device[2]})
        entry[f"{row.metric}_peak_bytes"] = float(row.value)
        entry[f"{row.metric}_peak_at_ns"] = int(row.start_ns) - origin_ns
        entry[f"{row.metric}_peak_row"] = int(row.row)
        if row.metric == "allocated":
            first, last = ends.loc[(row.rank, row.device_type, row.device_index, row.metric)]
            entry["allocated_first_bytes"], entry["allocated_last_bytes"] = float(first), float(last)
            entry["allocated_since_start"] = bool(row.since_start)
    return [out[device] for device in sorted(out)]


def enclosing_op(events, row: int) -> tuple[str | None, str | None]:
    """(the innermost op, the outermost op) running on sample ``row``'s thread when it was taken: the op
    that allocated, and the top-level call it belongs to. An op that only allocates (``ALLOCATING_OPS``)
    stands for the op that called it. (None, None) where the sample has no thread or no op ran."""
    thread, known = _ids(events, "thread_id")
    if not known[row]:
        return None, None
    process, _ = _ids(events, "process_id")
    rank = int_values(events["rank"]) if "rank" in events else np.zeros(len(thread), np.int64)
    start = int_values(events["start_ns"])
    end = start + int_values(events["duration_ns"], fill=0)
    at = start[row]
    ops = np.flatnonzero(is_kind(events, Kind.CPU_OP.value) & known & (thread == thread[row])
                         & (process == process[row]) & (rank == rank[row]) & (start <= at) & (end >= at))
    if not len(ops):
        return None, None
    codes, labels = label_codes(events["name"])
    names = np.append(np.asarray(labels, dtype=object), None)[codes[ops]]
    # Nested ops start later (or together and end sooner): the outermost first.
    ops_order = np.lexsort((-end[ops], start[ops]))
    chain = [str(name) for name in names[ops_order]]
    inner = next((name for name in reversed(chain) if name not in ALLOCATING_OPS), chain[-1])
    return inner, chain[0]


def _ids(events, name: str) -> tuple[np.ndarray, np.ndarray]:
    """An id column as int64 with its not-null mask (all unknown where the table has no such column)."""
    if name not in events:
        return np.zeros(len(events["start_ns"]), np.int64), np.zeros(len(events["start_ns"]), bool)
    column = events[name]
    if hasattr(column, "ids"):
        return column.ids()
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    known = ~np.isnan(values)
    return np.where(known, values, 0).astype(np.int64), known


def window_peaks(samples: pd.DataFrame, windows: Mapping[str, Any], metric: str = "allocated") -> dict[str, float]:
    """Per window label (``windows``: label, rank, start_ns, end_ns): the most ``metric`` any device of a
    window's rank held inside any window of that label; labels no sample fell in are left out."""
    labels = np.asarray(windows["label"], dtype=object)
    chosen = samples[samples["metric"] == metric]
    if not len(labels) or chosen.empty:
        return {}
    window_rank = np.asarray(windows["rank"], np.int64)
    starts, ends = np.asarray(windows["start_ns"], np.int64), np.asarray(windows["end_ns"], np.int64)
    peaks: dict[str, float] = {}
    for (rank, _, _), part in chosen.groupby(["rank", "device_type", "device_index"], sort=False):
        times, values = part["start_ns"].to_numpy(np.int64), part["value"].to_numpy()
        for label in dict.fromkeys(labels[window_rank == rank].tolist()):  # (a few labels: phases)
            mine = (labels == label) & (window_rank == rank)
            merged_starts, merged_ends = merge_intervals(starts[mine], ends[mine])
            # The window each sample could be in: the last one starting at or before it.
            at = np.searchsorted(merged_starts, times, "right") - 1
            inside = (at >= 0) & (times <= merged_ends[np.maximum(at, 0)])
            if inside.any():
                peaks[label] = max(peaks.get(label, -np.inf), float(values[inside].max()))
    return peaks
