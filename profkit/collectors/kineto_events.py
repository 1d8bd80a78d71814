"""Read a Chrome-trace JSON file into raw event columns (the first half of ``profkit import``).

The ``traceEvents`` array is streamed (json_stream) in windows of a few
hundred KB, each decoded in one call of a C decoder. The "X" events (spans)
of each window become column arrays at once, by list comprehensions (the one
per-event Python loop): numbers as float64 numpy arrays, texts (name, shapes,
dtypes, the ``extra`` JSON) as Arrow string arrays, the category
dictionary-encoded. So memory grows with the compact result, not with the
JSON parse tree, and no Python object per event outlives its window (the
heap stays small). Streaming is no slower than decoding a small file at
once (measured: within noise on the 8 MB traces, with less memory). Flow
arrows, counters and metadata events are few and kept whole; everything
else (instants...) is counted and skipped.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections import Counter
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from ..errors import TraceImportError
from ..trace.arrow_buffers import text_array
from .allocator import FIELDS, MEMORY_EVENT
from .json_numbers import floats, within_int64
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

_PROGRESS_MIN_BYTES = 32 << 20  # show a progress bar for files at least this big
_FLOW_CATEGORIES = frozenset({"ac2g", "async_cpu_to_gpu", "async"})

try:  # optional: encodes the per-event extras about 5x faster (json_stream also decodes with it)
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
    return _compact(value)


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` for decoded JSON values, 3x faster.

    ``json.dumps`` builds an encoder object and a C encoder per call; per event
    that was most of an import without orjson (measured: 0.28 of 0.89 s on the
    H100 trace). Here the C encoder is built once. No circular-reference
    check: a decoded JSON value has no cycles.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join
    return lambda value: join(encode(value, 0))


_compact = _compact_encoder()


def read_document(path: Path, progress: bool) -> tuple[dict[str, Any], Collected]:
    """The top-level members other than traceEvents, and the events as columns."""
    with open_stream(path, progress) as stream:
        header: dict[str, Any] = {}
        collected: Collected | None = None
        for key, value in iter_members(stream, "traceEvents"):
            if key == "traceEvents":
                if not isinstance(value, Iterator):  # (an array is streamed; any other value is parsed)
                    raise TraceImportError(f"{path.name}: traceEvents is {json_type(value)}, not an array of events")
                collected = _collect(value, path.name)
            else:
                header[key] = value
    if collected is None:
        raise TraceImportError(f"{path.name}: no traceEvents array: not a Chrome/Kineto trace")
    return header, collected


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
    """Raw event fields as arrays, plus the few non-span events kept whole.

    ``columns``: the ``NUMBER_FIELDS`` as float64 numpy arrays (NaN where
    missing); the ``TEXT_FIELDS`` as Arrow arrays: ``cat`` dictionary-encoded
    (a chunk per window: each has its own dictionary), ``name`` ("" where
    none), ``shapes``/``dtypes``/``extra`` compact JSON strings or null.
    """

    columns: dict[str, Any]
    flows: list[tuple]  # (ph, id, pid, tid, ts_us)
    counters: list[dict]
    meta_events: list[dict]
    skipped: Counter
    # torch's allocator events ("[memory]", profile_memory): a row of MEMORY_FIELDS each (allocator.py).
    memory: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, len(MEMORY_FIELDS))))


NUMBER_FIELDS = ("ts", "dur", "pid", "tid", "correlation", "external_id", "device", "stream", "bytes")
TEXT_FIELDS = ("cat", "name", "shapes", "dtypes", "extra")
_EMPTY: dict = {}
_NAN = float("nan")


def _collect(chunks: Iterable[list], name: str) -> Collected:
    """One pass over the events: each list's spans become columns at once, the rest is sorted out."""
    batches: list[dict[str, Any]] = []
    flows: list[tuple] = []
    counters: list[dict] = []
    meta_events: list[dict] = []
    memory: list[np.ndarray] = []
    skipped: Counter = Counter()
    seen_any = False
    for chunk in chunks:
        seen_any = True
        try:
            phases = [event.get("ph") for event in chunk]
        except AttributeError:  # only dicts have .get: some item is not an event object
            bad = next(event for event in chunk if type(event) is not dict)
            raise TraceImportError(f"{name}: traceEvents holds {json_type(bad)}, not event objects") from None
        spans = [event for event, ph in zip(chunk, phases) if ph == "X"]
        if len(spans) < len(chunk):
            allocations: list[dict] = []
            _sort_out([event for event, ph in zip(chunk, phases) if ph != "X"], flows, counters, meta_events,
                      allocations, skipped)
            if allocations:  # (as numbers at once: the events' dicts are ~50x bigger than their figures)
                memory.append(memory_rows(allocations))
        if spans:
            try:
                batches.append(_span_columns(spans, skipped))
            except UnicodeEncodeError:  # JSON may escape half a surrogate pair ("\ud800"): no UTF-8 for it
                raise TraceImportError(f"{name}: a text that is not Unicode (a lone surrogate escape)") from None
            except AttributeError:  # only dicts have .get: some event's args is no JSON object
                bad = next(e["args"] for e in spans if "args" in e and e["args"] and type(e["args"]) is not dict)
                raise TraceImportError(f"{name}: an event's args is {json_type(bad)}, not an object") from None
    if not seen_any:
        raise TraceImportError(f"{name}: traceEvents is empty")
    if not batches:
        batches.append(_span_columns([], skipped))
    columns: dict[str, Any] = {field: np.concatenate([b[field] for b in batches]) for field in NUMBER_FIELDS}
    for field in TEXT_FIELDS:  # one array each (later takes would concatenate chunks anyway), freed as we go
        chunks = [b.pop(field) for b in batches]
        columns[field] = pa.chunked_array(chunks) if field == "cat" else pa.concat_arrays(chunks)
        del chunks
    return Collected(columns, flows, counters, meta_events, skipped,
                     np.concatenate(memory) if memory else np.zeros((0, len(MEMORY_FIELDS))))


