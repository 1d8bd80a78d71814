"""Import PyTorch profiler / Kineto Chrome-trace JSON into profkit traces.

``export_chrome_trace`` and ``tensorboard_trace_handler`` write one JSON
document (often gzipped) per process: a ``traceEvents`` array plus
``deviceProperties``, ``distributedInfo``, ``baseTimeNanoseconds``... This
module streams the array (json_stream), keeps each event's fields in column
lists, converts them to arrays in batches (bounded memory), then hands the raw
columns to ``profkit.trace.build_events`` like the live recorder does.

Op <-> kernel links: a GPU event's ``args.correlation`` equals the
correlation of the runtime call that launched it (cudaLaunchKernel,
hipLaunchKernel...); build_events walks from that call to its innermost CPU
op. Events without a correlation fall back to the ``ac2g`` flow arrows and
then to ``External id``.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from .. import __version__
from ..errors import TraceImportError, UsageError
from ..trace.build import build_events
from ..trace.io import Trace, expand_paths, load, write_trace
from ..trace.schema import GPU_KINDS, Kind
from .json_stream import JsonStream, iter_members

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

#: Kineto argument name -> key in the row's ``extra`` JSON ("" drops it). Unlisted names are kept as they are.
ARG_KEYS: dict[str, str] = {
    "External id": "external_id",
    "external id": "external_id",
    "Sequence number": "sequence_nr",
    "Fwd thread id": "fwd_thread_id",
    "Concrete Inputs": "concrete_inputs",
    "registers per thread": "registers_per_thread",
    "shared memory": "shared_memory_bytes",
    "blocks per SM": "blocks_per_sm",
    "warps per SM": "warps_per_sm",
    "est. achieved occupancy %": "occupancy_pct",
    "memory bandwidth (GB/s)": "bandwidth_gb_per_s",
    "Python id": "python_id",
    "Python parent id": "python_parent_id",
    "Python module id": "python_module_id",
    # columns of their own, or noise
    "correlation": "",
    "device": "",
    "stream": "",
    "bytes": "",
    "Input Dims": "",
    "Input type": "",
    "Input Strides": "",
    "Ev Idx": "",
    "Record function id": "",
    "finished": "",
    "context": "",
    "queued": "",
}

_BATCH_EVENTS = 20_000  # "X" events held as dicts before they become column arrays (bounds memory)
_PROGRESS_MIN_BYTES = 32 << 20  # show a progress bar for files at least this big
_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
_GPU_LABEL = re.compile(r"^GPU (\d+)")
_TRAILING_INT = re.compile(r"(-?\d+)\s*$")
_FLOW_CATEGORIES = frozenset({"ac2g", "async_cpu_to_gpu", "async"})
_DEVICE_WORK = frozenset({Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value})
_TRACE_SUFFIXES = (".json.gz", ".json")

try:  # optional: encodes the per-event extras about 3x faster (json_stream also decodes with it)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def _dumps(value: Any) -> str:
    if _orjson is not None:
        try:
            return _orjson.dumps(value).decode()
        except TypeError:  # integers beyond 64 bits
            pass
    return json.dumps(value, separators=(",", ":"))


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
        with _open_stream(path, progress) as stream:
            header, collected = _read_document(stream, path.name)
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


class _open_stream:
    """Context manager: a JsonStream over the (maybe gzipped) file, with a progress bar for big files."""

    def __init__(self, path: Path, progress: bool):
        self.path = path
        self.show = progress and path.stat().st_size >= _PROGRESS_MIN_BYTES

    def __enter__(self) -> JsonStream:
        self.raw = open(self.path, "rb")
        gzipped = self.raw.read(2) == b"\x1f\x8b"
        self.raw.seek(0)
        binary = gzip.GzipFile(fileobj=self.raw, mode="rb") if gzipped else self.raw
        self.bar = None
        on_read: Callable[[], None] | None = None
        if self.show:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(f"importing {self.path.name}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                transient=True,
            )
            self.bar.start()
            task = self.bar.add_task("import", total=self.path.stat().st_size)
            on_read = lambda: self.bar.update(task, completed=self.raw.tell())  # noqa: E731
        return JsonStream(binary, str(self.path), on_read)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.raw.close()


@dataclass
class _Collected:
    """Raw event fields as arrays, plus the few non-span events kept whole."""

    columns: dict[str, np.ndarray]
    flows: list[tuple]  # (ph, id, pid, tid, ts_us)
    counters: list[dict]
    meta_events: list[dict]
    skipped: Counter


def _read_document(stream: JsonStream, name: str) -> tuple[dict[str, Any], _Collected]:
    header: dict[str, Any] = {}
    collected: _Collected | None = None
    for key, value in iter_members(stream, "traceEvents"):
        if key == "traceEvents":
            collected = _collect(value, name)
        else:
            header[key] = value
    if collected is None:
        raise TraceImportError(f"{name}: no traceEvents array: not a Chrome/Kineto trace")
    return header, collected


_SPAN_FIELDS = ("cat", "name", "ts", "dur", "pid", "tid", "correlation", "external_id", "device", "stream",
                "bytes", "shapes", "dtypes", "extra")
_EMPTY: dict = {}


class _Codebook:
    """Distinct values of one column across batches: each batch keeps int codes, not string objects."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def encode(self, values: list) -> np.ndarray:
        book = self.codes
        add = book.setdefault
        return np.array([add(v, len(book)) for v in values], dtype=np.int64)

    def values(self) -> np.ndarray:
        return _object_array(list(self.codes))


