"""numpy arrays and Python strings to and from Arrow arrays, through their buffers.

pyarrow's own converters (``pa.array``, ``pa.scalar``, ``Array.to_numpy``)
first ask its pandas shim whether the object is a pandas one, and that imports
pandas: about 0.35 s, paid at the end of every recording, inside the user's
program. The recorder's path (torch_events, marks, telemetry, build_events,
write_trace) therefore builds and reads fixed-width columns as raw buffers
here, and strings as a small Python-built dictionary plus int32 codes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NUMPY_TO_ARROW = {
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.int16): pa.int16(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.float64): pa.float64(),
}

#: The numpy dtype of each Arrow type that ``to_numpy`` and ``from_numpy`` take.
ARROW_TO_NUMPY = {arrow: numpy for numpy, arrow in _NUMPY_TO_ARROW.items()}


def from_numpy(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A fixed-width numpy array (ints, floats or bools) as an Arrow array; ``valid`` False -> null."""
    values = np.ascontiguousarray(values)
    n = len(values)
    if values.dtype == np.bool_:
        arrow_type, data = pa.bool_(), _bits(values)
    else:
        arrow_type, data = _NUMPY_TO_ARROW[values.dtype], pa.py_buffer(values)
    if valid is None or valid.all():
        return pa.Array.from_buffers(arrow_type, n, [None, data], null_count=0)
    return pa.Array.from_buffers(arrow_type, n, [_bits(valid), data], null_count=int(n - np.count_nonzero(valid)))


def to_arrow(values) -> pa.Array | pa.ChunkedArray:
    """Any raw column a collector hands over (Arrow, numpy, or a list) as an Arrow array.

    Lists and object arrays hold strings, or numbers with None for missing ones.
    Anything else (rare: only hand-built parts) goes through ``pa.array``.
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, np.ndarray) and (values.dtype in _NUMPY_TO_ARROW or values.dtype == np.bool_):
        return from_numpy(values)
    present = [value for value in values if value is not None]
    if not present:
        return pa.nulls(len(values))
    if all(isinstance(value, str) for value in present):
        return strings(values)
    if all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in present):
        return _numbers(values, np.int64)
    if all(isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) for value in present):
        return _numbers(values, np.float64)
    return pa.array(values)


def _numbers(values, dtype) -> pa.Array:
    valid = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    filled = np.fromiter((0 if value is None else value for value in values), dtype=dtype, count=len(values))
    return from_numpy(filled, valid)


def dictionary(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    """A dictionary array from its int codes and its (few) string values."""
    return pa.DictionaryArray.from_arrays(from_numpy(np.asarray(codes, dtype=np.int32)), text_array(values))


def strings(values: Sequence[str | None]) -> pa.DictionaryArray:
    """Python strings (None -> null) as a dictionary array: codes by first appearance."""
    code_of: dict[str | None, int] = {}
    codes = np.fromiter((code_of.setdefault(value, len(code_of)) for value in values), dtype=np.int32,
                        count=len(values))
    distinct = list(code_of)
    if None in code_of:  # nulls are null codes, not a dictionary entry
        none_code = code_of[None]
        valid = codes != none_code
        codes = np.where(codes > none_code, codes - 1, codes)
        distinct.remove(None)
    else:
        valid = None
    return pa.DictionaryArray.from_arrays(from_numpy(codes, valid), text_array(distinct))


def text_array(values: Sequence[str], *, empty_is_null: bool = False) -> pa.Array:
    """``str`` values as an Arrow string array, built from its buffers (``empty_is_null``: "" -> null).

    Raises TypeError if some value is not a str (a number, None...).
    """
    n = len(values)
    joined = "".join(values)
    data = joined.encode()
    if len(data) == len(joined):  # ASCII: one byte per character
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    else:
        lengths = np.fromiter((len(value.encode()) for value in values), dtype=np.int64, count=n)
    if len(data) >= 2**31:  # pragma: no cover - callers pass windows and dictionaries, far smaller
        raise ValueError("texts beyond 2 GiB in one string array")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    valid = lengths > 0 if empty_is_null else None
    nulls = 0 if valid is None else n - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(pa.string(), n, [_bits(valid) if nulls else None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)], null_count=nulls)


def to_numpy(column: pa.Array | pa.ChunkedArray, missing) -> np.ndarray:
    """A fixed-width Arrow column as a writable numpy array, nulls as ``missing``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        raise TypeError("to_numpy takes fixed-width columns, not dictionaries")
    n, offset = len(column), column.offset
    data = column.buffers()[1]
    if pa.types.is_boolean(column.type):
        dtype = np.dtype(bool)
        values = _unbits(data, offset, n) if data is not None else None
    else:
        dtype = ARROW_TO_NUMPY[column.type]
        values = np.frombuffer(data, dtype=dtype, count=offset + n)[offset:].copy() if data is not None else None
    if values is None:  # an all-null array may come without a data buffer
        return np.full(n, missing, dtype=dtype)
    if column.null_count:
        values[~validity(column)] = missing
    return values


def validity(array: pa.Array) -> np.ndarray:
    """True where ``array`` holds a value (read from its validity bitmap)."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    return _unbits(array.buffers()[0], array.offset, len(array))


def _bits(flags: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(flags.astype(bool, copy=False), bitorder="little"))


def _unbits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little", count=offset + n)
    return bits[offset:].astype(bool)


def cast(array: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """``pc.cast(array, target)``, where a text column becomes a dictionary one by encoding it: pyarrow
    before 15 has no cast from string to dictionary ("Unsupported cast ... cast_dictionary")."""
    if pa.types.is_dictionary(target) and not pa.types.is_dictionary(array.type):
        encoded = pc.cast(array, target.value_type).dictionary_encode()
        return pc.cast(encoded, target)  # (the index type: dictionary_encode gives int32)
    return pc.cast(array, target)


def cast_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table.cast(schema)`` through ``cast``, column by column (same names, same order)."""
    if table.column_names != schema.names:
        raise ValueError(f"columns {table.column_names} are not the schema's {schema.names}")
    return pa.Table.from_arrays([cast(column, field.type) for column, field in zip(table.columns, schema)],
                                schema=schema)
