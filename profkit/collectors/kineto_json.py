"""Import PyTorch profiler / Kineto Chrome-trace JSON into profkit traces.

``export_chrome_trace`` and ``tensorboard_trace_handler`` write one JSON
document (often gzipped) per process: a ``traceEvents`` array plus
``deviceProperties``, ``distributedInfo``, ``baseTimeNanoseconds``...
kineto_events reads the events into column arrays (streaming, bounded
memory); this module turns them into the raw rows of the trace format (kinds,
ns timestamps, devices, links, steps, samples) and hands them to
``profkit.trace.build_events`` like the live recorder does; kineto_meta
describes the file (devices, ranks, versions).

Op <-> kernel links: a GPU event's ``args.correlation`` equals the
correlation of the runtime call that launched it (cudaLaunchKernel,
hipLaunchKernel...); build_events walks from that call to its innermost CPU
op. Events without a correlation fall back to the ``ac2g`` flow arrows and
then to ``External id``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from ..errors import TraceImportError, UsageError
from ..trace.build import build_events
from ..trace.io import Trace, expand_paths, load, write_trace
from ..trace.schema import GPU_KINDS, Kind
from .kineto_events import Collected, dumps, number, open_stream, read_document
from .kineto_meta import file_metadata, int_or_none

#: Chrome-trace category (lower-cased) -> event kind; anything else is ``other``.
CATEGORY_KINDS: dict[str, str] = {
    "cpu_op": Kind.CPU_OP.value,
    "operator": Kind.CPU_OP.value,  # PyTorch 1.8-1.9 (legacy capitalised "Operator")
    "kernel": Kind.KERNEL.value,
    "gpu_memcpy": Kind.MEMCPY.value,
    "memcpy": Kind.MEMCPY.value,
    "gpu_memset": Kind.MEMSET.value,
    "memset": Kind.MEMSET.value,
    "cuda_runtime": Kind.RUNTIME.value,
    "cuda_driver": Kind.RUNTIME.value,
    "runtime": Kind.RUNTIME.value,
    "privateuse1_runtime": Kind.RUNTIME.value,
    "privateuse1_driver": Kind.RUNTIME.value,
    "user_annotation": Kind.ANNOTATION.value,
    "trace": Kind.ANNOTATION.value,
    "profilerstep": Kind.ANNOTATION.value,
    "gpu_user_annotation": Kind.GPU_ANNOTATION.value,
    "python_function": Kind.PYTHON_FUNCTION.value,
    "python": Kind.PYTHON_FUNCTION.value,
    "profkit_phase": Kind.PHASE.value,  # written by profkit export
}



_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
_GPU_LABEL = re.compile(r"^GPU (\d+)")


_DEVICE_WORK = frozenset({Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value})
_TRACE_SUFFIXES = (".json.gz", ".json")

@dataclass
class ImportedTrace:
    """A converted trace, ready for ``write_trace``."""

    table: pa.Table
    metadata: dict[str, Any]
    source: Path


# ----------------------------------------------------------------------------------------------
# Public entry points


def read_kineto(path: str | os.PathLike, *, progress: bool = True) -> ImportedTrace:
    """Convert one Chrome-trace JSON file (.json or .json.gz); raise TraceImportError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TraceImportError(f"{path}: no such file")
    with _gc_paused():  # millions of new dicts and no cycles: the collector's passes would only cost
        with open_stream(path, progress) as stream:
            header, collected = read_document(stream, path.name)
        return _assemble(header, collected, path)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Written:
    """One imported file: where it went and what was in it."""

    source: Path
    path: Path
    events: int
    kernels: int
    rank: int | None
    notes: tuple[str, ...]


def import_paths(
    paths: Iterable[str | os.PathLike], output: str | os.PathLike | None = None, *, progress: bool = True
) -> list[Written]:
    """Import every trace in ``paths`` (files or folders) to Parquet; one at a time (bounded memory).

    ``output``: a ``.parquet`` file (one input only) or a folder (created if
    needed); by default each output sits beside its input.
    """
    sources = trace_inputs(paths)
    targets = [output_path(source, output, many=len(sources) > 1) for source in sources]
    written = []
    for source, target in zip(sources, targets):
        imported = read_kineto(source, progress=progress)
        kernels = pa.compute.sum(pa.compute.equal(imported.table.column("kind").cast(pa.string()), Kind.KERNEL.value))
        write_trace(target, imported.table, imported.metadata)
        written.append(
            Written(source, target, imported.table.num_rows, int(kernels.as_py() or 0), imported.metadata.get("rank"),
                    tuple(imported.metadata["notes"]))
        )
    return written


