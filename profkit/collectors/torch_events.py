"""Extract events from a finished torch.profiler run into raw trace columns.

Reads ``prof.profiler.kineto_results.events()`` directly: no ``prof.events()``,
no ``key_averages()``, no Chrome-trace JSON round trip (REFERENCE.md §5).
Shapes and dtypes are fetched only for operators whose cost can depend on
them; views and allocations are skipped because fetching shapes is most of
the extraction cost.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pyarrow as pa

from ..trace.schema import GPU_KINDS, Kind

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


def extract_events(kineto_results, *, with_shapes: bool = True, process_id: int | None = None) -> dict:
    # Tens of thousands of short-lived objects: the cyclic GC would run hundreds of
    # times for nothing (nothing here makes cycles), so it is paused meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _extract(kineto_results, with_shapes=with_shapes, process_id=process_id)
    finally:
        if gc_was_enabled:
            gc.enable()


def _extract(kineto_results, *, with_shapes: bool, process_id: int | None) -> dict:
    """Raw event columns (see profkit.trace.build_events) from ``kineto_results``.

    One pass per attribute, and the GPU-only attributes (device index, linked
    correlation id) and copy sizes only for the rows that have them: each
    pybind call costs about half a microsecond per event.
    """
    events = kineto_results.events()
    pid = os.getpid() if process_id is None else process_id
    n = len(events)
    names = [e.name() for e in events]
    other = Kind.OTHER.value
    kinds = [ACTIVITY_KINDS.get(a, other) for a in (e.activity_type() for e in events)]
    kind_array = np.array(kinds, dtype=object)
    start = np.fromiter((e.start_ns() for e in events), dtype=np.int64, count=n)
    duration = np.fromiter((e.duration_ns() for e in events), dtype=np.int64, count=n)
    # CPU events: the resource id is the OS thread id (what Kineto's JSON calls tid); GPU: the stream.
    resource = np.fromiter((e.device_resource_id() for e in events), dtype=np.int64, count=n)
    correlation = np.fromiter((e.correlation_id() for e in events), dtype=np.int64, count=n)

    is_gpu = np.isin(kind_array, list(GPU_KINDS))
    gpu_rows = np.flatnonzero(is_gpu)
    device_index = np.full(n, -1, dtype=np.int64)
    linked = np.full(n, -1, dtype=np.int64)
    device_index[gpu_rows] = [events[i].device_index() for i in gpu_rows]
    linked[gpu_rows] = [events[i].linked_correlation_id() for i in gpu_rows]
    nbytes = np.full(n, -1, dtype=np.int64)
    if n and hasattr(events[0], "nbytes"):  # feature detection: older torch has no nbytes
        copy_rows = np.flatnonzero(np.isin(kind_array, [Kind.MEMCPY.value, Kind.MEMSET.value]))
        nbytes[copy_rows] = [events[i].nbytes() for i in copy_rows]

    shapes: list[str | None] = [None] * n
    dtypes: list[str | None] = [None] * n
    if with_shapes:
        for i, (event, kind, name) in enumerate(zip(events, kinds, names)):
            if kind == "cpu_op" and name not in SHAPELESS_OPS:
                event_shapes = event.shapes()
                if event_shapes:
                    # A list of int lists prints as JSON already; dtype names never contain quotes.
                    shapes[i] = str(event_shapes).replace(" ", "")
                    dtypes[i] = '["' + '","'.join(event.dtypes()) + '"]'

    return {
        "kind": kinds,
        "name": names,
        "start_ns": start,
        "duration_ns": np.maximum(duration, 0),
        "device_type": pa.DictionaryArray.from_arrays(is_gpu.astype(np.int8), ["cpu", "gpu"]),
        "device_index": device_index,
        "stream": pa.array(resource, mask=~is_gpu),
        "process_id": np.full(n, pid, dtype=np.int64),
        "thread_id": pa.array(resource, mask=is_gpu),
        "correlation_id": pa.array(correlation, mask=correlation <= 0),
        "linked_correlation_id": pa.array(linked, mask=linked <= 0),
        "input_shapes": shapes,
        "input_dtypes": dtypes,
        "bytes": pa.array(nbytes, mask=nbytes < 0),
    }
