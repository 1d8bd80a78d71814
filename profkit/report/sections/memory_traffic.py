"""The ``memory_traffic`` section: bytes the GPU measurably moved (GPM) beside the ideal bytes.

JSON: ``source`` (``gpm``, ``nvml_utilization`` or null), ``measured_bytes``,
``ideal_bytes``, ``movement_efficiency`` (ideal ÷ measured), ``phases`` (per
phase / training step where measured), ``classes`` (per operator class, over
the sampling windows a class dominates), ``reason`` when something is missing.
With ``nvml_utilization`` the bytes are unknown: ``measured_bytes`` is null and
``busy_bytes_upper_bound`` (time busy × peak bandwidth) stands in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape

from ...analyzers import energy, memory_traffic as traffic
from ...analyzers.columns import kind_mask, label_codes
from ...analyzers.hardware import match_device
from ...trace.schema import Kind
from ..context import ReportContext
from ..format import fmt_ns, fmt_si
from ..registry import section
from .energy import samples_of, work_rows
from .phases import analysis

GPU_WORK = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)


def peaks_of(ctx: ReportContext) -> tuple[dict[tuple[int, int], float | None], dict[tuple[int, int], str]]:
    """Peak DRAM bandwidth per (rank, GPU): NVML's bus width × memory clock, else the datasheet."""
    peaks, sources = {}, {}
    for trace in ctx.traces:
        for device in trace.metadata.get("devices") or []:
            if device.get("type") != "gpu" or device.get("index") is None:
                continue
            key = (trace.rank, int(device["index"]))
            nvml_peak = device.get("peak_memory_bandwidth_bytes_per_s")
            spec = match_device(device.get("name"))
            if nvml_peak:
                peaks[key], sources[key] = float(nvml_peak), "nvml_bus_width_x_memory_clock"
            elif spec is not None:
                peaks[key], sources[key] = spec.memory_bytes_per_s, f"datasheet:{spec.key}"
    return peaks, sources


def _work(ctx: ReportContext) -> pd.DataFrame:
    columns = ["rank", "device_index", "category", "start_ns", "end_ns", "bytes", "flops"]
    return work_rows(ctx, lambda rows: kind_mask(label_codes(rows["kind"]), *GPU_WORK))[columns]


@section("memory_traffic", order=46, render=lambda data, console: render(data, console))
def memory_traffic_section(ctx: ReportContext) -> dict[str, Any]:
    peaks, peak_sources = peaks_of(ctx)
    samples = samples_of(ctx)
    devices = traffic.device_traffic(samples, peaks) if samples is not None else []
    empty = {"source": None, "measured_bytes": None, "ideal_bytes": None, "movement_efficiency": None, "phases": []}
    if not devices:
        return {**empty, "reason": _reason(ctx, "no GPU memory telemetry in the trace")}
    sources = sorted({d.source for d in devices})
    source = sources[0] if len(sources) == 1 else "mixed"
    work = _work(ctx)
    measured = [d.bytes.sum for d in devices if d.bytes is not None]
    ideal = 0.0
    for d in devices:
        first, last = d.span
        mine = work[(work["rank"] == d.rank) & (work["device_index"] == d.device_index)]
        ideal += traffic.ideal_bytes_in(mine, np.array([first]), np.array([last]))
    gpm = source == "gpm"
    total_measured = sum(measured) if measured and gpm else None
    counted = analysis(ctx).window_columns
    windows = pd.concat([energy.step_windows(counted), energy.phase_windows(counted)], ignore_index=True)
    result: dict[str, Any] = {
        "source": source,
        "measured_bytes": total_measured,
        "busy_bytes_upper_bound": sum(measured) if measured and not gpm else None,
        "ideal_bytes": ideal if not work.empty else None,
        "movement_efficiency": ideal / total_measured if total_measured and not work.empty else None,
        "peak_bandwidth_bytes_per_s": {f"{r}:{i}": p for (r, i), p in peaks.items()},
        "peak_source": sorted(set(peak_sources.values())),
        "interval_ms": max(d.interval_ns for d in devices) / 1e6,
        "devices": [_device_row(d) for d in devices],
        "phases": [_clean(p, gpm) for p in traffic.window_traffic(devices, windows, work)],
        "classes": traffic.class_traffic(devices, work) if gpm and not work.empty else None,
        "reason": None,
    }
    if not gpm:
        result["reason"] = _reason(ctx, "GPM not sampled") + (
            "; NVML memory utilization is time busy, not bytes: measured bytes unknown, "
            "busy_bytes_upper_bound = time busy × peak bandwidth")
    elif any(p is None for p in peaks.values()) or not peaks:
        result["reason"] = "peak memory bandwidth unknown for a GPU: bytes not computed"
    return result