def _collect(chunks: Iterable[list], name: str) -> _Collected:
    """One pass over the events: spans batched into columns, the rest sorted out."""
    spans: list[dict] = []
    batches: list[dict[str, np.ndarray]] = []
    books = {field: _Codebook() for field in _CODED_FIELDS}
    flows: list[tuple] = []
    counters: list[dict] = []
    meta_events: list[dict] = []
    skipped: Counter = Counter()
    seen_any = False
    for chunk in chunks:
        seen_any = True
        if not all(type(event) is dict for event in chunk):
            bad = next(event for event in chunk if type(event) is not dict)
            raise TraceImportError(f"{name}: traceEvents holds a {type(bad).__name__}, not event objects")
        spans += [event for event in chunk if event.get("ph") == "X"]
        for event in chunk:
            ph = event.get("ph")
            if ph == "X":
                continue
            if ph in ("s", "f", "t"):
                if event.get("cat") in _FLOW_CATEGORIES or event.get("name") in _FLOW_CATEGORIES:
                    flows.append((ph, event.get("id"), event.get("pid"), event.get("tid"), event.get("ts")))
            elif ph == "C":
                counters.append(event)
            elif ph == "M":
                meta_events.append(event)
            else:
                skipped[_SKIPPED_LABELS.get(ph, f"ph={ph!r}")] += 1
        if len(spans) >= _BATCH_EVENTS:
            batches.append(_span_columns(spans, books, skipped))
            spans = []
    if not seen_any:
        raise TraceImportError(f"{name}: traceEvents is empty")
    batches.append(_span_columns(spans, books, skipped))
    columns = {field: np.concatenate([b[field] for b in batches]) for field in _SPAN_FIELDS}
    for field, book in books.items():  # codes -> values, each distinct value converted once
        uniques = list(book.codes)
        if field == "name":
            table = _object_array(["" if v is None else str(v) for v in uniques])
        else:
            table = _object_array(uniques)
        columns[field] = table[columns[field]] if len(columns[field]) else table[:0]
    return _Collected(columns, flows, counters, meta_events, skipped)


_CODED_FIELDS = ("cat", "name", "shapes", "dtypes")
_SKIPPED_LABELS = {"i": "instant", "I": "instant", "B": "begin/end", "E": "begin/end", "b": "async", "e": "async",
                   "n": "async", "O": "object", "N": "object", "D": "object"}


def _span_columns(spans: list[dict], books: dict[str, _Codebook], skipped: Counter) -> dict[str, np.ndarray]:
    """Columns of a batch of "X" events (list comprehensions: the per-event cost is here)."""
    ts = _floats([e.get("ts") for e in spans])
    keep = ~np.isnan(ts)
    if not keep.all():
        skipped["X without ts"] += int((~keep).sum())
    args = [e.get("args") or _EMPTY for e in spans]
    dims = [a.get("Input Dims") for a in args]
    types = [a.get("Input type") if d is not None else None for a, d in zip(args, dims)]
    rename = ARG_KEYS.get
    columns = {
        "cat": books["cat"].encode([e.get("cat") for e in spans]),
        "name": books["name"].encode([e.get("name", "") for e in spans]),
        "ts": ts,
        "dur": _floats([e.get("dur", 0) for e in spans]),
        "pid": _floats([e.get("pid") for e in spans]),
        "tid": _floats([e.get("tid") for e in spans]),
        "correlation": _floats([a.get("correlation") for a in args]),
        "external_id": _floats([a.get("External id") if "External id" in a else a.get("external id") for a in args]),
        "device": _floats([a.get("device") for a in args]),
        "stream": _floats([a.get("stream") for a in args]),
        "bytes": _floats([a.get("bytes") for a in args]),
        "shapes": books["shapes"].encode([None if d is None else _dumps(d) for d in dims]),
        "dtypes": books["dtypes"].encode([None if t is None else _dumps(t) for t in types]),
        "extra": _object_array(
            [_dumps(kept) if (kept := {r: v for k, v in a.items() if (r := rename(k, k))}) else None for a in args]
        ),
    }
    return columns if keep.all() else {field: values[keep] for field, values in columns.items()}


