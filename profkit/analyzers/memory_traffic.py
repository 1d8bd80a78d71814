"""Measured memory traffic (NVML GPM) beside the cost model's ideal bytes (pure; no torch, no pynvml).

GPM's DRAM bandwidth utilization is the share of the device's peak bandwidth
used over each sampling window, so bytes moved = utilization × peak × window.
Where GPM is missing, NVML's memory utilization (% of *time* the memory was
busy) is all there is: time busy × peak bandwidth is only an upper bound on
the bytes, and it is labelled so.

Quantities that accumulate over time (bytes, % × time) become a ``Cumulative``:
knots with the running total, linear in between, so any window is two
``np.interp`` lookups. Windows are attributed the way energy is: per label,
windows closer than the sampling interval merge into segments; segments
shorter than the interval make the label ``uncertain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .intervals import merge_intervals, overlap_ns

GPM_DRAM = "gpm_dram_bw_util_pct"
NVML_MEMORY_BUSY = "memory_util_pct"
#: Activity metrics averaged per window (GPM names; the unit is % of the window).
ACTIVITY = {
    "dram_bw_util_pct": GPM_DRAM,
    "tensor_util_pct": "gpm_tensor_util_pct",
    "sm_util_pct": "gpm_sm_util_pct",
    "sm_occupancy_pct": "gpm_sm_occupancy_pct",
}
#: Link throughput metrics integrated to bytes (bytes/s over each window).
LINKS = {
    "pcie_tx_bytes": "gpm_pcie_tx_bytes_per_s",
    "pcie_rx_bytes": "gpm_pcie_rx_bytes_per_s",
    "nvlink_tx_bytes": "gpm_nvlink_tx_bytes_per_s",
    "nvlink_rx_bytes": "gpm_nvlink_rx_bytes_per_s",
}
#: A class owns a sampling window when it keeps the device busy this share of the busy time.
DOMINANT_SHARE = 0.9


@dataclass(frozen=True)
class Cumulative:
    """Running total of a quantity at knot times; linear between knots."""

    t_ns: np.ndarray
    total: np.ndarray

    def between(self, start_ns, end_ns) -> np.ndarray:
        origin = self.t_ns[0]  # relative times keep float64 exact
        t = (self.t_ns - origin).astype(np.float64)
        start = (np.asarray(start_ns, dtype=np.int64) - origin).astype(np.float64)
        end = (np.asarray(end_ns, dtype=np.int64) - origin).astype(np.float64)
        return np.interp(end, t, self.total) - np.interp(start, t, self.total)

    @property
    def sum(self) -> float:
        return float(self.total[-1])


def intervals_of(series: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, value) of a metric's samples.

    GPM rows span their window (duration > 0). Instant NVML utilization rows
    cover the time since the previous reading (NVML averages over the past).
    """
    series = series.sort_values("start_ns", kind="stable")
    start = series["start_ns"].to_numpy(np.int64)
    duration = series["duration_ns"].to_numpy(np.int64)
    value = series["value"].to_numpy(np.float64)
    if len(series) and (duration > 0).all():
        return start, start + duration, value
    if len(series) < 2:
        return start[:0], start[:0], value[:0]
    return start[:-1], start[1:], value[1:]


def cumulative(start: np.ndarray, end: np.ndarray, amount: np.ndarray) -> Cumulative | None:
    """A Cumulative from disjoint intervals each adding ``amount`` evenly over its span."""
    if len(start) == 0:
        return None
    before = np.r_[0.0, np.cumsum(amount)[:-1]]
    t = np.column_stack([start, end]).ravel()
    total = np.column_stack([before, before + amount]).ravel()
    return Cumulative(t, total)


@dataclass(frozen=True)
class DeviceTraffic:
    """One device's measured traffic and activity."""

    rank: int
    device_index: int
    source: str  # "gpm" or "nvml_utilization"
    peak_bytes_per_s: float | None
    interval_ns: int
    bytes: Cumulative | None  # measured bytes (gpm) or the busy-time upper bound (nvml_utilization)
    activity: dict[str, Cumulative]  # % x ns, per ACTIVITY key
    links: dict[str, Cumulative]  # bytes per LINKS key

    @property
    def span(self) -> tuple[int, int]:
        first = self.bytes or next(iter(self.activity.values()), None)
        return (int(first.t_ns[0]), int(first.t_ns[-1])) if first is not None else (0, 0)


