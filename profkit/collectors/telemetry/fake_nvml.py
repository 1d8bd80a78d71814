"""A fake of the pynvml functions profkit uses: GPU telemetry on machines without a GPU.

``FakeNvml`` answers the same calls, with the same shapes and error codes, as
the pynvml module — for tests, for demos, and for trying the energy report
on a laptop. Devices are configurable: power as a constant or piecewise-constant
profile, the energy counter (start value, wrap, reset, refresh period),
unsupported calls or fields, a device that is lost mid-run, MIG slices, GPM.

    fake = FakeNvml([FakeDevice(power_w=[(0, 100.0), (1.0, 300.0)])])
    TelemetryCollector(nvml=fake)

Time comes from ``clock`` (ns, default ``time.time_ns``) relative to the
fake's creation, so a test can drive both the fake and the sampler by hand.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

# NVML's own numbers (nvml.h); the same in pynvml.
NVML_SUCCESS = 0
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNINITIALIZED = 1
NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION = 83
NVML_FI_DEV_POWER_INSTANT = 186
NVML_VALUE_TYPE_DOUBLE = 0
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_GPM_METRICS_GET_VERSION = 1
NVML_GPM_METRIC_SM_UTIL = 2
NVML_GPM_METRIC_SM_OCCUPANCY = 3
NVML_GPM_METRIC_ANY_TENSOR_UTIL = 5
NVML_GPM_METRIC_HMMA_TENSOR_UTIL = 7
NVML_GPM_METRIC_DMMA_TENSOR_UTIL = 8
NVML_GPM_METRIC_IMMA_TENSOR_UTIL = 9
NVML_GPM_METRIC_DRAM_BW_UTIL = 10
NVML_GPM_METRIC_FP64_UTIL = 11
NVML_GPM_METRIC_FP32_UTIL = 12
NVML_GPM_METRIC_FP16_UTIL = 13
NVML_GPM_METRIC_PCIE_TX_PER_SEC = 20
NVML_GPM_METRIC_PCIE_RX_PER_SEC = 21
NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC = 60
NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC = 61
_GPM_SLOTS = 64


class NVMLError(Exception):
    """Same shape as pynvml.NVMLError: the NVML code is ``value``."""

    def __init__(self, value: int):
        self.value = value
        super().__init__(f"NVML error {value}")


#: Call -> capability key a FakeDevice can list in ``unsupported``.
CAPABILITY_OF = {
    "nvmlDeviceGetPowerUsage": "power_average",
    "nvmlDeviceGetTotalEnergyConsumption": "energy",
    "nvmlDeviceGetMemoryInfo": "memory",
    "nvmlDeviceGetComputeRunningProcesses": "processes",
    "nvmlDeviceGetUtilizationRates": "utilization",
    "nvmlDeviceGetClockInfo": "clocks",
    "nvmlDeviceGetTemperature": "temperature",
    "nvmlDeviceGetCurrentClocksEventReasons": "throttle",
    "nvmlDeviceGetCurrentClocksThrottleReasons": "throttle",
    "nvmlDeviceGetEnforcedPowerLimit": "power_limit",
    "nvmlDeviceGetMemoryBusWidth": "memory_bus",
    "nvmlDeviceGetMaxClockInfo": "clocks",
}
#: Field id -> capability key.
FIELD_CAPABILITY = {NVML_FI_DEV_POWER_INSTANT: "power_instant", NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION: "energy"}

Profile = "float | list[tuple[float, float]]"


@dataclass
class FakeDevice:
    """One fake GPU. Times are seconds since the FakeNvml was created."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    pci_bus_id: str = "00000000:01:00.0"
    total_memory_bytes: int = 80 * 2**30
    used_memory_bytes: int = 2 * 2**30
    power_w: Any = 100.0  # watts, or [(start_s, watts), ...] piecewise constant
    power_limit_w: float = 700.0
    energy_start_mj: int = 0  # counter value at t = 0
    energy_wrap_mj: int | None = None  # the counter runs modulo this
    energy_reset_at_s: float | None = None  # the counter restarts from 0 (driver reload)
    refresh_ms: float = 0.0  # power and energy readings hold their value this long
    lost_at_s: float | None = None  # from then every call raises GPU_IS_LOST
    unsupported: frozenset = frozenset()  # capability keys (CAPABILITY_OF values) or call names
    processes: dict = field(default_factory=dict)  # pid -> used GPU memory bytes
    gpu_util_pct: float = 50.0
    memory_util_pct: float = 20.0
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    memory_bus_width_bits: int = 5120
    temperature_c: int = 45
    throttle_mask: int = 0
    mig: bool = False  # a MIG slice: reachable only by UUID
    gpm_supported: bool = True
    gpm: dict = field(default_factory=lambda: dict(DEFAULT_GPM))  # GPM constant name -> value or f(t_s)


