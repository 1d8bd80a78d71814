"""Device idle time, attributed to what the host was doing meanwhile.

When the device (the GPU; the CPU's op stream on a CPU-only trace) sits idle
inside the recorded span, the cause is on the host. Each idle nanosecond is
given to the first host activity in this list that covers it:

1. ``synchronization``: the host waits on the device (cudaDeviceSynchronize,
   stream/event synchronize, blocking memcpy, aten::item / _local_scalar_dense);
2. ``data_loading``: a DataLoader iteration (its record_function range);
3. ``kernel_launch``: launch calls (cudaLaunchKernel, cuLaunchKernel, hipLaunchKernel...);
4. ``other_runtime``: other runtime/driver calls (allocation, context and stream setup...);
5. ``host_ops``: inside framework ops or Python, but not in the runtime;
6. ``no_host_activity``: nothing recorded on the host (unprofiled code).

Pure interval arithmetic over merged intervals; per rank.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .casefold import alternatives, joined_lines, line_form, line_owner, lowered_form
from .columns import id_values, int_values, kind_mask, label_codes, used_labels
from .intervals import intersect_intervals, merge_intervals, subtract_intervals

DEVICE_KINDS = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)
IDLE_CAUSES = ("synchronization", "data_loading", "kernel_launch", "other_runtime", "host_ops", "no_host_activity")

# Synchronization: "synchronize" anywhere, or one of these whole names. Two patterns, not one
# alternation under search(): the anchored names are tried once at the start, not at every position.
_SYNC_ANYWHERE = re.compile(r"(?i)synchronize")
_SYNC_CALL = re.compile(
    r"(?i)^(?:(?:cuda|hip)Memcpy(?:2D|3D)?|(?:cuda|hip)Memcpy(?:2D|3D)?(?:To|From)Symbol|cuMemcpy[DH]to[DH](?:_v2)?|"
    r"aten::(?:item|_local_scalar_dense)|cudaStreamWaitEvent)$"
)
_LAUNCH = re.compile(r"(?i)launch")
_DATA = re.compile(r"(?i)dataloader|data_loader|_next_data|__next__")


_SYNCHRONIZATION, _DATA_LOADING, _KERNEL_LAUNCH = 1, 2, 4  # bits of _name_causes
_NAME_TESTS = ((_SYNC_ANYWHERE, _SYNCHRONIZATION), (_SYNC_CALL, _SYNCHRONIZATION), (_DATA, _DATA_LOADING),
               (_LAUNCH, _KERNEL_LAUNCH))
#: The same tests for a lowercased ASCII name (casefold.py): (?i) is several times slower.
_LOWERED_TESTS = tuple((lowered_form(regex) or regex, bit) for regex, bit in _NAME_TESTS)


#: One search for the unanchored tests of a lowercased name: most host names hold none of those words,
#: and then only the anchored call names are left to try (None: a test has no lowered form).
_UNANCHORED_LOWERED = [lowered_form(regex) for regex in (_SYNC_ANYWHERE, _DATA, _LAUNCH)]
_ANY_LOWERED = (re.compile("|".join(f"(?:{regex.pattern})" for regex in _UNANCHORED_LOWERED))
                if all(_UNANCHORED_LOWERED) else None)
_SYNC_CALL_LOWERED = lowered_form(_SYNC_CALL)


def _name_causes(name: str) -> int:
    """The causes a host event's name tells, as bits (launch counts for runtime calls only)."""
    if name.isascii():
        name, tests = name.lower(), _LOWERED_TESTS
        if _ANY_LOWERED is not None and _SYNC_CALL_LOWERED is not None and _ANY_LOWERED.search(name) is None:
            return _SYNCHRONIZATION if _SYNC_CALL_LOWERED.search(name) else 0
    else:
        tests = _NAME_TESTS
    bits = 0
    for regex, bit in tests:
        if not bits & bit and regex.search(name):
            bits |= bit
    return bits


#: The unanchored tests' words, lowered (each alternative of their lowered forms, a plain word): found in
#: the joined names with str.find, a fast scan. None where a test has no such form.
_WORDS = [a.pattern for regex in _UNANCHORED_LOWERED if regex is not None for a in alternatives(regex)]
_WORDS = _WORDS if all(_UNANCHORED_LOWERED) and all(re.fullmatch(r"[a-z0-9_]+", w) for w in _WORDS) else None
#: The whole-name test over names joined into lines (``joined_lines``): a whole line.
_SYNC_LINE = (line_form(_SYNC_CALL_LOWERED)
              if _SYNC_CALL_LOWERED is not None and _SYNC_CALL_LOWERED.pattern.startswith("^")
              and _SYNC_CALL_LOWERED.pattern.endswith("$") else None)


