"""Regression budgets: is NEW within budget of BASE?

A budget is (metric, scope, limit): time or energy, of the whole run, of one
operator class or of one phase, may grow by at most ``limit`` (0.05 = 5 %).

What is compared, so that one slow outlier does not fail CI:

- whole run, time: the device's busy time (GPU work, or CPU ops on a CPU-only
  trace) per step, as the median over steps, when both traces have step marks
  (``step`` / ``train_step`` phases, or ProfilerStep#N in imported traces);
  the total otherwise;
- a phase (``prefill``, ``decode``, a user phase...): the median over its passes
  of the busy time inside each pass (its wall time if no work was recorded). Passes and steps are
  the report's windows (``phases.counted_windows``), each ending where its device work ends;
- a class: the median over steps of its time (``diff.class_table``'s rule: the report's class time)
  inside each step when both traces have steps (the start-up step left out, as for the run), its
  total otherwise;
- memory: the most any one device held over the run (``memory.device_peaks``), by the first measure
  both traces have of ``memory.PEAK_SOURCES``: torch's allocator (``allocated``, recorded with
  ``--memory`` / profile_memory), else NVML's per-process or whole-device readings, else the host
  process's RSS; a peak, so never per step;
- energy: the report's energy figure (``energy.trace_tracks``: per physical device, the ``energy_j``
  counter's rise or the integral of ``power_w``; the GPUs', else the CPUs'; a GPU two ranks sampled
  counted once); per step as a median when steps exist.

Traces of several ranks have one window per rank and step: its time is that rank's busy time (the
report's "N steps × R ranks"), its energy the job's (every device's) in the window.

Everything here is pure: tables in, ``Verdict`` objects out. ``CheckInputError``
(a UsageError) says a budget cannot be measured: exit 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..trace.schema import Kind
from .classes import CLASS_ORDER
from .classify import classify_table
from .columns import label_codes
from . import communication, energy, memory
from .diff import classified_class_table
from .intervals import merge_intervals, overlap_ns
from .phase_windows import step_positions, window_columns
from .phases import counted_windows
from .table import EventTable
from .summary import DEVICE_WORK_KINDS, has_gpu_work

#: Phase names that mark one training/inference step each.
STEP_PHASES = ("step", "train_step")
METRICS = ("time", "energy", "memory")
SCOPES = ("total", "class", "phase")
_LIMIT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


class CheckInputError(UsageError):
    """A budget names something the traces cannot measure (a missing phase, no energy data...): exit 2."""


@dataclass(frozen=True)
class Budget:
    metric: str  # "time" | "energy" | "memory" | "exposed_communication"
    limit: float  # largest allowed relative increase, 0.05 = 5 %
    scope: str = "total"  # "total" | "class" | "phase"
    target: str | None = None  # the class or phase name; memory: the measure compared (memory.PEAK_SOURCES)

    @property
    def label(self) -> str:
        what = self.metric.replace("_", " ")
        return what if self.scope == "total" else f"{what} of {self.scope} {self.target}"


@dataclass(frozen=True)
class Measurement:
    value: float  # ns for time, J for energy, bytes for memory
    basis: str  # how it was measured, for the reader: "median of 8 steps", "total"


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    base: Measurement
    new: Measurement

    @property
    def change(self) -> float | None:
        """Relative change (0.2 = 20 % more); None when the base is 0."""
        return None if self.base.value == 0 else (self.new.value - self.base.value) / self.base.value

    @property
    def ok(self) -> bool:
        change = self.change
        if change is None:
            return self.new.value <= 0
        return change <= self.budget.limit + 1e-12

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget.label,
            "metric": self.budget.metric,
            "scope": self.budget.scope,
            "target": self.budget.target,
            "limit": self.budget.limit,
            "base": self.base.value,
            "new": self.new.value,
            "base_basis": self.base.basis,
            "new_basis": self.new.basis,
            "change": self.change,
            "ok": self.ok,
        }


def parse_limit(text: str) -> float:
    """'5%' or '5' -> 0.05 (a budget is always in percent); raises ValueError otherwise."""
    match = _LIMIT.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a percentage such as 5%")
    return float(match.group(1)) / 100


def parse_scoped(text: str) -> tuple[str, float]:
    """'decode=10%' -> ('decode', 0.10)."""
    name, sep, limit = str(text).rpartition("=")
    if not sep or not name.strip():
        raise ValueError(f"{text!r}: expected NAME=PERCENT, e.g. decode=10%")
    return name.strip(), parse_limit(limit)


def check(
    base_events: pd.DataFrame, new_events: pd.DataFrame, budgets: list[Budget],
    base_doc: dict | None = None, new_doc: dict | None = None,
    base_devices: Iterable[tuple[int, Mapping]] = (), new_devices: Iterable[tuple[int, Mapping]] = (),
) -> list[Verdict]:
    """One verdict per budget; raises CheckInputError when a budget cannot be measured on both.
    ``*_devices``: (rank, metadata) of each rank's trace (their GPU UUIDs: a GPU counted once)."""
    base = CheckedTrace(base_events, base_doc, "baseline", base_devices)
    new = CheckedTrace(new_events, new_doc, "trace", new_devices)
    budgets = [_memory_measure(budget, base, new) if budget.metric == "memory" else budget for budget in budgets]
    if any(b.metric == "exposed_communication" for b in budgets) and not (base.exposed or new.exposed):
        raise CheckInputError("neither trace has collective kernels (NCCL, RCCL): no communication to compare")
    per_step = bool(len(base.step_windows()[0]) and len(new.step_windows()[0]))
    return [Verdict(budget, base.measure(budget, per_step=per_step), new.measure(budget, per_step=per_step))
            for budget in budgets]


