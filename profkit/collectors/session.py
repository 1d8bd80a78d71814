"""One recording: torch.profiler + telemetry + marks in, one trace file out.

``RecordingSession`` owns the profiler for its process. It is started once,
may restart the profiler once when the skipped warm-up steps end, and is
finalized exactly once (normal end, exception, sys.exit, SIGTERM, step limit),
writing the trace atomically. ``record()`` is the context-manager API.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..trace.kinds import TRAIN_STEP_PHASE
from . import marks
from .metadata import run_metadata
from .paths import check_writable
from .profiler import KinetoProfiler, profiler_enabled
from .steps import StepHook
from .telemetry.collector import DEFAULT_INTERVAL_MS

#: What the trace says when the program ran torch.profiler itself (KinetoProfiler.displaced).
DISPLACED_NOTE = ("the program ran torch.profiler itself, and only one profiler runs at a time: starting it took "
                  "over profkit's session, so this trace holds no ops or kernels. Record with one of the two: "
                  "without the program's torch.profiler, or `profkit import` the trace the program wrote")


@dataclass
class RecordOptions:
    skip_steps: int = 0  # optimizer steps to run unrecorded first (warm-up)
    max_steps: int | None = None  # stop recording after this many kept steps
    window_s: tuple[float, float] | None = None  # keep events in [a, b) s after recording starts
    record_shapes: bool = True
    memory: bool = False  # torch's allocator events (profile_memory), as allocated/reserved samples
    telemetry: bool = True
    telemetry_interval_ms: float = DEFAULT_INTERVAL_MS
    command: list[str] | None = None  # recorded in the metadata (default: this process's argv)

    def describe(self) -> dict[str, Any]:
        return {
            "skip_steps": self.skip_steps,
            "max_steps": self.max_steps,
            "window_s": list(self.window_s) if self.window_s else None,
            "record_shapes": self.record_shapes,
            "memory": self.memory,
            "telemetry": self.telemetry,
            "telemetry_interval_ms": self.telemetry_interval_ms,
        }


@dataclass
class RecordingSession:
    path: Path
    options: RecordOptions = field(default_factory=RecordOptions)
    _profiler: Any = None
    _telemetry: Any = None
    _marks: marks.MarkRecorder = field(default_factory=marks.MarkRecorder)
    _steps: StepHook | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _finalized: bool = False
    _start_ns: int = 0
    _kept_from_step: int = 0
    _keep_from_ns: int = 0
    notes: list[str] = field(default_factory=list)
    written: Path | None = None
    stop_reason: str | None = None
    finalizing: bool = False  # inside finalize (a signal handler can interrupt it on the same thread)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "RecordingSession":
        check_writable(self.path)
        _ACTIVE["session"] = self
        self._start_ns = time.time_ns()
        self._start_profiler()
        self._start_telemetry()
        marks.activate(self._marks)
        self._steps = StepHook(self._on_step, first_start_ns=self._start_ns)
        self._steps.install()
        _install_phase_detection(self._marks)
        return self

    def finalize(
        self,
        *,
        exit_code: int | None = 0,
        partial: bool = False,
        signal_name: str | None = None,
        error: str | None = None,
        writer: Callable[[Path, Callable[[], Path]], Path | None] | None = None,
    ) -> Path | None:
        """Stop everything and write the trace; later calls return the first result.

        ``writer(path, write)`` runs ``write`` (which writes the trace to ``path``)
        and returns the path: by default right here; the process hook passes one
        that writes from a forked copy of the process (see detach.py).
        """
        with self._lock:
            if self._finalized:
                return self.written
            self._finalized = self.finalizing = True
            try:
                stopped = self._stop(exit_code=exit_code, signal=signal_name, error=error, partial=bool(partial))
                self.written = (writer or _write_here)(self.path, lambda: write_stopped(self.path, stopped))
            finally:
                self.finalizing = False
            return self.written

    def _stop(self, **status: Any) -> "_Stopped":
        """Stop the profiler, telemetry and hooks; what is left is turning their data into a file."""
        stop_start_ns = time.perf_counter_ns()
        _uninstall_phase_detection()
        if self._steps is not None:
            self._steps.uninstall()
        marks.activate(None)
        results = self._profiler.stop() if self._profiler is not None else None
        if self._profiler is not None and self._profiler.displaced:
            self.notes.append(DISPLACED_NOTE)
            sys.stderr.write(f"profkit: warning: {DISPLACED_NOTE}\n")
        self._profiler = None
        parts = [self._stop_telemetry(), self._marks.columns()]
        metadata = run_metadata(self.options.command)
        metadata["devices"] = _merge_devices(metadata["devices"], self._telemetry_devices())
        metadata.update(
            start_time_ns=self._start_ns,
            end_time_ns=time.time_ns(),
            **status,
            stop_reason=self.stop_reason,
            steps_seen=self._steps.steps if self._steps else 0,
            kept_from_step=self._kept_from_step,
            options=self.options.describe(),
            notes=self.notes,
        )
        return _Stopped(results, self.options.record_shapes, parts, metadata, self._keep_range(),
                        time.perf_counter_ns() - stop_start_ns)

    # -- profiler ------------------------------------------------------------
    def _start_profiler(self) -> None:
        self._profiler = KinetoProfiler(record_shapes=self.options.record_shapes, profile_memory=self.options.memory)
        self._profiler.start()

    def _on_step(self, step: int, start_ns: int, end_ns: int) -> None:
        if self._finalized:
            return
        skip, keep = self.options.skip_steps, self.options.max_steps
        if step > skip:
            self._marks.add(TRAIN_STEP_PHASE, start_ns, end_ns, extra={"step": step, "source": "optimizer"})
        if skip and step == skip:
            # Warm-up over. Restarting the profiler here would corrupt it (this
            # hook runs inside the optimizer's record_function range), so the
            # warm-up is cut off by time when the trace is written.
            # Warm-up marks go with it: they start before _keep_from_ns.
            self._keep_from_ns = end_ns
            self._kept_from_step = skip + 1
        elif keep is not None and step >= skip + keep:
            self.stop_reason = f"kept {keep} steps after skipping {skip}"
            self.finalize(exit_code=None)
        elif self.options.window_s and end_ns > self._start_ns + self.options.window_s[1] * 1e9:
            self.stop_reason = f"time window {self.options.window_s[0]}-{self.options.window_s[1]} s ended"
            self.finalize(exit_code=None)

    def _keep_range(self) -> tuple[int | None, int | None] | None:
        """Start times kept: after the skipped warm-up steps, inside the time window."""
        low, high = (self._keep_from_ns or None), None
        if self.options.window_s:
            low = max(low or 0, self._start_ns + int(self.options.window_s[0] * 1e9))
            high = self._start_ns + int(self.options.window_s[1] * 1e9)
        return None if low is None and high is None else (low, high)

    # -- telemetry (optional collector) -------------------------------------
    def _start_telemetry(self) -> None:
        if not self.options.telemetry:
            return
        try:
            from .telemetry import TelemetryCollector
        except ImportError:
            return
        self._telemetry = TelemetryCollector(interval_ms=self.options.telemetry_interval_ms)
        self._telemetry.start()

    def _stop_telemetry(self) -> dict | None:
        if self._telemetry is None:
            return None
        self._telemetry.stop()
        self.notes.extend(self._telemetry.notes())
        return self._telemetry.sample_columns()

    def _telemetry_devices(self) -> list[dict]:
        return self._telemetry.device_info() if self._telemetry is not None else []


@dataclass(frozen=True)
class _Stopped:
    """A stopped recording's data, before it becomes a trace file."""

    results: Any  # the profiler's results (None when no profiler ran)
    record_shapes: bool
    parts: list  # raw columns of the other collectors (telemetry, marks)
    metadata: dict[str, Any]
    start_range: tuple[int | None, int | None] | None
    stop_ns: int  # time spent stopping, counted into finalize_ns


