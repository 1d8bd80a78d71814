"""``profkit diff --format html``: the diff document (analyzers/diff.py) as one page.

Base and new side by side: run facts, per-class time as paired bars, then one
sortable table per compared section, ops (matched by name and shapes) and
kernels, with kernels that appeared or vanished. Increases in time or energy
are red, decreases green. Like the report page, it needs nothing but itself.
"""

from __future__ import annotations

from typing import Any, Callable

from ..format import fmt_change, fmt_ns, is_share
from ..kernel_names import KERNEL_SECTIONS
from . import charts
from .markup import esc
from .page import render_page
from .panels import kpis
from .tables import KERNEL_NAMES, fmt_field, label, records_table

_SHAPES = "input_shapes"
MAX_ROWS = 60  # per table; the embedded JSON has every row


def render_diff_html(document: dict[str, Any]) -> str:
    """The diff as one HTML page (text)."""
    sections = []
    for key, title, draw in DIFF_PANELS:
        inner = draw(document)
        if inner:
            sections.append((key, title, inner))
    base, new = document.get("base") or {}, document.get("new") or {}
    title = f"profkit diff · {base.get('label', 'base')} → {new.get('label', 'new')}"
    subtitle = " → ".join(str(side.get("device") or "?") for side in (base, new))
    return render_page(title, subtitle, sections, document)


def _summary(doc: dict) -> str:
    base, new = doc.get("base") or {}, doc.get("new") or {}
    counts = doc.get("kernel_counts") or {}
    out = [kpis([
        ("ops matched", f"{doc.get('ops_matched', 0)} of {doc.get('ops_total', 0)}" if "ops_total" in doc else "–"),
        ("kernels matched", str(counts.get("matched", "–"))),
        ("kernels appeared", str(counts.get("appeared", "–"))),
        ("kernels vanished", str(counts.get("vanished", "–"))),
    ])]
    rows = "".join(f"<tr><th>{esc(name)}</th><td>{esc(side.get('label'))}</td><td>{esc(side.get('device') or '?')}</td>"
                   f"<td>{esc(side.get('producer') or '')}</td></tr>" for name, side in (("base", base), ("new", new)))
    out.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
    if doc.get("cross_device"):
        out.append('<p class="note">Different devices: ops are matched by name and input shapes; kernel names are '
                   "device-specific, so most kernels appear or vanish.</p>")
    flat = [(name, s) for name, s in (doc.get("sections") or {}).items()
            if isinstance(s, dict) and s.get("type") == "flat"]
    for name, section in flat:
        out.append(f"<h3>{esc(label(name))}</h3>" + _flat_table(section.get("rows") or []))
    return "".join(out)


def _flat_table(rows: list[dict]) -> str:
    """metric | base | new | change, each value formatted by its metric's unit."""
    body = []
    for row in rows:
        metric = str(row.get("metric", ""))
        cells = [f"<td>{esc(label(metric))}</td>"]
        for value in (row.get("base"), row.get("new")):
            cells.append(f'<td class="n">{esc(fmt_field(metric, value))}</td>')
        change = row.get("change")
        cls = "n"
        if isinstance(change, (int, float)) and metric.endswith(("_ns", "_j")) and abs(change) >= 0.005:
            cls = "n worse" if change > 0 else "n better"
        cells.append(f'<td class="{cls}">{esc(fmt_change(metric, row.get("base"), row.get("new"), change))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ('<table class="sortable"><thead><tr><th>metric</th><th>base</th><th>new</th><th>change</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _classes(doc: dict) -> str | None:
    rows = [r for r in doc.get("classes") or [] if isinstance(r, dict)]
    if not rows:
        return None
    order = {c: i for i, c in enumerate(charts.CLASS_COLOURS)}
    rows = sorted(rows, key=lambda r: order.get(str(r.get("class")), 99))
    bars = [(str(r.get("class")), float(r.get("base_time_ns") or 0), float(r.get("new_time_ns") or 0)) for r in rows]
    svg = charts.paired_bars(bars, fmt_ns, ("base", "new"), "time per operator class, base and new")
    return (f'<div class="chart">{svg}</div>'
            + records_table(rows, _columns(rows, ("class",), ("time_ns", "count"))))


def _columns(rows: list[dict], keys: tuple[str, ...], metrics: tuple[str, ...] | list[str]) -> list[str]:
    present = set().union(*(r.keys() for r in rows))
    columns = [k for k in keys if k in present]
    for m in metrics:  # (a share's change is its difference, in points)
        columns += [c for c in (f"base_{m}", f"new_{m}", f"{'delta' if is_share(m) else 'change'}_{m}") if c in present]
    return columns + (["status"] if "status" in present else [])


def _section_tables(doc: dict) -> str | None:
    out = []
    for name, section in (doc.get("sections") or {}).items():
        if not isinstance(section, dict) or section.get("type") == "flat" or not section.get("rows"):
            continue
        metrics = list(section.get("metrics") or [])
        main = [m for m in ("time_ns", "energy_j", "flops", "time_share") if m in metrics] or metrics[:3]
        kernels = KERNEL_NAMES if name in KERNEL_SECTIONS else None  # (op names have no template to cut)
        out.append(f"<h3>{esc(label(name))}</h3>" + records_table(
            section["rows"], _columns(section["rows"], (str(section.get("key")),), main), display=kernels))
    return "".join(out) or None


def _ops(doc: dict) -> str | None:
    rows = [r for r in doc.get("ops") or [] if isinstance(r, dict)]
    if not rows:
        return None
    metric = str(doc.get("op_metric") or "gpu_time_ns")
    return records_table(rows, _columns(rows, ("name", _SHAPES), (metric, "count", "flop")), max_rows=MAX_ROWS)


def _kernels(doc: dict) -> str | None:
    out = []
    both = [r for r in doc.get("kernels") or [] if isinstance(r, dict) and r.get("status") in ("same", "changed")]
    for title, rows in (("in both, largest change first", both),
                        ("appeared", [r for r in doc.get("kernels_appeared") or [] if isinstance(r, dict)]),
                        ("vanished", [r for r in doc.get("kernels_vanished") or [] if isinstance(r, dict)])):
        if rows:
            out.append(f"<h3>{esc(title)}</h3>" + records_table(
                rows, _columns(rows, ("name", "kind"), ("time_ns", "count")), max_rows=MAX_ROWS, display=KERNEL_NAMES))
    return "".join(out) or None


#: (anchor, title, draw(document) -> html | None), in page order.
DIFF_PANELS: tuple[tuple[str, str, Callable[[dict], str | None]], ...] = (
    ("summary", "Base and new", _summary),
    ("classes", "Time per operator class", _classes),
    ("sections", "Report sections compared", _section_tables),
    ("ops", "Ops (matched by name and input shapes)", _ops),
    ("kernels", "Kernels", _kernels),
)