DEFAULT_GPM = {
    "NVML_GPM_METRIC_DRAM_BW_UTIL": 25.0,
    "NVML_GPM_METRIC_SM_UTIL": 60.0,
    "NVML_GPM_METRIC_SM_OCCUPANCY": 30.0,
    "NVML_GPM_METRIC_ANY_TENSOR_UTIL": 20.0,
    "NVML_GPM_METRIC_HMMA_TENSOR_UTIL": 20.0,
    "NVML_GPM_METRIC_IMMA_TENSOR_UTIL": 0.0,
    "NVML_GPM_METRIC_DMMA_TENSOR_UTIL": 0.0,
    "NVML_GPM_METRIC_FP16_UTIL": 1.0,
    "NVML_GPM_METRIC_FP32_UTIL": 5.0,
    "NVML_GPM_METRIC_FP64_UTIL": 0.0,
    "NVML_GPM_METRIC_PCIE_TX_PER_SEC": 100.0,
    "NVML_GPM_METRIC_PCIE_RX_PER_SEC": 200.0,
}


def power_at(profile: Any, t_s: float) -> float:
    """Watts at ``t_s`` of a constant or piecewise-constant profile."""
    if not isinstance(profile, (list, tuple)):
        return float(profile)
    watts = float(profile[0][1])
    for start_s, value in profile:
        if t_s >= start_s:
            watts = float(value)
    return watts


def energy_until(profile: Any, t_s: float) -> float:
    """Joules from 0 to ``t_s`` (exact for piecewise-constant power)."""
    if not isinstance(profile, (list, tuple)):
        return float(profile) * max(t_s, 0.0)
    total = 0.0
    steps = list(profile) + [(float("inf"), 0.0)]
    for (start_s, watts), (next_s, _) in zip(steps, steps[1:]):
        lo, hi = max(start_s, 0.0), min(next_s, t_s)
        if hi > lo:
            total += watts * (hi - lo)
    return total


@dataclass
class _Handle:
    device: FakeDevice