def load_any(paths: Iterable[str | os.PathLike]) -> list[Trace]:
    """Traces from profkit Parquet files, folders of them, or Chrome-trace JSON (converted in memory)."""
    traces: list[Trace] = []
    for item in map(Path, paths):
        if item.is_file() and item.name.endswith(_TRACE_SUFFIXES):
            imported = read_kineto(item, progress=False)
            with tempfile.TemporaryDirectory(prefix="profkit-") as folder:
                target = write_trace(Path(folder) / "trace.parquet", imported.table, imported.metadata)
                trace = load(target)
            trace.path = item
            traces.append(trace)
        else:
            traces.extend(load(path) for path in expand_paths([item]))
    if not traces:
        raise UsageError("no traces given")
    return traces


def trace_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the .json / .json.gz traces in it (a set of rank files)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            inside = sorted(p for p in item.iterdir() if p.is_file() and p.name.endswith(_TRACE_SUFFIXES))
            if not inside:
                raise TraceImportError(f"{item}: folder holds no .json or .json.gz traces")
            found.extend(inside)
        elif not item.exists():
            raise TraceImportError(f"{item}: no such file")
        else:
            found.append(item)
    if not found:
        raise UsageError("no trace files given")
    return found


def output_path(source: Path, output: str | os.PathLike | None, *, many: bool) -> Path:
    """Where the Parquet version of ``source`` goes."""
    stem = source.name
    for suffix in (".gz", ".json", ".pt.trace"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    name = f"{stem}.parquet"
    if output is None:
        return source.with_name(name)
    output = Path(output)
    if output.suffix == ".parquet":
        if many:
            raise UsageError(f"{output}: several traces need an output folder, not one .parquet file")
        if not output.parent.is_dir():
            raise UsageError(f"{output.parent}: no such folder")
        return output
    output.mkdir(parents=True, exist_ok=True)
    return output / name


# ----------------------------------------------------------------------------------------------
# Reading


# ----------------------------------------------------------------------------------------------
# Assembling the trace


def _assemble(header: dict[str, Any], collected: Collected, source: Path) -> ImportedTrace:
    cols = collected.columns
    n = len(cols["ts"])
    notes: list[str] = []
    base_ns = int_or_none(header.get("baseTimeNanoseconds")) or 0
    kind = _kinds(cols["cat"])
    pid, tid = cols["pid"], cols["tid"]
    gpu = np.isin(kind, list(GPU_KINDS))
    start_ns, end_ns = _to_ns(cols["ts"], cols["dur"], base_ns)
    if base_ns == 0 and n and np.nanmax(np.abs(cols["ts"])) >= 2**53 / 1000 and _has_fraction(cols["ts"]):
        notes.append("timestamps are float epoch µs: sub-µs digits beyond float precision were rounded")

    host_pid = _main_host_pid(pid, kind, gpu)
    device = np.where(np.isnan(cols["device"]), pid, cols["device"])
    device = np.where(np.isnan(device), 0, device).astype(np.int64)
    device, remap_note = _remap_devices(device, gpu, header.get("deviceProperties"))
    if remap_note:
        notes.append(remap_note)
    stream = np.where(np.isnan(cols["stream"]), tid, cols["stream"])
    on_gpu_track = gpu | ((kind == Kind.OTHER.value) & ~np.isnan(cols["stream"]) & ~np.isnan(cols["device"]))

    correlation = cols["correlation"].copy()
    _fill_from_flows(correlation, kind, gpu, pid, tid, cols["ts"], collected.flows)
    linked = np.where(gpu, correlation, np.nan)
    own_correlation = np.where((kind == Kind.RUNTIME.value) | gpu, correlation, np.nan)
    process = _gpu_process(pid, host_pid, kind, gpu, correlation)

    raw = pd.DataFrame(
        {
            "kind": kind,
            "name": cols["name"],
            "start_ns": start_ns,
            "duration_ns": np.maximum(end_ns - start_ns, 0),
            "device_type": np.where(on_gpu_track, "gpu", "cpu"),
            "device_index": np.where(on_gpu_track, device, -1).astype(np.int16),
            "stream": _nullable(stream, on_gpu_track, "Int32"),
            "process_id": process,
            "thread_id": _nullable(tid, ~on_gpu_track),
            "correlation_id": _nullable(own_correlation),
            "linked_correlation_id": _nullable(linked),
            "input_shapes": cols["shapes"],
            "input_dtypes": cols["dtypes"],
            "bytes": _nullable(cols["bytes"], np.isin(kind, [Kind.MEMCPY.value, Kind.MEMSET.value])),
            "extra": cols["extra"],
            "_external_id": cols["external_id"],
        }
    )
    _unpack_phase_args(raw)
    extras = [raw, _step_phases(raw), _samples(collected, host_pid, base_ns)]
    raw = pd.concat([f for f in extras if f is not None and len(f)], ignore_index=True)
    if raw.empty:
        raise TraceImportError(f"{source.name}: no timed events (no 'X' spans or counters)")
    raw = raw.sort_values(["start_ns", "duration_ns"], ascending=[True, False], kind="stable", ignore_index=True)
    external = raw.pop("_external_id").to_numpy(dtype=np.float64, na_value=np.nan)
    table = build_events(raw)
    table, linked_by_external = _link_by_external_id(table, external)
    if linked_by_external:
        notes.append(f"{linked_by_external} GPU events linked to their op by External id (no launch call found)")
    for label, count in sorted(collected.skipped.items()):
        notes.append(f"skipped {count} {label} events")
    metadata = file_metadata(header, source, table, notes)
    return ImportedTrace(table=table, metadata=metadata, source=source)


def _kinds(categories: np.ndarray) -> np.ndarray:
    """Kind per event: each distinct category looked up once."""
    codes, uniques = pd.factorize(pd.Series(categories, dtype=object), use_na_sentinel=False)
    table = np.array([CATEGORY_KINDS.get(str(c).lower(), Kind.OTHER.value) for c in uniques], dtype=object)
    return table[codes] if len(codes) else np.array([], dtype=object)


def _ids(values: np.ndarray) -> np.ndarray:
    """pid/tid values as float64 (NaN where not a number): ints, or strings ending in digits."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    table = np.array([number(v) for v in uniques], dtype=np.float64)
    return table[codes] if len(codes) else np.array([], dtype=np.float64)


def _to_ns(ts_us: np.ndarray, dur_us: np.ndarray, base_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Microsecond floats -> int64 ns without losing the ns digits of large values.

    The whole microseconds and the fraction are scaled apart: ``ts * 1000`` on a
    float epoch timestamp (~1.7e15 µs) would round to 256 ns.
    """
    whole = np.floor(ts_us)
    frac = ts_us - whole  # exact for doubles
    dur = np.nan_to_num(dur_us, nan=0.0)
    start = whole.astype(np.int64) * 1000 + np.rint(frac * 1000).astype(np.int64) + base_ns
    end = whole.astype(np.int64) * 1000 + np.rint((frac + dur) * 1000).astype(np.int64) + base_ns
    return start, end


def _has_fraction(values: np.ndarray) -> bool:
    return bool(np.any(values != np.floor(values)))


def _main_host_pid(pid: np.ndarray, kind: np.ndarray, gpu: np.ndarray) -> int:
    """The process that ran most host events (GPU events' pid is a device index in Kineto)."""
    host = pid[~gpu & ~np.isnan(pid) & (kind != Kind.OTHER.value)]
    if not len(host):
        return 0
    values, counts = np.unique(host, return_counts=True)
    return int(values[np.argmax(counts)])


def _remap_devices(device: np.ndarray, gpu: np.ndarray, properties: Any) -> tuple[np.ndarray, str | None]:
    """Map GPU ids the tracer used onto deviceProperties ids when they disagree.

    ROCm traces number GPU agents after the CPU agents (device 2 = HIP device 0);
    when the sets differ but have the same size, the i-th used id is the i-th property id.
    """
    if not isinstance(properties, list) or not gpu.any():
        return device, None
    known = sorted({int(p["id"]) for p in properties if isinstance(p, dict) and isinstance(p.get("id"), int)})
    used = sorted(set(device[gpu].tolist()))
    if not known or set(used) <= set(known) or len(used) != len(known):
        return device, None
    lookup = dict(zip(used, known))
    remapped = np.array([lookup.get(d, d) for d in device.tolist()], dtype=np.int64) if len(used) else device
    mapping = ", ".join(f"{a}->{b}" for a, b in lookup.items())
    return remapped, f"GPU ids in events renumbered to match deviceProperties ({mapping})"


def _fill_from_flows(correlation, kind, gpu, pid, tid, ts_us, flows: list[tuple]) -> None:
    """Where an event has no args.correlation, take the id of the flow arrow bound to it."""
    missing = np.isnan(correlation) & (np.isin(kind, list(_DEVICE_WORK)) | (kind == Kind.RUNTIME.value))
    if not missing.any() or not flows:
        return
    frame = pd.DataFrame(flows, columns=["ph", "id", "pid", "tid", "ts"])
    frame["pid"] = _ids(frame["pid"].to_numpy(dtype=object))
    frame["tid"] = _ids(frame["tid"].to_numpy(dtype=object))
    frame["id"] = _ids(frame["id"].to_numpy(dtype=object))
    frame["ts"] = pd.to_numeric(frame["ts"], errors="coerce")
    rows = np.flatnonzero(missing)
    events = pd.DataFrame({"row": rows, "pid": pid[rows], "tid": tid[rows], "ts": ts_us[rows],
                           "ph": np.where(gpu[rows], "f", "s")})
    hit = events.merge(frame.drop_duplicates(["ph", "pid", "tid", "ts"]), on=["ph", "pid", "tid", "ts"], how="inner")
    correlation[hit["row"].to_numpy()] = hit["id"].to_numpy(dtype=np.float64)


def _gpu_process(pid, host_pid: int, kind, gpu, correlation) -> np.ndarray:
    """Host pid per event; GPU events take the pid of the runtime call with their correlation."""
    process = np.where(np.isnan(pid), host_pid, pid)
    launch = (kind == Kind.RUNTIME.value) & ~np.isnan(correlation)
    by_correlation = pd.Series(pid[launch], index=correlation[launch])
    by_correlation = by_correlation[~by_correlation.index.duplicated()]
    rows = np.flatnonzero(gpu)
    launcher = by_correlation.reindex(correlation[rows]).to_numpy(dtype=np.float64)
    process[rows] = np.where(np.isnan(launcher), host_pid, launcher)
    return process.astype(np.int64)


def _nullable(values: np.ndarray, keep: np.ndarray | None = None, dtype: str = "Int64") -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.float64)
    if dtype == "Int32":  # CUDA writes the default stream's "no stream" as uint32 -1
        values = np.where(values >= 2**31, values - 2**32, values)
    mask = np.isnan(values) if keep is None else (np.isnan(values) | ~keep)
    return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(dtype.lower()), mask)


