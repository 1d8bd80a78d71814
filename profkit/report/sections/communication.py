"""The ``communication`` section: collective kernels' time, the part other GPU work overlapped, and the
exposed rest (analyzers/communication.py).

JSON: ``ranks``, one object per rank with collective kernels (``rank``,
``communication_ns``, ``overlapped_ns``, ``exposed_ns``, ``overlapped_share``,
``span_ns``, ``exposed_share`` of the span); ``collectives``: the collective
kernel names with the most exposed time (``name``, ``count``, ``time_ns``,
``exposed_ns``, ``exposed_share`` of their own time); ``reason`` (null when the
trace has collective kernels). With several ranks each rank object also has
``waiting_ns`` (its collective kernels' time beyond the fastest rank's, instance
by instance: time spent waiting for the others), ``waiting_share`` (of its
matched collectives' time) and ``last_arrivals`` (the matched collectives it
reached last: its kernel was the shortest; a tie counts for each), and
``waiting`` says what was matched (``instances``; ``skipped``: the collective
calls, by name, some rank lacks or ran a different number of times in a step);
null fields and ``waiting`` with one rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.markup import escape

from ...analyzers import communication
from ...analyzers.columns import int_values, label_codes, positions
from ...analyzers.energy import STEP_PHASES
from ...analyzers.phase_windows import step_positions
from ..context import ReportContext
from ..format import fmt_ns, fmt_share
from ..kernel_names import short_kernel_name
from ..registry import section
from .categories import classified, gpu_trace
from .phases import analysis

_SHOWN = 3  # collective names in the terminal line


@section("communication", order=32, render=lambda data, console: render(data, console))
def communication_section(ctx: ReportContext) -> dict[str, Any]:
    rows = classified(ctx)
    if not gpu_trace(ctx):
        return {"ranks": [], "collectives": [], "waiting": None, "reason": "no GPU work in the trace"}
    device = communication.device_rows(rows)
    if not device.collective.any():
        return {"ranks": [], "collectives": [], "waiting": None,
                "reason": "no collective kernels (NCCL, RCCL) in the trace"}
    exposed_by_rank = communication.exposed_intervals(device)  # (once: the ranks' figures and each kernel's)
    exposed = communication.exposed_by_kernel(device, exposed_by_rank)
    names = label_codes(rows["name"])
    ranks = communication.overlap_by_rank(device, exposed_by_rank)
    waits = _waiting(ctx, rows, device)
    for record in ranks:
        matched = waits.matched_ns.get(record["rank"], 0) if waits else 0
        record["waiting_ns"] = waits.waiting_ns.get(record["rank"]) if waits else None
        record["waiting_share"] = record["waiting_ns"] / matched if matched else None
        record["last_arrivals"] = waits.last_arrivals.get(record["rank"]) if waits else None
    return {
        "ranks": ranks,
        "collectives": communication.by_name(*names, device.collective, device.end_ns - device.start_ns, exposed,
                                             ctx.options.top),
        "waiting": {"instances": waits.instances, "skipped": waits.skipped} if waits else None,
        "reason": None,
    }


def _waiting(ctx: ReportContext, rows, device: communication.DeviceRows) -> communication.Waiting | None:
    """``waiting_by_rank`` over the collective kernels, each matched by its call in the events of every
    rank (the step windows: the Phases table's)."""
    at = np.flatnonzero(device.collective)
    if len(np.unique(device.rank[at])) < 2:
        return None
    events = ctx.table
    kernel_pos = positions(int_values(events["event_id"]), rows["event_id"])[at]
    windows = analysis(ctx).window_columns
    steps = {name: np.asarray(values)[step_positions(windows, STEP_PHASES, steady=False)]
             for name, values in windows.items()}
    calls = communication.collective_calls(events, kernel_pos, steps)
    return communication.waiting_by_rank(device.rank[at], (device.end_ns - device.start_ns)[at], device.start_ns[at],
                                         calls)


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
    waited = [r for r in ranks if r.get("waiting_ns") is not None]
    if waited:  # (several ranks: how long each one's collectives waited for the others)
        instances = (data.get("waiting") or {}).get("instances")
        console.print(f"  waiting for other ranks (over the {instances} collectives matched on every rank, each one's "
                      "time beyond its fastest rank's): " + ", ".join(
                          f"rank {r['rank']} {fmt_ns(r['waiting_ns'])} ({fmt_share(r['waiting_share'])})"
                          for r in waited))
        most = max(r.get("last_arrivals") or 0 for r in waited)
        if instances and most:  # (the straggler: the rank the others waited for most often)
            late = [str(r["rank"]) for r in waited if r.get("last_arrivals") == most]
            console.print(f"  last to arrive most often: rank{'s' if len(late) > 1 else ''} {', '.join(late)}, at "
                          f"{most} of {instances}{' each' if len(late) > 1 else ''}")
    skipped = (data.get("waiting") or {}).get("skipped") or []
    if skipped:
        console.print(f"  not matched across ranks (a rank lacks some calls): {escape(', '.join(skipped[:_SHOWN]))}")
    listed = data.get("collectives") or []
    if listed:
        console.print("  most exposed: " + ", ".join(
            f"{escape(short_kernel_name(c['name']))} {fmt_ns(c['exposed_ns'])} of {fmt_ns(c['time_ns'])} "
            f"({c['count']}×)" for c in listed[:_SHOWN]))