_INSTANT = frozenset({"i", "I"})


def _sort_out(events: list[dict], flows: list[tuple], counters: list[dict], meta_events: list[dict],
              memory: list[dict], skipped: Counter) -> None:
    """Non-span events: flow arrows as tuples, counters, metadata and allocator memory events kept, the
    rest counted."""
    for event in events:
        ph = event.get("ph")
        if ph in ("s", "f", "t"):
            if _text(event.get("cat")) in _FLOW_CATEGORIES or _text(event.get("name")) in _FLOW_CATEGORIES:
                flows.append((ph, event.get("id"), event.get("pid"), event.get("tid"), event.get("ts")))
        elif ph == "C":
            counters.append(event)
        elif _text(ph) in _INSTANT and event.get("name") == MEMORY_EVENT:  # an allocation or free (profile_memory)
            memory.append(event)
        elif ph == "M":
            meta_events.append(event)
        else:  # (a ph that is a list or an object is no key: its repr is)
            skipped[_SKIPPED_LABELS.get(_text(ph), f"ph={ph!r}")] += 1


#: What is kept of each allocator event: its time, process and thread, then allocator.FIELDS of its args.
MEMORY_FIELDS = ("ts", "pid", "tid", *FIELDS)


def memory_rows(events: list[dict]) -> np.ndarray:
    """The ``MEMORY_FIELDS`` of allocator events as a float array of a row each (NaN where missing; a
    "stream 7" or "Spans" id by its digits, as ``floats`` reads them)."""
    device_type, device_id, allocated, reserved, address, size = FIELDS  # (named, not looped: a frame per event costs)
    try:
        rows = [(e.get("ts", _NAN), e.get("pid", _NAN), e.get("tid", _NAN), a.get(device_type, _NAN),
                 a.get(device_id, _NAN), a.get(allocated, _NAN), a.get(reserved, _NAN), a.get(address, _NAN),
                 a.get(size, _NAN))
                for e in events for a in (e.get("args") or _EMPTY,)]
    except AttributeError:  # some event's args is no object: its fields read as missing
        return memory_rows([{**e, "args": e["args"] if type(e.get("args")) is dict else _EMPTY} for e in events])
    try:
        found = np.array(rows, dtype=np.float64)
        if found.ndim == 2:  # (a list among them would add a dimension)
            return within_int64(found.reshape(-1, len(MEMORY_FIELDS)))
    except (TypeError, ValueError):  # a text or null among them: column by column
        pass
    return np.stack([floats(list(column)) for column in zip(*rows)], axis=1)


def _text(value: Any) -> str | None:
    """``value`` where it is a str (a set or dict lookup key), else None."""
    return value if type(value) is str else None


_SKIPPED_LABELS = {"i": "instant", "I": "instant", "B": "begin/end", "E": "begin/end", "b": "async", "e": "async",
                   "n": "async", "O": "object", "N": "object", "D": "object"}


