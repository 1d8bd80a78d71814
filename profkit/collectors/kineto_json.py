"""Import PyTorch profiler / Kineto Chrome-trace JSON into profkit traces.

``export_chrome_trace`` and ``tensorboard_trace_handler`` write one JSON
document (often gzipped) per process: a ``traceEvents`` array plus
``deviceProperties``, ``distributedInfo``, ``baseTimeNanoseconds``...
kineto_events reads the events into column arrays (small files at once, large
ones streamed in bounded memory); this module turns them, with numpy and
Arrow (no pandas), into the raw rows of the trace format (kinds, ns
timestamps, devices, links, steps, samples) and hands them to
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from ..errors import TraceImportError, UsageError
from ..trace.arrow_buffers import ARROW_TO_NUMPY, dictionary, from_numpy, text_array, to_numpy, validity
from ..trace.build import build_events
from ..trace.io import write_trace
from ..trace.kinds import ALLOCATOR_SAMPLES, TRAIN_STEP_PHASE
from ..trace.schema import GPU_KINDS, Kind
from . import allocator, chrome_traces_in
from .kineto_events import MAX_US, Collected, dumps, floats, read_document
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

#: Kinds as small integer codes while assembling (comparisons on ints, not on string objects).
_KINDS = [kind.value for kind in Kind]
_CODE = {value: code for code, value in enumerate(_KINDS)}
_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
#: torch.optim's profiling range around each ``step()`` (optimizer.py, ``profile_hook_step``).
_OPTIMIZER_STEP = re.compile(r"^Optimizer\.step#(.+)\.step$")
_GPU_LABEL = re.compile(r"^GPU (\d+)")


_DEVICE_WORK = [_CODE[Kind.KERNEL.value], _CODE[Kind.MEMCPY.value], _CODE[Kind.MEMSET.value]]
_GPU_CODES = [_CODE[kind] for kind in GPU_KINDS]

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
    with _gc_paused(), _system_allocator():
        return _assemble(*read_document(path, progress), path)  # no frame here holds the columns


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of new dicts and no cycles: the collector's passes would only cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _system_allocator() -> Iterator[None]:
    """Arrow buffers that pyarrow allocates for us come from malloc while importing.

    Arrow's default pool (mimalloc) keeps the pages it touched: measured, peak
    RSS 44 -> 39 MB importing the H100 trace, 43 -> 36 MB a rank file, no
    slower. (Some C++ compute kernels keep using the process default: only
    ARROW_DEFAULT_MEMORY_POOL=system, set before pyarrow first allocates,
    moves those.) Buffers remember their pool, so restoring the default
    afterwards is safe.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


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
        with _system_allocator():  # the Parquet writer's buffers too (45 -> 39 MB peak on the H100 trace)
            imported = read_kineto(source, progress=progress)
            write_trace(target, imported.table, imported.metadata)
        written.append(
            Written(source, target, imported.table.num_rows, _count_kind(imported.table, Kind.KERNEL),
                    imported.metadata.get("rank"), tuple(imported.metadata["notes"]))
        )
    return written


def trace_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the .json / .json.gz traces in it (a set of rank files)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            inside = chrome_traces_in(item)
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


def _count_kind(table: pa.Table, kind: Kind) -> int:
    """Rows of one kind, counted on the dictionary codes."""
    count = 0
    for chunk in table.column("kind").chunks:
        values = chunk.dictionary.to_pylist()
        if kind.value in values:
            codes = to_numpy(chunk.indices, -1)
            count += int(np.count_nonzero(codes == values.index(kind.value)))
    return count


# ----------------------------------------------------------------------------------------------
# Assembling the trace: numpy on the columns, Arrow arrays for build_events (no pandas, no per-row Python)


