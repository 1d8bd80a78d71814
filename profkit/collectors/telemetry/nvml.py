"""GPU telemetry over NVML: a registry of metrics, probed once per device, sampled on a cadence.

Each metric is one or more *sources* (ways to read it), registered with
``@gpu_metric`` in order of preference; at start each device keeps the first
source that works (the probe), so an unsupported field costs one call, once.
Readers get ``(nvml, handle, pid)`` and return one value per metric name, or
None for "no value this time". NVML failures become one-line notes through
the table in nvml_errors.py; nothing here raises into the profiled program
except an explicitly requested device that does not exist.

pynvml is imported lazily by the collector; pass ``nvml=`` (e.g. the fake in
fake_nvml.py) to use another binding.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import UsageError
from .buffer import SampleBuffer
from .devices import VisibleDevice, resolve, text
from .gpm import GpmState, open_gpm
from .nvml_errors import ABSENT_CODES, FATAL_CODES, error_code, reason

Reader = Callable[[Any, Any, int], "tuple[float | None, ...]"]

#: A metric that fails this many reads in a row is dropped for the rest of the run.
MAX_CONSECUTIVE_ERRORS = 5
ONCE = math.inf
#: The energy counter costs ~4 ms of CPU per read on an H200 (either call; the other reads cost
#: microseconds), so read every tick at 50 Hz it was ~20 % of a core: once a second it is ~0.4 %.
#: The analyzer shapes each second's increment by the instant power samples read every tick, and
#: the read at stop closes the run, so totals stay exact.
ENERGY_EVERY_MS = 1000
#: Clocks, temperature and throttle reasons change slowly. Read in a periodic sampler, every NVML call
#: cost ~60-90 us of CPU on an H200 (2-10 us back to back), so these four at 10 Hz were ~0.3 % of a core.
SLOW_EVERY_MS = 500


@dataclass(frozen=True)
class Source:
    label: str
    read: Reader
    extra: dict[str, Any] | None = None


@dataclass
class GpuMetric:
    names: tuple[str, ...]
    every_ms: float  # 0: every tick; ONCE: at start only
    read_at_close: bool = False  # read once more at stop, so a cumulative reading covers the run to its end
    sources: list[Source] = field(default_factory=list)


_METRICS: dict[tuple[str, ...], GpuMetric] = {}


def gpu_metric(*names: str, every_ms: float, source: str, extra: dict[str, Any] | None = None,
               read_at_close: bool = False):
    """Register ``read`` as a source of ``names`` (earlier registrations are preferred)."""

    def register(read: Reader) -> Reader:
        metric = _METRICS.setdefault(names, GpuMetric(names, every_ms, read_at_close))
        if (metric.every_ms, metric.read_at_close) != (every_ms, read_at_close):
            raise ValueError(f"gpu metric {names}: cadence ({every_ms} ms, read_at_close={read_at_close}) differs "
                             f"from ({metric.every_ms} ms, read_at_close={metric.read_at_close})")
        if any(s.label == source for s in metric.sources):
            raise ValueError(f"gpu metric {names}: source {source!r} registered twice")
        metric.sources.append(Source(source, read, extra))
        return read

    return register


def metrics() -> list[GpuMetric]:
    return list(_METRICS.values())


_FIELD_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def field_value(nvml: Any, field_id: int, handle: Any) -> float:
    """One field through nvmlDeviceGetFieldValues."""
    return _checked(nvml, nvml.nvmlDeviceGetFieldValues(handle, [field_id])[0])


def _checked(nvml: Any, value: Any) -> float:
    """A field value's number; nvmlDeviceGetFieldValues reports failure per value, not by raising."""
    if value.nvmlReturn != 0:
        raise nvml.NVMLError(value.nvmlReturn)
    return float(getattr(value.value, _FIELD_ATTR.get(value.valueType, "dVal")))


@gpu_metric("power_w", every_ms=0, source="nvml_power_instant")
def _power_instant(nvml, handle, pid):
    return (field_value(nvml, nvml.NVML_FI_DEV_POWER_INSTANT, handle) / 1e3,)