def _object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _floats(values: list) -> np.ndarray:
    """Numbers as float64, NaN where missing; strings such as "stream 7" by their trailing digits."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([_number(v) for v in values], dtype=np.float64)


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _TRAILING_INT.search(value)
        if match:
            return float(match.group(1))
    return np.nan


# ----------------------------------------------------------------------------------------------
# Assembling the trace


def _assemble(header: dict[str, Any], collected: _Collected, source: Path) -> ImportedTrace:
    cols = collected.columns
    n = len(cols["ts"])
    notes: list[str] = []
    base_ns = _int_or_none(header.get("baseTimeNanoseconds")) or 0
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
    metadata = _metadata(header, source, table, notes)
    return ImportedTrace(table=table, metadata=metadata, source=source)


def _kinds(categories: np.ndarray) -> np.ndarray:
    """Kind per event: each distinct category looked up once."""
    codes, uniques = pd.factorize(pd.Series(categories, dtype=object), use_na_sentinel=False)
    table = np.array([CATEGORY_KINDS.get(str(c).lower(), Kind.OTHER.value) for c in uniques], dtype=object)
    return table[codes] if len(codes) else np.array([], dtype=object)


def _ids(values: np.ndarray) -> np.ndarray:
    """pid/tid values as float64 (NaN where not a number): ints, or strings ending in digits."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    table = np.array([_number(v) for v in uniques], dtype=np.float64)
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
        extras[row] = _dumps(extra) if extra else None
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
    marks["extra"] = [_dumps({"step": int(m.group(1)), "source": "ProfilerStep"}) for m in numbers if m]
    marks["input_shapes"] = None
    marks["input_dtypes"] = None
    marks["_external_id"] = np.nan
    return marks


def _samples(collected: _Collected, host_pid: int, base_ns: int) -> pd.DataFrame | None:
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


# ----------------------------------------------------------------------------------------------
# Metadata


def _metadata(header: dict[str, Any], source: Path, table: pa.Table, notes: list[str]) -> dict[str, Any]:
    dist = header.get("distributedInfo") if isinstance(header.get("distributedInfo"), dict) else {}
    devices = _devices(header.get("deviceProperties"), table)
    if not isinstance(header.get("deviceProperties"), list) and devices:
        notes.append("no deviceProperties in the trace: GPU model unknown")
    meta: dict[str, Any] = {
        "producer": "profkit import",
        "profkit_version": __version__,
        "source_file": str(source),
        "source_format": "kineto-json" if "schemaVersion" in header or "deviceProperties" in header else "chrome-json",
        "command": [],
        "partial": False,
        "exit_code": None,
        "rank": _int_or_none(dist.get("rank")),
        "world_size": _int_or_none(dist.get("world_size")),
        "distributed_backend": dist.get("backend"),
        "torch_version": header.get("torch_version") or header.get("pytorch_version"),
        "cuda_version": _cuda_version(header.get("cuda_runtime_version")),
        "cuda_driver_version": _cuda_version(header.get("cuda_driver_version")),
        "hip_version": _hip_version(header.get("hip_runtime_version")),
        "trace_schema_version": header.get("schemaVersion"),
        "devices": devices,
        "notes": notes,
    }
    if meta["rank"] is None:
        meta["rank"] = _rank_from_name(source.name)
    return meta


def _devices(properties: Any, table: pa.Table) -> list[dict[str, Any]]:
    if isinstance(properties, list):
        devices = []
        for prop in properties:
            if not isinstance(prop, dict):
                continue
            major, minor = prop.get("computeMajor"), prop.get("computeMinor")
            devices.append(
                {
                    "index": _int_or_none(prop.get("id")),
                    "type": "gpu",
                    "name": prop.get("name") or "unknown GPU",
                    "total_memory_bytes": _int_or_none(prop.get("totalGlobalMem")),
                    "multiprocessor_count": _int_or_none(prop.get("numSms")),
                    "compute_capability": f"{major}.{minor}" if major is not None else None,
                    "warp_size": _int_or_none(prop.get("warpSize")),
                    "max_threads_per_block": _int_or_none(prop.get("maxThreadsPerBlock")),
                    "shared_memory_per_block_bytes": _int_or_none(prop.get("sharedMemPerBlock")),
                }
            )
        return devices
    device_type = table.column("device_type").to_numpy(zero_copy_only=False)
    index = table.column("device_index").to_numpy(zero_copy_only=False)
    used = sorted(set(index[device_type == "gpu"].tolist()))
    return [{"index": int(i), "type": "gpu", "name": "unknown GPU"} for i in used]


def _cuda_version(value: Any) -> str | None:
    """12040 -> "12.4" (CUDA's encoding: 1000 * major + 10 * minor)."""
    number = _int_or_none(value)
    return None if not number else f"{number // 1000}.{number % 1000 // 10}"


def _hip_version(value: Any) -> str | None:
    """60443483 -> "6.4.43483" (HIP's encoding: major * 1e7 + minor * 1e5 + patch)."""
    number = _int_or_none(value)
    return None if not number else f"{number // 10_000_000}.{number // 100_000 % 100}.{number % 100_000}"


def _rank_from_name(name: str) -> int | None:
    """``..._rank-3.json.gz`` / ``rank3`` style names, for rank files without distributedInfo."""
    match = re.search(r"rank[-_]?(\d+)", name)
    return int(match.group(1)) if match else None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None
