"""Telemetry: GPU power, energy, memory, utilization and clocks (NVML), host CPU time, RSS and RAPL.

Samples land in the trace as rows of kind ``sample`` on the profiler's clock
(``time.time_ns()``): ``name`` is the metric with its unit (``power_w``,
``energy_j``, ``memory_used_bytes``, ``rss_bytes``, ``rapl_energy_j``...),
``value`` its value. See docs/telemetry.md.

    with TelemetryCollector(interval_ms=20) as telemetry:
        run()
    rows = telemetry.samples()      # -> profkit.trace.build_events
    telemetry.notes()               # what could not be measured, one line each

``fake_nvml.FakeNvml`` stands in for pynvml (tests, machines without a GPU).
"""

from .collector import DEFAULT_INTERVAL_MS, TelemetryCollector
from .fake_nvml import FakeDevice, FakeNvml

__all__ = ["DEFAULT_INTERVAL_MS", "FakeDevice", "FakeNvml", "TelemetryCollector"]
