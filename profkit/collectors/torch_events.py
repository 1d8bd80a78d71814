"""Extract events from a finished torch.profiler run into raw trace columns.

Reads ``prof.profiler.kineto_results.events()`` directly: no ``prof.events()``,
no ``key_averages()``, no Chrome-trace JSON round trip (REFERENCE.md §5).
Shapes and dtypes are fetched only for operators whose cost can depend on
them; views and allocations are skipped because fetching shapes is most of
the extraction cost.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..trace.schema import Kind

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


def extract_events(kineto_results, *, with_shapes: bool = True, process_id: int | None = None) -> pd.DataFrame:
    """Raw event columns (see profkit.trace.build_events) from ``kineto_results``."""
    events = kineto_results.events()
    pid = os.getpid() if process_id is None else process_id
    n = len(events)
    names = [e.name() for e in events]
    activity = [e.activity_type() for e in events]
    kinds = [ACTIVITY_KINDS.get(a, Kind.OTHER.value) for a in activity]
    start = np.fromiter((e.start_ns() for e in events), dtype=np.int64, count=n)
    duration = np.fromiter((e.duration_ns() for e in events), dtype=np.int64, count=n)
    device_types = [e.device_type() for e in events]
    gpu_types = {t for t in set(device_types) if str(t).endswith(("CUDA", "HIP", "PrivateUse1"))}
    is_gpu = np.fromiter((t in gpu_types for t in device_types), bool, n)
    device_index = np.fromiter((e.device_index() for e in events), dtype=np.int64, count=n)
    resource = np.fromiter((e.device_resource_id() for e in events), dtype=np.int64, count=n)
    correlation = np.fromiter((e.correlation_id() for e in events), dtype=np.int64, count=n)
    linked = np.fromiter((e.linked_correlation_id() for e in events), dtype=np.int64, count=n)
    nbytes = _optional_ints(events, "nbytes", n)

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


    frame = pd.DataFrame(
        {
            "kind": kinds,
            "name": names,
            "start_ns": start,
            "duration_ns": np.maximum(duration, 0),
            "device_type": np.where(is_gpu, "gpu", "cpu"),
            "device_index": np.where(is_gpu, device_index, -1).astype(np.int16),
            "stream": _masked(resource, is_gpu, "Int32"),
            "process_id": np.int64(pid),
            # CPU events: the resource id is the OS thread id (what Kineto's JSON calls tid).
            "thread_id": _masked(resource, ~is_gpu),
            "correlation_id": _masked(correlation, correlation > 0),
            "linked_correlation_id": _masked(linked, linked > 0),
            "input_shapes": shapes,
            "input_dtypes": dtypes,
            "bytes": _masked(nbytes, nbytes > 0) if nbytes is not None else None,
        }
    )
    return frame


def _masked(values: np.ndarray, keep: np.ndarray, dtype: str = "Int64") -> pd.arrays.IntegerArray:
    """Nullable integers: ``values`` where ``keep``, null elsewhere."""
    return pd.arrays.IntegerArray(np.where(keep, values, 0).astype(dtype.lower()), ~np.asarray(keep, bool))


def _optional_ints(events, method: str, n: int) -> np.ndarray | None:
    """Per-event integer from ``method`` where this torch version has it (feature detection)."""
    if n == 0 or not hasattr(events[0], method):
        return None
    return np.fromiter((getattr(e, method)() for e in events), dtype=np.int64, count=n)