def _device_row(device: traffic.DeviceTraffic) -> dict[str, Any]:
    first, last = device.span
    span = last - first
    row = {"rank": device.rank, "device_index": device.device_index, "source": device.source,
           "span_ns": span, "peak_bandwidth_bytes_per_s": device.peak_bytes_per_s,
           "bytes": device.bytes.sum if device.bytes is not None else None}
    for key, series in device.activity.items():
        row[key] = series.sum / span if span else None
    for key, series in device.links.items():
        row[key] = series.sum
    return row


def _clean(row: dict[str, Any], gpm: bool) -> dict[str, Any]:
    if not gpm:  # utilization is time, not bytes: keep the bound, drop what would pretend to be measured
        row["busy_bytes_upper_bound"] = row.pop("measured_bytes")
        for key in ("movement_efficiency", "measured_bytes_per_s", "measured_intensity"):
            row[key] = None
        row["measured_bytes"] = None
    return row


def _reason(ctx: ReportContext, default: str) -> str:
    notes = [n for t in ctx.traces for n in (t.metadata.get("notes") or [])]
    gpm_notes = [n.removeprefix("telemetry: ") for n in notes if n.startswith("telemetry:") and "GPM" in n]
    nvml_missing = [n.removeprefix("telemetry: ") for n in notes if n.startswith("telemetry: NVML")]
    picked = gpm_notes or nvml_missing
    return "; ".join(dict.fromkeys(picked)) if picked else default


#: Seen on an H200 (efficiency 1.13 for a small model's generation): DRAM moved less than the
#: per-operator ideal, because one operator's output was still in the L2 cache for the next.
CACHE_REUSE_NOTE = ("efficiency above 1: DRAM moved less than every operator reading its inputs and writing its "
                    "outputs once would, most often because operators reuse data from the GPU's L2 cache "
                    "(that ideal then overcounts); short windows also blur GPM's sampled bandwidth")


def render(data: dict[str, Any], console) -> None:
    if data.get("source") is None:
        console.print(f"[bold]memory traffic[/bold]: not measured — {escape(str(data.get('reason')))}")
        return
    if data["source"] != "gpm":
        console.print(f"[bold]memory traffic[/bold] (NVML memory utilization, not bytes): {escape(str(data.get('reason')))}")
    else:
        eff = data.get("movement_efficiency")
        console.print(
            f"[bold]memory traffic[/bold] (GPM): measured {fmt_si(data['measured_bytes'], 'B')}, ideal "
            f"{fmt_si(data['ideal_bytes'], 'B')}, movement efficiency {'–' if eff is None else f'{eff:.2f}'}"
        )
        if eff is not None and eff > 1:
            console.print(f"  [dim]{CACHE_REUSE_NOTE}[/dim]")
    for row in data.get("phases") or []:
        moved = row["measured_bytes"] if row["measured_bytes"] is not None else row.get("busy_bytes_upper_bound")
        bound = "" if row["measured_bytes"] is not None else " ≤"
        eff = row["movement_efficiency"]
        tensor = row.get("tensor_util_pct")
        console.print(
            f"  {escape(row['phase'])}{' ?' if row['uncertain'] else ''}: {fmt_ns(row['time_ns'])},{bound} {fmt_si(moved, 'B')} moved, "
            f"ideal {fmt_si(row['ideal_bytes'], 'B')}, efficiency {'–' if eff is None else f'{eff:.2f}'}, "
            f"DRAM {_pct(row.get('dram_bw_util_pct') or row.get('memory_busy_pct'))}, tensor {_pct(tensor)}"
        )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} %"
