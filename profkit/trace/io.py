"""Read and write trace files: atomic writes, one-line errors on bad input."""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import TraceFormatError
from .arrow_buffers import cast_table, to_numpy, validity
from .schema import ARROW_SCHEMA, FORMAT_VERSION, METADATA_KEY, Kind

if TYPE_CHECKING:
    import pandas as pd


def _pandas_types() -> dict:
    """Nullable integer columns read as pandas' nullable dtypes, so a column's dtype
    does not depend on whether this particular file has a null in it. (pandas is
    imported here, not at module level: writing a trace must not need it.)"""
    import pandas as pd

    return {pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}


#: Columns every row has: plain numpy int64 in pandas (fast arithmetic).
_NEVER_NULL = ("event_id", "start_ns", "duration_ns", "process_id")
#: Columns without which an event is no event: a file with a null in one is refused when it is read.
_REQUIRED_VALUES = frozenset({"event_id", "start_ns", "duration_ns"})


#: Dictionary pages for the repeated strings only: tried on unique integers they cost write time and
#: then fall back, leaving a bigger file (52.9k events: 0.06 -> 0.035 s, 863 -> 303 KB with the line below).
_DICTIONARY_COLUMNS = [f.name for f in ARROW_SCHEMA if pa.types.is_dictionary(f.type)]
#: Columns that grow row by row (rows are sorted by start; ids follow): delta encoding stores the
#: small differences. Every Parquet reader decodes it (a standard encoding since format 2.0).
_DELTA_COLUMNS = {name: "DELTA_BINARY_PACKED" for name in
                  ("event_id", "start_ns", "parent_id", "op_id", "launch_id", "correlation_id")}
#: Min/max statistics for the sorted columns only: a reader (DuckDB, Polars, pyarrow filters) can skip
#: row groups by time or id with them; on the other, interleaved, columns they prune nothing and cost
#: ~20 % of the write (a 4.7k-event rank file: 5.0 -> 4.1 ms).
_STATISTICS_COLUMNS = ["event_id", "start_ns"]


def write_trace(path: str | os.PathLike, table: pa.Table, metadata: dict[str, Any]) -> Path:
    """Write ``table`` with ``metadata`` to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, **metadata}
    table = cast_table(table, ARROW_SCHEMA).replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        pq.write_table(table, tmp_name, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS,
                       column_encoding=_DELTA_COLUMNS, write_statistics=_STATISTICS_COLUMNS,
                       row_group_size=1 << 20)
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; a trace is an ordinary file
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file-level metadata of a trace (cheap: reads only the footer)."""
    path = Path(path)
    schema = _read_schema(path)
    return _decode_metadata(path, schema.metadata)


class Trace:
    """One process's trace: ``events`` (pandas) and its file-level ``metadata``.

    A loaded trace reads its Arrow columns from the file in memory on first use
    (``chunk``: one column; ``arrow``: the whole table) and builds the pandas
    ``events`` on first use: the report reads the columns it needs and never the rest.
    """

    def __init__(self, events: pd.DataFrame | None = None, metadata: dict[str, Any] | None = None,
                 path: Path | None = None, *, arrow: pa.Table | None = None, reader: _ColumnReader | None = None):
        if events is None and arrow is None and reader is None:
            raise TypeError("Trace needs events or an arrow table")
        self._events = events
        self._arrow = arrow
        self._reader = reader
        self.metadata = metadata if metadata is not None else {}
        self.path = path

    def __repr__(self) -> str:
        rows = len(self._events) if self._events is not None else self.num_rows
        return f"Trace(path={self.path!r}, events={rows} rows, metadata keys={sorted(self.metadata)})"

    @property
    def arrow(self) -> pa.Table | None:
        """The Arrow table of a loaded trace (its columns read on first use), else None."""
        if self._reader is not None:  # every column now: the reader (and the file's bytes) are let go
            self._arrow, self._reader = self._reader.table(), None
        return self._arrow

    @arrow.setter
    def arrow(self, table: pa.Table | None) -> None:
        self._arrow, self._reader = table, None

    @property
    def num_rows(self) -> int:
        return self._reader.num_rows if self._reader is not None else self.arrow.num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self._reader.names) if self._reader is not None else self.arrow.column_names

    @property
    def one_chunk(self) -> bool:
        """Whether each Arrow column is one array (``chunk`` reads it)."""
        if self._reader is not None:
            return self._reader.row_groups == 1
        return self.arrow is not None and all(column.num_chunks == 1 for column in self.arrow.columns)

    def prefetch(self, names: Iterable[str]) -> None:
        """Read these columns of a loaded trace now, in one read (cheaper than one read each)."""
        if self._reader is not None:
            self._reader.prefetch(names)

    def chunk(self, name: str) -> pa.Array:
        """Column ``name`` as its one Arrow array (see ``one_chunk``), read from the file on first use."""
        column = self._reader.column(name) if self._reader is not None else self.arrow.column(name)
        return column.chunk(0) if column.num_chunks else pa.array([], type=column.type)  # (a file of no rows)

    @property
    def events(self) -> pd.DataFrame:
        if self._events is None:
            self._events = _to_pandas(self.arrow)
        return self._events

    def of_kind(self, *kinds: Kind | str) -> pd.DataFrame:
        wanted = [k.value if isinstance(k, Kind) else k for k in kinds]
        return self.events[self.events["kind"].isin(wanted)]

    @property
    def ops(self) -> pd.DataFrame:
        """CPU operators."""
        return self.of_kind(Kind.CPU_OP)

    @property
    def kernels(self) -> pd.DataFrame:
        """GPU kernels."""
        return self.of_kind(Kind.KERNEL)

    @property
    def samples(self) -> pd.DataFrame:
        """Telemetry samples (long format: name = metric, value)."""
        return self.of_kind(Kind.SAMPLE)

    @property
    def phases(self) -> pd.DataFrame:
        """Phase and step marks."""
        return self.of_kind(Kind.PHASE)

    @property
    def rank(self) -> int:
        return int(self.metadata.get("rank") or 0)


