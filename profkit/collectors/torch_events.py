"""Extract events from a finished torch.profiler run into raw trace columns.

Reads the profiler's results directly: no ``prof.events()``, no
``key_averages()``, no Chrome-trace JSON round trip (REFERENCE.md §5). Where
torch has it (2.13 does), ``trace_activities()`` is used: Kineto's own
activity objects, whose getters cost about half of ``events()``'s and whose
list is cheaper to build; its metadata gives TensorList shapes too (nested
lists, as in Kineto's JSON). Older torch falls back to ``events()``, and where
those lack ``activity_type()`` (2.11) each event's type is derived from its device
type, flags and name (``_derived_activity_types``). Either way every
pybind call costs a few hundred ns per event, so each attribute is read in one
pass, GPU-only attributes only for GPU rows, and shapes and dtypes only for
operators whose cost can depend on them (views and allocations are skipped:
shapes are most of the extraction cost).
"""

from __future__ import annotations

import gc
import json
import os
import re
from bisect import bisect_left
from dataclasses import dataclass
from itertools import compress
from operator import methodcaller
from typing import Iterator, NamedTuple

import numpy as np
import pyarrow as pa

from ..trace.arrow_buffers import dictionary, from_numpy, to_numpy
from ..trace.kinds import ARGUMENT_VALUE_OPS, TENSOR_LIST_OPS
from ..trace.schema import GPU_KINDS, Kind
from . import allocator

#: The profiler's activity type -> trace kind.
ACTIVITY_KINDS: dict[str, str] = {
    "cpu_op": Kind.CPU_OP.value,
    "user_annotation": Kind.ANNOTATION.value,
    "gpu_user_annotation": Kind.GPU_ANNOTATION.value,
    "kernel": Kind.KERNEL.value,
    "gpu_memcpy": Kind.MEMCPY.value,
    "gpu_memset": Kind.MEMSET.value,
    "cuda_runtime": Kind.RUNTIME.value,
    "cuda_driver": Kind.RUNTIME.value,
    "privateuse1_runtime": Kind.RUNTIME.value,
    "privateuse1_driver": Kind.RUNTIME.value,
    "python_function": Kind.PYTHON_FUNCTION.value,
}

#: Ops that only make views, allocate or move metadata: their shapes are never costed.
SHAPELESS_OPS = frozenset(
    """aten::view aten::_unsafe_view aten::reshape aten::as_strided aten::t aten::transpose aten::permute
    aten::expand aten::expand_as aten::detach aten::detach_ detach aten::empty aten::empty_like
    aten::empty_strided aten::resolve_conj aten::resolve_neg aten::alias aten::slice aten::select
    aten::unsqueeze aten::squeeze aten::split aten::chunk aten::narrow aten::unbind aten::lift_fresh
    aten::_reshape_alias aten::is_nonzero aten::item aten::_local_scalar_dense aten::result_type
    aten::contiguous aten::numpy_T aten::matrix_H aten::size aten::stride aten::set_
    """.split()
)


#: A CUDA or HIP runtime/driver call, by its name (cudaLaunchKernel, cuLaunchKernelEx, hipMemcpyAsync).
_RUNTIME_CALL = re.compile(r"(?:cuda|cu|hip)[A-Z]")

#: CPU-side names that are no operator when torch's events lack activity_type(): CUPTI's overhead
#: records (Kineto names them by CUpti_ActivityOverheadKind; seen on an H200 with torch 2.11) and
#: "INVALID", Kineto's name for a runtime/driver call whose callback id its table does not know.
_OVERHEAD_NAMES = frozenset({"Driver Compiler", "Buffer Flush", "Instrumentation", "Resource",
                             "Runtime Triggered Module Loading", "Lazy Function Loading", "Command Buffer Full",
                             "Activity Buffer Request", "UVM Activity Init"})
_UNNAMED_RUNTIME_CALL = "INVALID"

#: A memcpy/memset's size in its Kineto metadata.
_BYTES = re.compile(r'"bytes": (\d+)')


