"""torch's allocator memory events as telemetry samples.

With ``profile_memory=True`` torch.profiler records one ``[memory]`` event per
allocation and free, on the thread that made it. Its fields (Kineto's names)
include the allocator's running totals for that device after the change:
``Total Allocated`` (bytes held by live tensors) and ``Total Reserved`` (bytes
the caching allocator holds from the device, tensors or not). Each event
becomes a ``sample`` row of each total: ``allocated_bytes`` and, on a GPU,
``reserved_bytes`` (the host allocator reserves nothing: its 0 would read as a
measurement). The same columns come from an imported Chrome trace (its
``"ph": "i"`` events named ``[memory]``) and from ``profkit record --memory``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from ..trace.arrow_buffers import from_numpy
from ..trace.kinds import ALLOCATED_SAMPLE, ALLOCATED_SINCE_START_SAMPLE, RESERVED_SAMPLE, Kind
from .json_numbers import floats

#: The profiler's event name for an allocation or a free.
MEMORY_EVENT = "[memory]"
ALLOCATED, RESERVED = ALLOCATED_SAMPLE, RESERVED_SAMPLE
#: Where the profiler gives each event's size but not the totals (torch before 2.13's events()): the
#: running sum of the sizes per device, so counted from when recording started.
ALLOCATED_SINCE_START = ALLOCATED_SINCE_START_SAMPLE

#: torch's DeviceType code ("Device Type") -> the trace's device_type; other devices' events are left out.
DEVICE_TYPES: dict[int, str] = {
    0: "cpu",
    1: "gpu",  # CUDA
    6: "gpu",  # HIP (ROCm)
    12: "gpu",  # XPU
    13: "gpu",  # MPS
}


#: The args of a memory event that ``memory_fields`` reads, in its order ("Addr": the block's address,
#: which pairs an allocation with its free: exact as a float64, addresses being below 2**53; "Bytes":
#: its size, negative for a free).
FIELDS = ("Device Type", "Device Id", "Total Allocated", "Total Reserved", "Addr", "Bytes")


def memory_fields(args: list[dict[str, Any]]) -> tuple[np.ndarray, ...]:
    """(device type code, device id, total allocated, total reserved, address, size) of each event's args, as float
    arrays (NaN where a field is missing or not a number)."""
    return tuple(floats([a.get(field, np.nan) for a in args]) for field in FIELDS)


def metadata_args(metadata_texts: list[str]) -> list[dict[str, Any]]:
    """Profiler activities' metadata (Kineto writes each as the members of a JSON object, without the
    braces) as dicts, empty where one does not parse: all parsed in one call, one by one if that fails."""
    try:
        values = json.loads("[{" + "},{".join(metadata_texts) + "}]") if metadata_texts else []
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(metadata_texts):
        values = [_object(text) for text in metadata_texts]
    return values


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads("{" + text + "}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def running_totals(start_ns: np.ndarray, device_type: np.ndarray, device_id: np.ndarray,
                   nbytes: np.ndarray) -> np.ndarray:
    """Per event: the sum of the sizes (``nbytes``: + allocated, - freed) of its device's events up to
    and including it, in time order: the allocated bytes counted from the first event on."""
    device = np.unique(np.stack([np.nan_to_num(device_type, nan=-1), np.nan_to_num(device_id, nan=-1)]),
                       axis=1, return_inverse=True)[1].reshape(-1)
    order = np.lexsort((start_ns, device))
    sums = np.cumsum(np.nan_to_num(nbytes)[order])
    first = np.r_[True, device[order][1:] != device[order][:-1]]
    starts = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    totals = np.empty(len(order))
    totals[order] = sums - np.r_[0.0, sums][starts]
    return totals


def sample_columns(start_ns: np.ndarray, device_type: np.ndarray, device_id: np.ndarray, allocated: np.ndarray,
                   reserved: np.ndarray, thread_id: np.ndarray, process_id: np.ndarray,
                   allocated_name: str = ALLOCATED, address: np.ndarray | None = None,
                   size: np.ndarray | None = None) -> dict[str, Any] | None:
    """Raw ``sample`` columns (``trace.build_events``'s input) of memory events: an ``allocated_bytes`` row
    per event on a known device type, a ``reserved_bytes`` row per such event on a GPU. None when there
    are none. ``start_ns`` int64; the others as ``memory_fields`` gives them (thread and process ids too).
    ``address``, ``size``: the block each event allocated or freed and its bytes (negative: freed), kept
    in the allocated row's ``extra`` (``{"address": N, "bytes": B}``), which tells what is still held at a
    peak (analyzers/memory.py)."""
    labels = np.array([None, *DEVICE_TYPES.values()], dtype=object)  # code 0: no label (left out)
    label_of = np.zeros(len(device_type), dtype=np.int64)
    for i, code in enumerate(DEVICE_TYPES, start=1):
        label_of[device_type == code] = i
    types = labels[label_of]
    gpu = types == "gpu"
    with np.errstate(invalid="ignore"):  # (a GPU event without an index a GPU can have is left out)
        indexed = ~gpu | ((device_id >= 0) & (device_id < 2**15))
    parts = [(allocated_name, (label_of > 0) & indexed & ~np.isnan(allocated), allocated),
             (RESERVED, gpu & indexed & ~np.isnan(reserved) & _changed(start_ns, device_id, reserved), reserved)]
    picks = [np.flatnonzero(mask) for _, mask, _ in parts]
    rows = np.concatenate(picks)
    if not len(rows):
        return None
    names = np.array([name for name, _, _ in parts], dtype=object)
    index = np.where(gpu & indexed, np.nan_to_num(device_id, nan=0.0), -1).astype(np.int16)
    return {
        "kind": np.full(len(rows), Kind.SAMPLE.value, dtype=object),
        "name": np.repeat(names, [len(at) for at in picks]),
        "start_ns": start_ns[rows].astype(np.int64),
        "duration_ns": np.zeros(len(rows), dtype=np.int64),
        "device_type": types[rows],
        "device_index": index[rows],
        "thread_id": _ids(thread_id[rows]),
        "process_id": _ids(process_id[rows]),
        "value": np.concatenate([values[at] for (_, _, values), at in zip(parts, picks)]),
        "extra": np.concatenate([_blocks(address, size, picks[0]), np.full(len(picks[1]), None, dtype=object)]),
    }


def _blocks(address: np.ndarray | None, size: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """``{"address": N, "bytes": B}`` texts of ``rows`` (None where the address or size is unknown)."""
    out = np.full(len(rows), None, dtype=object)
    if address is None or size is None or not len(rows):
        return out
    where, nbytes = address[rows], size[rows]
    known = np.isfinite(where) & (where >= 0) & np.isfinite(nbytes)
    out[known] = [f'{{"address":{a},"bytes":{b}}}'
                  for a, b in zip(where[known].astype(np.int64).tolist(), nbytes[known].astype(np.int64).tolist())]
    return out


def _changed(start_ns: np.ndarray, device_id: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Events whose value differs from the one before on the same device, in time order (the first one
    included): the allocator's reserve changes only when it grows or releases a block, so the rows of
    the others would only repeat it."""
    device = np.nan_to_num(device_id, nan=-1.0)
    order = np.lexsort((start_ns, device))
    value, same_device = values[order], device[order]
    changed = np.ones(len(order), dtype=bool)
    changed[1:] = (value[1:] != value[:-1]) | (same_device[1:] != same_device[:-1])
    out = np.empty(len(order), dtype=bool)
    out[order] = changed
    return out


def _ids(values: np.ndarray) -> pa.Array:
    """Ids as int64, null where unknown (NaN)."""
    known = ~np.isnan(values)
    return from_numpy(np.where(known, values, 0).astype(np.int64), known)


def unknown_device_count(device_type: np.ndarray) -> int:
    """Events on a device type the trace has no name for (left out)."""
    return int(np.count_nonzero(~np.isin(device_type, list(DEVICE_TYPES))))
