"""Energy from telemetry samples: totals, power, and attribution to steps, phases and classes.

Pure functions over the events table (no torch, no pynvml). Each measured
device becomes an ``EnergyTrack``: cumulative joules at knot times, linear in
between, so the energy of any window is two ``np.interp`` lookups.

- **Counter tracks** (NVML total-energy counter, RAPL package counters) keep
  only the samples where the counter changed: a counter that refreshes every
  ~100 ms read every 20 ms holds its value in between, and spreading each
  increment over the time since the previous change is the honest estimate.
  A drop is a wrap when the counter's range is known (RAPL), else a reset
  (driver reload): the interval then counts the value since the restart.
- **Power-shaped counter tracks**: the NVML counter is read only once a second
  (each read costs milliseconds of CPU), so where instant power is sampled
  beside it, each counter increment is spread over its interval in proportion
  to the integrated power: windows inside one second get the energy the power
  samples say they drew, and the totals stay the counter's.
- **Power tracks** integrate power samples (trapezoid) when no counter works.
  NVML's averaged power (1 s window) is marked and its resolution taken as 1 s.

Attribution never pretends to a resolution the counters lack: windows of one
label that lie closer together than the refresh period are merged into
segments, segments shorter than ``min_window_ns`` (100 ms, or the refresh
period if longer) make the label ``uncertain``, and every label carries
``uncertainty_j`` = segments × refresh period × average power (each segment's
two edges are each known only to about half a refresh period).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..trace.kinds import ALLOCATOR_SAMPLES
from ..trace.schema import Kind
from .columns import float_values, int_values, is_kind, label_codes, labels_in, texts_at
from .intervals import merge_intervals, overlap_ns

#: Counters refresh every ~20-100 ms (REFERENCE §4): attribute to windows of at least this.
MIN_WINDOW_NS = 100_000_000
#: Resolution assumed for NVML's averaged power reading.
AVERAGED_POWER_REFRESH_NS = 1_000_000_000
#: Phase-mark names that are training steps, not inference phases (the first labels them in reports).
STEP_PHASES = ("train_step", "step")
STEP_PHASE = STEP_PHASES[0]
#: Inference passes (tokens processed) and whole generate calls (tokens generated).
PASS_PHASES = ("prefill", "decode", "mixed")
GENERATE_PHASE = "generate"

SOURCES = {
    "energy_j": "nvml_energy_counter",
    "energy_j_power_shaped": "nvml_energy_counter_power_shaped",
    "rapl_energy_j": "rapl_package_counter",
    "power_w": "nvml_power_instant_integrated",
    "power_w_averaged": "nvml_power_average_integrated",
}


@dataclass(frozen=True)
class EnergyTrack:
    """Cumulative energy of one device: ``cum_j[i]`` joules from ``t_ns[0]`` to ``t_ns[i]``."""

    rank: int
    device_type: str
    device_index: int
    t_ns: np.ndarray
    cum_j: np.ndarray
    source: str
    refresh_ns: int
    resets: int = 0
    wraps: int = 0

    @property
    def total_j(self) -> float:
        return float(self.cum_j[-1] - self.cum_j[0])

    @property
    def span_ns(self) -> int:
        return int(self.t_ns[-1] - self.t_ns[0])

    @property
    def avg_power_w(self) -> float | None:
        return self.total_j / (self.span_ns / 1e9) if self.span_ns > 0 else None

    def between(self, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
        """Joules in each [start, end) (vectorized; zero outside the sampled span)."""
        origin = self.t_ns[0]  # relative times: epoch ns as float64 would lose ~256 ns
        t = (self.t_ns - origin).astype(np.float64)
        start = (np.asarray(start_ns, dtype=np.int64) - origin).astype(np.float64)
        end = (np.asarray(end_ns, dtype=np.int64) - origin).astype(np.float64)
        return np.interp(end, t, self.cum_j) - np.interp(start, t, self.cum_j)

    def rates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(interval starts, ends, joules) between consecutive knots."""
        return self.t_ns[:-1], self.t_ns[1:], np.diff(self.cum_j)


