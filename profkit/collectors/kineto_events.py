"""Read a Chrome-trace JSON file into raw event columns (the first half of ``profkit import``).

A file whose JSON text is small (``_WHOLE_READ_BYTES``) is read, gunzipped
and decoded in one call of a C decoder: the parse tree of a few MB is cheaper
than the streaming machinery. A larger file, or one the one-call decoders
refuse (malformed, NaN, the optional closing bracket of the JSON Array
Format...), is streamed (json_stream) in windows, so memory stays bounded and
errors are reported where they are. Either way, the events come in lists of at
most a window's worth; the "X" events (spans) of each are turned into column
arrays by list comprehensions (the one per-event Python loop), strings that
repeat (category, name, shapes, dtypes) as integer codes, so memory grows with
the result, not with the JSON parse tree. Flow arrows, counters and metadata
events are few and kept whole; everything else (instants...) is counted and
skipped.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

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

_WHOLE_READ_BYTES = 16 << 20  # JSON text up to this size is decoded at once (parse tree: ~4x the text)
_SLICE_EVENTS = 8192  # events of a whole-read document turned into columns at a time
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


def read_document(path: Path, progress: bool) -> tuple[dict[str, Any], Collected]:
    """The top-level members other than traceEvents, and the events as columns."""
    whole = _read_whole(path)
    if whole is not None:
        header, events = whole
        return header, _collect(_slices(events), path.name)
    with open_stream(path, progress) as stream:
        return _read_streamed(stream, path.name)


def _read_whole(path: Path) -> tuple[dict[str, Any], list] | None:
    """(header, events) of a small file decoded at once; None when big, or when the fast decoders refuse it.

    Refusals fall back to the streaming reader, which accepts what it always
    accepted and words the errors as it always did.
    """
    if path.stat().st_size > _WHOLE_READ_BYTES:
        return None
    with open(path, "rb") as handle:
        data = handle.read(_WHOLE_READ_BYTES + 1)
    if data[:2] == b"\x1f\x8b":
        data = _gunzip_small(data)
        if data is None:
            return None
    document = _decode_whole(data)
    if isinstance(document, list):  # Chrome's JSON Array Format
        return {}, document
    if isinstance(document, dict) and type(document.get("traceEvents")) is list:
        events = document.pop("traceEvents")
        return document, events
    return None


def _gunzip_small(data: bytes) -> bytes | None:
    """The text of a one-member gzip file if it is at most ``_WHOLE_READ_BYTES`` (else, or if corrupt, None)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflate.decompress(data, _WHOLE_READ_BYTES + 1)
    except zlib.error:
        return None
    if not inflate.eof or inflate.unused_data or len(text) > _WHOLE_READ_BYTES:
        return None  # larger, truncated or several members: the streaming reader copes or says why
    return text


def _decode_whole(data: bytes) -> Any:
    """The JSON value of ``data`` (UTF-8), or None where the one-call decoder refuses it."""
    try:
        if _orjson is not None:
            return _orjson.loads(data)
        return json.loads(data.decode("utf-8"))
    except ValueError:  # malformed, NaN for orjson, not UTF-8...: the streaming reader decides
        return None


def _slices(events: list) -> Iterator[list]:
    for start in range(0, len(events), _SLICE_EVENTS):
        yield events[start : start + _SLICE_EVENTS]


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


def _read_streamed(stream: JsonStream, name: str) -> tuple[dict[str, Any], Collected]:
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


@dataclass
class Collected:
    """Raw event fields as arrays, plus the few non-span events kept whole.

    ``columns``: one array per ``SPAN_FIELDS`` entry; the ``CODED_FIELDS`` as
    int64 codes into ``uniques`` (their distinct values in order of appearance).
    """

    columns: dict[str, np.ndarray]
    uniques: dict[str, np.ndarray]
    flows: list[tuple]  # (ph, id, pid, tid, ts_us)
    counters: list[dict]
    meta_events: list[dict]
    skipped: Counter


SPAN_FIELDS = ("cat", "name", "ts", "dur", "pid", "tid", "correlation", "external_id", "device", "stream",
               "bytes", "shapes", "dtypes", "extra")
