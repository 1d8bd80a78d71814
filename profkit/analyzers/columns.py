"""Plain numpy views of an events table's columns, without per-row Python or string conversion.

Text columns (kind, name, shapes...) are read as ``(codes, labels)``: a test
of a name runs once per unique label and is mapped back through the codes.
Nullable integer columns come back as int64 arrays with a fill value or a
not-null mask. These are the building blocks the analyzers use on large
tables; the analyzers' own results stay pandas.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import TraceFormatError
from .table import Column

Labels = tuple[np.ndarray, np.ndarray]


def label_codes(column: pd.Series) -> Labels:
    """(codes, labels) of a text column: ``labels[codes]`` is each row's text, code -1 a null.

    A categorical column gives its own codes (no per-row work); others are factorized;
    an ``EventTable`` column its cached ones (read-only).
    """
    if isinstance(column, Column):
        return column.labels()
    if isinstance(column.dtype, pd.CategoricalDtype):
        categorical = column.array
        categories = categorical.categories
        if isinstance(categories.dtype, pd.StringDtype):
            labels = categories.to_numpy(dtype=object)
        else:
            labels = np.asarray(categories.astype(str), dtype=object)
        return categorical.codes.astype(np.int64), labels
    codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray([str(u) for u in uniques], dtype=object)


def per_label(column: pd.Series, test: Callable[[str], Any], null: Any = False, dtype: Any = bool,
              rows: np.ndarray | None = None) -> np.ndarray:
    """``test(text)`` of every row, evaluated once per unique text; ``null`` for null rows.

    With ``rows`` (a boolean mask), only the texts of those rows are tested; the others read ``null``.
    """
    return label_table(label_codes(column), test, null, dtype, rows)


def label_table(labels: Labels, test: Callable[[str], Any], null: Any = False, dtype: Any = bool,
                rows: np.ndarray | None = None) -> np.ndarray:
    """``per_label`` over codes and labels already read."""
    codes, texts = labels
    values = np.empty(len(texts) + 1, dtype=dtype)
    values[:] = null
    for i in range(len(texts)) if rows is None else used_labels(labels, rows):
        values[i] = test(texts[i])
    return values[codes]  # code -1 picks the trailing null value


def used_labels(labels: Labels, rows: np.ndarray) -> np.ndarray:
    """The codes the ``rows`` (a boolean mask) use, in code order, nulls left out (marking is O(n);
    np.unique would sort)."""
    codes, texts = labels
    marked = np.zeros(len(texts) + 1, dtype=bool)
    marked[codes[rows]] = True  # code -1 marks the trailing slot, left out
    return np.flatnonzero(marked[:-1])


def label_endswith(labels: Labels, suffix: str) -> np.ndarray:
    """Rows whose text ends with ``suffix``; a null reads as "" (``str.endswith`` once per unique text)."""
    codes, texts = labels
    hit = np.fromiter((isinstance(text, str) and text.endswith(suffix) for text in texts), dtype=bool,
                      count=len(texts))
    return np.append(hit, "".endswith(suffix))[codes]


def label_startswith(labels: Labels, prefixes: str | tuple[str, ...]) -> np.ndarray:
    """Rows whose text starts with ``prefixes`` (one, or any of a tuple); a null reads as "".

    ``str.startswith`` once per unique text: a fixed prefix needs no regular expression.
    """
    codes, texts = labels
    texts = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
    try:  # str.startswith mapped in C: no generator step per label
        hit = np.fromiter(map(str.startswith, texts, repeat(prefixes, len(texts))), dtype=bool, count=len(texts))
    except TypeError:  # a label that is no str: its own startswith
        hit = np.fromiter((text.startswith(prefixes) for text in texts), dtype=bool, count=len(texts))
    return np.append(hit, "".startswith(prefixes))[codes]


def is_kind(events: pd.DataFrame, *kinds: str) -> np.ndarray:
    """Rows whose ``kind`` is one of ``kinds`` (a boolean array)."""
    return kind_mask(label_codes(events["kind"]), *kinds)


def kind_mask(kinds: Labels, *wanted: str) -> np.ndarray:
    """``is_kind`` over the kind column's codes and labels already read."""
    codes, labels = kinds
    return np.append(labels_in(labels, wanted), False)[codes]


def labels_in(labels: np.ndarray, wanted) -> np.ndarray:
    """Which of a few labels are in ``wanted``: a set lookup per label (``np.isin`` on objects sorts
    them, ~50 us a call; the report asks for kind masks dozens of times)."""
    wanted = frozenset(wanted)
    return np.fromiter(map(wanted.__contains__, list(labels)), dtype=bool, count=len(labels))


def int_values(column: pd.Series, fill: int = 0) -> np.ndarray:
    """An integer column as int64, nulls as ``fill``."""
    if isinstance(column, Column):
        return column.table.ints(column.name, fill)
    array = column.array
    if isinstance(array, pd.arrays.IntegerArray):
        return array.to_numpy(dtype=np.int64, na_value=fill)
    if column.dtype.kind in "iu":
        return column.to_numpy(np.int64)
    return pd.to_numeric(column, errors="coerce").fillna(fill).to_numpy(np.int64)


