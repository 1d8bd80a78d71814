"""`profkit report TRACE...`: explain one trace or a set of rank traces."""

from __future__ import annotations

import click
from rich.console import Console

from ..errors import UsageError
from ..report import ReportOptions, build_report, render_terminal, to_json
from ..report.registry import sections
from .inputs import load_any
from .output import emit


@click.command("report")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
@click.option("--top", default=15, show_default=True, type=click.IntRange(min=1), help="Rows in top-N tables.")
@click.option("--hardware", default=None, help="Analyze against this device (e.g. h100, a100-80gb) instead of the trace's.")
@click.option("-s", "--section", "only", multiple=True, type=click.Choice([s.key for s in sections()]),
              help="Only this section of the report, text or JSON (repeat for several).")
def command(traces, fmt, output, top, hardware, only):
    """Report on TRACES: profkit traces, folders of per-rank traces, or Chrome-trace JSON (imported on the fly)."""
    if only and fmt == "html":
        raise UsageError("--section picks sections of the text and JSON reports; the HTML report draws them all")
    loaded = load_any(traces)
    options = ReportOptions(top=top, hardware=hardware, sections=tuple(only))
    document = build_report(loaded, options)
    if fmt == "json":
        text = to_json(document) + "\n"
    elif fmt == "html":
        from ..report.html import render_html

        text = render_html(document, loaded, options=options)
    else:
        console = Console(record=output is not None, width=120 if output else None)
        render_terminal(document, console)
        if output is None:
            return
        text = console.export_text()
    emit(text, output)