def extract_events(
    kineto_results, *, with_shapes: bool = True, process_id: int | None = None, use_activities: bool | None = None
) -> dict:
    """Raw event columns (see profkit.trace.build_events) from ``kineto_results``, without the allocator's
    events (``extract_parts`` has those as samples)."""
    return extract_parts(kineto_results, with_shapes=with_shapes, process_id=process_id,
                         use_activities=use_activities)[0]


def extract_parts(
    kineto_results, *, with_shapes: bool = True, process_id: int | None = None, use_activities: bool | None = None
) -> list[dict]:
    """Raw columns (see profkit.trace.build_events) from ``kineto_results``: the events, then, where the
    profiler recorded torch's allocator (``profile_memory``), its totals as samples (allocator.py).

    ``use_activities``: read ``trace_activities()`` (default: where torch has it)
    or ``events()``; both give the same columns.
    """
    if use_activities is None:
        use_activities = hasattr(kineto_results, "trace_activities")
    extract = _from_activities if use_activities else _from_events
    # Tens of thousands of short-lived objects: the cyclic GC would run hundreds of
    # times for nothing (nothing here makes cycles), so it is paused meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        columns, items = extract(kineto_results, with_shapes=with_shapes, process_id=process_id)
        if with_shapes:
            _add_tensor_list_dtypes(kineto_results, columns)
        memory = _memory_rows(columns["name"])
        if not len(memory):
            return [columns]
        # torch's allocator events (profile_memory): samples of its totals, not event rows.
        samples = _memory_samples(columns, [items[i] for i in memory.tolist()], memory, use_activities)
        return [_without_rows(columns, memory)] + ([samples] if samples is not None else [])
    finally:
        if gc_was_enabled:
            gc.enable()


def _memory_rows(names: list) -> np.ndarray:
    """Rows of torch's allocator events (``[memory]``: an allocation or free, with profile_memory)."""
    if allocator.MEMORY_EVENT not in set(names):  # (the common case: one pass in C)
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.fromiter((name == allocator.MEMORY_EVENT for name in names), dtype=bool,
                                      count=len(names)))


def _memory_samples(columns: dict, items: list, rows: np.ndarray, activities: bool) -> dict | None:
    """The allocator's totals after each of its events (``rows``; ``items``: their profiler objects) as
    ``allocated_bytes`` / ``reserved_bytes`` sample columns: from each activity's Kineto metadata, which
    holds them. torch's events() (before 2.13) give each event's size only: their running sum per
    device is ``allocated_since_start_bytes`` (allocator.py)."""
    start = columns["start_ns"][rows]
    thread = to_numpy(columns["thread_id"].take(from_numpy(rows)), np.nan).astype(np.float64)
    process = columns["process_id"][rows].astype(np.float64)
    if activities:
        device_type, device_id, allocated, reserved, address, size = allocator.memory_fields(
            allocator.metadata_args([item.metadata_json() for item in items]))
        return allocator.sample_columns(start, device_type, device_id, allocated, reserved, thread, process,
                                        address=address, size=size)
    device_type = np.fromiter((int(item.device_type()) for item in items), dtype=np.float64, count=len(items))
    device_id = np.fromiter(map(methodcaller("device_index"), items), dtype=np.float64, count=len(items))
    nbytes = np.fromiter(map(methodcaller("nbytes"), items), dtype=np.float64, count=len(items))
    allocated = allocator.running_totals(start, device_type, device_id, nbytes)
    return allocator.sample_columns(start, device_type, device_id, allocated, np.full(len(items), np.nan), thread,
                                    process, allocated_name=allocator.ALLOCATED_SINCE_START)


def _without_rows(columns: dict, rows: np.ndarray) -> dict:
    """``columns`` without ``rows`` (Arrow arrays, numpy arrays and lists alike)."""
    keep = np.ones(len(columns["start_ns"]), dtype=bool)
    keep[rows] = False
    kept = np.flatnonzero(keep)
    out = {}
    for name, values in columns.items():
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            out[name] = values.take(from_numpy(kept))
        elif isinstance(values, np.ndarray):
            out[name] = values[kept]
        else:
            out[name] = list(compress(values, keep))
    return out