def _label_causes(texts: np.ndarray, used: np.ndarray) -> np.ndarray:
    """``_name_causes`` of ``texts[used]`` per label (0 for the others, and in a trailing slot for a
    null code). ASCII names without a newline are lowered and joined into one text, searched once per
    word: ``_name_causes`` runs only for the few names a word hits, and a whole-name call is a line."""
    bits = np.zeros(len(texts) + 1, dtype=np.int64)
    names = texts[used].tolist()
    lines = joined_lines(names) if _WORDS is not None and _SYNC_LINE is not None else None
    if lines is None:
        bits[used] = [_name_causes(name) for name in names]
        return bits
    joined, starts = lines
    joined = joined.lower()
    calls = [m.start() + 1 for m in _SYNC_LINE.finditer(joined)]  # (a match starts at the name's newline)
    bits[used[line_owner(starts, calls)]] = _SYNCHRONIZATION
    hits = []
    for word in _WORDS:
        at = joined.find(word)
        while at >= 0:
            hits.append(at)
            at = joined.find(word, at + 1)
    for i in np.unique(line_owner(starts, hits)).tolist():
        bits[used[i]] = _name_causes(names[i])
    return bits


def _length(intervals: tuple[np.ndarray, np.ndarray]) -> int:
    return int((intervals[1] - intervals[0]).sum())


def _union(start: np.ndarray, end: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return merge_intervals(start[rows], end[rows])


def _top_ops(events: pd.DataFrame, ops: np.ndarray) -> np.ndarray:
    """The ``ops`` rows whose parent is not one of the ``ops`` (a null parent is nobody's id)."""
    parent, known = id_values(events["parent_id"])
    top = ops.copy()
    top[ops] = ~(known[ops] & np.isin(parent[ops], events["event_id"].to_numpy(np.int64)[ops]))
    return top


def idle_attribution(events: pd.DataFrame, within: tuple[int, int] | None = None) -> dict:
    """Idle time of the device inside the recorded span, split by host cause (summed over ranks).

    ``within``: (start_ns, end_ns): only the events that start in it count, as if the table held no
    others (the training steps' span); the table's columns are read whole, and cached ones reused."""
    kinds = label_codes(events["kind"])

    def kind_in(*wanted: str) -> np.ndarray:
        return kind_mask(kinds, *wanted)

    start = events["start_ns"].to_numpy(np.int64)
    end = start + int_values(events["duration_ns"], fill=0)
    chosen = np.ones(len(start), dtype=bool) if within is None else (start >= within[0]) & (start < within[1])
    device = kind_in(*DEVICE_KINDS)
    gpu = bool((device & chosen).any())
    totals = dict.fromkeys(IDLE_CAUSES, 0)
    span_total = busy_total = 0
    timed = ~kind_in(Kind.SAMPLE.value) & chosen
    host = kind_in(Kind.CPU_OP.value, Kind.RUNTIME.value, Kind.ANNOTATION.value, Kind.PYTHON_FUNCTION.value)
    runtime = kind_in(Kind.RUNTIME.value)
    names = label_codes(events["name"])
    causes = _label_causes(names[1], used_labels(names, host))[names[0]]  # host names only
    cause_rows = {  # each cause's rows
        "synchronization": host & (causes & _SYNCHRONIZATION > 0),
        "data_loading": host & (causes & _DATA_LOADING > 0),
        "kernel_launch": runtime & (causes & _KERNEL_LAUNCH > 0),
        "other_runtime": runtime,
        "host_ops": host,
    }
    rank = events["rank"].to_numpy() if "rank" in events else np.zeros(len(events), np.int64)
    for r in np.unique(rank):
        mine = timed & (rank == r)
        if not mine.any():
            continue
        busy = _union(start, end, mine & device) if gpu else _union(start, end, _top_ops(events, mine & kind_in(Kind.CPU_OP.value)))
        first = int(start[mine].min())
        last = int(end[mine].max())
        idle = subtract_intervals((np.array([first]), np.array([last])), busy)
        span_total += last - first
        busy_total += _length(busy)
        for cause, rows in cause_rows.items():
            covered = intersect_intervals(idle, _union(start, end, mine & rows))
            totals[cause] += _length(covered)
            idle = subtract_intervals(idle, covered)
        totals["no_host_activity"] += _length(idle)
    idle_ns = sum(totals.values())
    return {
        "device": "gpu" if gpu else "cpu",
        "ranks": len(np.unique(rank[chosen])),  # span_ns, busy_ns and idle_ns are summed over them
        "span_ns": span_total,
        "busy_ns": busy_total,
        "idle_ns": idle_ns,
        "idle_share": idle_ns / span_total if span_total else None,
        "causes": [
            {"cause": cause, "time_ns": totals[cause], "share_of_idle": totals[cause] / idle_ns if idle_ns else None}
            for cause in IDLE_CAUSES
        ],
    }
