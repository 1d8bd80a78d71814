"""Sections every report has: the run, totals, top ops and top kernels."""

from __future__ import annotations

from typing import Callable

from rich.markup import escape
from rich.table import Table

from ...analyzers import summary
from ..context import ReportContext
from ..format import command_line, fmt_ns, fmt_share
from ..kernel_names import tidy_kernel_name
from ..registry import section


def _render_run(run: dict, console) -> None:
    status = "partial" if run["partial"] else "complete"
    exit_text = "" if run["exit_code"] is None else f", exit code {run['exit_code']}"
    console.print(f"[bold]profkit report[/bold] · {escape(command_line(run['command'])) or '(no command)'}")
    console.print(
        f"device: {escape(str(run['device']))} · duration {fmt_ns(run['duration_ns'])} · ranks {run['ranks']} · {status}{exit_text}"
    )
    for note in run.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {escape(note)}")


def _span(ctx: ReportContext) -> tuple[int, int]:
    """First start and last end of the trace (the run and the totals both report it)."""
    return ctx.cached("span", lambda: summary.span_ns(ctx.table))


@section("run", order=0, render=_render_run)
def run_section(ctx: ReportContext) -> dict:
    meta = ctx.metadata
    devices = meta.get("devices") or []
    gpu_names = sorted({d.get("name", "?") for d in devices if d.get("type") == "gpu"})
    first, last = _span(ctx)
    partial = any(bool(t.metadata.get("partial")) for t in ctx.traces)
    notes = []
    for trace in ctx.traces:
        notes.extend(trace.metadata.get("notes") or [])
    if not len(ctx.table):  # (a program that ran no torch op, or a file others wrote empty)
        notes.append("the trace holds no events: nothing below is measured")
    return {
        "command": meta.get("command") or [],
        "device": ", ".join(gpu_names) if gpu_names else (meta.get("cpu_name") or "cpu"),
        "duration_ns": last - first,
        "partial": partial,
        "exit_code": meta.get("exit_code"),
        "ranks": sorted({t.rank for t in ctx.traces}),
        "world_size": meta.get("world_size"),
        "host": meta.get("host"),
        "producer": meta.get("producer"),
        "torch_version": meta.get("torch_version"),
        "files": [str(t.path) for t in ctx.traces if t.path],
        "notes": sorted(set(notes)),
    }


def _render_totals(totals: dict, console) -> None:
    what = "GPU" if totals["device"] == "gpu" else "CPU (time inside ops)"
    ranks = totals.get("rank_count") or 1
    # Several ranks: busy time is summed over them, so it is a share of their spans summed.
    of = fmt_ns(totals["span_ns"]) if ranks == 1 else f"{fmt_ns(totals['device_span_ns'])} over {ranks} ranks"
    console.print(
        f"{what} busy {fmt_ns(totals['device_busy_ns'])} of {of} ({fmt_share(totals.get('device_busy_share'))}), "
        f"{totals['kernel_count']} kernels ({fmt_ns(totals['kernel_time_ns'])}), {totals['op_count']} ops"
    )


@section("totals", order=10, render=_render_totals)
def totals_section(ctx: ReportContext) -> dict:
    return summary.totals(ctx.table, span=_span(ctx))


def _render_top(title: str, display: Callable[[str], str] | None = None, time_header: str = "self time"):
    """A top-N table; ``display`` gives a name's one-line form (kernels: C++ names run to hundreds of
    characters, and folded they filled screens), else names are folded onto several lines. A kernel
    has no child work: its ``self_time_ns`` is its time (``time_header``)."""
    def render(rows: list[dict], console) -> None:
        if not rows:
            return
        table = Table(title=title, title_justify="left")
        if display is None:
            table.add_column("name", overflow="fold", max_width=70)
        else:
            width = max(30, min(90, console.width - 34))  # count, self time and share keep their room
            table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=width)
        table.add_column("count", justify="right")
        table.add_column(time_header, justify="right")
        table.add_column("share", justify="right")
        for row in rows:
            name = row["name"] if display is None else display(row["name"])
            table.add_row(escape(name), str(row["count"]), fmt_ns(row["self_time_ns"]), fmt_share(row["share"]))
        console.print(table)

    return render


@section("top_ops", order=80, render=_render_top("Top ops by self time"))
def top_ops_section(ctx: ReportContext) -> list[dict]:
    return summary.top_records(summary.top_op_columns(ctx.table, ctx.options.top))


@section("top_kernels", order=81, render=_render_top("Top GPU kernels", tidy_kernel_name, "time"))
def top_kernels_section(ctx: ReportContext) -> list[dict]:
    return summary.top_records(summary.top_kernel_columns(ctx.table, ctx.options.top))
