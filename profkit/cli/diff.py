"""`profkit diff BASE NEW`: what changed, per class, per op and per kernel (terminal, JSON, Markdown)."""

from __future__ import annotations

import json
import re
import sys
from typing import NamedTuple

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..analyzers.diff import diff_traces
from ..report import ReportOptions, build_report
from ..report.build import jsonable
from ..report.context import ReportContext
from ..report.drawn import drawn_width
from ..report.format import clip, fmt_change, fmt_field, label
from ..report.kernel_names import KERNEL_SECTIONS, short_kernel_names
from .inputs import load_any
from .output import emit

_SHAPES_WIDTH = 48


@click.command("diff")
@click.argument("base", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html"]), default="text", show_default=True)
@click.option("--top", default=15, show_default=True, type=click.IntRange(min=1), help="Rows per table.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def command(base, new, fmt, top, output):
    """Compare NEW with BASE (profkit traces, folders of rank traces, or Chrome-trace JSON)."""
    document = compute_diff(base, new, top=top)
    if fmt == "json":
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    elif fmt == "markdown":
        text = render_markdown(document, top)
    elif fmt == "html":
        from ..report.html import render_diff_html

        text = render_diff_html(document)
    else:
        # A terminal's width is its own; a file or a pipe has none: there each table takes the width
        # its cells need, so that no "base → new (change)" cell wraps mid-figure.
        console = Console(record=output is not None, width=_UNBOUNDED if output or not sys.stdout.isatty() else None)
        render_text(document, console, top)
        if output is None:
            return
        text = console.export_text()
    emit(text, output)


_UNBOUNDED = 1000  # columns: wider than any diff table (six columns of at most ~70 characters)


def compute_diff(base: str, new: str, *, top: int | None = None) -> dict:
    base_traces, new_traces = load_any([base]), load_any([new])
    options = ReportOptions(top=top or 15)
    base_doc, new_doc = build_report(base_traces, options), build_report(new_traces, options)
    return jsonable(
        diff_traces(_events(base_traces), _events(new_traces), base_doc, new_doc,
                    labels=(str(base), str(new)), top=None)
    )


def _events(traces: list):
    """All ranks' events in one table, as the report sees them."""
    return ReportContext(traces=traces).events


# ---------------------------------------------------------------- formatting (pure)

#: (title, records key, key columns, metrics shown) for the diff's own tables.
TABLES = (
    ("Classes", "classes", ("class",), ("time_ns", "count")),
    ("Ops (matched by name and input shapes)", "ops", ("name", "input_shapes"),
     ("gpu_time_ns", "cpu_self_time_ns", "count", "flop")),
    ("Kernels in both", "kernels_matched", ("name",), ("time_ns", "count")),
    ("Kernels that appeared", "kernels_appeared", ("name",), ("time_ns", "count")),
    ("Kernels that vanished", "kernels_vanished", ("name",), ("time_ns", "count")),
)


class Change(NamedTuple):
    """One metric's cell, formatted: "46.1 ms → 41.7 ms (-9.5 %)" as text; its parts for the narrow layout."""

    base: str
    new: str
    change: str

    def __str__(self) -> str:
        return f"{self.base} → {self.new} ({self.change})"


def _cell(metric: str, base, new, change) -> Change:
    return Change(fmt_field(metric, base), fmt_field(metric, new), fmt_change(metric, base, new, change))


def tables(document: dict, top: int) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of the diff as (title, header, rows of text): report sections first, then the diff's own."""
    out = []
    for name, section in document.get("sections", {}).items():
        if section["type"] == "flat":
            rows = [[label(r["metric"]), _cell(r["metric"], r["base"], r["new"], r["change"])] for r in section["rows"]]
            out.append((name, ["metric", "base → new (change)"], rows))
        else:
            out.append((name, *_record_table(section["rows"], (section["key"],), tuple(section["metrics"][:4]), top,
                                             kernels=name in KERNEL_SECTIONS)))
    for title, key, keys, metrics in TABLES:
        if key == "ops":
            metrics = (document.get("op_metric", "gpu_time_ns"), "count", "flop")
        records = document.get(key) or []
        if key == "classes" and "categories" in document.get("sections", {}):
            continue  # the report's categories section (time, flop, energy per class) says it better
        if key == "kernels_matched":
            records = [r for r in document.get("kernels") or [] if r.get("status") in ("same", "changed")]
        if records:
            out.append((title, *_record_table(records, keys, metrics, top, kernels=key.startswith("kernels"))))
    return out


def _record_table(records: list[dict], keys: tuple[str, ...], metrics: tuple[str, ...], top: int,
                  kernels: bool = False):
    """``kernels``: the name column holds kernel names, shown short as the report shows them."""
    shown = [m for m in metrics if any(r.get(f"base_{m}") or r.get(f"new_{m}") for r in records)]
    header = list(keys) + [label(m) for m in shown] + ["status"]
    rows = []
    names = short_kernel_names([str(r.get("name", "")) for r in records[:top]], 70) if kernels else None
    for i, record in enumerate(records[:top]):
        row = [names[i] if names and k == "name" else clip(str(record.get(k, "")), 70 if k == "name" else _SHAPES_WIDTH)
               for k in keys]
        row += [_cell(m, record.get(f"base_{m}"), record.get(f"new_{m}"), record.get(f"change_{m}")) for m in shown]
        rows.append(row + [record.get("status", "")])
    return header, rows


def headline(document: dict) -> list[str]:
    base, new = document["base"], document["new"]
    lines = [f"base: {base['label']} ({base.get('device') or '?'})", f"new:  {new['label']} ({new.get('device') or '?'})"]
    if document.get("cross_device"):
        lines.append("different devices: ops are matched by name and shapes; kernel names are device-specific")
    counts = document["kernel_counts"]
    lines.append(
        f"ops matched: {document['ops_matched']} of {document['ops_total']} (name + shapes); kernels: "
        f"{counts['matched']} matched, {counts['appeared']} appeared, {counts['vanished']} vanished"
    )
    return lines


def render_text(document: dict, console, top: int) -> None:
    for line in headline(document):
        console.print(line, highlight=False, markup=False)  # names and paths are data
    for title, header, rows in tables(document, top):
        table = _wide_table(title, header, rows)
        if drawn_width(table) > console.width:  # rich would fold every "base → new (change)" over 3-4 lines
            table = _long_table(title, header, rows)
        console.print(table)


def _wide_table(title: str, header: list[str], rows: list[list]) -> Table:
    """A row per record, a "base → new (change)" cell per metric."""
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(header):
        table.add_column(column, overflow="fold", justify="right" if rows and isinstance(rows[0][i], Change) else "left")
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    return table


def _long_table(title: str, header: list[str], rows: list[list]) -> Table:
    """For a narrow console: base, new and change in columns of their own. With one metric, a line per
    record; with several, the record's names (and status) on a line, then a line per metric."""
    changes = [i for i, cell in enumerate(rows[0]) if isinstance(cell, Change)] if rows else []
    status = header[-1] == "status"
    names = [i for i in range(len(header) - status) if i not in changes]
    table = Table(title=title, title_justify="left")
    table.add_column(" · ".join(header[i] for i in names), overflow="fold")
    for column in ("base", "new", "change"):
        table.add_column(column, justify="right", overflow="fold")
    if status:
        table.add_column("status")
    for row in rows:
        record = escape(" ".join(str(row[i]) for i in names))
        state = [escape(str(row[-1]))] if status else []
        if len(changes) == 1:
            table.add_row(record, *map(escape, row[changes[0]]), *state)
            continue
        table.add_row(record, "", "", "", *state)
        for n, i in enumerate(changes):
            table.add_row(f"  {escape(header[i])}", *map(escape, row[i]), *[""] * status,
                          end_section=n == len(changes) - 1)
    return table


def render_markdown(document: dict, top: int) -> str:
    """A pull-request comment: the headline, then one Markdown table per section."""
    lines = ["### profkit diff", ""] + [f"- {line}" for line in headline(document)]
    for title, header, rows in tables(document, top):
        literal = [column in _DATA_COLUMNS for column in header]
        lines += ["", f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join((_code(str(cell)) if code else str(cell)).replace("|", "\\|")
                                    for cell, code in zip(row, literal)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


#: Columns holding trace text (C++ kernel names, shapes): Markdown would read "MulFunctor<float>" as an
#: HTML tag (GitHub drops it) and "*" or "__" as emphasis, so they are code spans.
_DATA_COLUMNS = {"name", "input_shapes"}
_BACKTICKS = re.compile("`+")


def _code(text: str) -> str:
    """``text`` as a Markdown code span: fenced by one more backtick than its longest run of them."""
    if not text:
        return text
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
