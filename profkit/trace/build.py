"""Turn raw event columns into a finished v1 events table.

Collectors (the live recorder, the Chrome-trace importer) hand over a pandas
DataFrame with the schema's columns they know plus ``linked_correlation_id``
(GPU events: the correlation id of the host call that launched them). This
module sorts, numbers, nests host events, links GPU work to its launching op
and returns an Arrow table in the exact v1 schema.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .nesting import nest
from .schema import ARROW_SCHEMA, COLUMN_NAMES, GPU_KINDS, HOST_NESTED_KINDS, Kind


def build_events(raw: pd.DataFrame) -> pa.Table:
    """Sort by start, number rows, fill parent/depth and op/launch links."""
    frame = raw.copy()
    frame["kind"] = frame["kind"].astype(str)
    frame = frame.sort_values(["start_ns", "duration_ns"], ascending=[True, False], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["event_id"] = np.arange(len(frame), dtype=np.int64)

    kind = frame["kind"].to_numpy()
    host = np.isin(kind, list(HOST_NESTED_KINDS))
    if "parent_id" not in frame or frame["parent_id"].isna().all():
        thread_key = (
            frame["process_id"].fillna(-1).astype(np.int64).to_numpy() * 1_000_003
            + frame["thread_id"].fillna(-1).astype(np.int64).to_numpy()
        )
        host_rows = np.flatnonzero(host)
        start = frame["start_ns"].to_numpy(np.int64)
        end = start + frame["duration_ns"].to_numpy(np.int64)
        depth, parent = nest(start[host_rows], end[host_rows], thread_key[host_rows])
        parent_id = np.full(len(frame), -1, dtype=np.int64)
        depth_all = np.full(len(frame), -1, dtype=np.int64)
        parent_id[host_rows] = np.where(parent >= 0, host_rows[np.maximum(parent, 0)], -1)
        depth_all[host_rows] = depth
        frame["parent_id"] = pd.arrays.IntegerArray(np.maximum(parent_id, 0), parent_id < 0)
        frame["depth"] = pd.arrays.IntegerArray(np.maximum(depth_all, 0), depth_all < 0)

    if "linked_correlation_id" in frame:
        _link_gpu_events(frame)
    for column in COLUMN_NAMES:
        if column not in frame:
            frame[column] = None
    # nthreads=1: this runs from atexit, where Python refuses to start new threads.
    return pa.Table.from_pandas(frame[list(COLUMN_NAMES)], schema=ARROW_SCHEMA, preserve_index=False, nthreads=1)


def _link_gpu_events(frame: pd.DataFrame) -> None:
    """Set launch_id/op_id of GPU events from their linked correlation id.

    The launching runtime call (cudaLaunchKernel...) shares the kernel's
    correlation id; the op is the innermost CPU op enclosing that call. Some
    producers link a kernel straight to its CPU op's correlation id: that wins.
    Lookups are sorted-key searches (no joins): correlation ids are unique per
    process, so (process, correlation id) is one int64 key.
    """
    kind = frame["kind"].to_numpy()
    linked = frame["linked_correlation_id"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    gpu = np.isin(kind, list(GPU_KINDS)) & (linked >= 0)
    frame["launch_id"] = pd.arrays.IntegerArray(np.zeros(len(frame), np.int64), np.ones(len(frame), bool))
    frame["op_id"] = frame["launch_id"].copy()
    if not gpu.any():
        return
    process = pd.factorize(frame["process_id"].fillna(-1).to_numpy())[0].astype(np.int64)
    correlation = frame["correlation_id"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    span = int(max(correlation.max(initial=0), linked.max(initial=0))) + 1
    own_key = process * span + correlation
    query = (process * span + linked)[gpu]
    event_id = frame["event_id"].to_numpy(np.int64)

    def lookup(kinds: list[str]) -> np.ndarray:
        rows = np.flatnonzero(np.isin(kind, kinds) & (correlation >= 0))
        keys, first = np.unique(own_key[rows], return_index=True)
        at = np.clip(np.searchsorted(keys, query), 0, max(len(keys) - 1, 0))
        hit = (len(keys) > 0) & (keys[at] == query) if len(keys) else np.zeros(len(query), bool)
        return np.where(hit, event_id[rows[first[at]]] if len(keys) else -1, -1)

    launch = lookup([Kind.RUNTIME.value])
    op = _innermost_cpu_op(frame, launch)
    direct_op = lookup([Kind.CPU_OP.value])
    op = np.where(direct_op >= 0, direct_op, op)
    gpu_rows = np.flatnonzero(gpu)
    for column, values in (("launch_id", launch), ("op_id", op)):
        data = np.zeros(len(frame), np.int64)
        missing = np.ones(len(frame), bool)
        data[gpu_rows] = np.maximum(values, 0)
        missing[gpu_rows] = values < 0
        frame[column] = pd.arrays.IntegerArray(data, missing)


def _innermost_cpu_op(frame: pd.DataFrame, launch_ids: np.ndarray) -> np.ndarray:
    """Walk parent_id upwards from each launch call until a cpu_op is reached (one step per level)."""
    parent = frame["parent_id"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    is_op = (frame["kind"] == Kind.CPU_OP.value).to_numpy()
    current = np.where(launch_ids >= 0, parent[np.maximum(launch_ids, 0)], -1)  # start from the call's parent
    for _ in range(512):  # bounded by stack depth
        pending = (current >= 0) & ~is_op[np.maximum(current, 0)]
        if not pending.any():
            break
        current = np.where(pending, parent[np.maximum(current, 0)], current)
    return current
