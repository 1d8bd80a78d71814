"""Write a finished recording's trace from a forked copy of the process, while it exits.

Once a program ends, its interpreter still spends a while tearing down (0.5–1 s
with torch imported, measured here). Reading the profiler's events, building
the table and writing the file (about 0.6 s per 50k events, most of it pybind
calls and importing pyarrow) can run in that time instead of before it: the
process forks, the copy writes the trace and leaves with ``os._exit`` (no
atexit handlers run twice, no teardown), and the program goes on exiting.

Only ``profkit record``'s processes do this, at their normal end (atexit),
because the launcher is there to wait for the copy: it becomes the "child
subreaper" of everything it starts (Linux), so each copy, orphaned when its
program exits, is reparented to it and reaped by it, and a copy's file name
(``finalizer-PID``) in the run folder says which to wait for. Elsewhere (an
interrupted run, the ``profkit.record`` API, no fork on this platform,
``PROFKIT_DETACHED_WRITE=0``) the trace is written in the process.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

#: prctl(2) option: orphaned descendants are reparented to this process instead of init.
_PR_SET_CHILD_SUBREAPER = 36
_FINALIZER_PREFIX = "finalizer-"
#: Poll interval while a copy that is not this process's child finishes (no subreaper).
_POLL_S = 0.005


def detach_supported() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork") and os.environ.get("PROFKIT_DETACHED_WRITE", "1") != "0"


def forked_writer(run_dir: Path) -> Callable[[Path, Callable[[], Path]], Path | None]:
    """A ``RecordingSession.finalize`` writer that writes from a forked copy and returns at once.

    Falls back to writing here when the fork fails. Returns the trace's path
    (promised: the launcher waits for the copy before it looks for the file).
    """

    def write(path: Path, write_trace: Callable[[], Path]) -> Path | None:
        # Output still buffered here would be written twice: by this process and by the copy.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        try:
            with warnings.catch_warnings():
                # Python >= 3.12 warns on fork() in a process with threads: the copy runs only
                # profkit's own code, single-threaded, on data that no other thread touches.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            return write_trace()
        if pid == 0:
            _run_copy(write_trace)
        marker = run_dir / f"{_FINALIZER_PREFIX}{pid}"
        try:
            marker.write_text("")
        except OSError:
            pass
        _never_free(write_trace)
        return path

    return write


def _never_free(value: object) -> None:
    """Keep ``value`` (and what it holds: the profiler's results) alive until the process ends.

    This process is exiting and its copy has the results. Freeing them here
    would run a destructor over every recorded event (measured: 0.3-0.45 s for
    53k events of a training run, each page it touches first copied away from
    the memory the copy still shares), work the operating system does for
    free when the process ends.
    """
    try:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(value))
    except (AttributeError, OSError):  # not CPython: freeing costs time, nothing else
        pass


def _run_copy(write_trace: Callable[[], Path]) -> None:
    """The forked copy: write the trace, then leave without running the program's exit code twice."""
    status = 1
    try:
        # Ctrl-C in the terminal, or a scheduler's SIGTERM to the whole process group, would lose
        # a trace whose program has already ended: the copy finishes the file (about a second).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # A collection would touch every object, copying the parent's whole heap page by page.
        gc.disable()
        write_trace()
        status = 0
    except BaseException as exc:  # noqa: BLE001 - the copy must always reach os._exit
        try:
            os.write(2, f"profkit: could not write trace: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(status)


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux); False where that is unavailable."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def await_finalizers(run_dir: Path, timeout_s: float = 600.0) -> list[int]:
    """Wait for the copies named in ``run_dir`` to finish; returns the pids still running at the timeout."""
    named = (marker.name[len(_FINALIZER_PREFIX):] for marker in run_dir.glob(f"{_FINALIZER_PREFIX}*"))
    pids = sorted(int(pid) for pid in named if pid.isdigit())
    deadline = time.monotonic() + timeout_s
    left = []
    for pid in pids:
        if not _wait(pid, deadline):
            left.append(pid)
    return left


def _wait(pid: int, deadline: float) -> bool:
    """Wait for ``pid`` to end: reap it when it is this process's child, else poll."""
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not ours (no subreaper): poll its state instead
            if not _running(pid):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the command name in parentheses, which may itself hold spaces.
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
