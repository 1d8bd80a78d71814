"""Sortable HTML tables for any list of records, and key/value tables for flat sections.

Cells are formatted by the unit their field name carries (``_ns``, ``_j``,
``_share``...; the ``FORMATS`` table, first match wins). Numeric cells keep
the raw number in ``data-v`` so report.js sorts them by value.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..format import fmt_ns, fmt_share, fmt_si
from .markup import attrs, esc

MAX_ROWS = 200
_LONG_TEXT = 90


def si(value: float, unit: str = "") -> str:
    """fmt_si, with milli/micro/nano prefixes below 1 (joules of a short window) and exa above peta."""
    if abs(value) >= 1e18:
        return f"{value / 1e18:.3g} E{unit}"
    if value and abs(value) < 1:
        for prefix, scale in (("m", 1e-3), ("µ", 1e-6), ("n", 1e-9)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {prefix}{unit}"
    return fmt_si(value, unit)


def _pct(v: float) -> str:
    return fmt_share(v)


#: (predicate on the field name, formatter of a number). First match wins.
def _instant(ns: float) -> str:
    """A start or end: Unix-epoch ns (as recorded) as the UTC time of day, else a time since the start."""
    if ns < _EPOCH_NS:
        return fmt_ns(ns)
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3] + " UTC"


_EPOCH_NS = 1e17  # (1973: below it a start is a time since the trace's start, not a Unix time)

FORMATS: tuple[tuple[Callable[[str], bool], Callable[[float], str]], ...] = (
    (lambda k: k.startswith("change_") or k == "change", lambda v: f"{100 * v:+.1f} %"),
    (lambda k: k in ("start_ns", "end_ns") or k.endswith(("_start_ns", "_end_ns")), _instant),
    (lambda k: k.endswith("_ns"), fmt_ns),
    (lambda k: k.endswith("_ms"), lambda v: fmt_ns(v * 1e6)),
    (lambda k: k.endswith(("share", "_fraction", "_fraction_measured", "_pct_of_peak")) or k.startswith("share_") or k in (
        "mfu", "mue", "movement_efficiency", "efficiency", "coverage"), _pct),
    (lambda k: k.endswith("_pct"), lambda v: f"{v:.1f} %"),
    (lambda k: k.endswith("flops_per_s") or k.endswith("flop_per_s"), lambda v: fmt_si(v, "flop/s")),
    (lambda k: k.endswith("bytes_per_s"), lambda v: fmt_si(v, "B/s")),
    (lambda k: k.endswith("tokens_per_s"), lambda v: fmt_si(v, "tok/s")),
    (lambda k: k.endswith("_per_s"), lambda v: fmt_si(v, "/s")),
    (lambda k: bool({"flops", "flop"} & set(k.split("_"))), lambda v: fmt_si(v, "flop")),
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
        for matches, fmt in FORMATS:
            if matches(unit_key):
                text = fmt(value)
                return f"+{text}" if key.startswith("delta_") and value > 0 else text
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:.4g}"
    if isinstance(value, dict) and value and not any(isinstance(v, (dict, list)) for v in value.values()):
        # "p50 1.75 ms · p90 3.46 ms": percentiles take the unit of the field that holds them
        # percentiles and per-device figures ("0": device 0) take the unit of the field that holds them
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
    if key.startswith("j_per_"):  # energy per unit of work: "J/generated token"
        return "J/" + key[len("j_per_"):].replace("_", " ")
    for suffix, spelled in _LABEL_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)] + spelled
            break
    return key.replace("_", " ")


def _cell(key: str, value: Any) -> str:
    text = fmt_field(key, value)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numeric and math.isfinite(value):
        return f'<td{attrs(class_=_cell_class(key, value), data_v=repr(value))}>{esc(text)}</td>'
    if len(text) > _LONG_TEXT:
        return f'<td class="long"{attrs(data_t=text)}>{esc(text[:_LONG_TEXT - 1])}…</td>'
    return f'<td class="long">{esc(text)}</td>' if len(text) > 24 else f"<td>{esc(text)}</td>"


def _nested(value: Any) -> bool:
    """A list of records (or an empty list) or a dict holding lists or dicts: a table of its own, not a cell."""
    if isinstance(value, list):
        return all(isinstance(v, dict) for v in value)
    return isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values())


def _short_cell(text: str, whole: str) -> str:
    """A text cell showing ``text``, with ``whole`` as its hover text when that says more."""
    hover = attrs(data_t=whole) if whole != text else ""
    return f'<td class="long"{hover}>{esc(text)}</td>'


def _cell_class(key: str, value: float) -> str:
    """Numbers align right; a change in time or energy is red when it grew by 0.5 % or more, green when it shrank."""
    if key.startswith("change_") and key.endswith(("_ns", "_j")) and abs(value) >= 0.005:
        return "n worse" if value > 0 else "n better"
    return "n"


def records_table(records: Sequence[dict], columns: Sequence[str] | None = None, *, caption: str | None = None,
                  max_rows: int = MAX_ROWS, display: Mapping[str, Callable[[list[str]], list[str]]] | None = None,
                  ) -> str:
    """A sortable table of records (click a header to sort). ``display``: per column, a function from
    the shown rows' texts to the texts to show (kernel names: their short forms); a cell so shortened
    keeps its whole text as hover text."""
    records = [r for r in records if isinstance(r, dict)]
    if not records:
        return ""
    if columns is None:
        columns = list(dict.fromkeys(k for r in records for k in r))
    # No all-empty columns, and no tables in a cell: a column of records (a phase's classes) has its own chart.
    columns = [c for c in columns if any(r.get(c) is not None for r in records)
               and not all(_nested(r.get(c)) for r in records if r.get(c) is not None)]
    head = "".join(f'<th{attrs(data_k=c)}>{esc(label(c))}</th>' for c in columns)
    shown = records[:max_rows]
    texts = {c: fn([fmt_field(c, r.get(c)) for r in shown]) for c, fn in (display or {}).items() if c in columns}
    body = "".join("<tr>" + "".join(_short_cell(texts[c][i], fmt_field(c, r.get(c))) if c in texts else _cell(c, r.get(c))
                                    for c in columns) + "</tr>" for i, r in enumerate(shown))
    more = (f'<p class="note">{len(records) - max_rows} more rows in the JSON embedded in this page.</p>'
            if len(records) > max_rows else "")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{more}")


def kv_table(values: dict, skip: Iterable[str] = ()) -> str:
    """Scalars of a flat section as a two-column table (nested lists/dicts become their own tables)."""
    skip = set(skip)
    rows, nested = [], []
    for key, value in values.items():
        empty_dict = isinstance(value, dict) and value and all(v is None for v in value.values())
        if key in skip or value is None or empty_dict or (isinstance(value, list) and not value):
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append(f"<h4>{esc(label(key))}</h4>" + records_table(value))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            nested.append(f"<h4>{esc(label(key))}</h4>" + records_table([{"key": k, **v} for k, v in value.items()]))
        elif isinstance(value, dict) and value and not any(isinstance(v, (dict, list)) for v in value.values()):
            rows.append(f"<tr><th>{esc(label(key))}</th><td>{esc(fmt_field(key, value))}</td></tr>")
        elif isinstance(value, dict) and value:
            nested.append(f"<h4>{esc(label(key))}</h4>" + kv_table(value))
        else:
            rows.append(f"<tr><th>{esc(label(key))}</th><td>{esc(fmt_field(key, value))}</td></tr>")
    table = f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>' if rows else ""
    return table + "".join(nested)
