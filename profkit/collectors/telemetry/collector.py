"""The collector the recorder drives: one background thread ticking every sampler.

``start`` opens the samplers in the caller's thread (so a bad explicit device
raises there, and ``device_info`` is ready at once) and starts the thread;
``stop`` joins it and closes the samplers. Start/stop come in pairs and are
idempotent; the collector is also a context manager.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ...errors import UsageError
from .buffer import SampleBuffer
from .cpu import CpuSampler
from .nvml import NvmlSampler

if TYPE_CHECKING:
    import pandas as pd

#: 20 Hz. Real NVML on an H200 measured a tick (power read, wake-up, bookkeeping) at ~0.2 ms of CPU:
#: at 50 Hz the ticks alone were ~1 % of a core, the whole budget. Instant power refreshes every
#: ~20-100 ms (~100-140 ms seen on the H200) and energy is attributed to windows of >= 100 ms, so
#: 50 ms samples lose nothing the analysis uses.
DEFAULT_INTERVAL_MS = 50.0
_MAX_SLEEP_S = 0.05  # longest sleep between checks of the stop flag


def load_pynvml() -> tuple[Any | None, str | None]:
    """The pynvml module, or (None, note) when the binding is not installed."""
    try:
        import pynvml
    except ImportError:
        return None, "telemetry: nvidia-ml-py (pynvml) not installed: no GPU power, energy or memory samples"
    return pynvml, None


class TelemetryCollector:
    """Samples GPU (NVML) and host (CPU time, RSS, RAPL) telemetry in the background."""

    def __init__(
        self,
        interval_ms: float = DEFAULT_INTERVAL_MS,
        devices: list[int] | None = None,
        nvml: Any = None,
        *,
        cpu: bool = True,
        cpu_interval_ms: float = 100.0,
        gpm: bool = True,
        gpm_interval_ms: float = 100.0,
        clock: Callable[[], int] = time.time_ns,
        environ: dict[str, str] | None = None,
        powercap_root: str | None = None,
    ):
        for label, value in (("interval", interval_ms), ("CPU interval", cpu_interval_ms), ("GPM interval", gpm_interval_ms)):
            if not value > 0:
                raise UsageError(f"telemetry {label} must be a positive number of milliseconds, got {value}")
        self.interval_ms = float(interval_ms)
        self._devices = None if devices is None else [int(d) for d in devices]
        self._nvml = nvml
        self._cpu = cpu
        self._cpu_interval_ms = float(cpu_interval_ms)
        self._gpm = gpm
        self._gpm_interval_ns = int(gpm_interval_ms * 1e6)
        self._clock = clock
        self._environ = environ
        self._powercap_root = powercap_root
        self._buffer = SampleBuffer()
        self._samplers: list[Any] = []
        self._notes: list[str] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ticks = 0
        self._thread_cpu_s = 0.0
        self._wall_s = 0.0

    # -- the recorder's interface -----------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._samplers = self._open_samplers()
        self._tick_ms = self.interval_ms if any(isinstance(s, NvmlSampler) for s in self._samplers) else max(
            self.interval_ms, self._cpu_interval_ms)  # no GPU: wake only as often as the CPU sampler needs
        for sampler in self._samplers:
            if isinstance(sampler, CpuSampler):
                sampler.every_ticks = max(1, round(self._cpu_interval_ms / self._tick_ms))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="profkit-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        rows: list = []
        for sampler in self._samplers:
            sampler.close(rows)
        self._buffer.append_many(rows)

    def samples(self) -> "pd.DataFrame":
        """The raw kind='sample' rows as a DataFrame (a snapshot if still running)."""
        return self._buffer.frame()

    def sample_columns(self) -> dict:
        """Raw kind='sample' columns for ``profkit.trace.build_events``, without pandas."""
        return self._buffer.columns()

    def notes(self) -> list[str]:
        """One-line notes on what could not be measured, for the trace metadata."""
        found = list(self._notes)
        for sampler in self._samplers:
            found.extend(sampler.notes)
        return list(dict.fromkeys(found))

    def device_info(self) -> list[dict[str, Any]]:
        """The sampled GPUs (index as the process sees it, name, uuid, memory, power limit, ...)."""
        return [info for s in self._samplers if isinstance(s, NvmlSampler) for info in s.device_info()]

    def stats(self) -> dict[str, float]:
        """The sampler thread's own cost: CPU seconds per wall second (``cpu_share``)."""
        return {
            "ticks": self._ticks,
            "wall_s": self._wall_s,
            "thread_cpu_s": self._thread_cpu_s,
            "cpu_share": self._thread_cpu_s / self._wall_s if self._wall_s else 0.0,
        }

    def __enter__(self) -> "TelemetryCollector":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------
    def _open_samplers(self) -> list[Any]:
        samplers: list[Any] = []
        rows: list = []
        nvml = self._nvml
        if nvml is None:
            nvml, note = load_pynvml()
            if note:
                self._notes.append(note)
        if nvml is not None:
            gpu = NvmlSampler(nvml, self._buffer, int(self.interval_ms * 1e6), self._devices, gpm=self._gpm,
                              gpm_interval_ns=self._gpm_interval_ns, clock=self._clock, environ=self._environ)
            try:
                active = gpu.open(rows)
            except BaseException:
                gpu.close(rows)
                raise
            if active:
                samplers.append(gpu)
            else:  # keep its notes, drop the sampler
                gpu.close(rows)
                self._notes.extend(gpu.notes)
        if self._cpu:
            kwargs = {"powercap_root": self._powercap_root} if self._powercap_root else {}
            host = CpuSampler(self._buffer, clock=self._clock, **kwargs)
            host.open(rows)
            samplers.append(host)
        self._buffer.append_many(rows)
        return samplers

    def _run(self) -> None:
        # time.sleep, not Event.wait: a timed wait costs several system calls per tick,
        # which at 50 Hz is most of the sampler's budget. stop() waits at most one slice.
        interval_s = self._tick_ms / 1e3
        started = time.monotonic()
        cpu_before = time.thread_time()
        next_tick = started + interval_s
        try:
            while not self._stop.is_set():
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, _MAX_SLEEP_S))
                    continue
                rows: list = []
                for sampler in self._samplers:
                    sampler.tick(rows)
                self._buffer.append_many(rows)
                self._ticks += 1
                next_tick += interval_s
                now = time.monotonic()
                if next_tick < now:  # fell behind (a stalled machine): skip, do not burst
                    next_tick = now + interval_s
        except Exception as exc:  # noqa: BLE001 - the profiled run must go on; the report says why samples stop
            self._notes.append(f"telemetry: sampling stopped early ({type(exc).__name__}: {exc})")
        finally:
            self._thread_cpu_s += time.thread_time() - cpu_before
            self._wall_s += time.monotonic() - started