CODED_FIELDS = ("cat", "name", "shapes", "dtypes")
_EMPTY: dict = {}


class _Codebook:
    """Distinct values of one column across batches: each batch keeps int codes, not string objects."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def encode(self, values: list) -> np.ndarray:
        book = self.codes
        add = book.setdefault
        return np.array([add(v, len(book)) for v in values], dtype=np.int64)


def _collect(chunks: Iterable[list], name: str) -> Collected:
    """One pass over the events: each list's spans become columns at once, the rest is sorted out."""
    batches: list[dict[str, np.ndarray]] = []
    books = {field: _Codebook() for field in CODED_FIELDS}
    flows: list[tuple] = []
    counters: list[dict] = []
    meta_events: list[dict] = []
    skipped: Counter = Counter()
    seen_any = False
    for chunk in chunks:
        seen_any = True
        try:
            phases = [event.get("ph") for event in chunk]
        except AttributeError:  # only dicts have .get: some item is not an event object
            bad = next(event for event in chunk if type(event) is not dict)
            raise TraceImportError(f"{name}: traceEvents holds a {type(bad).__name__}, not event objects") from None
        spans = [event for event, ph in zip(chunk, phases) if ph == "X"]
        if len(spans) < len(chunk):
            _sort_out([event for event, ph in zip(chunk, phases) if ph != "X"], flows, counters, meta_events,
                      skipped)
        if spans:
            batches.append(_span_columns(spans, books, skipped))
    if not seen_any:
        raise TraceImportError(f"{name}: traceEvents is empty")
    if not batches:
        batches.append(_span_columns([], books, skipped))
    columns = {field: np.concatenate([b[field] for b in batches]) for field in SPAN_FIELDS}
    uniques = {field: _object_array(list(book.codes)) for field, book in books.items()}
    uniques["name"] = _object_array(["" if v is None else str(v) for v in uniques["name"]])
    return Collected(columns, uniques, flows, counters, meta_events, skipped)


def _sort_out(events: list[dict], flows: list[tuple], counters: list[dict], meta_events: list[dict],
              skipped: Counter) -> None:
    """Non-span events: flow arrows as tuples, counters and metadata kept, the rest counted."""
    for event in events:
        ph = event.get("ph")
        if ph in ("s", "f", "t"):
            if event.get("cat") in _FLOW_CATEGORIES or event.get("name") in _FLOW_CATEGORIES:
                flows.append((ph, event.get("id"), event.get("pid"), event.get("tid"), event.get("ts")))
        elif ph == "C":
            counters.append(event)
        elif ph == "M":
            meta_events.append(event)
        else:
            skipped[_SKIPPED_LABELS.get(ph, f"ph={ph!r}")] += 1


_SKIPPED_LABELS = {"i": "instant", "I": "instant", "B": "begin/end", "E": "begin/end", "b": "async", "e": "async",
                   "n": "async", "O": "object", "N": "object", "D": "object"}


def _span_columns(spans: list[dict], books: dict[str, _Codebook], skipped: Counter) -> dict[str, np.ndarray]:
    """Columns of a batch of "X" events (list comprehensions: the per-event cost is here)."""
    ts = floats([e.get("ts") for e in spans])
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
        "dur": floats([e.get("dur", 0) for e in spans]),
        "pid": floats([e.get("pid") for e in spans]),
        "tid": floats([e.get("tid") for e in spans]),
        "correlation": floats([a.get("correlation") for a in args]),
        "external_id": floats([a.get("External id") if "External id" in a else a.get("external id") for a in args]),
        "device": floats([a.get("device") for a in args]),
        "stream": floats([a.get("stream") for a in args]),
        "bytes": floats([a.get("bytes") for a in args]),
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


def floats(values: list) -> np.ndarray:
    """Numbers as float64, NaN where missing; strings such as "stream 7" by their trailing digits."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):  # a few strings among numbers (Kineto's one "Spans" pid): convert only those
        return np.array([v if type(v) is float or type(v) is int else number(v) for v in values], dtype=np.float64)


def number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _TRAILING_INT.search(value)
        if match:
            return float(match.group(1))
    return np.nan
