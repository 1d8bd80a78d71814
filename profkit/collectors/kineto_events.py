"""Read a Chrome-trace JSON file into raw event columns (the first half of ``profkit import``).

The ``traceEvents`` array is streamed (json_stream) in windows; its "X"
events (spans) are held as dicts in batches of ``_BATCH_EVENTS`` and turned
into column arrays by list comprehensions, strings that repeat (category,
name, shapes, dtypes) as integer codes, so memory grows with the result,
not with the JSON parse tree. Flow arrows, counters and metadata events are
few and kept whole; everything else (instants...) is counted and skipped.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import TraceImportError
from .json_stream import JsonStream, iter_members

#: Kineto argument name -> key in the row's ``extra`` JSON ("" drops it). Unlisted names are kept as they are.
ARG_KEYS: dict[str, str] = {
    "External id": "external_id",
    "external id": "external_id",
    "Sequence number": "sequence_nr",
    "Fwd thread id": "fwd_thread_id",
    "Concrete Inputs": "concrete_inputs",
    "registers per thread": "registers_per_thread",
    "shared memory": "shared_memory_bytes",
    "blocks per SM": "blocks_per_sm",
    "warps per SM": "warps_per_sm",
    "est. achieved occupancy %": "occupancy_pct",
    "memory bandwidth (GB/s)": "bandwidth_gb_per_s",
    "Python id": "python_id",
    "Python parent id": "python_parent_id",
    "Python module id": "python_module_id",
    # columns of their own, or noise
    "correlation": "",
    "device": "",
    "stream": "",
    "bytes": "",
    "Input Dims": "",
    "Input type": "",
    "Input Strides": "",
    "Ev Idx": "",
    "Record function id": "",
    "finished": "",
    "context": "",
    "queued": "",
}

_BATCH_EVENTS = 20_000  # "X" events held as dicts before they become column arrays (bounds memory)
_PROGRESS_MIN_BYTES = 32 << 20  # show a progress bar for files at least this big
_TRAILING_INT = re.compile(r"(-?\d+)\s*$")
_FLOW_CATEGORIES = frozenset({"ac2g", "async_cpu_to_gpu", "async"})

try:  # optional: encodes the per-event extras about 3x faster (json_stream also decodes with it)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def dumps(value: Any) -> str:
    """Compact JSON text (orjson when installed)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value).decode()
        except TypeError:  # integers beyond 64 bits
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class open_stream:
    """Context manager: a JsonStream over the (maybe gzipped) file, with a progress bar for big files."""

    def __init__(self, path: Path, progress: bool):
        self.path = path
        self.show = progress and path.stat().st_size >= _PROGRESS_MIN_BYTES

    def __enter__(self) -> JsonStream:
        self.raw = open(self.path, "rb")
        gzipped = self.raw.read(2) == b"\x1f\x8b"
        self.raw.seek(0)
        binary = gzip.GzipFile(fileobj=self.raw, mode="rb") if gzipped else self.raw
        self.bar = None
        on_read: Callable[[], None] | None = None
        if self.show:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(f"importing {self.path.name}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                transient=True,
            )
            self.bar.start()
            task = self.bar.add_task("import", total=self.path.stat().st_size)
            on_read = lambda: self.bar.update(task, completed=self.raw.tell())  # noqa: E731
        return JsonStream(binary, str(self.path), on_read)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.raw.close()


@dataclass
class Collected:
    """Raw event fields as arrays, plus the few non-span events kept whole."""

    columns: dict[str, np.ndarray]
    flows: list[tuple]  # (ph, id, pid, tid, ts_us)
    counters: list[dict]
    meta_events: list[dict]
    skipped: Counter


def read_document(stream: JsonStream, name: str) -> tuple[dict[str, Any], Collected]:
    header: dict[str, Any] = {}
    collected: Collected | None = None
    for key, value in iter_members(stream, "traceEvents"):
        if key == "traceEvents":
            collected = _collect(value, name)
        else:
            header[key] = value
    if collected is None:
        raise TraceImportError(f"{name}: no traceEvents array: not a Chrome/Kineto trace")
    return header, collected


_SPAN_FIELDS = ("cat", "name", "ts", "dur", "pid", "tid", "correlation", "external_id", "device", "stream",
                "bytes", "shapes", "dtypes", "extra")
_EMPTY: dict = {}


