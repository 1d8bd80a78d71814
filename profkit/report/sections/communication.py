"""The ``communication`` section: collective kernels' time, the part other GPU work overlapped, and the
exposed rest (analyzers/communication.py).

JSON: ``ranks``, one object per rank with collective kernels (``rank``,
``communication_ns``, ``overlapped_ns``, ``exposed_ns``, ``overlapped_share``,
``span_ns``, ``exposed_share`` of the span); ``collectives``: the collective
kernel names with the most exposed time (``name``, ``count``, ``time_ns``,
``exposed_ns``, ``exposed_share`` of their own time); ``reason`` (null when the
trace has collective kernels).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ...analyzers import communication
from ...analyzers.columns import label_codes
from ..context import ReportContext
from ..format import fmt_ns, fmt_share
from ..kernel_names import short_kernel_name
from ..registry import section
from .categories import classified, gpu_trace

_SHOWN = 3  # collective names in the terminal line


@section("communication", order=32, render=lambda data, console: render(data, console))
def communication_section(ctx: ReportContext) -> dict[str, Any]:
    rows = classified(ctx)
    if not gpu_trace(ctx):
        return {"ranks": [], "collectives": [], "reason": "no GPU work in the trace"}
    device = communication.device_rows(rows)
    if not device.collective.any():
        return {"ranks": [], "collectives": [], "reason": "no collective kernels (NCCL, RCCL) in the trace"}
    exposed_by_rank = communication.exposed_intervals(device)  # (once: the ranks' figures and each kernel's)
    exposed = communication.exposed_by_kernel(device, exposed_by_rank)
    names = label_codes(rows["name"])
    return {
        "ranks": communication.overlap_by_rank(device, exposed_by_rank),
        "collectives": communication.by_name(*names, device.collective, device.end_ns - device.start_ns, exposed,
                                             ctx.options.top),
        "reason": None,
    }


def render(data: dict[str, Any], console) -> None:
    ranks = data.get("ranks") or []
    if not ranks:  # (a trace without collectives: nothing to say)
        return
    for r in ranks:
        who = f"rank {r['rank']} " if len(ranks) > 1 else ""
        console.print(
            f"[bold]communication[/bold] · {who}collective kernels {fmt_ns(r['communication_ns'])}: "
            f"{fmt_share(r['overlapped_share'])} overlapped by other GPU work, "
            f"[bold]{fmt_ns(r['exposed_ns'])} exposed[/bold] ({fmt_share(r['exposed_share'])} of the GPU span)")
    listed = data.get("collectives") or []
    if listed:
        console.print("  most exposed: " + ", ".join(
            f"{escape(short_kernel_name(c['name']))} {fmt_ns(c['exposed_ns'])} of {fmt_ns(c['time_ns'])} "
            f"({c['count']}×)" for c in listed[:_SHOWN]))
