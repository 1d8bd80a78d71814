"""Sortable HTML tables for any list of records, and key/value tables for flat sections.

Cells are formatted by the unit their field name carries (``format.fmt_field``:
``_ns``, ``_j``, ``_share``...). Numeric cells keep the raw number in ``data-v``
so report.js sorts them by value.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..format import fmt_field, label, si  # noqa: F401  (si: the panels' formatter of J and W)
from ..kernel_names import short_kernel_names
from .markup import attrs, esc

MAX_ROWS = 200
#: ``records_table``'s display of a column of kernel names: the short form, the whole name on hover.
KERNEL_NAMES = {"name": lambda names: short_kernel_names(names, width=60)}
_LONG_TEXT = 90


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