def _add_tensor_list_dtypes(kineto_results, columns: dict) -> None:
    """``{"tensor_list_dtype": "torch.float32"}`` in ``extra`` for each op that takes a TensorList
    (``kinds.TENSOR_LIST_OPS``): torch.profiler records the elements' shapes, not their dtype, which its
    event tree (``experimental_event_tree()``: each op's inputs, a TensorList's as tensors) has. Its
    nodes are matched to rows by name and start time, which the two share to the nanosecond. Where the
    row has no shapes for the list (torch before 2.13 records ``[[],[]]`` for ``aten::cat``), the
    tree's shapes are written in Kineto's form (``[[[4,8],[2,8]],[]]``)."""
    names, starts, shapes = columns["name"], columns["start_ns"], columns["input_shapes"]
    list_ops = _names_matching(names, TENSOR_LIST_OPS)
    wanted = {(name, int(starts[i])): i for i, name in enumerate(names) if name in list_ops}
    if not wanted:
        return
    for i, (dtype, tree_shapes) in _tree_list_inputs(kineto_results, wanted).items():
        _add_extra(columns, i, "tensor_list_dtype", json.dumps(dtype))
        if not (shapes[i] or "").startswith("[[["):  # (every such op takes its list first)
            shapes[i] = tree_shapes


def _names_matching(names: list, pattern: re.Pattern) -> set[str]:
    """The distinct names ``pattern`` matches (one test per name, not per row)."""
    return {name for name in set(names) if isinstance(name, str) and pattern.match(name)}


def _add_extra(columns: dict, row: int, key: str, value_json: str) -> None:
    """``"key": value`` into row ``row``'s ``extra`` JSON object (the column made, all null, on first use)."""
    extra = columns.get("extra")
    if extra is None:
        extra = columns["extra"] = [None] * len(columns["name"])
    field = f'"{key}":{value_json}'
    extra[row] = "{" + field + "}" if extra[row] is None else extra[row][:-1] + "," + field + "}"


def _tree_list_inputs(kineto_results, wanted: dict[tuple[str, int], int]) -> dict[int, tuple[str, str]]:
    """Row -> (the dtype of the first TensorList argument's first element, "torch.bfloat16"; the inputs'
    shapes as Kineto writes them), for the ``wanted`` (name, start ns) -> row; empty where this torch
    has no event tree or it fails (a trace without these rather than none). Only subtrees whose span
    holds a wanted start are entered: reading a node costs ~2 µs (a 26k-op trace: 52 ms walked whole,
    12 ms so)."""
    try:
        stack = list(kineto_results.experimental_event_tree())
    except Exception:  # noqa: BLE001 - an experimental API: any failure only costs these dtypes
        return {}
    starts = sorted({start for _, start in wanted})
    found: dict[int, tuple[str, str]] = {}
    while stack:
        node = stack.pop()
        start = node.start_time_ns
        at = bisect_left(starts, start)
        if at == len(starts) or starts[at] > node.end_time_ns:
            continue  # no wanted op starts inside this one
        stack.extend(node.children)
        row = wanted.get((node.name, start)) if starts[at] == start else None
        if row is None:
            continue
        inputs = list(getattr(node.extra_fields, "inputs", ()))
        lists = [argument for argument in inputs if isinstance(argument, list) and argument
                 and getattr(argument[0], "dtype", None) is not None]
        if lists:
            found[row] = (str(lists[0][0].dtype), json.dumps([_shape(argument) for argument in inputs],
                                                              separators=(",", ":")))
    return found


def _shape(argument) -> list:
    """An event-tree input as Kineto's Input Dims write it: a tensor's sizes, a TensorList's list of
    them, [] for anything else."""
    if isinstance(argument, list):
        return [list(item.sizes) if hasattr(item, "sizes") else [] for item in argument]
    return list(argument.sizes) if hasattr(argument, "sizes") else []


@dataclass(frozen=True)
class _Getters:
    """The method names that read each attribute from one kind of profiler result object."""

    name: str
    activity_type: str
    start_ns: str
    duration_ns: str
    resource_id: str  # CPU: the OS thread id (what Kineto's JSON calls tid); GPU: the stream
    correlation_id: str
    device_index: str  # read for GPU rows only
    linked_correlation_id: str  # read for GPU rows only