# ---------------------------------------------------------------- building tracks


def counter_deltas(values: np.ndarray, wrap: float | None = None) -> tuple[np.ndarray, int, int]:
    """Increments of a counter: (deltas, resets, wraps). A drop is a wrap if ``wrap`` is known, else a reset."""
    values = np.asarray(values, dtype=np.float64)
    deltas = np.diff(values)
    drop = deltas < 0
    if wrap:
        deltas = np.where(drop, deltas + wrap, deltas)
        return deltas, 0, int(drop.sum())
    deltas = np.where(drop, values[1:], deltas)  # restarted from 0: what it counted since
    return deltas, int(drop.sum()), 0


def counter_track(t_ns, values, *, wrap: float | None = None, source: str, key=(0, "gpu", 0),
                  floor_ns: int = 0) -> EnergyTrack | None:
    """A track from counter readings (kept only where the value changed); None if it never changed."""
    t_ns, values = _sorted(t_ns, values)
    if len(values) < 2:
        return None
    changed = np.r_[True, values[1:] != values[:-1]]
    t_k, v_k = t_ns[changed], values[changed]
    if len(v_k) < 2:
        return None
    deltas, resets, wraps = counter_deltas(v_k, wrap)
    refresh = _refresh_ns(t_k, floor_ns or _median_step(t_ns))
    return EnergyTrack(*key, t_k, np.r_[0.0, np.cumsum(deltas)], source, refresh, resets, wraps)


def power_track(t_ns, watts, *, averaged: bool = False, key=(0, "gpu", 0)) -> EnergyTrack | None:
    """A track integrating power samples (trapezoid)."""
    t_ns, watts = _sorted(t_ns, watts)
    if len(watts) < 2:
        return None
    dt_s = np.diff(t_ns) / 1e9
    cum = np.r_[0.0, np.cumsum((watts[1:] + watts[:-1]) / 2 * dt_s)]
    if averaged:
        refresh, source = AVERAGED_POWER_REFRESH_NS, SOURCES["power_w_averaged"]
    else:
        refresh, source = _power_refresh_ns(t_ns, watts), SOURCES["power_w"]
    return EnergyTrack(*key, t_ns, cum, source, refresh)


def power_shaped_track(counter: EnergyTrack, t_ns, watts) -> EnergyTrack:
    """``counter`` with knots added at the instant-power samples inside its span.

    Within each counter interval the counter's increment is spread in proportion to the
    trapezoid-integrated power (linearly where that integral is zero), so the track is the
    counter's at every counter knot and shaped like the power in between.
    """
    t_ns, watts = _sorted(t_ns, watts)
    counter_t, counter_cum = counter.t_ns, counter.cum_j
    origin = counter_t[0]
    inside = t_ns[(t_ns > counter_t[0]) & (t_ns < counter_t[-1])]
    knots = np.union1d(counter_t, inside)
    # Power held at its first and last sample over the edges it does not reach (the counter's
    # stop read comes after the last power sample).
    power_t = np.r_[min(t_ns[0], origin), t_ns, max(t_ns[-1], counter_t[-1])]
    power_w = np.r_[watts[0], watts, watts[-1]]
    power_s = (power_t - origin) / 1e9
    power_cum = np.r_[0.0, np.cumsum((power_w[1:] + power_w[:-1]) / 2 * np.diff(power_s))]
    power_at_knots = np.interp((knots - origin) / 1e9, power_s, power_cum)
    power_at_counter = np.interp((counter_t - origin) / 1e9, power_s, power_cum)
    # Each knot's counter interval, by the interval's start; the last knot starts an empty one.
    at = np.searchsorted(counter_t, knots, side="right") - 1
    interval_j = np.r_[np.diff(counter_cum), 0.0][at]
    interval_power_j = np.r_[np.diff(power_at_counter), 0.0][at]
    interval_ns = np.r_[np.diff(counter_t), 1][at]
    by_time = (knots - counter_t[at]) / interval_ns
    drew_power = interval_power_j > 0
    by_power = (power_at_knots - power_at_counter[at]) / np.where(drew_power, interval_power_j, 1.0)
    fraction = np.clip(np.where(drew_power, by_power, by_time), 0.0, 1.0)  # a negative power reading stays inside
    # A counter knot has fraction 0: its cumulative value is the counter's, to the bit.
    cum = counter_cum[at] + fraction * interval_j
    # Its shape is known at the power samples and at the counter's own knots: the finer of the two
    # (the power's, with the counter read once a second; the counter's, in traces that read it every tick).
    refresh_ns = min(_power_refresh_ns(t_ns, watts), counter.refresh_ns)
    return replace(counter, t_ns=knots, cum_j=cum, source=SOURCES["energy_j_power_shaped"], refresh_ns=refresh_ns)


