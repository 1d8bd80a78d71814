"""NVML GPU Performance Monitoring (GPM): DRAM bandwidth, SM, tensor-core and link activity.

GPM reports rates between two samples, so each device keeps two sample
buffers and alternates: every GPM tick takes a new sample and asks for the
metrics between it and the previous one. Each value becomes a sample row
that *spans* that window (``start_ns`` = previous sample, ``duration_ns`` =
the window), unlike the instantaneous NVML readings. Hopper and newer only;
not on a MIG slice here (the report falls back to NVML memory utilization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .buffer import SampleBuffer
from .nvml_errors import reason

MIB = 2**20


@dataclass(frozen=True)
class GpmMetric:
    name: str  # profkit metric name, unit in the name
    constant: str  # pynvml constant holding the NVML metric id
    scale: float  # NVML unit -> profkit unit


_GPM_METRICS: dict[str, GpmMetric] = {}


def gpm_metric(name: str, constant: str, scale: float = 1.0) -> None:
    """Register one GPM metric (refuses duplicates)."""
    if name in _GPM_METRICS:
        raise ValueError(f"GPM metric {name!r} registered twice")
    _GPM_METRICS[name] = GpmMetric(name, constant, scale)


for _row in (
    ("gpm_dram_bw_util_pct", "NVML_GPM_METRIC_DRAM_BW_UTIL"),
    ("gpm_sm_util_pct", "NVML_GPM_METRIC_SM_UTIL"),
    ("gpm_sm_occupancy_pct", "NVML_GPM_METRIC_SM_OCCUPANCY"),
    ("gpm_tensor_util_pct", "NVML_GPM_METRIC_ANY_TENSOR_UTIL"),
    ("gpm_hmma_util_pct", "NVML_GPM_METRIC_HMMA_TENSOR_UTIL"),
    ("gpm_imma_util_pct", "NVML_GPM_METRIC_IMMA_TENSOR_UTIL"),
    ("gpm_dmma_util_pct", "NVML_GPM_METRIC_DMMA_TENSOR_UTIL"),
    ("gpm_fp16_util_pct", "NVML_GPM_METRIC_FP16_UTIL"),
    ("gpm_fp32_util_pct", "NVML_GPM_METRIC_FP32_UTIL"),
    ("gpm_fp64_util_pct", "NVML_GPM_METRIC_FP64_UTIL"),
    ("gpm_pcie_tx_bytes_per_s", "NVML_GPM_METRIC_PCIE_TX_PER_SEC", MIB),
    ("gpm_pcie_rx_bytes_per_s", "NVML_GPM_METRIC_PCIE_RX_PER_SEC", MIB),
    ("gpm_nvlink_tx_bytes_per_s", "NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC", MIB),
    ("gpm_nvlink_rx_bytes_per_s", "NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC", MIB),
):
    gpm_metric(*_row)


def gpm_metrics() -> list[GpmMetric]:
    return list(_GPM_METRICS.values())


FALLBACK_NOTE = "memory traffic falls back to NVML memory utilization (% of time memory was busy)"


@dataclass
class GpmState:
    """Per-device GPM buffers and the reusable metrics-get request."""

    handle: Any
    device_index: int
    samples: list[Any]
    request: Any
    metrics: list[GpmMetric]
    codes: list[int]
    previous_ns: int
    failed: set[str] = field(default_factory=set)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> reason, noted at close
    non_finite: int = 0  # readings NVML returned as NaN or infinite: dropped, counted in a note at close

    def sample(self, nvml: Any, now_ns: int, rows: list, notes: list[str]) -> None:
        """Take a sample; emit the metrics over [previous sample, now]."""
        previous, current = self.samples
        taken = False
        try:
            nvml.nvmlGpmSampleGet(self.handle, current)
            taken = True
            self.request.sample1, self.request.sample2 = previous, current
            nvml.nvmlGpmMetricsGet(self.request)
        except nvml.NVMLError as exc:
            if "gpm" not in self.failed:
                self.failed.add("gpm")
                notes.append(f"telemetry: GPU {self.device_index}: a GPM sample failed ({reason(exc)})")
            if taken:  # the new sample is good: the next window starts from it
                self.samples.reverse()
                self.previous_ns = now_ns
            return
        span = now_ns - self.previous_ns
        for i, (metric, code) in enumerate(zip(self.metrics, self.codes)):
            result = self.request.metrics[i]
            if result.nvmlReturn == 0:
                value = float(result.value)
                if math.isfinite(value):
                    rows.append((code, self.previous_ns, value * metric.scale, span))
                else:  # seen on an H200: one NaN DRAM reading in 60, with success returned
                    self.non_finite += 1
            elif metric.name not in self.unavailable:
                self.unavailable[metric.name] = reason(nvml.NVMLError(result.nvmlReturn))
        self.samples.reverse()
        self.previous_ns = now_ns

    def close(self, nvml: Any, notes: list[str]) -> None:
        if self.non_finite:
            notes.append(f"telemetry: GPU {self.device_index}: dropped {self.non_finite} GPM readings that NVML "
                         "returned as NaN or infinite")
        if self.unavailable:
            names = ", ".join(self.unavailable)
            notes.append(f"telemetry: GPU {self.device_index}: GPM lacks {names} ({next(iter(self.unavailable.values()))})")
        for sample in self.samples:
            try:
                nvml.nvmlGpmSampleFree(sample)
            except nvml.NVMLError:
                pass
        self.samples = []


def open_gpm(nvml: Any, device: Any, buffer: SampleBuffer, now_ns: int) -> tuple[GpmState | None, str | None]:
    """Probe GPM on one device; (state, None) when it works, else (None, one-line note)."""
    if device.is_mig:
        return None, f"GPM not sampled on a MIG slice: {FALLBACK_NOTE}"
    try:
        supported = bool(nvml.nvmlGpmQueryDeviceSupport(device.handle).isSupportedDevice)
    except AttributeError:
        return None, f"this NVML binding has no GPM calls: {FALLBACK_NOTE}"
    except nvml.NVMLError as exc:
        return None, f"GPM unavailable ({reason(exc)}): {FALLBACK_NOTE}"
    if not supported:
        return None, f"GPM not supported on this GPU (Hopper or newer needed): {FALLBACK_NOTE}"
    chosen = [m for m in gpm_metrics() if getattr(nvml, m.constant, None) is not None]
    try:
        samples = [nvml.nvmlGpmSampleAlloc(), nvml.nvmlGpmSampleAlloc()]
        request = nvml.c_nvmlGpmMetricsGet_t()
        request.version = nvml.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(chosen)
        for i, metric in enumerate(chosen):
            request.metrics[i].metricId = getattr(nvml, metric.constant)
        nvml.nvmlGpmSampleGet(device.handle, samples[0])
    except nvml.NVMLError as exc:
        return None, f"GPM sampling failed to start ({reason(exc)}): {FALLBACK_NOTE}"
    codes = [buffer.series(m.name, "gpu", device.cuda_index) for m in chosen]
    return GpmState(device.handle, device.cuda_index, samples, request, chosen, codes, now_ns), None