def device_traffic(samples: pd.DataFrame, peaks: Mapping[tuple[int, int], float | None]) -> list[DeviceTraffic]:
    """Measured traffic per (rank, GPU): GPM where sampled, else NVML memory utilization."""
    found: list[DeviceTraffic] = []
    if samples.empty:  # nothing measured
        return found
    gpu = samples[(samples["device_type"] == "gpu")
                  & (samples["name"].str.startswith("gpm_") | (samples["name"] == NVML_MEMORY_BUSY))]
    for (rank, index), device in gpu.groupby(["rank", "device_index"], sort=True):
        key = (int(rank), int(index))
        peak = peaks.get(key)
        by_name = {name: rows for name, rows in device.groupby("name", sort=False)}
        source = "gpm" if GPM_DRAM in by_name else "nvml_utilization" if NVML_MEMORY_BUSY in by_name else None
        if source is None:
            continue
        start, end, util = intervals_of(by_name[GPM_DRAM if source == "gpm" else NVML_MEMORY_BUSY])
        seconds = (end - start) / 1e9
        moved = cumulative(start, end, util / 100 * peak * seconds) if peak else None
        activity = {}
        for key_name, metric in ACTIVITY.items():
            if metric in by_name:
                s, e, v = intervals_of(by_name[metric])
                activity[key_name] = cumulative(s, e, v * (e - s))
        if source == "nvml_utilization":
            activity["memory_busy_pct"] = cumulative(start, end, util * (end - start))
        links = {}
        for key_name, metric in LINKS.items():
            if metric in by_name:
                s, e, v = intervals_of(by_name[metric])
                links[key_name] = cumulative(s, e, v * (e - s) / 1e9)
        interval = int(np.median(end - start)) if len(start) else 0
        found.append(DeviceTraffic(key[0], key[1], source, peak, interval, moved,
                                   {k: v for k, v in activity.items() if v is not None},
                                   {k: v for k, v in links.items() if v is not None}))
    return found


def ideal_bytes_in(work: pd.DataFrame, seg_start: np.ndarray, seg_end: np.ndarray) -> float:
    """Ideal bytes of device work inside disjoint segments, each row counted by the share of it inside."""
    if work.empty or len(seg_start) == 0:
        return 0.0
    order = np.argsort(seg_start)
    start = work["start_ns"].to_numpy(np.int64)
    end = work["end_ns"].to_numpy(np.int64)
    inside = overlap_ns(seg_start[order], seg_end[order], start, end)
    duration = np.maximum(end - start, 1)
    return float((work["bytes"].to_numpy(np.float64) * np.minimum(inside / duration, 1.0)).sum())


def flops_in(work: pd.DataFrame, seg_start: np.ndarray, seg_end: np.ndarray) -> float:
    return ideal_bytes_in(work.assign(bytes=work["flops"]), seg_start, seg_end) if "flops" in work else 0.0


