"""Start recording in a process launched by ``profkit record`` (called on torch import).

Settings arrive in the PROFKIT_RECORD environment variable (JSON). This module
decides whether this process is profiled (launchers such as torchrun are not),
names its trace file, starts the session and makes sure the trace is written
exactly once whatever the exit: normal end, uncaught exception, sys.exit(N),
SIGTERM (torchrun's stop), SIGINT.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .detach import detach_supported, forked_writer
from .session import RecordingSession, RecordOptions

#: Processes that only launch others: their children are profiled instead.
LAUNCHER_MODULES = ("torch.distributed.run", "torch.distributed.launch", "torch.distributed.elastic.agent")
LAUNCHER_SCRIPTS = ("torchrun",)

_SIGNAL_EXIT_BASE = 128  # shell convention: killed by signal N -> status 128+N


def trace_path(base: Path, run_dir: Path | None, env: dict[str, str] | None = None) -> Path:
    """Where this process writes its trace (the naming rule, docs/recording.md).

    Distributed workers (RANK set): ``<stem>.rank<R>.parquet``. The first other
    process to start recording: ``base`` itself. Any further process (e.g. a
    multiprocessing worker that imports torch): ``<stem>.pid<PID>.parquet``.
    """
    env = os.environ if env is None else env
    stem = base.name[: -len(".parquet")] if base.name.endswith(".parquet") else base.name
    rank = env.get("RANK")
    if rank is not None and rank.isdigit():
        return base.with_name(f"{stem}.rank{int(rank)}.parquet")
    if run_dir is not None:
        try:
            fd = os.open(run_dir / "main.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            return base
        except FileExistsError:
            return base.with_name(f"{stem}.pid{os.getpid()}.parquet")
    return base


def is_launcher(argv: list[str] | None = None) -> bool:
    """True for launcher processes (torchrun and friends), whose workers are profiled instead."""
    argv = list(getattr(sys, "orig_argv", sys.argv)) if argv is None else argv
    main = sys.modules.get("__main__")
    module = getattr(getattr(main, "__spec__", None), "name", "") or ""
    # `python -m torch.distributed.run` imports torch (the parent package) before __main__ is
    # set up, so the module name is read from the interpreter's own command line.
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
    if module.startswith(LAUNCHER_MODULES):
        return True
    return any(os.path.basename(arg) in LAUNCHER_SCRIPTS for arg in argv[:2])


class _ExitWatcher:
    """Remembers how the program is ending and finalizes the session once."""

    def __init__(self, session: RecordingSession, run_dir: Path | None):
        self.session = session
        self.run_dir = run_dir
        self.exit_code: int | None = None
        self.error: str | None = None
        self._orig_excepthook = sys.excepthook
        self._orig_exit = sys.exit
        self._pending_signal: int | None = None
        self._recorded = False  # finalize ran: the trace is written, or being written

    def install(self) -> None:
        sys.excepthook = self._excepthook
        sys.exit = self._exit
        atexit.register(self._atexit)
        # A multiprocessing worker started by fork ends with os._exit: no atexit, only multiprocessing's
        # own finalizers (a worker process clears those it inherited, so a parent's never runs there).
        from multiprocessing import util as multiprocessing_util

        multiprocessing_util.Finalize(None, self._atexit, exitpriority=0)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM,):
                if signal.getsignal(sig) in (signal.SIG_DFL, None):
                    signal.signal(sig, self._on_signal)

    def _excepthook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self.exit_code = _SIGNAL_EXIT_BASE + signal.SIGINT
            self.error = "KeyboardInterrupt"
        else:
            self.exit_code = 1
            self.error = f"{exc_type.__name__}: {exc}"[:500]
        self._orig_excepthook(exc_type, exc, tb)

    def _exit(self, code: Any = None) -> None:
        self.exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        self._orig_exit(code)

    def _atexit(self) -> None:
        if self._recorded:  # (atexit and multiprocessing's finalizers both call this)
            return
        code = 0 if self.exit_code is None else self.exit_code
        # At the program's normal end the trace is written while the process exits (detach.py);
        # the launcher waits for it. Signals and the API write in the process.
        writer = forked_writer(self.run_dir) if self.run_dir is not None and detach_supported() else None
        self.finalize(exit_code=code, partial=code != 0, error=self.error, writer=writer)

    def _on_signal(self, signum, frame) -> None:
        if self.session.finalizing:
            # The program is ending already and this handler interrupted its trace being written (a
            # multiprocessing pool's terminate() signals workers that are exiting): dying now would
            # lose the trace, so the write finishes first and the signal is raised again after it.
            self._pending_signal = signum
            return
        if not self._recorded:  # (after the trace was written the signal only ends the process)
            name = signal.Signals(signum).name
            self.finalize(exit_code=_SIGNAL_EXIT_BASE + signum, partial=True, signal_name=name)
        self._die_of(signum)

    @staticmethod
    def _die_of(signum: int) -> None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die of the signal, as the program would have

    def finalize(self, writer=None, **status: Any) -> None:
        """Finalize the session (a no-op returning its trace once it is written: the --steps limit
        writes it early) and tell the launcher which trace this process wrote."""
        self._recorded = True
        written = None
        try:
            written = self.session.finalize(writer=writer, **status)
        except Exception as exc:  # a failed write must not mask the program's own exit
            sys.stderr.write(f"profkit: could not write trace {self.session.path}: {exc}\n")
        self._record_written(written, status)
        if self._pending_signal is not None:  # a signal that came while the trace was being written
            self._die_of(self._pending_signal)

    def _record_written(self, written, status: dict) -> None:
        if written is not None and self.run_dir is not None:
            record = {"path": str(written), "pid": os.getpid(), **{k: v for k, v in status.items() if k != "error"}}
            try:
                (self.run_dir / f"written-{os.getpid()}.json").write_text(json.dumps(record))
            except OSError:
                pass


def start_from_env() -> RecordingSession | None:
    raw = os.environ.get("PROFKIT_RECORD")
    if not raw or is_launcher():
        return None
    try:
        config = json.loads(raw)
        run_dir = Path(config["run_dir"]) if config.get("run_dir") else None
        path = trace_path(Path(config["output"]), run_dir)
        options = RecordOptions(**config.get("options", {}))
        session = RecordingSession(path, options).start()
    except Exception as exc:  # never break the user's program over profiling
        sys.stderr.write(f"profkit: not recording this process ({type(exc).__name__}: {exc})\n")
        return None
    _ExitWatcher(session, run_dir).install()
    return session