_ACTIVITY_GETTERS = _Getters("name", "type", "timestamp", "duration", "resource_id", "correlation_id",
                             "device_id", "linked_correlation_id")  # a GPU activity's device id is its index
_EVENT_GETTERS = _Getters("name", "activity_type", "start_ns", "duration_ns", "device_resource_id", "correlation_id",
                          "device_index", "linked_correlation_id")


def _from_activities(kineto_results, *, with_shapes: bool, process_id: int | None) -> tuple[dict, list]:
    activities = kineto_results.trace_activities()
    columns, rows = _read_common(activities, _ACTIVITY_GETTERS)
    columns["bytes"][rows.copies] = [_metadata_int(activities[i].metadata_json(), _BYTES) for i in rows.copies]
    if with_shapes:
        shapes, dtypes = columns["input_shapes"], columns["input_dtypes"]
        names, parsed = columns["name"], {}
        # The argument values ("Concrete Inputs": strides, paddings, kernel sizes) of convolutions and
        # pooling, whose cost reads them, as an imported trace has them: {"concrete_inputs": [...]} in extra.
        value_ops = _names_matching(names, ARGUMENT_VALUE_OPS)
        for i in _shape_rows(names, rows.ops):
            metadata = activities[i].metadata_json()
            # Calls with equal inputs share a signature: each distinct one is parsed once.
            signature = _input_signature(metadata)
            found = parsed.get(signature)
            if found is None:
                found = parsed[signature] = _shapes_and_dtypes(signature)
            shapes[i], dtypes[i] = found
            if names[i] in value_ops and (values := _concrete_inputs(metadata)) is not None:
                _add_extra(columns, i, "concrete_inputs", values)
    return _finish(columns, rows.gpu, process_id), activities


_CONCRETE = '"Concrete Inputs": '
_LIST_DECODER = json.JSONDecoder()


def _concrete_inputs(metadata: str) -> str | None:
    """The "Concrete Inputs" list of an op's Kineto metadata, as compact JSON (None: not recorded)."""
    at = metadata.find(_CONCRETE)
    if at < 0:
        return None
    try:
        values, _ = _LIST_DECODER.raw_decode(metadata, at + len(_CONCRETE))
    except ValueError:
        return None
    return json.dumps(values, separators=(",", ":")) if isinstance(values, list) else None


def _from_events(kineto_results, *, with_shapes: bool, process_id: int | None) -> tuple[dict, list]:
    events = kineto_results.events()
    columns, rows = _read_common(events, _EVENT_GETTERS)
    if len(rows.copies):
        columns["bytes"][rows.copies] = [_event_bytes(events[i]) for i in rows.copies]
    if with_shapes:
        shapes, dtypes, names = columns["input_shapes"], columns["input_dtypes"], columns["name"]
        value_ops = _names_matching(names, ARGUMENT_VALUE_OPS)
        for i in _shape_rows(names, rows.ops):
            event_shapes = events[i].shapes()
            if event_shapes:
                # A list of int lists prints as JSON already; dtype names never contain quotes.
                shapes[i] = str(event_shapes).replace(" ", "")
                dtypes[i] = '["' + '","'.join(events[i].dtypes()) + '"]'
            if names[i] in value_ops and (values := _event_concrete_inputs(events[i])) is not None:
                _add_extra(columns, i, "concrete_inputs", values)
    return _finish(columns, rows.gpu, process_id), events


def _event_concrete_inputs(event) -> str | None:
    """An event's argument values (``concrete_inputs()``: None for a tensor, [2, 2], 1, False) as the
    "Concrete Inputs" texts Kineto's metadata holds ("", "[2, 2]", "1", "False"), compact JSON; None
    where none was recorded."""
    values = event.concrete_inputs() if hasattr(event, "concrete_inputs") else None
    if not values or all(value is None for value in values):
        return None
    return json.dumps(["" if value is None else str(value) for value in values], separators=(",", ":"))