def _unpack_phase_args(raw: pd.DataFrame) -> None:
    """Phase rows written by ``profkit export`` carry batch_size/token_count in their args."""
    rows = np.flatnonzero((raw["kind"] == Kind.PHASE.value).to_numpy())
    if not len(rows):
        return
    batch = np.full(len(raw), np.nan)
    tokens = np.full(len(raw), np.nan)
    extras = raw["extra"].to_numpy(dtype=object).copy()
    for row in rows:
        extra = json.loads(extras[row]) if isinstance(extras[row], str) else {}
        batch[row] = extra.pop("batch_size", None) or np.nan
        tokens[row] = extra.pop("token_count", None) or np.nan
        extras[row] = dumps(extra) if extra else None
    raw["batch_size"] = _nullable(batch, dtype="Int32")
    raw["token_count"] = _nullable(tokens)
    raw["extra"] = extras


def _step_phases(raw: pd.DataFrame) -> pd.DataFrame | None:
    """One ``step`` phase mark per ProfilerStep#N annotation (steps are what check compares)."""
    kind = raw["kind"].to_numpy()
    if (kind == Kind.PHASE.value).any():  # profkit's own marks (an exported trace) already say it
        return None
    annotation = np.flatnonzero(kind == Kind.ANNOTATION.value)
    numbers = [_STEP_NAME.match(str(name)) for name in raw["name"].to_numpy()[annotation]]
    rows = [row for row, match in zip(annotation, numbers) if match]
    if not rows:
        return None
    marks = raw.iloc[rows].copy()
    marks["kind"] = Kind.PHASE.value
    marks["name"] = "step"
    marks["extra"] = [dumps({"step": int(m.group(1)), "source": "ProfilerStep"}) for m in numbers if m]
    marks["input_shapes"] = None
    marks["input_dtypes"] = None
    marks["_external_id"] = np.nan
    return marks


