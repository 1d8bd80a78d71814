"""The ``memory`` section: the most memory each device held, when, inside which op, and per phase.

JSON: ``devices``, one object per (rank, device) with memory samples:
``device`` ("GPU 0", "host"; "rank 1 GPU 0" with several ranks), ``rank``,
``device_type``, ``device_index``, ``total_bytes`` (the device's
memory, where known) and, per measure present (analyzers/memory.py's
``METRICS``: ``allocated``, ``reserved``, ``process``, ``device_used``,
``host_rss``), ``<measure>_peak_bytes`` and ``<measure>_peak_at_ns`` (since
the trace's first event). Where torch's allocator was recorded
(``profile_memory``): ``allocated_peak_op`` (the op running on the thread
that allocated when the peak was reached), ``allocated_peak_call`` (the
top-level op around it), ``allocated_first_bytes`` / ``allocated_last_bytes``,
``allocated_since_start`` (true where torch gave each event's size, not the
allocator's totals: torch before 2.13; the figures count from when recording
started); where the events carry their blocks' addresses (torch 2.13's
recordings, imported ``profile_memory`` traces): ``held_at_peak``, the ops
whose blocks, allocated while recording, were still held at the peak
(``name``, ``count`` of blocks, ``allocated_bytes``), and ``held_at_peak_bytes``
(all such blocks: the rest of the peak was allocated before recording started).
``phases``: the allocator's peak per phase / training step (``phase``,
``allocated_peak_bytes``). ``top_allocations``: the ops that allocated the
most bytes over the run (``name``, ``count``, ``allocated_bytes``, ``device_type``: the
GPUs', else the host's), from the allocator's samples. ``reason`` (null when
something was measured).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ...analyzers import memory
from ..context import ReportContext
from ..format import fmt_bytes, fmt_ns, fmt_share
from ..registry import section
from .core import _span
from .phases import analysis

_PEAK_FIELDS = ("peak_bytes", "peak_at_ns")
_HELD_LISTED = 5  # ops listed per device as holding memory at the peak


@section("memory", order=44, render=lambda data, console: render(data, console))
def memory_section(ctx: ReportContext) -> dict[str, Any]:
    events = ctx.table
    samples = memory.memory_samples(events)
    if not len(samples):
        return {"devices": [], "phases": [], "top_allocations": [], "reason": _reason(ctx)}
    devices = memory.device_peaks(samples, origin_ns=_span(ctx)[0])
    capacity = _capacities(ctx)
    peaks = {i: device["allocated_peak_row"] for i, device in enumerate(devices) if "allocated_peak_row" in device}
    for i, (op, call) in zip(peaks, memory.enclosing_ops(events, list(peaks.values()))):
        devices[i]["allocated_peak_op"], devices[i]["allocated_peak_call"] = op, call
    for device in devices:
        if "allocated_peak_index" in device:
            device.update(memory.held_at_peak(events, samples, device.pop("allocated_peak_index"), _HELD_LISTED) or {})
    ranks = len({d["rank"] for d in devices}) > 1
    for device in devices:
        for key in [k for k in device if k.endswith("_peak_row")]:
            del device[key]
        device["device"] = _device_label(device, ranks)
        device["total_bytes"] = capacity.get((device["rank"], device["device_type"], device["device_index"]))
    counted = analysis(ctx).window_columns  # (the Phases table's windows: steps, passes, marks)
    windows = {"label": counted["phase"], "rank": counted["rank"], "start_ns": counted["start_ns"],
               "end_ns": counted["effective_end_ns"]}
    phases = [{"phase": label, "allocated_peak_bytes": peak}
              for label, peak in memory.window_peaks(samples, windows).items()]
    top = memory.allocations_by_op(events, samples, ctx.options.top)
    return {"devices": devices, "phases": phases, "top_allocations": top, "reason": None}


def _device_label(device: dict[str, Any], ranks: bool) -> str:
    """"GPU 0", "host"; "rank 1 GPU 0" when the traces have several ranks."""
    where = "host" if device["device_type"] == "cpu" else f"GPU {device['device_index']}"
    return f"rank {device['rank']} {where}" if ranks else where


def _capacities(ctx: ReportContext) -> dict[tuple[int, str, int], float]:
    """Each GPU's memory (bytes) from the traces' device lists."""
    found = {}
    for trace in ctx.traces:
        for device in trace.metadata.get("devices") or []:
            total = device.get("total_memory_bytes")
            if device.get("type") == "gpu" and device.get("index") is not None and isinstance(total, (int, float)):
                found[(trace.rank, "gpu", int(device["index"]))] = float(total)
    return found


def _reason(ctx: ReportContext) -> str:
    gpu = any(d.get("type") == "gpu" for t in ctx.traces for d in t.metadata.get("devices") or [])
    recorded = any(t.metadata.get("producer") == "profkit record" for t in ctx.traces)
    if recorded:
        return ("no memory samples in the trace: record with --memory for torch's allocator"
                + ("" if gpu else ", or on a GPU with telemetry on for NVML's readings"))
    return "no memory samples in the trace (torch.profiler's profile_memory=True records the allocator's)"


# ---------------------------------------------------------------- terminal

#: How the terminal words each measure after its figure: (what, whose figure it is).
_WORDS = {
    "allocated": ("allocated", None),
    "reserved": ("reserved", "torch's allocator"),
    "process": ("used by the process", "NVML"),
    "device_used": ("used on the device", "NVML"),
    "host_rss": ("resident", "RSS"),
}


#: Ops the terminal lists after "allocated most" (the JSON has ``--top``).
_TOP_SHOWN = 5

#: Below this, a host allocator's peak is the odd scalar a GPU run puts in host memory: not shown.
_NOTABLE_HOST_BYTES = 2**20


def render(data: dict[str, Any], console) -> None:
    devices = data.get("devices") or []
    gpu_run = any(d["device_type"] == "gpu" for d in devices)
    shown = [d for d in devices if not (gpu_run and d["device_type"] == "cpu" and _largest(d) < _NOTABLE_HOST_BYTES)]
    if not shown:
        console.print(f"[bold]memory[/bold]: not measured — {escape(str(data.get('reason')))}")
        return
    for device in shown:
        parts = []
        for key, (what, source) in _WORDS.items():
            peak = device.get(f"{key}_peak_bytes")
            if peak is None:
                continue
            notes = [source] if source else []
            if key in ("allocated", "process", "device_used") and device.get("total_bytes"):
                notes.insert(0, f"{fmt_share(peak / device['total_bytes'])} of {fmt_bytes(device['total_bytes'])}")
            text = f"{fmt_bytes(peak)} {what}" + (f" ({', '.join(notes)})" if notes else "")
            if key == "allocated":
                if device.get("allocated_since_start"):
                    text += " since recording started"
                text += f" at {fmt_ns(device['allocated_peak_at_ns'])}"
                op, call = device.get("allocated_peak_op"), device.get("allocated_peak_call")
                if op:
                    text += f" in {escape(op)}" + (f" (inside {escape(call)})" if call and call != op else "")
            parts.append(text)
        line = f"[bold]memory[/bold] · {escape(device['device'])} peak: " + ", ".join(parts)
        if device.get("allocated_first_bytes") is not None:
            line += (f"; allocated {fmt_bytes(device['allocated_first_bytes'])} at the start, "
                     f"{fmt_bytes(device['allocated_last_bytes'])} at the end")
        console.print(line)
        held = device.get("held_at_peak")
        if held:
            before = device["allocated_peak_bytes"] - device["held_at_peak_bytes"]
            console.print("  held at the peak: " + ", ".join(
                f"{escape(h['name'])} {fmt_bytes(h['allocated_bytes'])} ({h['count']} block{'s' * (h['count'] != 1)})" for h in held[:_TOP_SHOWN])
                + (f"; {fmt_bytes(before)} allocated before recording started" if before > 0 else ""))
    if data.get("phases"):
        console.print("  allocated peak by phase: " + ", ".join(
            f"{escape(str(p['phase']))} {fmt_bytes(p['allocated_peak_bytes'])}" for p in data["phases"]))
    top = data.get("top_allocations") or []
    if top:
        console.print(f"  allocated most ({'GPU' if top[0]['device_type'] == 'gpu' else 'host'}, over the run): " + ", ".join(
            f"{escape(a['name'])} {fmt_bytes(a['allocated_bytes'])} ({a['count']}×)" for a in top[:_TOP_SHOWN]))


def _largest(device: dict[str, Any]) -> float:
    return max((v for k, v in device.items() if k.endswith("_peak_bytes") and v is not None), default=0.0)
