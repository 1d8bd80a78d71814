"""Write a profkit trace as Chrome-trace JSON that Perfetto UI and chrome://tracing open.

The layout follows what torch.profiler writes, so the file also re-imports
with ``profkit import`` (and opens in tools that read Kineto traces):

- host events on their process/thread; GPU work on ``pid = device index``,
  ``tid = stream``; categories as Kineto names them (cpu_op, kernel...);
- launch arrows (``ac2g`` flows) from each runtime call to its GPU work;
- telemetry samples as counter tracks (``"ph": "C"``) on the device's process; torch's allocator
  totals also as the ``[memory]`` events torch.profiler writes (so they re-import whole);
- phase marks (steps, prefill/decode, user phases) as ranges on one track
  per phase name;
- timestamps in µs relative to ``baseTimeNanoseconds`` with 3 decimals, so
  nanoseconds survive a round trip.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, TextIO

import numpy as np
import pandas as pd

from ..analyzers.columns import positions
from ..analyzers.memory import sample_blocks
from ..trace.io import Trace
from ..trace.kinds import ALLOCATED_SAMPLE, RESERVED_SAMPLE
from ..trace.schema import Kind

#: Event kind -> Chrome-trace category (Kineto's names; profkit_phase is profkit's own).
KIND_CATEGORIES: dict[str, str] = {
    Kind.CPU_OP.value: "cpu_op",
    Kind.KERNEL.value: "kernel",
    Kind.MEMCPY.value: "gpu_memcpy",
    Kind.MEMSET.value: "gpu_memset",
    Kind.RUNTIME.value: "cuda_runtime",
    Kind.ANNOTATION.value: "user_annotation",
    Kind.GPU_ANNOTATION.value: "gpu_user_annotation",
    Kind.PYTHON_FUNCTION.value: "python_function",
    Kind.PHASE.value: "profkit_phase",
    Kind.OTHER.value: "other",
}

#: ``extra`` keys written back under Kineto's argument names (the importer's ARG_KEYS, reversed).
EXTRA_ARGS: dict[str, str] = {
    "external_id": "External id",
    "sequence_nr": "Sequence number",
    "fwd_thread_id": "Fwd thread id",
    "concrete_inputs": "Concrete Inputs",
    "registers_per_thread": "registers per thread",
    "shared_memory_bytes": "shared memory",
    "blocks_per_sm": "blocks per SM",
    "warps_per_sm": "warps per SM",
    "occupancy_pct": "est. achieved occupancy %",
    "bandwidth_gb_per_s": "memory bandwidth (GB/s)",
    "python_id": "Python id",
    "python_parent_id": "Python parent id",
    "python_module_id": "Python module id",
}

_PHASE_TID_BASE = 1 << 30  # one synthetic thread per phase name, away from real thread ids
_SORT_INDEX_GPU = 1 << 24


def write_chrome(trace: Trace, path: str | os.PathLike, *, compresslevel: int = 3) -> dict[str, int]:
    """Write ``trace`` to ``path`` (gzipped when it ends in .gz) atomically; return event counts."""
    path = Path(path)
    counts: dict[str, int] = {}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        opener = gzip.open(tmp_name, "wt", encoding="utf-8", compresslevel=compresslevel) if path.name.endswith(
            ".gz") else open(tmp_name, "w", encoding="utf-8")
        with opener as out:
            _write_document(trace, out, counts)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return counts


def _write_document(trace: Trace, out: TextIO, counts: dict[str, int]) -> None:
    events = trace.events
    meta = trace.metadata
    timed = events["start_ns"]
    base_ns = int(timed.min()) // 1_000_000_000 * 1_000_000_000 if len(events) else 0
    header = {
        "schemaVersion": 1,
        "traceName": str(trace.path) if trace.path else "profkit trace",
        "displayTimeUnit": "ms",
        "baseTimeNanoseconds": base_ns,
        "deviceProperties": _device_properties(meta.get("devices") or []),
        "profkit": {k: meta.get(k) for k in ("producer", "command", "torch_version", "host") if meta.get(k)},
    }
    if meta.get("rank") is not None or meta.get("world_size") is not None:
        header["distributedInfo"] = {"rank": meta.get("rank"), "world_size": meta.get("world_size")}
    out.write("{\n")
    for key, value in header.items():
        out.write(f"{json.dumps(key)}: {json.dumps(value, default=str)},\n")
    out.write('"traceEvents": [\n')
    first = True
    for line in _event_lines(events, meta, base_ns, counts):
        out.write(line if first else ",\n" + line)
        first = False
    out.write("\n]}\n")


def _event_lines(events: pd.DataFrame, meta: dict, base_ns: int, counts: dict[str, int]) -> Iterator[str]:
    host_pid = _host_pid(events)
    # (a row of no kind, in a file others wrote, is written as "other", as the importer keeps unknown events)
    kind = events["kind"].astype(object).fillna(Kind.OTHER.value).astype(str).to_numpy(dtype=object)
    yield from _process_lines(events, meta, host_pid, kind)
    spans = ~np.isin(kind, [Kind.SAMPLE.value])
    yield from _span_lines(events[spans], kind[spans], base_ns, counts)
    yield from _flow_lines(events, kind, base_ns, counts)
    yield from _counter_lines(events[kind == Kind.SAMPLE.value], host_pid, base_ns, counts)
    yield from _memory_lines(events[kind == Kind.SAMPLE.value], host_pid, base_ns)


def _process_lines(events: pd.DataFrame, meta: dict, host_pid: int, kind: np.ndarray) -> Iterator[str]:
    """Metadata events: process names/labels for host and GPUs, names of the phase tracks."""
    command = " ".join(meta.get("command") or []) or "profkit"
    for pid in sorted(set(events["process_id"].dropna().astype(int).tolist()) or {host_pid}):
        yield _meta_line("process_name", pid, 0, {"name": command})
        yield _meta_line("process_labels", pid, 0, {"labels": "CPU"})
        yield _meta_line("process_sort_index", pid, 0, {"sort_index": pid})
    gpu = events["device_type"].astype(str).to_numpy() == "gpu"
    for index in sorted(set(events.loc[gpu, "device_index"].dropna().astype(int).tolist())):  # (null: none named)
        yield _meta_line("process_name", index, 0, {"name": f"GPU {index}"})
        yield _meta_line("process_labels", index, 0, {"labels": f"GPU {index}"})
        yield _meta_line("process_sort_index", index, 0, {"sort_index": _SORT_INDEX_GPU + index})
    for offset, name in enumerate(_phase_names(events, kind)):
        yield _meta_line("thread_name", host_pid, _PHASE_TID_BASE + offset, {"name": f"phase: {name}"})


def _meta_line(name: str, pid: int, tid: int, args: dict) -> str:
    return json.dumps({"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args})


def _phase_names(events: pd.DataFrame, kind: np.ndarray) -> list[str]:
    return sorted(set(events.loc[kind == Kind.PHASE.value, "name"].astype(str)))


def _span_lines(events: pd.DataFrame, kind: np.ndarray, base_ns: int, counts: dict[str, int]) -> Iterator[str]:
    phase_tid = {name: _PHASE_TID_BASE + i for i, name in enumerate(_phase_names(events, kind))}
    on_gpu = events["device_type"].astype(str).to_numpy() == "gpu"
    names = events["name"].astype(str).to_numpy()
    host_pid = _host_pid(events)
    # (a file others wrote may leave a process out: the host's; a duration too, where not read from a file)
    process = events["process_id"].astype("Float64").fillna(host_pid).to_numpy(dtype=np.int64)
    pid = np.where(on_gpu, events["device_index"].fillna(0).astype(np.int64), process)
    tid = np.where(on_gpu, _ints(events["stream"]), _ints(events["thread_id"]))
    start = events["start_ns"].to_numpy(np.int64) - base_ns
    duration = _ints(events["duration_ns"])
    columns = [_optional(events[c]) for c in ("correlation_id", "bytes", "batch_size", "token_count")]
    device = _optional(events["device_index"])
    stream = _optional(events["stream"])
    shapes = events["input_shapes"].astype(object).to_numpy()
    dtypes = events["input_dtypes"].astype(object).to_numpy()
    extra = events["extra"].astype(object).to_numpy()
    quoted: dict[str, str] = {}
    for i in range(len(events)):
        k = kind[i]
        args: dict[str, Any] = _extra_args(extra[i])
        correlation, nbytes, batch, tokens = (c[i] for c in columns)
        if correlation is not None:
            args["correlation"] = correlation
        if on_gpu[i]:
            if device[i] is not None:
                args["device"] = device[i]
            if stream[i] is not None:
                args["stream"] = stream[i]
        if nbytes is not None:
            args["bytes"] = nbytes
        if batch is not None:
            args["batch_size"] = batch
        if tokens is not None:
            args["token_count"] = tokens
        args_text = json.dumps(args, default=str)
        if isinstance(shapes[i], str):  # already JSON: spliced in as it is
            args_text = f'{args_text[:-1]}{", " if args else ""}"Input Dims": {shapes[i]}, "Input type": {dtypes[i] or "[]"}}}'
        name = quoted.get(names[i]) or quoted.setdefault(names[i], json.dumps(names[i]))
        p, t = (host_pid, phase_tid[names[i]]) if k == Kind.PHASE.value else (int(pid[i]), int(tid[i]))
        counts[k] = counts.get(k, 0) + 1
        yield (
            f'{{"ph": "X", "cat": "{KIND_CATEGORIES.get(k, "other")}", "name": {name}, "pid": {p}, "tid": {t}, '
            f'"ts": {_us(start[i])}, "dur": {_us(duration[i])}, "args": {args_text}}}'
        )


def _flow_lines(events: pd.DataFrame, kind: np.ndarray, base_ns: int, counts: dict[str, int]) -> Iterator[str]:
    """An arrow from each runtime call to the GPU work it launched (Kineto's ac2g flows)."""
    linked = events["launch_id"].notna().to_numpy() & (events["device_type"].astype(str).to_numpy() == "gpu")
    if not linked.any():
        return
    rows = np.flatnonzero(linked)
    # (two events with one id make no arrow: positions says so in a line, as the report does)
    launch = positions(events["event_id"].to_numpy(np.int64), events["launch_id"].iloc[rows])
    rows, launch = rows[launch >= 0], launch[launch >= 0]
    start = events["start_ns"].to_numpy(np.int64) - base_ns
    pid = events["process_id"].astype("Float64").fillna(_host_pid(events)).to_numpy(dtype=np.int64)
    thread = _ints(events["thread_id"])
    device = _ints(events["device_index"])
    stream = _ints(events["stream"])
    for fid, (g, c) in enumerate(zip(rows.tolist(), launch.tolist()), start=1):
        yield (f'{{"ph": "s", "id": {fid}, "pid": {pid[c]}, "tid": {thread[c]}, '
               f'"ts": {_us(start[c])}, "cat": "ac2g", "name": "ac2g"}}')
        yield (f'{{"ph": "f", "id": {fid}, "pid": {device[g]}, "tid": {stream[g]}, '
               f'"ts": {_us(start[g])}, "cat": "ac2g", "name": "ac2g", "bp": "e"}}')
    counts["flow"] = len(rows)


def _counter_lines(samples: pd.DataFrame, host_pid: int, base_ns: int, counts: dict[str, int]) -> Iterator[str]:
    """Telemetry as counter tracks: one per (device, metric)."""
    if samples.empty:
        return
    on_gpu = samples["device_type"].astype(str).to_numpy() == "gpu"
    pid = np.where(on_gpu, samples["device_index"].fillna(0).astype(np.int64), host_pid)
    names = samples["name"].astype(str).to_numpy()
    values = samples["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    start = samples["start_ns"].to_numpy(np.int64) - base_ns
    finite = np.isfinite(values)  # (JSON has no NaN or infinity: such a sample is no reading)
    for i in range(len(samples)):
        if not finite[i]:
            continue
        yield (f'{{"ph": "C", "name": {json.dumps(names[i])}, "pid": {int(pid[i])}, "tid": 0, '
               f'"ts": {_us(start[i])}, "args": {{"value": {float(values[i])!r}}}}}')
    counts[Kind.SAMPLE.value] = int(finite.sum())


def _memory_lines(samples: pd.DataFrame, host_pid: int, base_ns: int) -> Iterator[str]:
    """torch's allocator totals (``allocated_bytes``, with the ``reserved_bytes`` then in force) also as the
    ``[memory]`` events torch.profiler writes, on the allocating thread: the counters draw the track, and
    an import of the file gets the samples back whole (thread, and so the op that allocated), not as
    counters (kineto_json reads these and drops counters of the same names)."""
    names = samples["name"].astype(str).to_numpy()
    measured = np.isfinite(samples["value"].to_numpy(dtype=np.float64, na_value=np.nan))
    allocated = samples[(names == ALLOCATED_SAMPLE) & measured]
    if allocated.empty:
        return
    reserved = samples[(names == RESERVED_SAMPLE) & measured]
    gpu = allocated["device_type"].astype(str).to_numpy() == "gpu"
    device = np.where(gpu, allocated["device_index"].fillna(0).astype(np.int64), -1)
    start = allocated["start_ns"].to_numpy(np.int64)
    held = np.full(len(allocated), np.nan)  # the reserve in force at each allocation: its latest sample
    reserved_device = reserved["device_index"].fillna(0).astype(np.int64).to_numpy()
    for index in np.unique(device[gpu]).tolist():
        mine = reserved_device == index
        times, values = reserved["start_ns"].to_numpy(np.int64)[mine], reserved["value"].to_numpy(np.float64)[mine]
        if not len(times):
            continue
        rows = np.flatnonzero(gpu & (device == index))
        at = np.searchsorted(times, start[rows], side="right") - 1
        held[rows] = np.where(at >= 0, values[np.maximum(at, 0)], np.nan)
    pid = allocated["process_id"].fillna(host_pid).astype(np.int64).to_numpy()
    thread = _ints(allocated["thread_id"])
    values = allocated["value"].to_numpy(np.float64)
    texts = allocated["extra"].to_numpy(dtype=object) if "extra" in allocated else np.full(len(allocated), None)
    address, size = sample_blocks(texts)  # (the block's: what a peak still holds)
    for i in range(len(allocated)):
        args = {"Total Allocated": int(values[i]), "Device Id": int(device[i]), "Device Type": 1 if gpu[i] else 0}
        if not np.isnan(held[i]):
            args["Total Reserved"] = int(held[i])
        if not np.isnan(address[i]) and not np.isnan(size[i]):
            args["Addr"], args["Bytes"] = int(address[i]), int(size[i])
        yield (f'{{"ph": "i", "s": "t", "cat": "cpu_instant_event", "name": "[memory]", "pid": {int(pid[i])}, '
               f'"tid": {int(thread[i])}, "ts": {_us(start[i] - base_ns)}, "args": {json.dumps(args)}}}')


def _device_properties(devices: list[dict]) -> list[dict]:
    props = []
    for device in devices:
        if device.get("type") != "gpu":
            continue
        major, _, minor = str(device.get("compute_capability") or "").partition(".")
        prop = {
            "id": device.get("index"),
            "name": device.get("name"),
            "totalGlobalMem": device.get("total_memory_bytes"),
            "numSms": device.get("multiprocessor_count"),
            "warpSize": device.get("warp_size"),
            "computeMajor": int(major) if major.isdigit() else None,
            "computeMinor": int(minor) if minor.isdigit() else None,
        }
        props.append({k: v for k, v in prop.items() if v is not None})
    return props


def _extra_args(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        extra = json.loads(text)
    except ValueError:
        return {"extra": text}
    if not isinstance(extra, dict):
        return {"extra": extra}
    return {EXTRA_ARGS.get(k, k): v for k, v in extra.items()}


def _us(ns: int) -> str:
    """Integer ns -> exact µs text with 3 decimals (no float rounding)."""
    ns = int(ns)
    sign = "-" if ns < 0 else ""
    whole, frac = divmod(abs(ns), 1000)
    return f"{sign}{whole}.{frac:03d}"


def _host_pid(events: pd.DataFrame) -> int:
    """The process most events ran in (0 where none says)."""
    return int(events["process_id"].mode().iloc[0]) if events["process_id"].notna().any() else 0


def _ints(series: pd.Series) -> np.ndarray:
    return series.astype("Float64").fillna(0).to_numpy(dtype=np.int64)


def _optional(series: pd.Series) -> list:
    """Python ints, or None where null (JSON-ready)."""
    missing = series.isna().to_numpy()
    values = series.astype("Float64").fillna(0).to_numpy(dtype=np.int64).tolist()
    return [None if m else v for m, v in zip(missing.tolist(), values)]
