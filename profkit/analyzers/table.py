"""Events as numpy columns, each converted once: what the report's analyzers read.

A pandas DataFrame costs microseconds per column access (an Index, a Series,
often an Arrow-backed string array each time), and on a trace of ~10k events
that per-call overhead was most of a report's time. ``EventTable`` holds the
columns as they came (the Arrow arrays of a loaded file, a DataFrame's columns,
or the numpy arrays, ``Coded`` text and ``Masked`` integers an analyzer built:
classify_table's rows) and converts each one to numpy on first use, once:

- text columns as ``(codes, labels)``: int64 codes (-1: null) into an object array of str;
- integer columns as int64 values and a not-null mask;
- float columns as float64 (NaN: null).

It answers the few DataFrame calls the analyzers make (``len``, ``in``,
``table[name]``: a ``Column`` whose ``to_numpy`` is the cached array), and the
columns.py helpers (``label_codes``, ``int_values``, ``id_values``...) take a
``Column`` as they take a Series. ``frame`` is the DataFrame, built (or handed
over) only when a caller needs one. Cached arrays are read-only: a caller that
wants to change one copies it.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import pyarrow as pa

from ..trace.arrow_buffers import from_numpy as _arrow_from_numpy
from ..trace.arrow_buffers import to_numpy as _arrow_to_numpy
from ..trace.arrow_buffers import validity as _arrow_validity


class Coded(NamedTuple):
    """A text column as codes (-1: null) into its labels: a source ``EventTable`` reads as it is."""

    codes: np.ndarray
    labels: np.ndarray


class Masked(NamedTuple):
    """An integer column as values and a not-null mask: a source ``EventTable`` reads as it is."""

    values: np.ndarray
    known: np.ndarray


class Deferred(NamedTuple):
    """A column read on first use: ``read()`` returns one of the sources ``EventTable`` reads (a
    loaded trace's Arrow column, read from the file only when an analyzer asks for it)."""

    read: Callable[[], Any]


class _Sources(dict):
    """The columns by name; a ``Deferred`` one is read on first access and kept."""

    def __getitem__(self, name: str) -> Any:
        value = dict.__getitem__(self, name)
        if type(value) is Deferred:
            value = value.read()
            self[name] = value
        return value


class Column:
    """One column of an ``EventTable`` (a name and its table: conversions are the table's, cached)."""

    __slots__ = ("name", "table")

    def __init__(self, table: EventTable, name: str):
        self.table, self.name = table, name

    def __len__(self) -> int:
        return len(self.table)

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return self.table.labels(self.name)

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        return self.table.ids(self.name)

    def floats(self) -> np.ndarray:
        return self.table.floats(self.name)

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        """The values as ``Series.to_numpy(dtype)`` gives them (text: objects, NaN for a null)."""
        table = self.table
        source = table._source[self.name]
        if isinstance(source, np.ndarray):  # a numpy column (objects: as they are, None stays None)
            return source if dtype is None else source.astype(dtype, copy=False)
        if table.is_text(self.name):
            codes, labels = table.labels(self.name)
            return np.append(labels, np.nan)[codes].astype(dtype or object, copy=False)
        if not table.is_integer(self.name):
            values = table.floats(self.name)
            return values if dtype is None else values.astype(dtype, copy=False)
        values, known = table.ids(self.name)
        if not known.all():
            if dtype is not None and np.dtype(dtype).kind in "iub":
                raise ValueError(f"column {self.name!r} has nulls: cannot read it as {np.dtype(dtype)}")
            return np.where(known, values, np.nan).astype(dtype or np.float64, copy=False)
        return values.astype(dtype or table.integer_dtype(self.name), copy=False)


class EventTable:
    """Named columns of equal length, converted to numpy once each (see the module docstring).

    ``columns`` maps names to Arrow arrays (one chunk), pandas Series or numpy arrays (or a
    ``Deferred`` read of one);
    ``frame`` builds the DataFrame of the same rows when a caller asks for it.
    """

    def __init__(self, columns: Mapping[str, Any], length: int, frame: Callable[[], Any] | None = None):
        self._source = _Sources(columns)
        self._length = length
        self._frame_of = frame
        self._frame = None
        self._cache: dict[tuple, Any] = {}

    @classmethod
    def from_arrow(cls, table: pa.Table, frame: Callable[[], Any] | None = None,
                   **extra: np.ndarray) -> EventTable:
        """The columns of a one-chunk-per-column Arrow table, plus ``extra`` numpy columns (e.g. rank)."""
        columns: dict[str, Any] = {}
        for name, column in zip(table.column_names, table.columns):
            if column.num_chunks != 1:
                raise ValueError(f"column {name!r} has {column.num_chunks} chunks: one expected")
            columns[name] = column.chunk(0)
        columns.update(extra)
        return cls(columns, table.num_rows, frame)

    @classmethod
    def from_frame(cls, frame) -> EventTable:
        """The columns of a pandas DataFrame (converted as the pandas-based helpers convert them)."""
        return cls({name: frame[name] for name in frame.columns}, len(frame), lambda: frame)

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: object) -> bool:
        return name in self._source

    def __getitem__(self, name: str) -> Column:
        if name not in self._source:
            raise KeyError(name)
        return Column(self, name)

    @property
    def columns(self) -> list[str]:
        return list(self._source)

    def take(self, at: np.ndarray) -> EventTable:
        """The rows at positions ``at``, in that order: a table whose columns are taken from this one's
        numpy forms on first use (text keeps its labels, integers their nulls and type)."""
        at = np.asarray(at, dtype=np.int64)
        return EventTable({name: Deferred(partial(self._taken, name, at)) for name in self._source}, len(at))

    def _taken(self, name: str, at: np.ndarray) -> Any:
        source = self._source[name]
        if isinstance(source, np.ndarray):
            return source[at]
        if self.is_text(name):
            codes, labels = self.labels(name)
            return Coded(codes[at], labels)
        if self.is_integer(name):
            values, known = self.ids(name)
            return Masked(values[at].astype(self.integer_dtype(name), copy=False), known[at])
        return self.floats(name)[at]

    @property
    def empty(self) -> bool:
        return self._length == 0

    @property
    def frame(self):
        """The same rows as a pandas DataFrame (built once, on first use)."""
        if self._frame is None:
            if self._frame_of is None:
                import pandas as pd

                self._frame = pd.DataFrame({name: Column(self, name).to_numpy() for name in self._source})
            else:
                self._frame = self._frame_of()
        return self._frame

    # ------------------------------------------------------------ conversions (cached, read-only)

    def is_text(self, name: str) -> bool:
        source = self._source[name]
        if isinstance(source, (Coded, Masked)):
            return isinstance(source, Coded)
        if isinstance(source, pa.Array):
            return pa.types.is_dictionary(source.type) or pa.types.is_string(source.type) \
                or pa.types.is_large_string(source.type) or pa.types.is_null(source.type)
        dtype = source.dtype
        return dtype == object or getattr(dtype, "kind", "O") == "O" or _is_pandas_text(dtype)

    def is_integer(self, name: str) -> bool:
        source = self._source[name]
        if isinstance(source, (Coded, Masked)):
            return isinstance(source, Masked)
        if isinstance(source, pa.Array):
            return pa.types.is_integer(source.type)
        return getattr(source.dtype, "kind", "O") in "iu"

    def integer_dtype(self, name: str) -> np.dtype:
        """The numpy type of an integer column's values (int64 for pandas' nullable ones)."""
        source = self._source[name]
        if isinstance(source, Masked):
            return source.values.dtype
        if isinstance(source, pa.Array):
            return np.dtype(source.type.to_pandas_dtype())
        return np.dtype(getattr(source.dtype, "numpy_dtype", source.dtype))

    def labels(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, labels) of a text column: ``labels[codes]`` is each row's text, code -1 a null."""
        return self._cached(("labels", name), lambda: _labels(self._source[name]))

    def ids(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(int64 values, not-null mask) of an integer column (nulls read as 0 in the values)."""
        return self._cached(("ids", name), lambda: _ids(self._source[name]))

    def ints(self, name: str, fill: int = 0) -> np.ndarray:
        """An integer column as int64, nulls as ``fill``."""
        def compute():
            values, known = self.ids(name)
            return values if known.all() or fill == 0 else np.where(known, values, fill)

        return self._cached(("ints", name, fill), compute)

    def floats(self, name: str) -> np.ndarray:
        """A numeric column as float64, NaN for a null."""
        def compute():
            source = self._source[name]
            if isinstance(source, pa.Array) and pa.types.is_floating(source.type):
                return _arrow_to_numpy(source, np.nan).astype(np.float64, copy=False)
            if self.is_integer(name):
                values, known = self.ids(name)
                return np.where(known, values.astype(np.float64), np.nan)
            return _float_values(source)

        return self._cached(("floats", name), compute)

    def texts_at(self, name: str, at: np.ndarray) -> np.ndarray:
        """The text of a text column at row positions ``at``, as objects (None: null); not cached."""
        source = self._source[name]
        if isinstance(source, pa.Array) and not pa.types.is_dictionary(source.type):
            out = np.empty(len(at), dtype=object)
            out[:] = source.take(_arrow_from_numpy(np.asarray(at, np.int64))).to_pylist()
            return out
        codes, labels = self.labels(name)
        return np.append(labels, None)[codes[at]]

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        found = self._cache.get(key)
        if found is None:
            found = compute()
            for array in found if isinstance(found, tuple) else (found,):
                array.flags.writeable = False
            self._cache[key] = found
        return found


def frame_of(events):
    """A DataFrame of ``events``: the table's own frame for an ``EventTable``, else ``events`` itself."""
    return events.frame if isinstance(events, EventTable) else events


def _is_pandas_text(dtype) -> bool:
    import pandas as pd

    return isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype))


def _labels(source) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, Coded):
        return np.asarray(source.codes, np.int64), np.asarray(source.labels, dtype=object)
    if isinstance(source, pa.Array):
        if pa.types.is_null(source.type):
            return np.full(len(source), -1, np.int64), np.zeros(0, dtype=object)
        if not pa.types.is_dictionary(source.type):
            source = source.dictionary_encode()
        codes = _arrow_to_numpy(source.indices, -1).astype(np.int64)
        labels = np.empty(len(source.dictionary), dtype=object)
        labels[:] = source.dictionary.to_pylist()
        return codes, labels
    if isinstance(source, np.ndarray):
        import pandas as pd

        source = pd.Series(source, dtype=object)
    from .columns import label_codes

    return label_codes(source)


def _ids(source) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, Masked):
        return np.asarray(source.values, np.int64), np.asarray(source.known, bool)
    if isinstance(source, pa.Array):
        return _arrow_to_numpy(source, 0).astype(np.int64, copy=False), _arrow_validity(source)
    if isinstance(source, np.ndarray):
        return source.astype(np.int64), np.ones(len(source), bool)
    from .columns import id_values

    return id_values(source)


def _float_values(source) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return source.astype(np.float64)
    from .columns import float_values

    return float_values(source)
