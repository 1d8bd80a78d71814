"""What an event row is: the ``kind`` column's values.

Kept apart from the Arrow schema so that code which only needs the kinds (the
recorder's marks and telemetry buffers, running inside the user's program)
does not import pyarrow.
"""

from __future__ import annotations

import enum
import re


class Kind(str, enum.Enum):
    """What an event row is. Stored as a dictionary-encoded string column."""

    CPU_OP = "cpu_op"  # an aten/torch operator on a CPU thread
    KERNEL = "kernel"  # a GPU kernel
    MEMCPY = "memcpy"  # a GPU copy (H2D, D2H, D2D)
    MEMSET = "memset"  # a GPU memset
    RUNTIME = "runtime"  # a CUDA/HIP runtime or driver call (cudaLaunchKernel...)
    ANNOTATION = "annotation"  # a user range: record_function, ProfilerStep#N
    GPU_ANNOTATION = "gpu_annotation"  # a user range projected on a GPU stream
    PYTHON_FUNCTION = "python_function"  # a Python frame (with_stack / imported)
    SAMPLE = "sample"  # a telemetry sample: ``name`` is the metric, ``value`` its value
    PHASE = "phase"  # a profkit mark: train_step, prefill, decode, user phase
    OTHER = "other"  # anything else an importer kept


#: The phase mark of one training step (an optimizer step): written by profkit record's optimizer hook
#: and by the importer from torch.optim's profiling ranges.
TRAIN_STEP_PHASE = "train_step"

#: GPU-side kinds: they have a device index and a stream, not a thread.
GPU_KINDS = frozenset({Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value, Kind.GPU_ANNOTATION.value})
#: Sample names of torch's allocator totals (``profile_memory``: a row per allocation and free; see
#: collectors/allocator.py): bytes in live tensors, bytes held from the device, and the former counted
#: from when recording started (torch before 2.13 gives each event's size, not the totals).
ALLOCATED_SAMPLE = "allocated_bytes"
RESERVED_SAMPLE = "reserved_bytes"
ALLOCATED_SINCE_START_SAMPLE = "allocated_since_start_bytes"
ALLOCATOR_SAMPLES = frozenset({ALLOCATED_SAMPLE, RESERVED_SAMPLE, ALLOCATED_SINCE_START_SAMPLE})

#: Host-side kinds that nest on a thread (parent_id/depth are computed among these).
HOST_NESTED_KINDS = frozenset(
    {Kind.CPU_OP.value, Kind.ANNOTATION.value, Kind.RUNTIME.value, Kind.PYTHON_FUNCTION.value}
)

#: Operators whose argument values (torch.profiler's "Concrete Inputs": strides, paddings, kernel sizes)
#: a trace keeps, in ``extra`` as ``{"concrete_inputs": [...]}``: convolutions and pooling, whose output
#: size (so flop and bytes) depends on them. An imported trace keeps every op's; profkit record these
#: only (reading them costs a parse per op). Every cost formula that reads values covers ops matched here.
ARGUMENT_VALUE_OPS = re.compile(r"^aten::\w*(?:conv|pool)\w*$")

#: Operators that take a TensorList (cat, stack, the optimizers' _foreach_*): torch.profiler records
#: its elements' shapes but not their dtype, which profkit record reads from the profiler's event tree
#: and keeps in ``extra`` as ``{"tensor_list_dtype": "torch.float32"}`` (a GPU trace's kernels name it
#: too). Every cost formula that reads TensorLists covers ops matched here.
TENSOR_LIST_OPS = re.compile(r"^aten::(?:cat|stack|_foreach_\w+)$")