def _assemble(header: dict[str, Any], collected: Collected, source: Path) -> ImportedTrace:
    notes: list[str] = []
    base_ns = int_or_none(header.get("baseTimeNanoseconds")) or 0
    if not abs(base_ns) < _MAX_BASE_NS:  # (its sum with each event's time must stay an int64)
        raise TraceImportError(f"{source.name}: baseTimeNanoseconds {base_ns} is no time in ns since the epoch")
    spans, kind, host_pid = _span_rows(header, collected, base_ns, notes)
    parts = [spans, _step_phases(spans, kind), _samples(collected, host_pid, base_ns),
             _memory_samples(collected.memory, host_pid, base_ns, notes)]
    parts = [part for part in parts if part is not None and part.num_rows]
    del spans, kind
    if not parts:
        raise TraceImportError(f"{source.name}: no timed events (no 'X' spans or counters)")
    raw = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
    del parts
    # build_events sorts its rows (by start, then the enclosing event first; stable): the same
    # order here lines the External ids, which it does not keep, up with its rows. The other
    # columns the links read (kind, correlation, process) it keeps: they are read from its table.
    order = np.lexsort((-to_numpy(raw.column("duration_ns"), 0), to_numpy(raw.column("start_ns"), 0)))
    external = to_numpy(raw.column("_external_id"), np.nan)[order]
    table = build_events(raw.drop_columns(["_external_id"]))
    del raw, order
    table, linked_by_external = _link_by_external_id(table, external)
    if linked_by_external:
        notes.append(f"{linked_by_external} GPU events linked to their op by External id (no launch call found)")
    for label, count in sorted(collected.skipped.items()):
        notes.append(f"skipped {count} {label} events")
    metadata = file_metadata(header, source, table, notes)
    return ImportedTrace(table=table, metadata=metadata, source=source)


def _span_rows(header: dict[str, Any], collected: Collected, base_ns: int,
               notes: list[str]) -> tuple[pa.Table, np.ndarray, int]:
    """The "X" events as raw rows of the trace format, their kind codes, and the main host pid.

    Takes the columns out of ``collected``: what the rows do not hold is freed here.
    """
    cols, collected.columns = collected.columns, {}
    n = len(cols["ts"])
    kind = _codes(cols.pop("cat"), _category_kind)
    pid, tid = cols["pid"], cols["tid"]
    gpu = np.isin(kind, _GPU_CODES)
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
    on_gpu_track = gpu | ((kind == _CODE[Kind.OTHER.value]) & ~np.isnan(cols["stream"]) & ~np.isnan(cols["device"]))

    correlation = cols["correlation"].copy()
    _fill_from_flows(correlation, kind, gpu, pid, tid, cols["ts"], collected.flows)
    linked = np.where(gpu, correlation, np.nan)
    own_correlation = np.where((kind == _CODE[Kind.RUNTIME.value]) | gpu, correlation, np.nan)
    process = _gpu_process(pid, host_pid, kind, gpu, correlation)
    batch_size, token_count, extra = _unpack_phase_args(kind, cols.pop("extra"))

    rows = {
        "kind": dictionary(kind, _KINDS).dictionary_decode(),
        "name": cols.pop("name"),
        "start_ns": from_numpy(start_ns),
        "duration_ns": from_numpy(np.maximum(end_ns - start_ns, 0)),
        "device_type": dictionary(on_gpu_track, ["cpu", "gpu"]).dictionary_decode(),
        "device_index": from_numpy(np.where(on_gpu_track, device, -1).astype(np.int16)),
        "stream": _nullable(stream, on_gpu_track, pa.int32()),
        "process_id": from_numpy(process),
        "thread_id": _nullable(tid, ~on_gpu_track),
        "correlation_id": _nullable(own_correlation),
        "linked_correlation_id": _nullable(linked),
        "input_shapes": cols.pop("shapes"),
        "input_dtypes": cols.pop("dtypes"),
        "bytes": _nullable(cols["bytes"], np.isin(kind, [_CODE[Kind.MEMCPY.value], _CODE[Kind.MEMSET.value]])),
        "batch_size": _nullable(batch_size, dtype=pa.int32()),
        "token_count": _nullable(token_count),
        "extra": extra,
        "_external_id": from_numpy(cols["external_id"]),
    }
    return pa.table(rows), kind, host_pid


