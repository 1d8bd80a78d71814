"""Human formatting of numbers for terminal tables and HTML pages (display only, never data).

``fmt_field(key, value)`` formats a report field by the unit its name carries (``_ns``, ``_j``,
``_share``...; the ``FORMATS`` table, first match wins) and ``label(key)`` names it for a header:
the terminal diff and the HTML pages share them.
"""

from __future__ import annotations

import json
import math
import shlex
from datetime import datetime, timezone
from typing import Any, Callable


def fmt_ns(ns: float | int | None) -> str:
    if ns is None:
        return "–"
    ns = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}" if abs(ns) < 100 * scale else f"{ns / scale:.0f} {unit}"
    return f"{ns:.0f} ns"


def fmt_share(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def fmt_si(value: float | None, unit: str = "") -> str:
    """1.23 G<unit> style for flop, bytes, flop/s..."""
    if value is None:
        return "–"
    value = float(value)
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def command_line(command: list) -> str:
    """A recorded command as one line a shell would read back (``shlex.join``), a newline inside an
    argument (``python -c '...'``) shown as ``\\n`` so that the line stays one line."""
    return shlex.join(str(part) for part in command).replace("\n", "\\n")


def idle_span_words(idle: dict) -> str:
    """What an idle share is of (idle.idle_attribution): the span, or the ranks' spans summed."""
    ranks = idle.get("ranks") or 1
    return "the span" if ranks == 1 else f"the {ranks} ranks' spans"


def idle_cause_label(cause: str, device: str | None) -> str:
    """A cause of idle time (idle.IDLE_CAUSES) in words. On a CPU trace the ops are the "device", so
    the host activity that covers its idle time is Python frames and annotations, not ops."""
    if cause == "host_ops" and device == "cpu":
        return "Python or annotations"
    return cause.replace("_", " ")


def clip(text: str, width: int) -> str:
    """``text`` within ``width`` characters, its end elided ("…") where longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    value = float(value)
    for prefix, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.0f} B"


def si(value: float, unit: str = "") -> str:
    """fmt_si, with milli/micro/nano prefixes below 1 (joules of a short window) and exa above peta."""
    if abs(value) >= 1e18:
        return f"{value / 1e18:.3g} E{unit}"
    if value and abs(value) < 1:
        for prefix, scale in (("m", 1e-3), ("µ", 1e-6), ("n", 1e-9)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {prefix}{unit}"
    return fmt_si(value, unit)


def _instant(ns: float) -> str:
    """A start or end: Unix-epoch ns (as recorded) as the UTC time of day, else a time since the start."""
    if ns < _EPOCH_NS:
        return fmt_ns(ns)
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3] + " UTC"


_EPOCH_NS = 1e17  # (1973: below it a start is a time since the trace's start, not a Unix time)

def is_share(key: str) -> bool:
    """Whether field ``key`` holds a share (a fraction of 1, shown as a percentage)."""
    return key.endswith(("share", "_fraction", "_fraction_measured", "_pct_of_peak")) or key.startswith("share_") or (
        key in ("mfu", "mue", "movement_efficiency", "efficiency", "coverage"))


def fmt_points(difference: float) -> str:
    """The difference of two shares in percentage points: "+16.6 pt" (a relative change of a share,
    "+37.9 %" for 43.6 % -> 60.2 %, reads as if it were the share itself)."""
    return f"{100 * difference:+.1f} pt"


def fmt_change(metric: str, base: Any, new: Any, change: Any) -> str:
    """A diff's change of ``metric`` as text: a share's in points, any other relative ("+5.0 %")."""
    if is_share(metric) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in (base, new)):
        return fmt_points(new - base)
    return fmt_field("change", change)


#: (predicate on the field name, formatter of a number). First match wins.
#: Words of a ``_bytes`` field that names memory held, not moved.
_HELD_WORDS = ("allocated", "reserved", "high_water", "rss", "peak_bytes", "total_bytes", "used")

FORMATS: tuple[tuple[Callable[[str], bool], Callable[[float], str]], ...] = (
    (lambda k: k.startswith("change_") or k == "change", lambda v: f"{100 * v:+.1f} %"),
    (lambda k: k in ("start_ns", "end_ns") or k.endswith(("_start_ns", "_end_ns")), _instant),
    (lambda k: k.endswith("_ns"), fmt_ns),
    (lambda k: k.endswith("_ms"), lambda v: fmt_ns(v * 1e6)),
    (is_share, fmt_share),
    (lambda k: k.endswith("_pct"), lambda v: f"{v:.1f} %"),
    (lambda k: k.endswith("flops_per_s") or k.endswith("flop_per_s"), lambda v: fmt_si(v, "flop/s")),
    (lambda k: k.endswith("bytes_per_s"), lambda v: fmt_si(v, "B/s")),
    (lambda k: k.endswith("tokens_per_s"), lambda v: fmt_si(v, "tok/s")),
    (lambda k: k.endswith("_per_s"), lambda v: fmt_si(v, "/s")),
    (lambda k: bool({"flops", "flop"} & set(k.split("_"))), lambda v: fmt_si(v, "flop")),
    # Memory held (allocator and NVML peaks, RSS, a device's capacity) in binary units, as the memory
    # section and nvidia-smi give it; bytes moved (traffic) in decimal ones, as bandwidths are.
    (lambda k: k.endswith("_bytes") and any(word in k for word in _HELD_WORDS), fmt_bytes),
    (lambda k: k == "bytes" or k.endswith("_bytes"), lambda v: fmt_si(v, "B")),
    (lambda k: k.endswith("_j") or k.endswith("_j_per_token") or k.startswith("j_per"), lambda v: si(v, "J")),
    (lambda k: k.endswith("_w"), lambda v: si(v, "W")),
    (lambda k: k == "arithmetic_intensity" or k.endswith("_intensity"), lambda v: f"{fmt_si(v)} flop/B"),
)


def fmt_field(key: str, value: Any) -> str:
    """Display text of one value of field ``key``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        unit_key = key.split("_", 1)[1] if key.startswith(("base_", "new_", "delta_")) else key
        if key.startswith("delta_") and is_share(unit_key):
            return fmt_points(value)
        for matches, fmt in FORMATS:
            if matches(unit_key):
                text = fmt(value)
                return f"+{text}" if key.startswith("delta_") and value > 0 else text
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:.4g}"
    if isinstance(value, dict) and value and not any(isinstance(v, (dict, list)) for v in value.values()):
        # "p50 1.75 ms · p90 3.46 ms": percentiles and per-device figures ("0": device 0) take the unit
        # of the field that holds them
        return " · ".join(f"{k} {fmt_field(key, v)}" if k in ("p50", "p90", "p99") else
                          f"device {k}: {fmt_field(key, v)}" if str(k).isdigit() else f"{label(k)} {fmt_field(k, v)}"
                          for k, v in value.items() if v is not None)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


#: Headers for field names: the cells carry the unit (fmt_field), so a header drops it or spells it
#: short; a few names are read as their abbreviations.
_LABELS = {"j_per_token": "J/token", "mfu": "MFU", "mue": "MUE", "ttft_ns": "TTFT", "tbt_ns": "TBT", "flops": "flop"}
_LABEL_SUFFIXES = (("_per_s", "/s"), ("_ns", ""), ("_ms", ""), ("_j", ""), ("_w", ""), ("_pct", " %"))


def label(key: str) -> str:
    """The header of field ``key``: "time_ns" -> "time", "tokens_per_s" -> "tokens/s"."""
    if key in _LABELS:
        return _LABELS[key]
    if key.startswith("delta_") and is_share(key[len("delta_"):]):  # (a diff's change of a share, in points)
        return "change " + label(key[len("delta_"):])
    if key.startswith("j_per_"):  # energy per unit of work: "J/generated token"
        return "J/" + key[len("j_per_"):].replace("_", " ")
    for suffix, spelled in _LABEL_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)] + spelled
            break
    return key.replace("_", " ")