def _samples(collected: Collected, host_pid: int, base_ns: int) -> pd.DataFrame | None:
    """Counter events ("ph": "C") as telemetry samples: one row per counter argument."""
    if not collected.counters:
        return None
    gpu_pids = {}
    for event in collected.meta_events:
        label = (event.get("args") or {}).get("labels") or (event.get("args") or {}).get("name") or ""
        match = _GPU_LABEL.match(str(label)) if event.get("name") in ("process_labels", "process_name") else None
        if match:
            gpu_pids[event.get("pid")] = int(match.group(1))
    rows = []
    for event in collected.counters:
        args = event.get("args") or {}
        for key, value in args.items():
            if not isinstance(value, (int, float)) or event.get("ts") is None:
                continue
            metric = event.get("name") if key == "value" or len(args) == 1 else f"{event.get('name')} {key}"
            rows.append((str(metric), float(event["ts"]), float(value), gpu_pids.get(event.get("pid"))))
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["name", "ts", "value", "gpu"])
    start_ns, _ = _to_ns(frame["ts"].to_numpy(), np.zeros(len(frame)), base_ns)
    on_gpu = frame["gpu"].notna().to_numpy()
    return pd.DataFrame(
        {
            "kind": Kind.SAMPLE.value,
            "name": frame["name"],
            "start_ns": start_ns,
            "duration_ns": np.zeros(len(frame), dtype=np.int64),
            "device_type": np.where(on_gpu, "gpu", "cpu"),
            "device_index": np.where(on_gpu, frame["gpu"].fillna(-1), -1).astype(np.int16),
            "process_id": np.int64(host_pid),
            "value": frame["value"],
            "_external_id": np.nan,
        }
    )