def _event_bytes(event) -> int:
    """A copy's size: nbytes() where torch fills it (2.13), else Kineto's metadata (torch 2.11's
    nbytes() reads 0 for every copy), else unknown (-1)."""
    nbytes = event.nbytes() if hasattr(event, "nbytes") else 0
    if nbytes > 0:
        return nbytes
    return _metadata_int(event.metadata_json(), _BYTES) if hasattr(event, "metadata_json") else -1


class _Rows(NamedTuple):
    gpu: np.ndarray  # bool mask: GPU rows (a device index and a stream, no thread)
    copies: np.ndarray  # indices of memcpy/memset rows
    ops: np.ndarray  # indices of CPU op rows


def _read_common(items: list, getters: _Getters) -> tuple[dict, _Rows]:
    """The attributes every row has, one pass per attribute (``map`` + ``methodcaller``: no
    Python frame per call), and the GPU-only ones for GPU rows only."""
    n = len(items)

    def each(getter: str, rows=None) -> Iterator:
        return map(methodcaller(getter), items if rows is None else (items[i] for i in rows))

    def ints(getter: str) -> np.ndarray:
        return np.fromiter(each(getter), dtype=np.int64, count=n)

    # The kind column as codes over the few distinct activity types: row masks are lookups on those.
    names = list(each(getters.name))
    code_of: dict[str, int] = {}
    activity_types = (each(getters.activity_type) if not items or hasattr(items[0], getters.activity_type)
                      else _derived_activity_types(items, names))  # feature detection: torch 2.11 has none
    type_codes = np.fromiter((code_of.setdefault(t, len(code_of)) for t in activity_types), dtype=np.int32, count=n)
    kind_values = [ACTIVITY_KINDS.get(t, Kind.OTHER.value) for t in code_of]

    def of_kind(kinds) -> np.ndarray:
        return np.array([kind in kinds for kind in kind_values], dtype=bool)[type_codes]

    is_gpu = of_kind(GPU_KINDS)
    gpu_rows = np.flatnonzero(is_gpu)
    device_index = np.full(n, -1, dtype=np.int64)
    linked = np.full(n, -1, dtype=np.int64)
    device_index[gpu_rows] = list(each(getters.device_index, gpu_rows))
    linked[gpu_rows] = list(each(getters.linked_correlation_id, gpu_rows))
    columns = {
        "kind": dictionary(type_codes, kind_values),
        "name": names,
        "start_ns": ints(getters.start_ns),
        "duration_ns": ints(getters.duration_ns),
        "device_index": device_index,
        "resource_id": ints(getters.resource_id),
        "correlation_id": ints(getters.correlation_id),
        "linked_correlation_id": linked,
        "input_shapes": [None] * n,
        "input_dtypes": [None] * n,
        "bytes": np.full(n, -1, dtype=np.int64),
    }
    rows = _Rows(gpu=is_gpu, copies=np.flatnonzero(of_kind({Kind.MEMCPY.value, Kind.MEMSET.value})),
                 ops=np.flatnonzero(of_kind({Kind.CPU_OP.value})))
    return columns, rows


def _derived_activity_types(events: list, names: list[str]) -> list[str]:
    """What ``activity_type()`` would say, for torch whose events lack it (2.11 does).

    From what every such torch has: the device type (CPU rows are ops, annotations, Python
    functions or runtime calls; GPU rows kernels, copies, fills or GPU annotations), the
    annotation and Python-function flags where present, and the name, classified once per
    distinct name: runtime calls by their API prefix, copies and fills by Kineto's own
    ``Memcpy``/``Memset`` names, CUPTI's overhead records by theirs (``_type_by_name``).
    ``names``: each event's name, already read.
    """
    n = len(events)

    def flag(getter: str) -> np.ndarray:
        if not hasattr(events[0], getter):
            return np.zeros(n, dtype=bool)
        return np.fromiter(map(methodcaller(getter), events), dtype=bool, count=n)

    # Device types as their integer values: hashing or comparing the enum objects themselves
    # costs two pybind calls per event; int() one. Which value is the CPU, its name says.
    device_types = list(map(methodcaller("device_type"), events))
    device_codes = np.fromiter(map(int, device_types), dtype=np.int64, count=n)
    values, first = np.unique(device_codes, return_index=True)
    cpu_values = [v for v, i in zip(values.tolist(), first.tolist())
                  if str(getattr(device_types[i], "name", device_types[i])).upper().endswith("CPU")]
    is_cpu = np.isin(device_codes, cpu_values)
    by_name = {name: _type_by_name(name) for name in set(names)}
    named = np.array(list(map(by_name.__getitem__, names)), dtype=object)
    cpu_named = (named == "cuda_runtime") | (named == "overhead")
    types = np.where(is_cpu, np.where(cpu_named, named, "cpu_op"),
                     np.where((named == "gpu_memcpy") | (named == "gpu_memset"), named, "kernel")).astype(object)
    annotation = flag("is_user_annotation")
    types[annotation] = np.where(is_cpu[annotation], "user_annotation", "gpu_user_annotation")
    types[flag("is_python_function") & is_cpu] = "python_function"
    return types.tolist()


