"""What the charts need from the events themselves, downsampled so the page stays small.

The JSON report holds summaries; the timeline, the roofline points and the
per-step bars need the trace. Everything here is pure pandas/numpy over the
report context's events (all ranks, ``rank`` column) and returns small plain
objects: at most ``BINS`` values per timeline line, ``MAX_POINTS`` roofline
points, ``MAX_WINDOWS`` bars.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...analyzers.intervals import overlap_ns
from ...analyzers.summary import busy_intervals, span_ns
from ...trace.schema import Kind

BINS = 400  # timeline resolution: values per line
MAX_LINES = 8  # lines per metric lane (devices x ranks)
MAX_RANK_LANES = 16  # busy/idle lanes
MAX_POINTS = 250  # roofline points (the longest-running groups)
MAX_WINDOWS = 120  # bars in a per-step / per-pass chart
MAX_PHASE_RECTS = 300  # phase windows drawn one by one; beyond, runs are merged


@dataclass(frozen=True)
class Metric:
    """A telemetry metric the timeline draws: sample name, lane title, unit, and whether to plot its rate."""

    name: str
    title: str
    unit: str  # "W", "bytes", "%", "MHz", "°C", "cores"
    rate: bool = False  # cumulative counter: plot d(value)/dt


#: Timeline lanes, in order. One door: add a row here to draw a new metric.
TIMELINE_METRICS: tuple[Metric, ...] = (
    Metric("power_w", "power", "W"),
    Metric("allocated_bytes", "allocated (torch's allocator)", "bytes"),
    Metric("allocated_since_start_bytes", "allocated since recording started (torch's allocator)", "bytes"),
    Metric("reserved_bytes", "reserved (torch's allocator)", "bytes"),
    Metric("memory_used_bytes", "device memory used", "bytes"),
    Metric("process_memory_bytes", "process GPU memory", "bytes"),
    Metric("gpu_util_pct", "GPU utilization", "%"),
    Metric("gpm_dram_bw_util_pct", "DRAM bandwidth (GPM)", "%"),
    Metric("gpm_tensor_util_pct", "tensor-core activity (GPM)", "%"),
    Metric("memory_util_pct", "memory busy (NVML)", "%"),
    Metric("sm_clock_mhz", "SM clock", "MHz"),
    Metric("temperature_c", "temperature", "°C"),
    Metric("cpu_time_s", "CPU cores busy", "cores", rate=True),
    Metric("rss_bytes", "resident memory (RSS)", "bytes"),
)

#: Phase names that are training steps; inference passes; in the order the panels show them.
STEP_PHASES = ("train_step", "step")
INFERENCE_PHASES = ("prefill", "decode")


@dataclass
class Line:
    label: str
    x_ns: np.ndarray  # relative to the timeline start
    mean: np.ndarray
    lo: np.ndarray | None = None  # per-bin min/max when downsampled
    hi: np.ndarray | None = None


@dataclass
class MetricLane:
    metric: Metric
    lines: list[Line]


@dataclass
class PhaseWindow:
    name: str
    start_ns: int  # relative
    end_ns: int
    label: str


@dataclass
class Timeline:
    span_ns: int
    busy_label: str  # "GPU" or "CPU"
    bin_ns: float
    busy: list[tuple[str, np.ndarray]]  # (lane label, busy fraction per bin)
    metrics: list[MetricLane]
    phases: list[PhaseWindow]
    notes: list[str] = field(default_factory=list)


def timeline(events: pd.DataFrame) -> Timeline | None:
    first, last = span_ns(events)
    if last <= first:
        return None
    span = last - first
    bins = int(min(BINS, span))
    # Relative to the start: float64 cannot resolve single ns at epoch-ns magnitudes (its spacing there is 256 ns).
    edges = first + np.round(np.linspace(0, span, bins + 1)).astype(np.int64)
    busy, notes = [], []
    gpu = bool(events["kind"].isin([Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value]).any())
    ranks = sorted(events["rank"].unique().tolist()) if "rank" in events else [0]
    for rank in ranks[:MAX_RANK_LANES]:
        per_rank = events[events["rank"] == rank] if "rank" in events else events
        starts, ends = busy_intervals(per_rank)
        covered = overlap_ns(starts, ends, edges[:-1], edges[1:])
        busy.append((f"rank {rank}" if len(ranks) > 1 else ("GPU busy" if gpu else "CPU busy"),
                     covered / np.diff(edges)))
    if len(ranks) > MAX_RANK_LANES:
        notes.append(f"busy lanes for the first {MAX_RANK_LANES} of {len(ranks)} ranks")
    return Timeline(span_ns=span, busy_label="GPU" if gpu else "CPU", bin_ns=span / bins, busy=busy,
                    metrics=_metric_lanes(events, first, last, len(ranks) > 1), phases=_phases(events, first),
                    notes=notes)


def _metric_lanes(events: pd.DataFrame, first: int, last: int, multi_rank: bool) -> list[MetricLane]:
    samples = events[events["kind"] == Kind.SAMPLE.value]
    if samples.empty:
        return []
    samples = samples[samples["value"].notna()]
    names = samples["name"].astype(str)
    lanes = []
    for metric in TIMELINE_METRICS:
        rows = samples[(names == metric.name).to_numpy()]
        if rows.empty:
            continue
        keys = pd.DataFrame({"rank": rows["rank"].to_numpy() if "rank" in rows else 0,
                             "device": rows["device_index"].fillna(-1).astype(np.int64).to_numpy()})
        lines = []
        for (rank, device), group in rows.groupby([keys["rank"].to_numpy(), keys["device"].to_numpy()], sort=True):
            label = ("GPU %d" % device if device >= 0 else "host") + (f" · rank {rank}" if multi_rank else "")
            t = group["start_ns"].to_numpy(np.int64)
            order = np.argsort(t, kind="stable")
            t = t[order]
            v = group["value"].to_numpy(np.float64)[order]
            if metric.rate:
                if len(t) < 2:
                    continue
                dt = np.diff(t) / 1e9
                keep = dt > 0
                t, v = t[1:][keep], (np.diff(v)[keep] / dt[keep])
            line = _downsample(label, t - first, v, last - first)
            if line is not None:
                lines.append(line)
            if len(lines) >= MAX_LINES:
                break
        if lines:
            lanes.append(MetricLane(metric, lines))
    return lanes


def _downsample(label: str, x: np.ndarray, v: np.ndarray, span: int) -> Line | None:
    inside = (x >= 0) & (x <= span) & np.isfinite(v)
    x, v = x[inside], v[inside]
    if not len(x):
        return None
    if len(x) <= 2 * BINS:
        return Line(label, x.astype(float), v)
    index = np.minimum((x * BINS // span).astype(np.int64), BINS - 1)
    frame = pd.DataFrame({"bin": index, "x": x, "v": v}).groupby("bin")
    stats = frame.agg(x=("x", "mean"), mean=("v", "mean"), lo=("v", "min"), hi=("v", "max"))
    return Line(label, stats["x"].to_numpy(float), stats["mean"].to_numpy(float),
                stats["lo"].to_numpy(float), stats["hi"].to_numpy(float))


def _phases(events: pd.DataFrame, first: int) -> list[PhaseWindow]:
    marks = events[(events["kind"] == Kind.PHASE.value) & (events["duration_ns"] > 0)]
    if "rank" in marks and marks["rank"].nunique() > 1:
        marks = marks[marks["rank"] == marks["rank"].min()]
    if marks.empty:
        return []
    windows = []
    for name, group in marks.groupby(marks["name"].astype(str), sort=False):
        start = group["start_ns"].to_numpy(np.int64) - first
        end = start + group["duration_ns"].to_numpy(np.int64)
        labels = phase_labels(name, group)
        if len(group) > MAX_PHASE_RECTS:  # merge back-to-back windows into runs
            order = np.argsort(start, kind="stable")
            start, end = start[order], end[order]
            gap = max((end.max() - start.min()) / 1000, 1)
            new_run = np.r_[True, start[1:] - np.maximum.accumulate(end)[:-1] > gap]
            run = np.cumsum(new_run) - 1
            run_start = start[new_run]
            run_end = np.zeros(len(run_start), dtype=np.int64)
            np.maximum.at(run_end, run, end)
            counts = np.bincount(run)
            labels = [f"{name} ×{c}" for c in counts]
            start, end = run_start, run_end
        windows.extend(PhaseWindow(name, int(s), int(e), lab) for s, e, lab in zip(start, end, labels))
    return windows


def phase_labels(name: str, group: pd.DataFrame) -> list[str]:
    """``train_step 3``, ``prefill · batch 2 · 128 tokens``: what the mark recorded."""
    extras = [_extra(x) for x in group["extra"].astype(object).tolist()]
    batch = group["batch_size"].to_numpy(dtype=np.float64, na_value=np.nan)
    tokens = group["token_count"].to_numpy(dtype=np.float64, na_value=np.nan)
    labels = []
    for extra, b, t in zip(extras, batch, tokens):
        parts = [name if extra.get("step") is None else f"{name} {extra['step']}"]
        if np.isfinite(b):
            parts.append(f"batch {int(b)}")
        if np.isfinite(t):
            parts.append(f"{int(t)} tokens")
        labels.append(" · ".join(parts))
    return labels


def _extra(text: Any) -> dict:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