def sum_tracks(tracks: list[EnergyTrack], source: str) -> EnergyTrack:
    """One track for several counters of one device (RAPL packages): cumulative sums on the union of knots."""
    if len(tracks) == 1:
        return tracks[0]
    t = np.unique(np.concatenate([tr.t_ns for tr in tracks]))
    origin = t[0]
    cum = sum(np.interp((t - origin).astype(np.float64), (tr.t_ns - origin).astype(np.float64), tr.cum_j)
              for tr in tracks)
    first = tracks[0]
    return EnergyTrack(first.rank, first.device_type, first.device_index, t, cum, source,
                       max(tr.refresh_ns for tr in tracks), sum(tr.resets for tr in tracks),
                       sum(tr.wraps for tr in tracks))


def telemetry_rows(events: pd.DataFrame) -> np.ndarray:
    """Positions of the telemetry sample rows: not torch's allocator totals, a row per allocation (the
    memory section reads those)."""
    at = np.flatnonzero(is_kind(events, Kind.SAMPLE.value))  # only the sample rows of each column are read
    if len(at):
        codes, labels = label_codes(events["name"])
        at = at[~np.append(labels_in(labels, ALLOCATOR_SAMPLES), False)[codes[at]]]
    return at


def samples_of(events: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
    """Telemetry sample rows (``at``: ``telemetry_rows``, found here when not given) with plain columns
    (rank 0 when the table has no rank)."""
    at = telemetry_rows(events) if at is None else at
    if not len(at):  # no telemetry (most imported traces): the empty table, typed as below
        return pd.DataFrame({"rank": np.zeros(0, np.int64), "name": np.zeros(0, object),
                             "device_type": np.zeros(0, object), "device_index": np.zeros(0, np.int64),
                             "start_ns": np.zeros(0, np.int64), "duration_ns": np.zeros(0, np.int64),
                             "value": np.zeros(0), "extra": np.zeros(0, object)})
    value = float_values(events["value"])[at]
    finite = np.isfinite(value)
    at, value = at[finite], value[finite]  # (each column read at the sample rows only: no DataFrame of the events)

    def text(name: str) -> np.ndarray:
        # Objects throughout: astype(str) would make a fixed-width array as wide as the longest label (a
        # C++ kernel name: thousands of characters), copied once per sample row (~60 MB on the H100 trace).
        codes, labels = label_codes(events[name])
        texts = np.empty(len(labels) + 1, dtype=object)
        texts[:-1] = [str(label) for label in labels]
        texts[-1] = "nan"
        return texts[codes[at]]

    return pd.DataFrame({
        "rank": int_values(events["rank"])[at] if "rank" in events else np.zeros(len(at), np.int64),
        "name": text("name"),
        "device_type": text("device_type"),
        "device_index": int_values(events["device_index"], fill=-1)[at],
        "start_ns": int_values(events["start_ns"])[at],
        "duration_ns": int_values(events["duration_ns"], fill=0)[at],
        "value": value,
        "extra": np.asarray(texts_at(events["extra"], at), dtype=object),
    })


def parse_extras(extra: pd.Series) -> dict[Any, dict]:
    """JSON extras, parsed once per unique text."""
    return {text: (json.loads(text) if isinstance(text, str) and text else {}) for text in pd.unique(extra)}


#: The sample names energy is read from (a counter, or power to integrate).
_ENERGY_NAMES = ["energy_j", "power_w", "rapl_energy_j"]


def device_tracks(samples: pd.DataFrame) -> list[EnergyTrack]:
    """The best energy track of every (rank, device): counter first, else integrated power."""
    tracks: list[EnergyTrack] = []
    if samples.empty:  # nothing measured (most imported traces)
        return tracks
    wanted = samples[samples["name"].isin(_ENERGY_NAMES)]
    if wanted.empty:  # (memory or clock samples only: no energy to track)
        return tracks
    extras = parse_extras(wanted["extra"])
    for key, device in wanted.groupby(["rank", "device_type", "device_index"], sort=True):
        key = (int(key[0]), str(key[1]), int(key[2]))
        power, averaged = _power_samples(device, extras)
        instant = power[~averaged]
        track = _counter_for(device, extras, key)
        if track is None:
            track = _power_for(power, averaged, key)
        elif len(instant) >= 2:
            track = power_shaped_track(track, instant["start_ns"], instant["value"])
        if track is not None:
            tracks.append(track)
    return tracks


def _counter_for(device: pd.DataFrame, extras, key) -> EnergyTrack | None:
    found = []
    for (name, extra), series in device[device["name"].isin(["energy_j", "rapl_energy_j"])].groupby(
        ["name", "extra"], dropna=False, sort=True
    ):
        wrap = extras.get(extra, {}).get("wrap_j") if isinstance(extra, str) else None
        track = counter_track(series["start_ns"], series["value"], wrap=wrap, source=SOURCES[name], key=key)
        if track is not None:
            found.append(track)
    return sum_tracks(found, found[0].source) if found else None


def _power_samples(device: pd.DataFrame, extras) -> tuple[pd.DataFrame, np.ndarray]:
    """The device's power rows, and which of them are NVML's 1 s averages."""
    power = device[device["name"] == "power_w"]
    averaged = power["extra"].map(lambda e: bool(extras.get(e, {}).get("averaged"))).to_numpy(bool)
    return power, averaged


def _power_for(power: pd.DataFrame, averaged: np.ndarray, key) -> EnergyTrack | None:
    if power.empty:
        return None
    use = power[~averaged] if (~averaged).sum() >= 2 else power
    return power_track(use["start_ns"], use["value"], averaged=bool(averaged.all()), key=key)


# ---------------------------------------------------------------- device summaries


def device_summaries(samples: pd.DataFrame, tracks: list[EnergyTrack]) -> list[dict[str, Any]]:
    """Per device: energy, average and peak power, memory high-water marks."""
    out: list[dict[str, Any]] = []
    if samples.empty:  # nothing measured: no device to summarize
        return out
    by_key = {(t.rank, t.device_type, t.device_index): t for t in tracks}
    names, values = samples["name"].to_numpy(object), samples["value"].to_numpy(np.float64)
    # Power and energy rows are a few kinds among many (memory, clocks, GPM...): the power figures read a
    # DataFrame of the devices that have them only; the high-water marks read numpy.
    powered = np.isin(names, _ENERGY_NAMES)
    extras = parse_extras(samples["extra"][powered]) if powered.any() else {}
    for key, rows in samples.groupby(["rank", "device_type", "device_index"], sort=True).indices.items():
        key = (int(key[0]), str(key[1]), int(key[2]))
        track = by_key.get(key)
        peak_w, peak_source = (_peak_power(samples.iloc[rows], extras, track) if track is not None or powered[rows].any()
                               else (None, None))
        entry = {
            "rank": key[0],
            "device_type": key[1],
            "device_index": key[2],
            "source": track.source if track else None,
            "total_j": track.total_j if track else None,
            "span_ns": track.span_ns if track else None,
            "avg_power_w": track.avg_power_w if track else None,
            "peak_power_w": peak_w,
            "peak_power_source": peak_source,
            "refresh_ms": track.refresh_ns / 1e6 if track else None,
            "counter_resets": track.resets if track else 0,
            "counter_wraps": track.wraps if track else 0,
        }
        device_names, device_values = names[rows], values[rows]
        for name, label in HIGH_WATER_METRICS.items():
            hit = device_names == name
            if hit.any():
                entry[label] = float(device_values[hit].max())
        if entry["source"] is not None or any(k.endswith("high_water_bytes") for k in entry):
            out.append(entry)
    return out


#: Memory samples -> the high-water field of a device's summary (the most the run held).
HIGH_WATER_METRICS = {
    "memory_used_bytes": "memory_high_water_bytes",  # NVML: the whole GPU's used memory
    "process_memory_bytes": "process_memory_high_water_bytes",  # NVML: this process's
    "rss_bytes": "rss_high_water_bytes",  # the host process's resident set
}


def _peak_power(device: pd.DataFrame, extras, track: EnergyTrack | None) -> tuple[float | None, str | None]:
    power, averaged = _power_samples(device, extras)
    if len(power):
        return float(power["value"].max()), "power_average_sample" if averaged.all() else "power_sample"
    if track is not None and len(track.t_ns) >= 2:
        starts, ends, joules = track.rates()
        return float((joules / ((ends - starts) / 1e9)).max()), "counter_rate"
    return None, None


def peak_total_power_w(samples: pd.DataFrame, keys: list[tuple]) -> float | None:
    """Peak of the summed power of several devices (each interpolated onto all sample times)."""
    power = samples[samples["name"] == "power_w"]
    series = [g for k, g in power.groupby(["rank", "device_type", "device_index"]) if tuple(k) in set(keys)]
    if not series:
        return None
    if len(series) == 1:
        return float(series[0]["value"].max())
    grid = np.unique(np.concatenate([s["start_ns"].to_numpy(np.int64) for s in series]))
    origin = grid[0]
    total = sum(np.interp((grid - origin).astype(np.float64), (s["start_ns"].to_numpy(np.int64) - origin).astype(np.float64),
                          s["value"].to_numpy()) for s in series)
    return float(np.max(total))


# ---------------------------------------------------------------- attribution


def window_energy(tracks: list[EnergyTrack], rank: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Joules of each window, summed over the measured devices of the window's rank."""
    rank = np.asarray(rank, dtype=np.int64)
    energy = np.zeros(len(start_ns))
    for track in tracks:
        mine = rank == track.rank
        if mine.any():
            energy[mine] += track.between(np.asarray(start_ns)[mine], np.asarray(end_ns)[mine])
    return energy


def attribute_windows(tracks: list[EnergyTrack], windows: pd.DataFrame,
                      min_window_ns: int = MIN_WINDOW_NS) -> pd.DataFrame:
    """Energy per label of ``windows`` (columns label, rank, start_ns, end_ns, optional tokens).

    Returns one row per label: count, time_ns, energy_j, avg_power_w, tokens,
    j_per_token, j_per_window, segments, short_segments, resolved_share,
    uncertainty_j, uncertain.
    """
    columns = ["label", "count", "time_ns", "energy_j", "avg_power_w", "tokens", "j_per_token", "j_per_window",
               "segments", "short_segments", "resolved_share", "uncertainty_j", "uncertain"]
    if windows.empty or not tracks:
        return pd.DataFrame(columns=columns)
    windows = windows.assign(energy_j=window_energy(tracks, windows["rank"], windows["start_ns"], windows["end_ns"]))
    refresh_ns = max(t.refresh_ns for t in tracks)
    shortest = max(min_window_ns, refresh_ns)
    rows = []
    for label, group in windows.groupby("label", sort=False):
        ranks = set(group["rank"].tolist())
        power_w = sum(t.avg_power_w or 0.0 for t in tracks if t.rank in ranks)  # the devices these windows run on
        seg_start, seg_end = _segments(group, refresh_ns)
        seg_len = seg_end - seg_start
        short = seg_len < shortest
        time_ns = int((group["end_ns"] - group["start_ns"]).sum())
        energy = float(group["energy_j"].sum())
        tokens = group["tokens"].sum() if "tokens" in group and group["tokens"].notna().any() else None
        uncertainty = len(seg_len) * refresh_ns / 1e9 * power_w
        rows.append({
            "label": label,
            "count": len(group),
            "time_ns": time_ns,
            "energy_j": energy,
            "avg_power_w": energy / (time_ns / 1e9) if time_ns else None,
            "tokens": None if tokens is None else int(tokens),
            "j_per_token": energy / tokens if tokens else None,
            "j_per_window": energy / len(group),
            "segments": len(seg_len),
            "short_segments": int(short.sum()),
            "resolved_share": float(seg_len[~short].sum() / seg_len.sum()) if seg_len.sum() else 0.0,
            "uncertainty_j": uncertainty,
            "uncertain": bool(short.any()),
        })
    return pd.DataFrame(rows, columns=columns)


def _segments(group: pd.DataFrame, gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows merged where they overlap or lie within ``gap_ns`` of each other (per rank)."""
    starts, ends = [], []
    for _, per_rank in group.groupby("rank"):
        s = per_rank["start_ns"].to_numpy(np.int64)
        e = per_rank["end_ns"].to_numpy(np.int64)
        ms, me = merge_intervals(s, e + gap_ns)  # bridge gaps shorter than the refresh period
        starts.append(ms)
        ends.append(me - gap_ns)
    return np.concatenate(starts), np.concatenate(ends)


def attribute_classes(tracks: list[EnergyTrack], work: pd.DataFrame) -> pd.DataFrame:
    """Energy per class: each knot interval's joules split by each class's busy time in it.

    ``work`` has rank, device_type, device_index, category, start_ns, end_ns.
    Time no class was busy goes to ``idle``. Assumes every class draws the same
    power inside one interval (the counters cannot tell them apart).
    """
    totals: dict[str, float] = {}
    busy_ns: dict[str, int] = {}
    for track in tracks:
        mine = work[(work["rank"] == track.rank) & (work["device_type"] == track.device_type)
                    & (work["device_index"] == track.device_index)]
        starts, ends, joules = track.rates()
        lengths = (ends - starts).astype(np.float64)
        overlaps = {}
        for category, rows in mine.groupby("category", observed=True, sort=True):
            ms, me = merge_intervals(rows["start_ns"].to_numpy(np.int64), rows["end_ns"].to_numpy(np.int64))
            overlaps[str(category)] = overlap_ns(ms, me, starts, ends).astype(np.float64)
            busy_ns[str(category)] = busy_ns.get(str(category), 0) + int(overlaps[str(category)].sum())
        stacked = sum(overlaps.values()) if overlaps else np.zeros_like(lengths)
        denominator = np.maximum(lengths, stacked)
        denominator[denominator == 0] = 1.0
        for category, overlap in overlaps.items():
            totals[category] = totals.get(category, 0.0) + float((joules * overlap / denominator).sum())
        idle = joules * np.clip(1 - stacked / denominator, 0, 1)
        totals["idle"] = totals.get("idle", 0.0) + float(idle.sum())
    grand = sum(totals.values())
    rows = [{"category": c, "energy_j": j, "busy_ns": busy_ns.get(c), "share": j / grand if grand else None}
            for c, j in totals.items()]
    return pd.DataFrame(rows, columns=["category", "energy_j", "busy_ns", "share"])


# ---------------------------------------------------------------- windows from the trace


def step_windows(windows: Mapping[str, Any]) -> pd.DataFrame:
    """Training steps among the report's phase windows (``phases.counted_windows``: marks, else
    ProfilerStep#N): the ``train_step`` windows, else the ``step`` ones, without the step that began
    with the recording (``phase_windows.startup_steps``) when other steps exist."""
    from .phase_windows import step_positions

    return _windows(windows, step_positions(windows, STEP_PHASES), label=STEP_PHASE)


def phase_windows(windows: Mapping[str, Any]) -> pd.DataFrame:
    """Every phase window of the report's (``phases.counted_windows``) other than training steps,
    labelled by its phase: marks, serving-engine steps, detected prefill/decode passes."""
    phase = np.asarray(windows["phase"], dtype=object)
    named = np.fromiter((isinstance(p, str) and p not in STEP_PHASES for p in phase.tolist()), dtype=bool,
                        count=len(phase))
    return _windows(windows, np.flatnonzero(named))


def _windows(windows: Mapping[str, Any], at: np.ndarray, label: str | None = None) -> pd.DataFrame:
    """The windows at positions ``at``, each ending where the device work launched inside it ends."""
    return pd.DataFrame({
        "label": label if label is not None else np.asarray(windows["phase"], dtype=object)[at],
        "rank": np.asarray(windows["rank"], dtype=np.int64)[at],
        "start_ns": np.asarray(windows["start_ns"], dtype=np.int64)[at],
        "end_ns": np.asarray(windows["effective_end_ns"], dtype=np.int64)[at],
        "tokens": np.asarray(windows["tokens"], dtype=np.float64)[at],
    })


# ---------------------------------------------------------------- helpers


def _sorted(t_ns, values) -> tuple[np.ndarray, np.ndarray]:
    t_ns = np.asarray(t_ns, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(t_ns, kind="stable")
    return t_ns[order], values[order]


def _median_step(t_ns: np.ndarray) -> int:
    steps = np.diff(t_ns)
    return int(np.median(steps)) if len(steps) else 0


def _power_refresh_ns(t_ns: np.ndarray, watts: np.ndarray) -> int:
    """The resolution of instant power samples: how often their value really changes."""
    changed = np.r_[True, watts[1:] != watts[:-1]]
    return _refresh_ns(t_ns[changed], _median_step(t_ns))


def _refresh_ns(change_times: np.ndarray, floor_ns: int) -> int:
    """How often a reading really changes: the median time between changes, at least the sampling step."""
    steps = np.diff(change_times)
    measured = int(np.median(steps)) if len(steps) else 0
    return max(measured, int(floor_ns), 1)


Classifier = Callable[[pd.DataFrame], pd.DataFrame]


def trace_tracks(samples: pd.DataFrame, devices: Iterable[tuple[int, Mapping[str, Any]]]) -> list[EnergyTrack]:
    """The energy tracks of a trace's samples (``samples_of``), one per physical device: ``devices`` is
    (rank, metadata) of each rank's trace, whose GPU UUIDs tell when two ranks sampled the same GPU."""
    return drop_duplicate_devices(device_tracks(samples), device_uuid_map(list(devices)))


def scoped_tracks(tracks: list[EnergyTrack]) -> list[EnergyTrack]:
    """The tracks a trace's energy figure counts: its GPUs', else (a CPU-only run) its CPUs'. Host CPU
    energy beside GPUs is reported apart (``cpu_energy_j``), not added to the GPUs'."""
    return [t for t in tracks if t.device_type == "gpu"] or [t for t in tracks if t.device_type == "cpu"]


def device_uuid_map(traces_metadata: list[tuple[int, Mapping[str, Any]]]) -> dict[tuple[int, int], str]:
    """(rank, GPU index) -> UUID from each trace's metadata ``devices``."""
    found = {}
    for rank, metadata in traces_metadata:
        for device in metadata.get("devices") or []:
            if device.get("type") == "gpu" and device.get("uuid") and device.get("index") is not None:
                found[(int(rank), int(device["index"]))] = str(device["uuid"])
    return found


def drop_duplicate_devices(tracks: list[EnergyTrack], uuids: Mapping[tuple[int, int], str]) -> list[EnergyTrack]:
    """Keep one track per physical GPU when several ranks sampled the same one (lowest rank wins)."""
    seen: set[str] = set()
    kept = []
    for track in sorted(tracks, key=lambda t: (t.rank, t.device_type, t.device_index)):
        uuid = uuids.get((track.rank, track.device_index)) if track.device_type == "gpu" else None
        if uuid is not None and uuid in seen:
            continue
        if uuid is not None:
            seen.add(uuid)
        kept.append(track)
    return kept