def _codes(column: pa.ChunkedArray, code_of: Callable[[Any], int]) -> np.ndarray:
    """``code_of`` each row's value, as int8: each chunk dictionary-encoded, each distinct value looked up once."""
    parts = [np.zeros(0, dtype=np.int8)]
    for chunk in column.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
        lookup = np.array([code_of(value) for value in encoded.dictionary.to_pylist()] or [0], dtype=np.int8)
        parts.append(lookup[to_numpy(encoded.indices, 0)])
    return np.concatenate(parts)


def _category_kind(category: str) -> int:
    return _CODE[CATEGORY_KINDS.get(category.lower(), Kind.OTHER.value)]


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
    host = pid[~gpu & ~np.isnan(pid) & (kind != _CODE[Kind.OTHER.value])]
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
    used = np.unique(device[gpu], return_counts=True)[0]  # a plain np.unique imports numpy.ma: 20-35 ms
    if not known or set(used.tolist()) <= set(known) or len(used) != len(known):
        return device, None
    at = np.minimum(np.searchsorted(used, device), len(used) - 1)
    remapped = np.where(used[at] == device, np.array(known, dtype=np.int64)[at], device)
    mapping = ", ".join(f"{a}->{b}" for a, b in zip(used.tolist(), known))
    return remapped, f"GPU ids in events renumbered to match deviceProperties ({mapping})"