def float_values(column: pd.Series | Column) -> np.ndarray:
    """A numeric column as float64, NaN for a null or a value that is not a number."""
    if isinstance(column, Column):
        return column.floats()
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def texts_at(column: pd.Series | Column, at: np.ndarray) -> np.ndarray:
    """The values of a text column at row positions ``at`` as an object array (a null: None or NaN)."""
    if isinstance(column, Column):
        return column.table.texts_at(column.name, at)
    return np.asarray(column.array.take(at), dtype=object)


def id_values(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, not-null mask) of an id column (nulls read as 0 in the values)."""
    if isinstance(column, Column):
        return column.ids()
    array = column.array
    if isinstance(array, pd.arrays.IntegerArray):
        return array.to_numpy(dtype=np.int64, na_value=0), ~array.isna()
    if column.dtype.kind in "iu":
        return column.to_numpy(np.int64), np.ones(len(column), bool)
    values = pd.to_numeric(column, errors="coerce")
    known = values.notna().to_numpy()
    return values.where(known, 0).astype(np.int64).to_numpy(), known


def ranks(events: pd.DataFrame) -> np.ndarray:
    """The ``rank`` column as int64 (zeros when the table has none)."""
    return events["rank"].to_numpy(np.int64) if "rank" in events else np.zeros(len(events), np.int64)


def positions(index: pd.Index | np.ndarray, ids: pd.Series | Column) -> np.ndarray:
    """Row positions in ``index`` (unique event ids) of the ids in ``ids`` (-1 where null or absent).

    A column of an ``EventTable`` looked up in that table's own ``event_id`` (its parent_id, op_id...:
    the report's analyzers each ask) is worked out once per table, read-only."""
    if isinstance(ids, Column) and "event_id" in ids.table and index is ids.table.ids("event_id")[0]:
        return ids.table._cached(("positions", ids.name), lambda: _positions(index, ids))
    return _positions(index, ids)


def _positions(index: pd.Index | np.ndarray, ids: pd.Series | Column) -> np.ndarray:
    values, known = id_values(ids)
    pos = np.full(len(ids), -1, dtype=np.int64)
    if not known.any():
        return pos
    wanted = values[known]
    ids_in_order = np.asarray(index)
    first = int(ids_in_order[0]) if len(ids_in_order) else 0
    if len(ids_in_order) and ids_in_order[-1] - first == len(ids_in_order) - 1 and (np.diff(ids_in_order) > 0).all():
        # ids are a contiguous range (one trace, or ranks combined by the report): arithmetic, no hashing
        offset = wanted - first
        pos[known] = np.where((offset >= 0) & (offset < len(index)), offset, -1)
    else:
        try:
            pos[known] = (index if isinstance(index, pd.Index) else pd.Index(index)).get_indexer(wanted)
        except pd.errors.InvalidIndexError:  # (pandas' word for a non-unique index)
            raise TraceFormatError("two events share an event_id: not a valid trace (event_id is unique in a "
                                   "file; see docs/trace-format.md)") from None
    return pos


#: No call stack nests deeper (Python's recursion limit is 1,000): a walk up ``parent_id`` that climbs
#: more levels is going round a loop, an event that is its own ancestor.
MAX_NESTING = 10_000


def check_nesting(levels: int) -> None:
    """Raise TraceFormatError once a walk up the parents has climbed more than ``MAX_NESTING`` levels: the
    walks that stop only at the top would otherwise go round a loop for ever."""
    if levels > MAX_NESTING:
        raise TraceFormatError(f"parent_id chains loop or nest over {MAX_NESTING} levels deep: an event is its own "
                               "ancestor (see docs/trace-format.md)")


def descending_order(values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` (a numpy column without nulls) in the order ``sort_values(ascending=False)``
    puts them: pandas' nargsort, a quicksort of the reversed values reversed back, ties included."""
    reverse = np.arange(len(values))[::-1]
    return reverse[np.asarray(values)[::-1].argsort(kind="quicksort")][::-1]


#: Whether pandas makes its string type of an object array of texts (pandas 3; pandas 2 keeps object).
_INFERS_STR = pd.Series(np.array(["text"], dtype=object)).dtype != object


def text_column(texts: list, codes: np.ndarray) -> Any:
    """The text column ``texts[codes]`` (None: missing) as pandas types an object array of it,
    built from the codes: a dictionary array decoded by Arrow instead of pandas inferring
    the type of every row."""
    used = np.unique(codes) if len(codes) else codes
    # No text at all, or a pandas before 3 (no string type inferred): pandas keeps it object.
    if not _INFERS_STR or not any(isinstance(texts[i], str) for i in used):
        return np.asarray(texts, dtype=object)[codes] if len(texts) else np.full(len(codes), None, dtype=object)
    dictionary = pa.array([t if isinstance(t, str) else None for t in texts], type=pa.large_string())
    decoded = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int64()), dictionary).dictionary_decode()
    return pd.array(decoded, dtype="str")