class FakeNvml:
    """Drop-in for the ``pynvml`` module (the calls profkit makes)."""

    NVMLError = NVMLError

    def __init__(self, devices: list[FakeDevice] | None = None, *, mig_devices: list[FakeDevice] | None = None,
                 init_error: int | None = None, clock: Callable[[], int] = time.time_ns, gpm: bool = True):
        self.devices = list(devices) if devices is not None else [FakeDevice()]
        self.mig_devices = list(mig_devices or [])
        self.init_error = init_error
        self.clock = clock
        self.t0_ns = clock()
        self.calls: Counter = Counter()
        self.initialized = 0
        self._handles = {id(d): _Handle(d) for d in self.devices + self.mig_devices}
        for name, value in globals().items():
            if name.startswith("NVML_"):
                setattr(self, name, value)
        if not gpm:  # an old binding without the GPM calls
            self.__class__ = _FakeNvmlWithoutGpm

    # -- helpers -----------------------------------------------------------
    def _t(self) -> float:
        return (self.clock() - self.t0_ns) / 1e9

    def _enter(self, call: str, handle: _Handle | None = None) -> FakeDevice | None:
        self.calls[call] += 1
        if not self.initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        device = handle.device
        if device.lost_at_s is not None and self._t() >= device.lost_at_s:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if call in device.unsupported or CAPABILITY_OF.get(call) in device.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return device

    def _held_t(self, device: FakeDevice) -> float:
        """Time as the counters see it: held for ``refresh_ms`` between updates (integer ns, no float drift)."""
        t_ns = self.clock() - self.t0_ns
        if device.refresh_ms > 0:
            period_ns = int(round(device.refresh_ms * 1e6))
            t_ns = (t_ns // period_ns) * period_ns
        return t_ns / 1e9

    def _energy_mj(self, device: FakeDevice) -> int:
        t = self._held_t(device)
        if device.energy_reset_at_s is not None and t >= device.energy_reset_at_s:
            joules = energy_until(device.power_w, t) - energy_until(device.power_w, device.energy_reset_at_s)
            raw = int(joules * 1e3)
        else:
            raw = device.energy_start_mj + int(energy_until(device.power_w, t) * 1e3)
        return raw % device.energy_wrap_mj if device.energy_wrap_mj else raw

    # -- library ------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialized -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self._handles[id(self.devices[index])]

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._enter("nvmlDeviceGetHandleByUUID")
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for device in self.devices + self.mig_devices:
            if device.uuid == uuid:
                return self._handles[id(device)]
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    # -- identity -------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        return self._enter("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._enter("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetPciInfo(self, handle: _Handle) -> SimpleNamespace:
        return SimpleNamespace(busId=self._enter("nvmlDeviceGetPciInfo", handle).pci_bus_id.encode())

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> int:
        return int(self._enter("nvmlDeviceIsMigDeviceHandle", handle).mig)

    # -- power and energy ------------------------------------------------------
    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list) -> list[SimpleNamespace]:
        device = self._enter("nvmlDeviceGetFieldValues", handle)
        values = []
        for field_id in field_ids:
            key = FIELD_CAPABILITY.get(field_id)
            if key is None or key in device.unsupported:  # NVML reports this per value, it does not raise
                values.append(SimpleNamespace(fieldId=field_id, nvmlReturn=NVML_ERROR_NOT_SUPPORTED,
                                              valueType=NVML_VALUE_TYPE_DOUBLE, value=SimpleNamespace(dVal=0.0)))
            elif key == "power_instant":
                milliwatts = int(power_at(device.power_w, self._held_t(device)) * 1e3)
                values.append(SimpleNamespace(fieldId=field_id, nvmlReturn=NVML_SUCCESS,
                                              valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                                              value=SimpleNamespace(uiVal=milliwatts)))
            else:
                values.append(SimpleNamespace(fieldId=field_id, nvmlReturn=NVML_SUCCESS,
                                              valueType=NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
                                              value=SimpleNamespace(ullVal=self._energy_mj(device))))
        return values

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        """Milliwatts averaged over the last second, as on Ampere and newer."""
        device = self._enter("nvmlDeviceGetPowerUsage", handle)
        t = self._held_t(device)
        joules = energy_until(device.power_w, t) - energy_until(device.power_w, max(t - 1.0, 0.0))
        return int(joules / min(max(t, 1e-9), 1.0) * 1e3)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        return self._energy_mj(self._enter("nvmlDeviceGetTotalEnergyConsumption", handle))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        return int(self._enter("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_w * 1e3)

    # -- memory, utilization, clocks ---------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: Any = None) -> SimpleNamespace:
        device = self._enter("nvmlDeviceGetMemoryInfo", handle)
        used = device.used_memory_bytes
        return SimpleNamespace(total=device.total_memory_bytes, used=used, free=device.total_memory_bytes - used)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        device = self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in device.processes.items()]

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        device = self._enter("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=int(device.gpu_util_pct), memory=int(device.memory_util_pct))

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        device = self._enter("nvmlDeviceGetClockInfo", handle)
        return device.sm_clock_mhz if clock_type == NVML_CLOCK_SM else device.memory_clock_mhz

    def nvmlDeviceGetMaxClockInfo(self, handle: _Handle, clock_type: int) -> int:
        device = self._enter("nvmlDeviceGetMaxClockInfo", handle)
        return device.sm_clock_mhz if clock_type == NVML_CLOCK_SM else device.memory_clock_mhz

    def nvmlDeviceGetMemoryBusWidth(self, handle: _Handle) -> int:
        return self._enter("nvmlDeviceGetMemoryBusWidth", handle).memory_bus_width_bits

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        return self._enter("nvmlDeviceGetTemperature", handle).temperature_c

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        return self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle).throttle_mask

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        return self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle).throttle_mask

    # -- GPM -----------------------------------------------------------------
    class c_nvmlGpmMetricsGet_t:  # noqa: N801 - pynvml's name
        def __init__(self) -> None:
            self.version = 0
            self.numMetrics = 0
            self.sample1 = None
            self.sample2 = None
            self.metrics = [SimpleNamespace(metricId=0, nvmlReturn=0, value=0.0) for _ in range(_GPM_SLOTS)]

    def nvmlGpmQueryDeviceSupport(self, handle: _Handle) -> SimpleNamespace:
        device = self._enter("nvmlGpmQueryDeviceSupport", handle)
        if device.mig:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(version=1, isSupportedDevice=int(device.gpm_supported))

    def nvmlGpmSampleAlloc(self) -> SimpleNamespace:
        self._enter("nvmlGpmSampleAlloc")
        return SimpleNamespace(device=None, t_s=None, freed=False)

    def nvmlGpmSampleFree(self, sample: SimpleNamespace) -> None:
        self._enter("nvmlGpmSampleFree")
        sample.freed = True

    def nvmlGpmSampleGet(self, handle: _Handle, sample: SimpleNamespace) -> SimpleNamespace:
        device = self._enter("nvmlGpmSampleGet", handle)
        if not device.gpm_supported or "gpm" in device.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        sample.device, sample.t_s = device, self._t()
        return sample

    def nvmlGpmMetricsGet(self, request: Any) -> Any:
        self._enter("nvmlGpmMetricsGet")
        first, second = request.sample1, request.sample2
        if first is None or second is None or first.device is not second.device or not second.t_s > first.t_s:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        names = {v: k for k, v in globals().items() if k.startswith("NVML_GPM_METRIC_") and isinstance(v, int)}
        middle = (first.t_s + second.t_s) / 2
        for slot in request.metrics[: request.numMetrics]:
            value = first.device.gpm.get(names.get(slot.metricId))
            if value is None:
                slot.nvmlReturn, slot.value = NVML_ERROR_NOT_SUPPORTED, 0.0
            else:
                slot.nvmlReturn, slot.value = NVML_SUCCESS, float(value(middle) if callable(value) else value)
        return request


def _absent(self):
    raise AttributeError("this binding has no GPM calls")


class _FakeNvmlWithoutGpm(FakeNvml):
    """An older nvidia-ml-py: the GPM functions do not exist."""

    nvmlGpmQueryDeviceSupport = property(_absent)
    nvmlGpmSampleAlloc = property(_absent)
    nvmlGpmSampleGet = property(_absent)
    nvmlGpmMetricsGet = property(_absent)
    nvmlGpmSampleFree = property(_absent)
