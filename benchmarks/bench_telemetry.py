"""How much the telemetry sampler costs the profiled run: its thread's CPU time per wall second.

Uses the fake NVML (``profkit.collectors.telemetry.FakeNvml``, pure Python, so
each call costs about what a real NVML call costs through ctypes — a real GPU
run is owed) and the real CPU sampler. The budget is < 1 % of one core at the
default interval.

    python benchmarks/bench_telemetry.py [--seconds 5] [--interval-ms 20] [--gpus 1]
    python benchmarks/bench_telemetry.py --real     # on a GPU machine: the real pynvml, every visible GPU
    python benchmarks/bench_telemetry.py --real --calls   # ... and what each NVML read costs, one by one
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's profkit, not an installed one
from profkit.collectors.telemetry import (
    DEFAULT_INTERVAL_MS,
    FakeDevice,
    FakeNvml,
    TelemetryCollector,
)


def measure_real(seconds: float, interval_ms: float, gpm: bool) -> dict:
    collector = TelemetryCollector(interval_ms=interval_ms, gpm=gpm)  # nvml=None: the installed pynvml
    with collector:
        time.sleep(seconds)
    stats = collector.stats()
    stats["rows"] = len(collector.samples())
    stats["gpus"] = len(collector.device_info())
    stats["notes"] = collector.notes()
    return stats


def call_costs(calls: int = 200) -> list[tuple[str, float, float]]:
    """CPU and wall microseconds per call of every registered NVML source and of a GPM sample, GPU 0.

    Read from the registries the sampler itself uses (nvml.metrics(), gpm), so a new metric is timed too.
    """
    import os

    import pynvml

    from profkit.collectors.telemetry.nvml import metrics

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    pid = os.getpid()
    found = []

    def timed(label, call):
        try:
            call()
        except (pynvml.NVMLError, AttributeError) as exc:
            found.append((f"{label} (fails: {exc})", 0.0, 0.0))
            return
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            call()
        found.append((label, 1e6 * (time.thread_time() - cpu0) / calls, 1e6 * (time.perf_counter() - wall0) / calls))

    for metric in metrics():
        for source in metric.sources:
            timed(f"{'+'.join(metric.names)} via {source.label}",
                  lambda read=source.read: read(pynvml, handle, pid))
    try:
        sample = pynvml.nvmlGpmSampleAlloc()
        timed("GPM sample (nvmlGpmSampleGet)", lambda: pynvml.nvmlGpmSampleGet(handle, sample))
    except pynvml.NVMLError as exc:
        found.append((f"GPM (fails: {exc})", 0.0, 0.0))
    pynvml.nvmlShutdown()
    return found


def measure(seconds: float, interval_ms: float, gpus: int, gpm: bool = True) -> dict:
    devices = [FakeDevice(uuid=f"GPU-{i:08x}-0000-0000-0000-000000000000", pci_bus_id=f"00000000:{i + 1:02x}:00.0")
               for i in range(gpus)]
    nvml = FakeNvml(devices) if gpus else FakeNvml(init_error=12)  # 0 GPUs: NVML absent, CPU sampler only
    collector = TelemetryCollector(interval_ms=interval_ms, nvml=nvml, gpm=gpm)
    with collector:
        time.sleep(seconds)  # the "program": idle, so the sampler's cost is all that is measured
    stats = collector.stats()
    stats["rows"] = len(collector.samples())
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval-ms", type=float, default=DEFAULT_INTERVAL_MS)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--real", action="store_true", help="use the real pynvml and this machine's GPUs")
    parser.add_argument("--calls", action="store_true", help="with --real: also time each NVML read on GPU 0")
    args = parser.parse_args()
    if args.real and args.calls:
        print(f"{'NVML read':64} {'CPU us':>9} {'wall us':>9}")
        for label, cpu_us, wall_us in call_costs():
            print(f"{label:64} {cpu_us:9.1f} {wall_us:9.1f}")
    if args.real:
        for gpm in (False, True):
            stats = measure_real(args.seconds, args.interval_ms, gpm)
            print(
                f"interval {args.interval_ms:g} ms, real NVML, {stats['gpus']} GPU(s), GPM {'on' if gpm else 'off'}: "
                f"sampler thread CPU {1e3 * stats['thread_cpu_s']:.1f} ms over {stats['wall_s']:.2f} s wall "
                f"= {100 * stats['cpu_share']:.2f} % of one core ({stats['ticks']} ticks, {stats['rows']} rows; budget 1 %)"
            )
            for note in stats["notes"]:
                print(f"  note: {note}")
        return
    for gpus, gpm in ((0, False), (args.gpus, False), (args.gpus, True)):
        stats = measure(args.seconds, args.interval_ms, gpus, gpm=gpm)
        what = f"{gpus} fake GPU(s), GPM {'on' if gpm else 'off'}" if gpus else "no GPU (CPU sampler only)"
        print(
            f"interval {args.interval_ms:g} ms, {what}: "
            f"sampler thread CPU {1e3 * stats['thread_cpu_s']:.1f} ms over {stats['wall_s']:.2f} s wall "
            f"= {100 * stats['cpu_share']:.2f} % of one core ({stats['ticks']} ticks, {stats['rows']} rows; budget 1 %)"
        )


if __name__ == "__main__":
    main()