@gpu_metric("power_w", every_ms=0, source="nvml_power_average", extra={"averaged": True, "window_s": 1})
def _power_average(nvml, handle, pid):
    return (nvml.nvmlDeviceGetPowerUsage(handle) / 1e3,)


@gpu_metric("energy_j", every_ms=ENERGY_EVERY_MS, read_at_close=True, source="nvml_energy_field")
def _energy_field(nvml, handle, pid):
    return (field_value(nvml, nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, handle) / 1e3,)


@gpu_metric("energy_j", every_ms=ENERGY_EVERY_MS, read_at_close=True, source="nvml_total_energy")
def _energy(nvml, handle, pid):
    return (nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3,)


@gpu_metric("memory_used_bytes", every_ms=100, source="nvml_memory_info")
def _memory_used(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetMemoryInfo(handle).used),)


@gpu_metric("memory_total_bytes", every_ms=ONCE, source="nvml_memory_info")
def _memory_total(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetMemoryInfo(handle).total),)


@gpu_metric("process_memory_bytes", every_ms=500, source="nvml_compute_processes")
def _process_memory(nvml, handle, pid):
    used = [p.usedGpuMemory for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid]
    used = [u for u in used if u is not None]
    return (float(sum(used)) if used else None,)  # not listed (yet, or another PID namespace)


@gpu_metric("gpu_util_pct", "memory_util_pct", every_ms=100, source="nvml_utilization_rates")
def _utilization(nvml, handle, pid):
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return (float(rates.gpu), float(rates.memory))


@gpu_metric("sm_clock_mhz", every_ms=SLOW_EVERY_MS, source="nvml_clock_info")
def _sm_clock(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),)


@gpu_metric("memory_clock_mhz", every_ms=SLOW_EVERY_MS, source="nvml_clock_info")
def _memory_clock(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),)


@gpu_metric("temperature_c", every_ms=SLOW_EVERY_MS, source="nvml_temperature")
def _temperature(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),)


@gpu_metric("throttle_reasons_mask", every_ms=SLOW_EVERY_MS, source="nvml_clocks_event_reasons")
def _event_reasons(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetCurrentClocksEventReasons(handle)),)


@gpu_metric("throttle_reasons_mask", every_ms=SLOW_EVERY_MS, source="nvml_clocks_throttle_reasons")
def _throttle_reasons(nvml, handle, pid):
    return (float(nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)),)


@dataclass
class _Active:
    """One metric on one device: the chosen source, its series codes, its error streak."""

    metric: GpuMetric
    source: Source
    codes: tuple[int, ...]
    every_ticks: int
    errors: int = 0


