"""Turn raw event columns into a finished v1 events table.

Collectors (the live recorder, the Chrome-trace importer) hand over parts:
pandas DataFrames, Arrow tables or plain dicts of columns (numpy arrays,
lists, Arrow arrays), each with the schema columns it knows plus
``linked_correlation_id`` (GPU events: the correlation id of the host call
that launched them). This module concatenates them, sorts, numbers, nests host
events, links GPU work to its launching op and returns an Arrow table in the
exact v1 schema. It works on Arrow and numpy only, so the live recorder never
needs pandas.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_buffers import cast, from_numpy, to_arrow, to_numpy
from .nesting import nest
from .schema import ARROW_SCHEMA, GPU_KINDS, HOST_NESTED_KINDS, Kind

#: Raw columns and their working types (strings are dictionary-encoded only at the end).
_WORKING = {f.name: (pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in ARROW_SCHEMA}
_WORKING["linked_correlation_id"] = pa.int64()


def build_events(*parts: Any, start_range: tuple[int | None, int | None] | None = None) -> pa.Table:
    """Sort by start, number rows, fill parent/depth and op/launch links.

    ``parts``: DataFrames, Arrow tables or dicts of columns; missing columns are null.
    ``start_range``: keep only events starting in [low, high) (either end may be None).
    """
    tables = [_as_table(p) for p in parts if p is not None]
    if not tables:
        raise ValueError("no event columns to build a trace from")
    # Empty parts are dropped, but a run that recorded nothing still gives a (0-row) trace.
    tables = [t for t in tables if t.num_rows] or tables[:1]
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    for required in ("kind", "name", "start_ns", "duration_ns"):
        if required not in table.column_names:
            raise ValueError(f"raw events lack the {required!r} column")

    start = _ints(table, "start_ns", 0)
    if start_range is not None:
        low, high = start_range
        keep = np.ones(len(start), bool)
        if low is not None:
            keep &= start >= low
        if high is not None:
            keep &= start < high
        table, start = table.filter(from_numpy(keep)), start[keep]
    duration = _ints(table, "duration_ns", 0)
    order = np.lexsort((-duration, start))  # by start, the enclosing (longer) event first
    table = table.take(from_numpy(order))
    start, duration = start[order], duration[order]
    n = table.num_rows
    kind = LabelCodes(table["kind"])
    columns: dict[str, Any] = {"event_id": from_numpy(np.arange(n, dtype=np.int64)), "kind": kind.encoded}

    parent_id, depth = _ints(table, "parent_id", -1), _ints(table, "depth", -1)
    if (parent_id < 0).all():
        thread = _ints(table, "thread_id", -1)
        # Host events nest on their thread; so do samples taken on one (torch's allocator's, a row per
        # allocation: their parent is the op that allocated). Telemetry has no thread.
        host_rows = np.flatnonzero(kind.isin(HOST_NESTED_KINDS) | (kind.isin({Kind.SAMPLE.value}) & (thread >= 0)))
        thread_key = _ints(table, "process_id", -1) * 1_000_003 + thread
        host_depth, host_parent = nest(start[host_rows], start[host_rows] + duration[host_rows], thread_key[host_rows])
        parent_id[host_rows] = np.where(host_parent >= 0, host_rows[np.maximum(host_parent, 0)], -1)
        depth[host_rows] = host_depth
    columns["parent_id"] = _nullable(parent_id)
    columns["depth"] = _nullable(depth)

    if "linked_correlation_id" in table.column_names:
        launch_id, op_id = _link_gpu_events(table, kind, parent_id)
        columns["launch_id"], columns["op_id"] = _nullable(launch_id), _nullable(op_id)

    out = []
    for field in ARROW_SCHEMA:
        if field.name in columns:
            array = columns[field.name]
        elif field.name in table.column_names:
            array = table[field.name]
        else:
            array = pa.nulls(n, _WORKING[field.name])
        out.append(cast(array, field.type))
    return pa.Table.from_arrays(out, schema=ARROW_SCHEMA)


class LabelCodes:
    """A text column (kind, device type...) dictionary-encoded once: row masks come from a lookup
    on its few distinct values instead of string comparisons on every row."""

    def __init__(self, column: pa.ChunkedArray):
        self.encoded = column.combine_chunks().dictionary_encode()
        self.values = self.encoded.dictionary.to_pylist()
        # A null gets the code one past the values, which matches nothing.
        self.codes = to_numpy(self.encoded.indices, len(self.values))

    def isin(self, wanted) -> np.ndarray:
        hit = np.array([value in wanted for value in self.values] + [False], dtype=bool)
        return hit[self.codes]


def _as_table(part: Any) -> pa.Table:
    """One raw part as an Arrow table of working types."""
    if isinstance(part, pa.Table):
        table = part
    elif isinstance(part, Mapping):
        arrays = {name: to_arrow(values) for name, values in part.items()}
        table = pa.Table.from_arrays(list(arrays.values()), names=list(arrays))
    else:  # a pandas DataFrame; nthreads=1 because this can run from atexit (no new threads then)
        table = pa.Table.from_pandas(part, preserve_index=False, nthreads=1)
    fields = []
    arrays = []
    for name in table.column_names:
        if name not in _WORKING:
            continue
        column = table[name]
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        fields.append(pa.field(name, _WORKING[name]))
        arrays.append(pc.cast(column, _WORKING[name]))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _ints(table: pa.Table, name: str, missing: int) -> np.ndarray:
    """An integer column as int64 numpy with nulls (or an absent column) as ``missing``."""
    if name not in table.column_names:
        return np.full(table.num_rows, missing, dtype=np.int64)
    return to_numpy(pc.cast(table[name], pa.int64()), missing)


def _nullable(values: np.ndarray) -> pa.Array:
    """Ids where -1 means none."""
    return from_numpy(values, values >= 0)


def _link_gpu_events(table: pa.Table, kind: LabelCodes, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(launch_id, op_id) per row for GPU events; -1 where none.

    Two id spaces meet here. A GPU event's own ``correlation_id`` is the
    runtime's (CUPTI/roctracer): the launching call (cudaLaunchKernel...) has
    the same one. Its ``linked_correlation_id`` is, from torch's profiler, the
    ``correlation_id`` of the CPU op that launched it (an importer that has no
    such link passes the event's own correlation instead). Both count from 1,
    so each is only looked up among the rows of its own space: runtime calls
    for the launch, CPU ops for the op. Without a direct op link, the op is the
    innermost CPU op enclosing the launch call. Lookups are sorted-key searches
    (no joins): (process, correlation id) is one int64 key.
    """
    n = table.num_rows
    launch_id = np.full(n, -1, dtype=np.int64)
    op_id = np.full(n, -1, dtype=np.int64)
    correlation = _ints(table, "correlation_id", -1)
    linked = _ints(table, "linked_correlation_id", -1)
    launch_key = np.where(correlation >= 0, correlation, linked)  # a GPU row's key to its launch call
    gpu = kind.isin(GPU_KINDS) & ((launch_key >= 0) | (linked >= 0))
    if not gpu.any():
        return launch_id, op_id
    process = np.unique(_ints(table, "process_id", -1), return_inverse=True)[1].astype(np.int64)
    span = int(max(correlation.max(initial=0), linked.max(initial=0))) + 1
    own_key = process * span + correlation

    def lookup(kinds: list[str], ids: np.ndarray) -> np.ndarray:
        """Row of the event of ``kinds`` whose correlation id is ``ids`` (per GPU row), else -1."""
        rows = np.flatnonzero(kind.isin(kinds) & (correlation >= 0))
        if not len(rows):
            return np.full(int(gpu.sum()), -1, dtype=np.int64)
        query = (process * span + ids)[gpu]
        keys, first = np.unique(own_key[rows], return_index=True)
        at = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        found = (keys[at] == query) & (ids[gpu] >= 0)
        return np.where(found, rows[first[at]], -1)  # row index == event_id after sorting

    launch = lookup([Kind.RUNTIME.value], launch_key)
    op = _innermost_cpu_op(kind, parent, launch)
    direct_op = lookup([Kind.CPU_OP.value], linked)
    launch_id[gpu] = launch
    op_id[gpu] = np.where(direct_op >= 0, direct_op, op)
    return launch_id, op_id


def _innermost_cpu_op(kind: LabelCodes, parent: np.ndarray, launch_ids: np.ndarray) -> np.ndarray:
    """Walk parent ids upwards from each launch call until a cpu_op is reached (one step per level)."""
    is_op = kind.isin({Kind.CPU_OP.value})
    current = np.where(launch_ids >= 0, parent[np.maximum(launch_ids, 0)], -1)  # start from the call's parent
    for _ in range(512):  # bounded by stack depth
        pending = (current >= 0) & ~is_op[np.maximum(current, 0)]
        if not pending.any():
            break
        current = np.where(pending, parent[np.maximum(current, 0)], current)
    return current