#: Below this many rows one thread decodes the file: starting Arrow's thread pool costs more than it
#: saves (12k events: ~12 ms first read in a process with threads, ~9.5 ms without; CPU time ~15 vs ~12 ms).
_THREADED_ROWS = 1_000_000


def load(path: str | os.PathLike) -> Trace:
    """Read one trace file; raise TraceFormatError with a one-line reason if it is not one."""
    path = Path(path)
    parquet, in_memory = _open(path, whole=True)  # (a file too big to hold twice is read from disk)
    reader = None
    try:
        schema = parquet.schema_arrow
        metadata = _decode_metadata(path, schema.metadata)
        present = set(schema.names)
        missing = [f.name for f in ARROW_SCHEMA if f.name not in present]
        if missing:
            raise TraceFormatError(f"{path}: missing columns {', '.join(missing)}")
        reader = _ColumnReader(path, parquet, schema)
        if in_memory:  # columns read on first use, from the bytes in memory
            return Trace(metadata=metadata, path=path, reader=reader)
        return Trace(metadata=metadata, path=path, arrow=reader.table())  # a big file: read now, then closed
    finally:
        if reader is None or not in_memory:
            parquet.close()


class _ColumnReader:
    """The columns of an opened trace file, each read on first use and kept: a report reads
    14 of the 22 (the ids, names and times, not the process, thread and stream columns:
    ~1.5 ms less on the H100 Qwen trace). Unreadable data is a TraceFormatError when read."""

    def __init__(self, path: Path, parquet: pq.ParquetFile, schema: pa.Schema):
        self.path, self._parquet, self._schema = path, parquet, schema
        self.names = schema.names
        self.num_rows = parquet.metadata.num_rows
        self.row_groups = parquet.metadata.num_row_groups
        self._read: dict[str, pa.ChunkedArray] = {}

    def column(self, name: str) -> pa.ChunkedArray:
        if name not in self._read:
            self._read[name] = self._columns([name])[0]
        return self._read[name]

    def prefetch(self, names: Iterable[str]) -> None:
        missing = [name for name in names if name not in self._read and name in self.names]
        if missing:
            self._read.update(zip(missing, self._columns(missing)))

    def table(self) -> pa.Table:
        """All columns (those not read yet in one read), with the file's schema and metadata."""
        self.prefetch(self.names)
        return pa.Table.from_arrays([self._read[name] for name in self.names], schema=self._schema)

    def _columns(self, names: list[str]) -> list[pa.ChunkedArray]:
        try:
            columns = self._parquet.read(columns=names, use_threads=self.num_rows >= _THREADED_ROWS).columns
        except (pa.ArrowException, OSError) as exc:
            raise TraceFormatError(f"{self.path}: unreadable Parquet data ({_first_line(exc)})") from None
        for name, column in zip(names, columns):
            if name in _REQUIRED_VALUES and column.null_count:
                count = column.null_count
                raise TraceFormatError(f"{self.path}: {count} {'event has' if count == 1 else 'events have'} no "
                                       f"{name} (every event has one: see docs/trace-format.md)")
        return columns


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """The events table as pandas: what ``table.to_pandas`` gives with the nullable integer types
    (and plain int64 for the never-null columns), built column by column from one-chunk arrays:
    no per-column pass of pandas' generic conversion, no second pass to unbox never-null columns."""
    import pandas as pd

    nullable = _pandas_types()
    if any(column.num_chunks != 1 for column in table.columns):  # several row groups: the generic way
        events = table.to_pandas(types_mapper=nullable.get)
        for name in _NEVER_NULL:
            if not events[name].hasnans:
                events[name] = events[name].to_numpy(dtype="int64")
        return events
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        array = column.chunk(0)
        if pa.types.is_dictionary(array.type) and len(array.dictionary):  # (an empty one reads as object)
            codes = array.indices.to_numpy(zero_copy_only=False)
            if array.null_count:
                codes = np.where(array.is_null().to_numpy(zero_copy_only=False), -1, codes)
            categories = pd.Index(array.dictionary.to_pandas())
            columns[name] = pd.Categorical.from_codes(codes, categories=categories, validate=False)
        elif array.type in nullable and array.null_count:
            columns[name] = _nullable_from_buffers(array, nullable[array.type])
        elif array.type in nullable and name not in _NEVER_NULL:
            columns[name] = pd.array(array.to_numpy(zero_copy_only=False), dtype=nullable[array.type])
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, copy=False)