def _first_row(keys: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query, the first of ``rows`` whose key equals it (as float), NaN where none.

    A sorted-key search (no join): ``keys[i]`` is the key of ``rows[i]``.
    """
    if not len(rows):
        return np.full(len(queries), np.nan)
    unique, first = np.unique(keys, return_index=True)
    at = np.minimum(np.searchsorted(unique, queries), len(unique) - 1)
    return np.where(unique[at] == queries, rows[first[at]], np.nan)


def _fill_from_flows(correlation, kind, gpu, pid, tid, ts_us, flows: list[tuple]) -> None:
    """Where an event has no args.correlation, take the id of the flow arrow bound to it.

    An event is bound to the first flow arrow with its end ("s" for the launch, "f"
    for the GPU event), pid, tid and ts; missing values match each other.
    """
    missing = np.isnan(correlation) & (np.isin(kind, _DEVICE_WORK) | (kind == _CODE[Kind.RUNTIME.value]))
    if not missing.any() or not flows:
        return
    ph, flow_id, flow_pid, flow_tid, flow_ts = zip(*flows)
    rows = np.flatnonzero(missing)
    phase = np.array([{"s": 0.0, "f": 1.0}.get(p, 2.0) for p in ph])
    arrows = np.column_stack([phase, floats(flow_pid), floats(flow_tid), _flow_times(flow_ts)])
    events = np.column_stack([gpu[rows].astype(np.float64), pid[rows], tid[rows], ts_us[rows]])
    # One id per distinct (end, pid, tid, ts) row, NaN made a value of its own so that it matches itself.
    both = np.concatenate([arrows, events])
    both[np.isnan(both)] = np.inf
    _, group = np.unique(both, axis=0, return_inverse=True)
    group = group.reshape(-1)
    arrow_groups, event_groups = group[: len(arrows)], group[len(arrows) :]
    found = _first_row(arrow_groups, np.arange(len(arrows)), event_groups)
    hit = ~np.isnan(found)
    correlation[rows[hit]] = floats(flow_id)[found[hit].astype(np.int64)]


def _flow_times(values: tuple) -> np.ndarray:
    """Flow ``ts`` as float µs; NaN where not a number."""
    return np.array([float(v) if type(v) in (int, float) else np.nan for v in values], dtype=np.float64)


def _gpu_process(pid, host_pid: int, kind, gpu, correlation) -> np.ndarray:
    """Host pid per event; GPU events take the pid of the (first) runtime call with their correlation."""
    process = np.where(np.isnan(pid), host_pid, pid)
    launch = np.flatnonzero((kind == _CODE[Kind.RUNTIME.value]) & ~np.isnan(correlation))
    rows = np.flatnonzero(gpu)
    launcher_row = _first_row(correlation[launch], launch, correlation[rows])
    hit = ~np.isnan(launcher_row)
    launcher = np.full(len(rows), np.nan)
    launcher[hit] = pid[launcher_row[hit].astype(np.int64)]
    process[rows] = np.where(np.isnan(launcher), host_pid, launcher)
    return process.astype(np.int64)


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    """An integer column as float64, NaN where null."""
    column = column.combine_chunks()
    values = to_numpy(column, 0).astype(np.float64)
    values[~validity(column)] = np.nan
    return values


def _nullable(values: np.ndarray, keep: np.ndarray | None = None, dtype: pa.DataType = pa.int64()) -> pa.Array:
    """Float values (NaN = missing) as an Arrow integer array; rows outside ``keep`` are null too."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == pa.int32():  # CUDA writes the default stream's "no stream" as uint32 -1
        values = np.where(values >= 2**31, values - 2**32, values)
    mask = np.isnan(values) if keep is None else (np.isnan(values) | ~keep)
    return from_numpy(np.where(mask, 0, values).astype(ARROW_TO_NUMPY[dtype]), ~mask)


def _unpack_phase_args(kind: np.ndarray, extras: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Phase rows written by ``profkit export`` carry batch_size/token_count in their args.

    Returns (batch_size, token_count, extra) per row: NaN where absent; the
    phase rows' extra without those two keys.
    """
    batch = np.full(len(kind), np.nan)
    tokens = np.full(len(kind), np.nan)
    rows = np.flatnonzero(kind == _CODE[Kind.PHASE.value])
    if not len(rows):
        return batch, tokens, extras
    unpacked = []  # "" for none: an empty text is null (text_array)
    for row, text in zip(rows, extras.take(from_numpy(rows)).to_pylist()):  # a few marks per step, not per event
        extra = json.loads(text) if isinstance(text, str) else {}
        batch[row] = extra.pop("batch_size", None) or np.nan
        tokens[row] = extra.pop("token_count", None) or np.nan
        unpacked.append(dumps(extra) if extra else "")
    # The other rows' text stays in Arrow: a take from the old texts and the rewritten ones.
    index = np.arange(len(kind))
    index[rows] = len(kind) + np.arange(len(rows))
    return batch, tokens, pa.concat_arrays([extras, text_array(unpacked, empty_is_null=True)]).take(from_numpy(index))


def _step_phases(spans: pa.Table, kind: np.ndarray) -> pa.Table | None:
    """Step phase marks: one ``step`` mark per ProfilerStep#N annotation (steps are what check
    compares), else one ``train_step`` mark per optimizer step (``_optimizer_steps``)."""
    if (kind == _CODE[Kind.PHASE.value]).any():  # profkit's own marks (an exported trace) already say it
        return None
    annotation = np.flatnonzero(kind == _CODE[Kind.ANNOTATION.value])
    names = spans.column("name").take(from_numpy(annotation)).to_pylist()
    numbers = [_STEP_NAME.match(str(name)) for name in names]
    rows = [row for row, match in zip(annotation, numbers) if match]
    if not rows:
        return _optimizer_steps(spans, kind, annotation, names)
    return _marks(spans, np.array(rows, dtype=np.int64), "step",
                  [{"step": int(m.group(1)), "source": "ProfilerStep"} for m in numbers if m])


def _optimizer_steps(spans: pa.Table, kind: np.ndarray, annotation: np.ndarray, names: list) -> pa.Table | None:
    """``train_step`` marks from the ``Optimizer.step#<class>.step`` ranges torch.profiler records
    around every optimizer step (a trace recorded without a schedule has no ProfilerStep#N): step k
    runs from the end of step k-1 to the end of its optimizer step, step 1 from the trace's first
    host event, as profkit record's own optimizer hook marks them (so the same start-up rule applies).

    Only the first optimizer class that steps counts (a GAN's second optimizer does not double the
    steps), and only outermost ranges (a subclass whose step calls ``super().step()`` records two)."""
    found = [_OPTIMIZER_STEP.match(str(name)) for name in names]
    rows = np.array([row for row, match in zip(annotation, found) if match], dtype=np.int64)
    if not len(rows):
        return None
    classes = [match.group(1) for match in found if match]
    start = to_numpy(spans.column("start_ns"), 0)
    end = start + to_numpy(spans.column("duration_ns"), 0)
    order = np.argsort(start[rows], kind="stable")
    rows, classes = rows[order], [classes[i] for i in order]
    primary = [i for i, name in enumerate(classes) if name == classes[0]]
    rows = rows[primary]
    outermost = np.ones(len(rows), dtype=bool)
    reach = np.maximum.accumulate(end[rows])  # a range inside an earlier one ends before that one's end
    outermost[1:] = start[rows[1:]] >= reach[:-1]
    rows = rows[outermost]
    host = ~np.isin(kind, _GPU_CODES)  # (no phase marks here: _step_phases returned on those)
    step_end = end[rows]
    step_start = np.concatenate([[start[host].min()], step_end[:-1]])
    marks = _marks(spans, rows, TRAIN_STEP_PHASE,
                   [{"step": step, "source": "optimizer"} for step in range(1, len(rows) + 1)])
    marks = marks.set_column(marks.schema.get_field_index("start_ns"), "start_ns", from_numpy(step_start))
    return marks.set_column(marks.schema.get_field_index("duration_ns"), "duration_ns",
                            from_numpy(step_end - step_start))


def _marks(spans: pa.Table, rows: np.ndarray, name: str, extras: list[dict]) -> pa.Table:
    """Phase marks ``name`` over the spans ``rows`` (their times and process), with these extras."""
    marks = spans.take(from_numpy(rows))
    replaced = {
        "kind": text_array([Kind.PHASE.value] * len(rows)),
        "name": text_array([name] * len(rows)),
        "extra": text_array([dumps(extra) for extra in extras]),
        "input_shapes": pa.nulls(len(rows), pa.string()),
        "input_dtypes": pa.nulls(len(rows), pa.string()),
        "_external_id": from_numpy(np.full(len(rows), np.nan)),
    }
    for column, values in replaced.items():
        marks = marks.set_column(marks.schema.get_field_index(column), column, values)
    return marks


def _samples(collected: Collected, host_pid: int, base_ns: int) -> pa.Table | None:
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
    # (profkit export writes the allocator's totals twice: counters to draw, [memory] events to read back)
    redrawn = ALLOCATOR_SAMPLES if len(collected.memory) else frozenset()
    for event in collected.counters:  # counters are few (a sampler's rate, not per kernel)
        if event.get("name") in redrawn:
            continue
        args = event.get("args") or {}
        for key, value in args.items():
            if not isinstance(value, (int, float)) or event.get("ts") is None:
                continue
            metric = event.get("name") if key == "value" or len(args) == 1 else f"{event.get('name')} {key}"
            rows.append((str(metric), float(event["ts"]), float(value), gpu_pids.get(event.get("pid"), -1)))
    if not rows:
        return None
    names, ts, values, gpus = zip(*rows)
    start_ns, _ = _to_ns(np.array(ts, dtype=np.float64), np.zeros(len(rows)), base_ns)
    device = np.array(gpus, dtype=np.int16)
    sample_values = np.array(values, dtype=np.float64)
    return pa.table(
        {
            "kind": text_array([Kind.SAMPLE.value] * len(rows)),
            "name": text_array(list(names)),
            "start_ns": from_numpy(start_ns),
            "duration_ns": from_numpy(np.zeros(len(rows), dtype=np.int64)),
            "device_type": text_array(["gpu" if d >= 0 else "cpu" for d in gpus]),
            "device_index": from_numpy(device),
            "process_id": from_numpy(np.full(len(rows), host_pid, dtype=np.int64)),
            "value": from_numpy(sample_values, ~np.isnan(sample_values)),  # NaN is missing
            "_external_id": from_numpy(np.full(len(rows), np.nan)),
        }
    )


#: baseTimeNanoseconds is an epoch time in ns: 2**62 ns is the year 2116.
_MAX_BASE_NS = 2**62


def _memory_samples(rows: np.ndarray, host_pid: int, base_ns: int, notes: list[str]) -> pa.Table | None:
    """torch.profiler's allocator events (``profile_memory=True``; ``rows``: ``kineto_events.memory_rows``)
    as ``allocated_bytes`` / ``reserved_bytes`` samples (allocator.py), on the thread that allocated."""
    if not len(rows):
        return None
    ts, pid, tid, device_type, device_id, allocated, reserved, address, size = rows.T
    timed = np.abs(ts) < MAX_US  # (NaN: no ts, compares False)
    start_ns, _ = _to_ns(np.where(timed, ts, 0.0), np.zeros(len(ts)), base_ns)
    columns = allocator.sample_columns(
        start_ns[timed], device_type[timed], device_id[timed], allocated[timed], reserved[timed], tid[timed],
        np.where(np.isnan(pid), host_pid, pid)[timed], address=address[timed],
        size=size[timed])
    left_out = allocator.unknown_device_count(device_type[timed]) + int((~timed).sum())
    notes.append(f"{len(rows) - left_out} allocator memory events (profile_memory) read as "
                 f"{allocator.ALLOCATED} / {allocator.RESERVED} samples"
                 + (f"; {left_out} left out (no time, or a device type without a name here)" if left_out else ""))
    if columns is None:
        return None
    table = pa.table({
        "kind": text_array(columns["kind"].tolist()),
        "name": text_array(columns["name"].tolist()),
        "start_ns": from_numpy(columns["start_ns"]),
        "duration_ns": from_numpy(columns["duration_ns"]),
        "device_type": text_array(columns["device_type"].tolist()),
        "device_index": from_numpy(columns["device_index"]),
        "process_id": columns["process_id"],
        "thread_id": columns["thread_id"],
        "value": from_numpy(columns["value"]),
        "extra": text_array([text or "" for text in columns["extra"].tolist()], empty_is_null=True),  # (pa.array imports pandas)
        "_external_id": from_numpy(np.full(len(columns["value"]), np.nan)),
    })
    return table


def _link_by_external_id(table: pa.Table, external: np.ndarray) -> tuple[pa.Table, int]:
    """Give unlinked kernels/copies the op with their External id (some traces have no launch calls).

    ``external``: each row's External id, in the table's row order.
    Skipped when a trace's GPU External ids just repeat their correlations
    (some Kineto versions): those are no op ids.
    """
    kind = _codes(table.column("kind"), _CODE.__getitem__)
    op_id = _float_values(table.column("op_id"))
    correlation = _float_values(table.column("correlation_id"))
    work = np.isin(kind, _DEVICE_WORK)
    both = work & ~np.isnan(external) & ~np.isnan(correlation)
    if both.any() and np.all(external[both] == correlation[both]):
        return table, 0
    want = work & np.isnan(op_id) & ~np.isnan(external)
    if not want.any():
        return table, 0
    process = to_numpy(table.column("process_id"), 0)
    ops = np.flatnonzero((kind == _CODE[Kind.CPU_OP.value]) & ~np.isnan(external))
    rows = np.flatnonzero(want)
    # (process, External id) as one exact integer key: both factorized over the rows that take part.
    taking = np.concatenate([ops, rows])
    _, process_code = np.unique(process[taking], return_inverse=True)
    _, external_code = np.unique(external[taking], return_inverse=True)
    key = process_code.reshape(-1).astype(np.int64) * len(taking) + external_code.reshape(-1)
    found = _first_row(key[: len(ops)], ops, key[len(ops) :])
    hit = ~np.isnan(found)
    if not hit.any():
        return table, 0
    op_id[rows[hit]] = found[hit]
    column = from_numpy(np.where(np.isnan(op_id), 0, op_id).astype(np.int64), ~np.isnan(op_id))
    return table.set_column(table.schema.get_field_index("op_id"), "op_id", column), int(hit.sum())