def window_traffic(devices: list[DeviceTraffic], windows: pd.DataFrame, work: pd.DataFrame) -> list[dict[str, Any]]:
    """Per label of ``windows`` (label, rank, start_ns, end_ns): measured and ideal bytes, activity, intensity.

    ``work`` holds device work rows (rank, device_index, start_ns, end_ns, bytes, flops).
    """
    out = []
    if windows.empty or not devices:
        return out
    interval = max(d.interval_ns for d in devices)
    for label, group in windows.groupby("label", sort=False):
        rank_devices = [d for d in devices if d.rank in set(group["rank"].tolist())]
        if not rank_devices:
            continue
        seg_start, seg_end = _segments(group, interval)
        time_ns = int((group["end_ns"] - group["start_ns"]).sum())
        measured = _sum_over(rank_devices, lambda d: d.bytes, group)
        mine = work[work["rank"].isin(group["rank"].unique())] if not work.empty else work
        ideal = ideal_bytes_in(mine, seg_start, seg_end) if not work.empty else None  # None: no cost model rows
        flops = flops_in(mine, seg_start, seg_end) if not work.empty else None
        row: dict[str, Any] = {
            "phase": label,
            "count": len(group),
            "time_ns": time_ns,
            "measured_bytes": measured,
            "ideal_bytes": ideal,
            "movement_efficiency": ideal / measured if measured and ideal is not None else None,
            "measured_bytes_per_s": measured / (time_ns / 1e9) if measured is not None and time_ns else None,
            "flops": flops,
            "achieved_flops_per_s": flops / (time_ns / 1e9) if time_ns and flops is not None else None,
            "measured_intensity": flops / measured if measured and flops is not None else None,
            "uncertain": bool(((seg_end - seg_start) < interval).any()),
        }
        for key in list(ACTIVITY) + ["memory_busy_pct"]:
            total = _sum_over(rank_devices, lambda d, k=key: d.activity.get(k), group)
            row[key] = total / time_ns / len(rank_devices) if total is not None and time_ns else None
        out.append(row)
    return out


def class_traffic(devices: list[DeviceTraffic], work: pd.DataFrame) -> list[dict[str, Any]]:
    """Per class, over the sampling windows the class dominates (≥ 90 % of busy time there).

    A window's measured bytes cannot be split among classes that share it, so
    only windows one class owns count; ``coverage`` is the share of the class's
    busy time inside such windows.
    """
    totals: dict[str, dict[str, float]] = {}
    for device in devices:
        if device.bytes is None:
            continue
        knots = device.bytes.t_ns
        starts, ends = knots[0::2], knots[1::2]
        mine = work[(work["rank"] == device.rank) & (work["device_index"] == device.device_index)]
        if mine.empty:
            continue
        busy = {}
        for category, rows in mine.groupby("category", observed=True, sort=True):
            ms, me = merge_intervals(rows["start_ns"].to_numpy(np.int64), rows["end_ns"].to_numpy(np.int64))
            busy[str(category)] = (rows, overlap_ns(ms, me, starts, ends).astype(np.float64))
        stacked = sum(b for _, b in busy.values())
        measured = device.bytes.between(starts, ends)
        for category, (rows, overlap) in busy.items():
            owned = (overlap > 0) & (overlap >= DOMINANT_SHARE * stacked)
            entry = totals.setdefault(category, {"measured_bytes": 0.0, "ideal_bytes": 0.0, "owned_ns": 0.0,
                                                 "busy_ns": 0.0})
            entry["measured_bytes"] += float(measured[owned].sum())
            entry["ideal_bytes"] += ideal_bytes_in(rows, starts[owned], ends[owned])
            entry["owned_ns"] += float(overlap[owned].sum())
            entry["busy_ns"] += float(overlap.sum())
    return [
        {
            "category": category,
            "measured_bytes": t["measured_bytes"] if t["owned_ns"] else None,
            "ideal_bytes": t["ideal_bytes"] if t["owned_ns"] else None,
            "movement_efficiency": t["ideal_bytes"] / t["measured_bytes"] if t["measured_bytes"] else None,
            "coverage": t["owned_ns"] / t["busy_ns"] if t["busy_ns"] else 0.0,
        }
        for category, t in totals.items()
    ]


def _sum_over(devices, pick, group: pd.DataFrame) -> float | None:
    """Sum of a per-device Cumulative over the windows of each device's rank; None if no device has it."""
    total, seen = 0.0, False
    for device in devices:
        series = pick(device)
        if series is None:
            continue
        mine = group[group["rank"] == device.rank]
        total += float(series.between(mine["start_ns"], mine["end_ns"]).sum())
        seen = True
    return total if seen else None


def _segments(group: pd.DataFrame, gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    s = group["start_ns"].to_numpy(np.int64)
    e = group["end_ns"].to_numpy(np.int64)
    ms, me = merge_intervals(s, e + gap_ns)
    return ms, me - gap_ns