def _nullable_from_buffers(array: pa.Array, dtype) -> Any:
    """An integer array with nulls as pandas' nullable type (nulls hold 0), read from its validity
    bitmap and data buffer: pyarrow's fill_null/is_null kernels cost more, the first call most."""
    import pandas as pd

    return pd.arrays.IntegerArray(to_numpy(array, 0).astype(dtype.numpy_dtype, copy=False), ~validity(array))


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for the *.parquet files in it; the ``-o`` path of a distributed
    recording, which wrote ``<stem>.rank<R>.parquet`` instead, for those rank files (in rank order)."""
    found: list[Path] = []
    for item in paths:
        item = Path(item)
        if item.is_dir():
            inside = sorted(item.glob("*.parquet"))
            if not inside:
                raise TraceFormatError(f"{item}: folder holds no .parquet traces")
            found.extend(inside)
        else:
            found.extend(rank_files(item) if not item.exists() else [item])
    return found


def rank_files(path: Path) -> list[Path]:
    """The rank traces ``profkit record -o PATH -- torchrun ...`` wrote for ``path``
    (``<stem>.rank<R>.parquet``, rank order), or ``[path]`` itself when there are none."""
    stem = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name
    pattern = re.compile(re.escape(stem) + r"\.rank(\d+)\.parquet")
    ranks = sorted((int(m.group(1)), p) for p in path.parent.glob(f"{glob.escape(stem)}.rank*.parquet")
                   if (m := pattern.fullmatch(p.name)))
    return [p for _, p in ranks] or [path]


def _read_schema(path: Path) -> pa.Schema:
    parquet, _ = _open(path)
    with parquet:
        return parquet.schema_arrow


#: Files up to this size are read whole into memory by ``load`` (the decoded table is several times bigger).
_WHOLE_BYTES = 256 << 20


def _open(path: Path, whole: bool = False) -> tuple[pq.ParquetFile, bool]:
    """The file, its footer read (one open for the schema and the data), and whether it was read into
    memory. ``whole``: the bytes of a file up to _WHOLE_BYTES read at once and parsed in memory, for a
    caller that reads every column (no filesystem lookup, no read per column chunk: ~1 ms less on the
    first load of a process); the reader keeps the bytes, so columns read later need no file."""
    if not path.exists():
        raise TraceFormatError(f"{path}: no such file")
    if path.is_dir():
        raise TraceFormatError(f"{path}: is a folder, not a trace file")
    try:
        in_memory = whole and path.stat().st_size <= _WHOLE_BYTES
        return pq.ParquetFile(pa.BufferReader(path.read_bytes()) if in_memory else path), in_memory
    except (pa.ArrowException, OSError) as exc:
        raise TraceFormatError(f"{path}: not a Parquet file or truncated ({_first_line(exc)})") from None


def _decode_metadata(path: Path, raw: dict | None) -> dict[str, Any]:
    if not raw or METADATA_KEY not in raw:
        raise TraceFormatError(f"{path}: not a profkit trace (Parquet without profkit metadata)")
    try:
        metadata = json.loads(raw[METADATA_KEY])
    except ValueError:
        raise TraceFormatError(f"{path}: profkit metadata is not valid JSON") from None
    version = metadata.get("format_version")
    if not isinstance(version, int):
        raise TraceFormatError(f"{path}: profkit metadata has no format_version")
    if version > FORMAT_VERSION:
        raise TraceFormatError(
            f"{path}: trace format v{version} is newer than this profkit reads (v{FORMAT_VERSION}); upgrade profkit"
        )
    return metadata


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def update_metadata(path: str | os.PathLike, **changes: Any) -> Path:
    """Rewrite a trace with some metadata fields changed (atomic, like every write)."""
    path = Path(path)
    metadata = read_metadata(path)
    metadata.update(changes)
    table = pq.read_table(path)
    return write_trace(path, table, metadata)