def write_stopped(path: Path, stopped: _Stopped) -> Path:
    """Extract the profiler's events, build the events table and write it (atomically) to ``path``."""
    write_start_ns = time.perf_counter_ns()
    from ..trace.build import build_events
    from ..trace.io import write_trace
    from .torch_events import extract_parts

    events = []
    if stopped.results is not None:  # (the events, then torch's allocator samples where recorded)
        events = extract_parts(stopped.results, with_shapes=stopped.record_shapes)
    parts = [p for p in (*events, *stopped.parts) if p is not None]
    table = build_events(*parts, start_range=stopped.start_range)
    metadata = dict(stopped.metadata)
    # How long stopping, extracting and building took (the benchmark reports it per 100k events).
    metadata["finalize_ns"] = stopped.stop_ns + time.perf_counter_ns() - write_start_ns
    metadata["event_count"] = table.num_rows
    return write_trace(path, table, metadata)


def _write_here(path: Path, write: Callable[[], Path]) -> Path:
    return write()


def _merge_devices(from_torch: list[dict], from_telemetry: list[dict]) -> list[dict]:
    """torch's view of each device, completed by NVML's (uuid, power limit...)."""
    by_index = {(d.get("type"), d.get("index")): dict(d) for d in from_torch}
    for device in from_telemetry:
        key = (device.get("type", "gpu"), device.get("index"))
        by_index[key] = {**device, **by_index.get(key, {})}
    return list(by_index.values())


def _install_phase_detection(recorder: marks.MarkRecorder) -> None:
    try:
        from . import phase_detect
    except ImportError:
        return
    phase_detect.install(recorder)


def _uninstall_phase_detection() -> None:
    try:
        from . import phase_detect
    except ImportError:
        return
    phase_detect.uninstall()


def _already_profiling() -> str | None:
    """Why this process cannot start a recording now (None: it can)."""
    active = _ACTIVE.get("session")
    if active is not None and not active._finalized:
        return f"this process is already being recorded to {active.path}"
    if profiler_enabled(unknown=False):
        return "torch.profiler is already running in this process (one profiler runs at a time)"
    return None


#: The recording this process runs, if any (profkit record's, or profkit.record's).
_ACTIVE: dict[str, RecordingSession] = {}


@contextlib.contextmanager
def record(path: str | os.PathLike = "profkit-trace.parquet", **options: Any) -> Iterator[RecordingSession]:
    """Record the enclosed code into ``path``: ``with profkit.record("t.parquet"): train()``.

    Options are those of RecordOptions (skip_steps, max_steps, window_s,
    record_shapes, memory, telemetry, telemetry_interval_ms). An exception leaves a
    trace marked partial and propagates.
    """
    busy = _already_profiling()
    if busy:  # one profiler at a time: starting ours would end the running one's session
        sys.stderr.write(f"profkit: warning: {busy}; profkit.record({str(path)!r}) records nothing\n")
        yield None
        return
    session = RecordingSession(Path(path), RecordOptions(**options)).start()
    try:
        yield session
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        session.finalize(exit_code=code, partial=code != 0)
        raise
    except BaseException as exc:
        session.finalize(exit_code=1, partial=True, error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    else:
        session.finalize(exit_code=None)