def _link_by_external_id(table: pa.Table, external: np.ndarray) -> tuple[pa.Table, int]:
    """Give unlinked kernels/copies the op with their External id (some traces have no launch calls).

    Skipped when a trace's GPU External ids just repeat their correlations
    (some Kineto versions): those are no op ids.
    """
    kind = table.column("kind").to_numpy(zero_copy_only=False).astype(object)
    op_id = table.column("op_id").to_numpy(zero_copy_only=False)
    op_id = np.where(pd.isna(op_id), np.nan, op_id).astype(np.float64)
    correlation = table.column("correlation_id").to_numpy(zero_copy_only=False).astype(np.float64)
    work = np.isin(kind, list(_DEVICE_WORK))
    both = work & ~np.isnan(external) & ~np.isnan(correlation)
    if both.any() and np.all(external[both] == correlation[both]):
        return table, 0
    want = work & np.isnan(op_id) & ~np.isnan(external)
    if not want.any():
        return table, 0
    process = table.column("process_id").to_numpy(zero_copy_only=False)
    ops = np.flatnonzero((kind == Kind.CPU_OP.value) & ~np.isnan(external))
    by_key = pd.Series(ops, index=pd.MultiIndex.from_arrays([process[ops], external[ops]]))
    by_key = by_key[~by_key.index.duplicated()]
    rows = np.flatnonzero(want)
    found = by_key.reindex(pd.MultiIndex.from_arrays([process[rows], external[rows]])).to_numpy(dtype=np.float64)
    hit = ~np.isnan(found)
    if not hit.any():
        return table, 0
    op_id[rows[hit]] = found[hit]
    column = pa.array(np.where(np.isnan(op_id), 0, op_id).astype(np.int64), mask=np.isnan(op_id))
    return table.set_column(table.schema.get_field_index("op_id"), "op_id", column), int(hit.sum())


