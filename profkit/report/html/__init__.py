"""One self-contained HTML file per report: inline SVG charts, a few KB of script, no network.

``render_html(document, traces)`` draws the JSON report (``build_report``)
and, when given the loaded traces (or a ReportContext), the figures that need
the events: the roofline points, the timeline, the per-step and per-pass bars.
``render_diff_html(diff_document)`` draws a ``profkit diff`` document.
Panels for sections a report does not have are left out. Every string from a
trace is escaped (markup.py).
"""

from __future__ import annotations

from typing import Any, Iterable

from ..context import ReportContext, ReportOptions
from ..format import command_line
from .diff import render_diff_html
from .markup import esc
from .page import render_page
from .panels import View, panels

__all__ = ["render_diff_html", "render_html"]


def render_html(document: dict[str, Any], traces: Iterable | None = None, *, options: ReportOptions | None = None,
                context: ReportContext | None = None) -> str:
    """The report as one HTML page (text). ``traces`` or ``context`` add the event-level charts."""
    if context is None and traces is not None:
        traces = list(traces)
        context = ReportContext(traces=traces, options=options or ReportOptions()) if traces else None
    view = View(document=document, ctx=context)
    sections = []
    for p in panels():
        try:
            inner = p.draw(view)
        except Exception as exc:  # noqa: BLE001 - one panel failing must not lose the rest of the page
            inner = f'<p class="note">This panel could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        if inner:
            sections.append((p.key, p.title, inner))
    run = document.get("run") or {}
    command = command_line(run.get("command") or []) or ", ".join(run.get("files") or []) or "trace"
    subtitle = " · ".join(str(s) for s in (run.get("device"), run.get("producer")) if s)
    return render_page(f"profkit report · {command}", subtitle, sections, document)
