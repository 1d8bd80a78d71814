"""Trace format v1: the contract between collectors and analyzers.

One Parquet file per profiled process. Every event (CPU op, GPU kernel, memcpy,
memset, runtime call, annotation, telemetry sample, phase mark) is one row of a
single table; columns that do not apply to a kind are null. File-level facts
live as JSON under the ``profkit`` key of the Parquet key-value metadata.
docs/trace-format.md describes the same thing for users; keep them in step.
"""

from __future__ import annotations

import pyarrow as pa

from .kinds import GPU_KINDS, HOST_NESTED_KINDS, Kind  # noqa: F401 (re-exported: part of the contract)

FORMAT_VERSION = 1
METADATA_KEY = b"profkit"


_DICT_STR = pa.dictionary(pa.int32(), pa.string())

#: (column, arrow type, meaning). Units are in the names.
COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("event_id", pa.int64(), "row id, unique in the file; rows are sorted by start_ns"),
    ("kind", _DICT_STR, "one of Kind"),
    ("name", _DICT_STR, "op, kernel, range or metric name"),
    ("start_ns", pa.int64(), "start, Unix epoch ns (the profiler's clock == time.time_ns())"),
    ("duration_ns", pa.int64(), "duration in ns (0 for samples and instant marks)"),
    ("device_type", _DICT_STR, "'cpu' or 'gpu'"),
    ("device_index", pa.int16(), "GPU index as the process saw it (-1 for host events)"),
    ("stream", pa.int32(), "GPU stream id (null on the host)"),
    ("process_id", pa.int64(), "OS process id"),
    ("thread_id", pa.int64(), "host thread id (null on the GPU)"),
    ("correlation_id", pa.int64(), "the profiler's correlation id"),
    ("op_id", pa.int64(), "GPU events: event_id of the CPU op that launched it"),
    ("launch_id", pa.int64(), "GPU events: event_id of the runtime call that launched it"),
    ("parent_id", pa.int64(), "host events: event_id of the innermost enclosing host event"),
    ("depth", pa.int16(), "host events: nesting depth on the thread (0 = outermost)"),
    ("input_shapes", _DICT_STR, "CPU ops: JSON list of input shapes, e.g. [[8,512],[512,512]]"),
    ("input_dtypes", _DICT_STR, "CPU ops: JSON list of input dtypes, e.g. [\"float\",\"float\"]"),
    ("bytes", pa.int64(), "memcpy/memset: bytes moved"),
    ("value", pa.float64(), "samples: the metric's value in the unit its name says"),
    ("batch_size", pa.int32(), "phase marks: sequences in the pass (when known)"),
    ("token_count", pa.int64(), "phase marks: tokens processed in the pass (when known)"),
    ("extra", pa.string(), "JSON object with anything else (grid, block, sequence_nr...)"),
)

COLUMN_NAMES = tuple(name for name, _, _ in COLUMNS)
ARROW_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in COLUMNS])