def _type_by_name(name: str) -> str:
    """The activity type a name implies ("" where only the device type can tell)."""
    if _RUNTIME_CALL.match(name) or name == _UNNAMED_RUNTIME_CALL:
        return "cuda_runtime"
    if name in _OVERHEAD_NAMES:
        return "overhead"
    if name.startswith("Memcpy"):
        return "gpu_memcpy"
    return "gpu_memset" if name.startswith("Memset") else ""


def _shape_rows(names: list[str], op_rows: np.ndarray) -> list[int]:
    """Rows whose shapes are worth fetching: operators that are not views or allocations."""
    return [i for i in op_rows.tolist() if names[i] not in SHAPELESS_OPS]


def _input_signature(metadata: str) -> str:
    """The part of an op's Kineto metadata that describes its inputs.

    It starts at ``"Input type"`` (before it come per-call fields such as the
    autograd sequence number) and stops before the per-event ``"Ev Idx"``, so
    calls with equal inputs share one signature.
    """
    start = metadata.find('"Input type": ')
    if start < 0:
        return ""
    end = metadata.rfind(', "Ev Idx"')
    return metadata[start:] if end < start else metadata[start:end]


def _shapes_and_dtypes(signature: str) -> tuple[str | None, str | None]:
    """``Input Dims`` and ``Input type`` of an input signature, as compact JSON text.

    Kineto writes JSON lists (``"Input type": ["float", "Scalar"]``, ``"Input Dims":
    [[4, 64], []]``); TensorList inputs come as nested lists. No inputs (``[]``)
    counts as no shapes, as with events().
    """
    dims_at = signature.find('"Input Dims": ')
    if dims_at < 0:
        return None, None
    dims_at += len('"Input Dims": ')
    dims_end = signature.find(', "', dims_at)  # dims hold no quotes: the next field starts the end
    dims = signature[dims_at:] if dims_end < 0 else signature[dims_at:dims_end]
    if dims == "[]":
        return None, None
    types_at = len('"Input type": ')
    types_end = signature.find("]", types_at) + 1  # dtype names hold no brackets
    return dims.replace(" ", ""), signature[types_at:types_end].replace(", ", ",")


def _metadata_int(metadata: str, pattern: re.Pattern) -> int:
    found = pattern.search(metadata)
    return int(found.group(1)) if found else -1


def _finish(columns: dict, is_gpu: np.ndarray, process_id: int | None) -> dict:
    """The raw columns build_events takes, nulls masked (built from buffers: see trace.arrow_buffers)."""
    pid = os.getpid() if process_id is None else process_id
    resource = columns.pop("resource_id")
    correlation, linked, nbytes = columns["correlation_id"], columns["linked_correlation_id"], columns["bytes"]
    return {
        **columns,
        "duration_ns": np.maximum(columns["duration_ns"], 0),
        "device_type": dictionary(is_gpu.astype(np.int8), ["cpu", "gpu"]),
        "stream": from_numpy(resource, is_gpu),
        "process_id": np.full(len(is_gpu), pid, dtype=np.int64),
        "thread_id": from_numpy(resource, ~is_gpu),
        "correlation_id": from_numpy(correlation, correlation > 0),
        "linked_correlation_id": from_numpy(linked, linked > 0),
        "bytes": from_numpy(nbytes, nbytes >= 0),
    }