def _memory_measure(budget: Budget, base: "CheckedTrace", new: "CheckedTrace") -> Budget:
    """A memory budget with the measure it compares: the first of ``memory.PEAK_SOURCES`` both traces have."""
    if budget.target is not None:
        return budget
    have_base, have_new = base.memory_peaks, new.memory_peaks
    common = [source for source in memory.PEAK_SOURCES if source in have_base and source in have_new]
    if not common:
        missing = base.side if not have_base else new.side if not have_new else None
        if missing:
            raise CheckInputError(f"the {missing} has no memory samples (record with --memory, or with telemetry on)")
        raise CheckInputError(f"the traces measured memory differently (baseline: {', '.join(have_base)}; "
                              f"trace: {', '.join(have_new)})")
    return Budget("memory", budget.limit, budget.scope, common[0])


def measure(events: pd.DataFrame, budget: Budget, *, per_step: bool, doc: dict | None = None,
            side: str = "trace") -> Measurement:
    """The figure ``budget`` compares, on one trace."""
    return CheckedTrace(events, doc, side).measure(budget, per_step=per_step)


def step_windows(events: pd.DataFrame, steady: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of a trace's training/inference steps (``CheckedTrace.step_windows``)."""
    return CheckedTrace(events).step_windows(steady)


class CheckedTrace:
    """One side of a check, and what its budgets read of it, each worked out once however many budgets
    read it: the classified rows (class budgets; where each window's device work ends) and the phase
    windows as the report counts them (``phases.counted_windows``: marks, ProfilerStep#N, serving-engine
    steps, detected prefill/decode passes), so a phase the report shows is a phase a budget can name."""

    def __init__(self, events: pd.DataFrame, doc: dict | None = None, side: str = "trace",
                 devices: Iterable[tuple[int, Mapping]] = ()):
        self.events, self.doc, self.side = events, doc, side
        self.devices = list(devices)

    @cached_property
    def energy_tracks(self) -> list[energy.EnergyTrack]:
        """The tracks the report's energy figure counts (``energy.scoped_tracks``)."""
        return energy.scoped_tracks(energy.trace_tracks(energy.samples_of(self.events), self.devices))

    @cached_property
    def memory_peaks(self) -> dict[str, tuple[float, str]]:
        """Per measure (``memory.PEAK_SOURCES``): the largest peak of any device, and where ("GPU 0")."""
        found: dict[str, tuple[float, str]] = {}
        for device in memory.device_peaks(memory.memory_samples(self.events), origin_ns=0):
            where = "host" if device["device_type"] == "cpu" else f"GPU {device['device_index']}"
            where = where if not device["rank"] else f"rank {device['rank']} {where}"
            for source in memory.PEAK_SOURCES:
                field = "allocated" if source == "allocated_since_start" else source
                if field == "allocated" and device.get("allocated_since_start") != (source != "allocated"):
                    continue  # (totals counted from the recording's start are not the allocator's totals)
                peak = device.get(f"{field}_peak_bytes")
                if peak is not None and peak > found.get(source, (-1.0, ""))[0]:
                    found[source] = (float(peak), where)
        return found

    @cached_property
    def rows(self) -> EventTable:
        return classify_table(self.events)

    @cached_property
    def windows(self) -> dict[str, np.ndarray]:
        found = window_columns(self.events)
        if not len(found["start_ns"]):  # (no windows: nothing to classify for)
            return {**found, "effective_end_ns": found["end_ns"]}
        return counted_windows(self.events, self.rows, found)

    def phase_windows(self, name: str, steady: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, ranks) of the windows of phase ``name``, each ending where the device work
        launched inside it ends; ``steady``: without the step that began with the recording
        (``phase_windows.startup_steps``: its start-up is no step's time)."""
        return self._at(step_positions(self.windows, (name,), steady))

    def step_windows(self, steady: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, ranks) of the steps, from the first step phase name present (STEP_PHASES)."""
        return self._at(step_positions(self.windows, STEP_PHASES, steady))

    def _at(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        windows = self.windows
        ranks = windows.get("rank")
        return (np.asarray(windows["start_ns"], np.int64)[at], np.asarray(windows["effective_end_ns"], np.int64)[at],
                np.zeros(len(at), np.int64) if ranks is None else np.asarray(ranks, np.int64)[at])

    def window_values(self, metric: str, starts: np.ndarray, ends: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Per window: its rank's busy time (its wall time where it recorded no work), or the energy of
        every counted device in it."""
        if metric == "time":
            busy = _busy_in(self.events, starts, ends, ranks)
            return np.where(busy > 0, busy, ends - starts).astype(np.float64)
        tracks = self.energy_tracks
        if not tracks:
            raise CheckInputError(f"the {self.side} has no power or energy samples (record with telemetry on)")
        return np.sum([track.between(starts, ends) for track in tracks], axis=0)

    def total_energy_j(self) -> float:
        """Whole-trace energy: the report's figure, from samples, else from the report's ``energy`` section."""
        if self.energy_tracks:
            return float(sum(track.total_j for track in self.energy_tracks))
        section = (self.doc or {}).get("energy")
        if isinstance(section, dict):
            for key in ("total_j", "energy_j", "gpu_energy_j", "device_energy_j"):
                if isinstance(section.get(key), (int, float)):
                    return float(section[key])
        raise CheckInputError(f"the {self.side} has no power or energy samples (record with telemetry on)")

    @cached_property
    def exposed(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per rank: when a collective kernel ran and no other device work did (analyzers/communication.py)."""
        return communication.exposed_intervals(communication.device_rows(self.rows))

    def measure(self, budget: Budget, *, per_step: bool) -> Measurement:
        """The figure ``budget`` compares, on this trace."""
        events, side = self.events, self.side
        if budget.metric == "exposed_communication":
            if budget.scope != "total":
                raise CheckInputError("exposed communication budgets are for the run (per step where it has steps)")
            if per_step:
                starts, ends, ranks = self.step_windows()
                values = np.zeros(len(starts))
                for rank, (exposed_start, exposed_end) in self.exposed.items():
                    mine = ranks == rank
                    values[mine] = overlap_ns(exposed_start, exposed_end, starts[mine], ends[mine])
                return Measurement(float(np.median(values)), "median of " + _count(ranks, "step", "steps"))
            return Measurement(float(sum(int((e - s).sum()) for s, e in self.exposed.values())), "total")
        if budget.metric == "memory":  # (a peak over the run: there is no per-step memory budget)
            if budget.scope != "total":
                raise CheckInputError("memory budgets are for the whole run (a peak), not per class or phase")
            peak, where = self.memory_peaks[budget.target]
            return Measurement(peak, f"{memory.PEAK_WORDS[budget.target]} peak, {where}")
        if budget.scope == "phase":
            starts, ends, ranks = self.phase_windows(budget.target)
            if not len(starts):
                names = ", ".join(sorted({str(p) for p in self.windows["phase"] if isinstance(p, str)}))
                raise CheckInputError(f"the {side} has no phase {budget.target!r} (phases: {names or 'none'})")
            values = self.window_values(budget.metric, starts, ends, ranks)
            return Measurement(float(np.median(values)),
                               "median of " + _count(ranks, budget.target + " pass", budget.target + " passes"))
        if budget.scope == "class":
            if budget.metric != "time":
                raise CheckInputError("class budgets are time budgets (energy is not split by class)")
            if budget.target not in CLASS_ORDER:
                raise CheckInputError(f"unknown class {budget.target!r} (classes: {', '.join(CLASS_ORDER)})")
            if not per_step:
                table = classified_class_table(self.rows).set_index("class")["time_ns"] if len(events) else pd.Series(dtype=float)
                return Measurement(float(table.get(budget.target, 0.0)), "total")
            starts, ends, ranks = self.step_windows()
            values = _class_time_in_windows(self.rows, budget.target, starts, ends, ranks)
            return Measurement(float(np.median(values)), "median of " + _count(ranks, "step", "steps"))
        if per_step:
            starts, ends, ranks = self.step_windows()
            values = self.window_values(budget.metric, starts, ends, ranks)
            return Measurement(float(np.median(values)), "median of " + _count(ranks, "step", "steps"))
        if budget.metric == "time":
            return Measurement(float(_busy_in(events, np.array([np.iinfo(np.int64).min // 2]),
                                              np.array([np.iinfo(np.int64).max // 2]))[0]), "total")
        return Measurement(self.total_energy_j(), "total")


def _count(ranks: np.ndarray, one: str, many: str) -> str:
    """How many windows a median is over: "4 steps", or "4 steps × 2 ranks" (one window per rank and step)."""
    n, per_rank = len(ranks), np.unique(ranks, return_counts=True)[1]
    if len(per_rank) > 1 and (per_rank == per_rank[0]).all():
        return f"{per_rank[0]} {one if per_rank[0] == 1 else many} × {len(per_rank)} ranks"
    return f"{n} {one if n == 1 else many}" + (f" of {len(per_rank)} ranks" if len(per_rank) > 1 else "")


def _class_time_in_windows(rows: EventTable, target: str, starts: np.ndarray, ends: np.ndarray,
                           ranks: np.ndarray) -> np.ndarray:
    """The time of class ``target`` (the report's class time, as ``diff.class_table`` counts it) of the
    classified ``rows`` of work of each window's rank that start inside the window."""
    codes, labels = label_codes(rows["category"])
    hit = rows["device_work"].to_numpy(bool) & np.append(labels == target, False)[codes]
    row_rank = rows["rank"].to_numpy(np.int64)[hit] if "rank" in rows else np.zeros(int(hit.sum()), np.int64)
    start = rows["start_ns"].to_numpy(np.int64)[hit]
    time_ns = rows["time_ns"].to_numpy(np.int64)[hit]
    inside = np.zeros(len(starts))
    for rank in np.unique(ranks):
        mine, windows = row_rank == rank, ranks == rank
        order = np.argsort(start[mine], kind="stable")
        rank_start = start[mine][order]
        cumulative = np.r_[0, np.cumsum(time_ns[mine][order])]
        inside[windows] = (cumulative[np.searchsorted(rank_start, ends[windows], "left")]
                           - cumulative[np.searchsorted(rank_start, starts[windows], "left")])
    return inside


def _busy_in(events: pd.DataFrame, starts: np.ndarray, ends: np.ndarray, ranks: np.ndarray | None = None) -> np.ndarray:
    """Device busy ns inside each window (GPU work; CPU-only traces: outermost CPU ops): of the window's
    rank, or (``ranks`` None: the whole run) summed over ranks."""
    if has_gpu_work(events):
        work = events[events["kind"].isin(DEVICE_WORK_KINDS)]
    else:
        ops = events[events["kind"] == Kind.CPU_OP.value]
        work = ops[ops["depth"].fillna(0) == 0] if "depth" in ops else ops
    total = np.zeros(len(starts), dtype=np.int64)
    groups = work.groupby("rank", observed=True) if "rank" in work else [(0, work)]
    for rank, part in groups:
        windows = np.ones(len(starts), bool) if ranks is None else ranks == rank
        s = part["start_ns"].to_numpy(np.int64)
        merged = merge_intervals(s, s + part["duration_ns"].to_numpy(np.int64))
        total[windows] += overlap_ns(merged[0], merged[1], starts[windows], ends[windows])
    return total