class _Codebook:
    """Distinct values of one column across batches: each batch keeps int codes, not string objects."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def encode(self, values: list) -> np.ndarray:
        book = self.codes
        add = book.setdefault
        return np.array([add(v, len(book)) for v in values], dtype=np.int64)

    def values(self) -> np.ndarray:
        return _object_array(list(self.codes))


def _collect(chunks: Iterable[list], name: str) -> Collected:
    """One pass over the events: spans batched into columns, the rest sorted out."""
    spans: list[dict] = []
    batches: list[dict[str, np.ndarray]] = []
    books = {field: _Codebook() for field in _CODED_FIELDS}
    flows: list[tuple] = []
    counters: list[dict] = []
    meta_events: list[dict] = []
    skipped: Counter = Counter()
    seen_any = False
    for chunk in chunks:
        seen_any = True
        if not all(type(event) is dict for event in chunk):
            bad = next(event for event in chunk if type(event) is not dict)
            raise TraceImportError(f"{name}: traceEvents holds a {type(bad).__name__}, not event objects")
        spans += [event for event in chunk if event.get("ph") == "X"]
        for event in chunk:
            ph = event.get("ph")
            if ph == "X":
                continue
            if ph in ("s", "f", "t"):
                if event.get("cat") in _FLOW_CATEGORIES or event.get("name") in _FLOW_CATEGORIES:
                    flows.append((ph, event.get("id"), event.get("pid"), event.get("tid"), event.get("ts")))
            elif ph == "C":
                counters.append(event)
            elif ph == "M":
                meta_events.append(event)
            else:
                skipped[_SKIPPED_LABELS.get(ph, f"ph={ph!r}")] += 1
        if len(spans) >= _BATCH_EVENTS:
            batches.append(_span_columns(spans, books, skipped))
            spans = []
    if not seen_any:
        raise TraceImportError(f"{name}: traceEvents is empty")
    batches.append(_span_columns(spans, books, skipped))
    columns = {field: np.concatenate([b[field] for b in batches]) for field in _SPAN_FIELDS}
    for field, book in books.items():  # codes -> values, each distinct value converted once
        uniques = list(book.codes)
        if field == "name":
            table = _object_array(["" if v is None else str(v) for v in uniques])
        else:
            table = _object_array(uniques)
        columns[field] = table[columns[field]] if len(columns[field]) else table[:0]
    return Collected(columns, flows, counters, meta_events, skipped)


_CODED_FIELDS = ("cat", "name", "shapes", "dtypes")
_SKIPPED_LABELS = {"i": "instant", "I": "instant", "B": "begin/end", "E": "begin/end", "b": "async", "e": "async",
                   "n": "async", "O": "object", "N": "object", "D": "object"}


def _span_columns(spans: list[dict], books: dict[str, _Codebook], skipped: Counter) -> dict[str, np.ndarray]:
    """Columns of a batch of "X" events (list comprehensions: the per-event cost is here)."""
    ts = _floats([e.get("ts") for e in spans])
    keep = ~np.isnan(ts)
    if not keep.all():
        skipped["X without ts"] += int((~keep).sum())
    args = [e.get("args") or _EMPTY for e in spans]
    dims = [a.get("Input Dims") for a in args]
    types = [a.get("Input type") if d is not None else None for a, d in zip(args, dims)]
    rename = ARG_KEYS.get
    columns = {
        "cat": books["cat"].encode([e.get("cat") for e in spans]),
        "name": books["name"].encode([e.get("name", "") for e in spans]),
        "ts": ts,
        "dur": _floats([e.get("dur", 0) for e in spans]),
        "pid": _floats([e.get("pid") for e in spans]),
        "tid": _floats([e.get("tid") for e in spans]),
        "correlation": _floats([a.get("correlation") for a in args]),
        "external_id": _floats([a.get("External id") if "External id" in a else a.get("external id") for a in args]),
        "device": _floats([a.get("device") for a in args]),
        "stream": _floats([a.get("stream") for a in args]),
        "bytes": _floats([a.get("bytes") for a in args]),
        "shapes": books["shapes"].encode([None if d is None else dumps(d) for d in dims]),
        "dtypes": books["dtypes"].encode([None if t is None else dumps(t) for t in types]),
        "extra": _object_array(
            [dumps(kept) if (kept := {r: v for k, v in a.items() if (r := rename(k, k))}) else None for a in args]
        ),
    }
    return columns if keep.all() else {field: values[keep] for field, values in columns.items()}


def _object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _floats(values: list) -> np.ndarray:
    """Numbers as float64, NaN where missing; strings such as "stream 7" by their trailing digits."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([number(v) for v in values], dtype=np.float64)


def number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _TRAILING_INT.search(value)
        if match:
            return float(match.group(1))
    return np.nan