def _span_columns(spans: list[dict], skipped: Counter) -> dict[str, Any]:
    """Columns of a batch of "X" events (list comprehensions: the per-event cost is here).

    Texts go to Arrow at once: compact bytes, and no str object per event
    outlives its window (Python's heap stays one window big).
    """
    ts = floats([e.get("ts") for e in spans], ids=False)
    keep = np.abs(ts) < MAX_US  # (NaN: no ts, compares False)
    if not keep.all():
        missing = int(np.isnan(ts).sum())
        if missing:
            skipped["X without ts"] += missing
        if missing < (~keep).sum():
            skipped["X with ts out of range"] += int((~keep).sum()) - missing
        spans, ts = list(compress(spans, keep)), ts[keep]
    args = [e.get("args") or _EMPTY for e in spans]
    # NaN, not None, for absent arguments: numpy converts a list with None in it 4x slower.
    return {
        "ts": ts,
        "dur": _durations(floats([e.get("dur", 0) for e in spans])),
        "pid": floats([e.get("pid") for e in spans]),
        "tid": floats([e.get("tid") for e in spans]),
        "correlation": floats([a.get("correlation", _NAN) for a in args]),
        "external_id": floats([a.get("External id") if "External id" in a else a.get("external id", _NAN)
                               for a in args]),
        "device": floats([a.get("device", _NAN) for a in args]),
        "stream": floats([a.get("stream", _NAN) for a in args]),
        "bytes": floats([a.get("bytes", _NAN) for a in args]),
        "cat": _strings([e.get("cat") for e in spans], "none").dictionary_encode(),
        "name": _strings([e.get("name", "") for e in spans], ""),
        **_json_texts(args),
    }


#: Timestamps beyond ±9e15 µs (the year 2255 as epoch µs) overflow int64 ns: such an event is skipped,
#: such a duration read as none.
MAX_US = 9e15


def _durations(dur: np.ndarray) -> np.ndarray:
    return np.where(np.abs(dur) < MAX_US, dur, np.nan)


def json_type(value: Any) -> str:
    """What JSON calls ``value``'s type, with its article ("an object", "a number"), for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(type(value), "a value")


def _json_texts(args: list[dict]) -> dict[str, pa.Array]:
    """shapes, dtypes and extra of each event as compact JSON string arrays (null where it has none).

    orjson is called directly (no wrapper per value: 3 calls per event); a
    batch it cannot encode (integers beyond 64 bits) goes through the
    standard encoder. An empty text stands for null: no JSON value encodes
    to nothing.
    """
    dims = [a.get("Input Dims") for a in args]
    types = [a.get("Input type") if d is not None else None for a, d in zip(args, dims)]
    kept = _renamed(args)
    texts = None
    if _orjson is not None:
        # Decoded at once: orjson's bytes keep ~1 KB of spare capacity each (measured: +5 MB a window).
        encode = _orjson.dumps
        try:
            texts = {
                "shapes": ["" if d is None else encode(d).decode() for d in dims],
                "dtypes": ["" if t is None else encode(t).decode() for t in types],
                "extra": [encode(k).decode() if k else "" for k in kept],
            }
        except TypeError:
            pass
    if texts is None:
        encode = _compact
        texts = {
            "shapes": ["" if d is None else encode(d) for d in dims],
            "dtypes": ["" if t is None else encode(t) for t in types],
            "extra": [encode(k) if k else "" for k in kept],
        }
    return {field: text_array(values, empty_is_null=True) for field, values in texts.items()}


def _renamed(args: list[dict]) -> list[dict]:
    """Each event's args with ``ARG_KEYS``' names (dropped where ``""``). The renaming of each distinct
    key sequence is worked out once: events of one kind share theirs (kernels, ops, Python frames)."""
    plans: dict[tuple, list[tuple[str, str]]] = {}
    rename = ARG_KEYS.get
    kept = []
    for a in args:
        keys = tuple(a)
        plan = plans.get(keys)
        if plan is None:
            plan = plans[keys] = [(k, r) for k in keys if (r := rename(k, k))]
        kept.append({r: a[k] for k, r in plan})
    return kept


def _strings(values: list, none: str) -> pa.Array:
    """Values as an Arrow string array: str as is, others as str(value), None as ``none``."""
    try:
        return text_array(values)
    except TypeError:  # a number, list or None among the strings
        return text_array([none if v is None else v if type(v) is str else str(v) for v in values])