@dataclass
class _DeviceState:
    device: VisibleDevice
    name: str
    active: list[_Active] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)  # metric -> reason
    lost: bool = False
    gpm: GpmState | None = None
    process_listed: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class NvmlSampler:
    """Samples the process's GPUs; ``open``/``tick``/``close`` are called by the collector's thread."""

    def __init__(
        self,
        nvml: Any,
        buffer: SampleBuffer,
        interval_ns: int,
        devices: list[int] | None = None,
        *,
        gpm: bool = True,
        gpm_interval_ns: int = 100_000_000,
        clock: Callable[[], int] = time.time_ns,
        environ: dict[str, str] | None = None,
    ):
        self._nvml = nvml
        self._buffer = buffer
        self._interval_ns = max(int(interval_ns), 1)
        self._wanted = devices
        self._want_gpm = gpm
        self._gpm_every = max(1, round(gpm_interval_ns / self._interval_ns))
        self._clock = clock
        self._environ = environ
        self._pid = os.getpid()
        self._states: list[_DeviceState] = []
        self._tick = 0
        self._initialized = False
        self.notes: list[str] = []

    # -- lifecycle -------------------------------------------------------
    def open(self, rows: list) -> bool:
        """Initialise NVML, find the devices, probe each metric once. False: nothing to sample."""
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            what = "NVML not available" if error_code(exc) in ABSENT_CODES else "NVML failed to start"
            self.notes.append(f"telemetry: {what} ({reason(exc)}): no GPU power, energy or memory samples")
            return False
        self._initialized = True
        try:
            resolution = resolve(nvml, self._environ)
        except nvml.NVMLError as exc:
            self.notes.append(f"telemetry: could not list GPUs through NVML ({reason(exc)}): no GPU samples")
            return False
        self.notes.extend(resolution.notes)
        devices = self._select(resolution.devices)
        if not devices:
            self.notes.append("telemetry: this process sees no GPU: no GPU power, energy or memory samples")
            return False
        for device in devices:
            self._states.append(self._probe(device, rows))
        return any(s.active or s.gpm for s in self._states)

    def tick(self, rows: list) -> None:
        self._tick += 1
        for state in self._states:
            if state.lost:
                continue
            for active in state.active:
                if self._tick % active.every_ticks == 0:
                    self._read(state, active, rows)
            if state.gpm is not None and self._tick % self._gpm_every == 0:
                state.gpm.sample(self._nvml, self._clock(), rows, self.notes)

    def close(self, rows: list) -> None:
        for state in self._states:
            for active in [a for a in state.active if a.metric.read_at_close]:  # _read may drop one
                if not state.lost:
                    self._read(state, active, rows)
            if state.gpm is not None:
                state.gpm.close(self._nvml, self.notes)
            if any(a.metric.names == ("process_memory_bytes",) for a in state.active) and not state.process_listed:
                self.notes.append(
                    f"telemetry: GPU {state.device.cuda_index}: this process never appeared in NVML's process list "
                    "(no CUDA context yet, or a container's PID namespace): no per-process GPU memory"
                )
        if self._initialized:
            self._initialized = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass

    def device_info(self) -> list[dict[str, Any]]:
        return [dict(s.info, telemetry=self._sources(s)) for s in self._states]

    # -- internals -------------------------------------------------------
    def _select(self, visible: list[VisibleDevice]) -> list[VisibleDevice]:
        if self._wanted is None:
            return visible
        by_index = {d.cuda_index: d for d in visible}
        missing = [i for i in self._wanted if i not in by_index]
        if missing:
            seen = ", ".join(str(i) for i in sorted(by_index)) or "none"
            spec = (self._environ if self._environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
            where = f" (CUDA_VISIBLE_DEVICES={spec})" if spec is not None else ""
            raise UsageError(
                f"telemetry device {missing[0]} is not visible to this process; it sees GPUs {seen}{where}: "
                "pick among those, or leave devices unset to sample all of them"
            )
        return [by_index[i] for i in dict.fromkeys(self._wanted)]

    def _probe(self, device: VisibleDevice, rows: list) -> _DeviceState:
        nvml, index = self._nvml, device.cuda_index
        name = _safe(nvml, lambda: text(nvml.nvmlDeviceGetName(device.handle)), "unknown GPU")
        state = _DeviceState(device, name)
        state.info = _static_info(nvml, device, name)
        covered: set[str] = set()
        for metric in metrics():
            if covered.issuperset(metric.names):
                continue  # an earlier group (one call for several metrics) already reads these
            every_ticks = 0 if metric.every_ms == ONCE else max(1, round(metric.every_ms * 1e6 / self._interval_ns))
            failures: list[str] = []
            for source in metric.sources:
                try:
                    values = source.read(nvml, device.handle, self._pid)
                except (nvml.NVMLError, AttributeError) as exc:
                    failures.append(reason(exc) if isinstance(exc, nvml.NVMLError) else "binding lacks the call")
                    continue
                codes = tuple(self._buffer.series(n, "gpu", index, source.extra) for n in metric.names)
                self._emit(state, metric, codes, values, rows)
                if every_ticks:
                    state.active.append(_Active(metric, source, codes, every_ticks))
                covered.update(metric.names)
                break
            else:
                for n in metric.names:
                    state.unsupported.setdefault(n, failures[0] if failures else "no source")
        state.unsupported = {n: why for n, why in state.unsupported.items() if n not in covered}
        self._note_probe(state)
        if self._want_gpm:
            state.gpm, gpm_note = open_gpm(nvml, device, self._buffer, self._clock())
            if gpm_note:
                self.notes.append(f"telemetry: GPU {index}: {gpm_note}")
        return state

    def _note_probe(self, state: _DeviceState) -> None:
        index = state.device.cuda_index
        if state.unsupported:
            by_reason: dict[str, list[str]] = {}
            for metric, why in state.unsupported.items():
                by_reason.setdefault(why, []).append(metric)
            parts = "; ".join(f"{', '.join(ms)} ({why})" for why, ms in by_reason.items())
            self.notes.append(f"telemetry: GPU {index} ({state.name}) lacks {parts}")
        power = next((a.source for a in state.active if "power_w" in a.metric.names), None)
        if power is not None and power.extra and power.extra.get("averaged"):
            self.notes.append(
                f"telemetry: GPU {index}: instantaneous power not supported; power_w is NVML's 1 s average"
            )

    def _read(self, state: _DeviceState, active: _Active, rows: list) -> None:
        nvml = self._nvml
        try:
            values = active.source.read(nvml, state.device.handle, self._pid)
        except nvml.NVMLError as exc:
            active.errors += 1
            index = state.device.cuda_index
            if error_code(exc) in FATAL_CODES:
                state.lost = True
                self.notes.append(f"telemetry: GPU {index}: sampling stopped ({reason(exc)})")
            elif active.errors >= MAX_CONSECUTIVE_ERRORS:
                state.active.remove(active)
                names = ", ".join(active.metric.names)
                self.notes.append(f"telemetry: GPU {index}: {names} dropped after repeated errors ({reason(exc)})")
            return
        active.errors = 0
        self._emit(state, active.metric, active.codes, values, rows)

    def _emit(self, state: _DeviceState, metric: GpuMetric, codes: tuple[int, ...], values, rows: list) -> None:
        now = self._clock()
        for code, value in zip(codes, values):
            if value is not None:
                rows.append((code, now, value, 0))
        if metric.names[0] == "process_memory_bytes" and values[0] is not None:
            state.process_listed = True

    @staticmethod
    def _sources(state: _DeviceState) -> dict[str, str]:
        found = {n: a.source.label for a in state.active for n in a.metric.names}
        if state.gpm is not None:
            found["gpm"] = "nvml_gpm"
        return found


def _static_info(nvml: Any, device: VisibleDevice, name: str) -> dict[str, Any]:
    """What does not change during a run: identity, memory size, power limit, peak bandwidth."""
    handle = device.handle
    info: dict[str, Any] = {"index": device.cuda_index, "type": "gpu", "name": name, "uuid": device.uuid,
                            "nvml_index": device.nvml_index, "mig": device.is_mig}
    info["total_memory_bytes"] = _safe(nvml, lambda: int(nvml.nvmlDeviceGetMemoryInfo(handle).total))
    limit_mw = _safe(nvml, lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    info["power_limit_w"] = None if limit_mw is None else limit_mw / 1e3
    bus_bits = _safe(nvml, lambda: int(nvml.nvmlDeviceGetMemoryBusWidth(handle)))
    mem_mhz = _safe(nvml, lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM)))
    info["memory_bus_width_bits"] = bus_bits
    info["max_memory_clock_mhz"] = mem_mhz
    # Double data rate: bytes/s = bus width / 8 x clock x 2 (H100 SXM: 5120 b, 2619 MHz -> 3.35 TB/s).
    info["peak_memory_bandwidth_bytes_per_s"] = (
        bus_bits / 8 * mem_mhz * 1e6 * 2 if bus_bits and mem_mhz else None
    )
    return info


def _safe(nvml: Any, call: Callable[[], Any], default: Any = None) -> Any:
    """A static fact that may be unsupported (or missing from an old binding): its value, or ``default``."""
    try:
        return call()
    except (nvml.NVMLError, AttributeError):
        return default
