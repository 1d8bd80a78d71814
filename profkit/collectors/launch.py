"""The parent side of ``profkit record``: start the program with the process hook.

The program runs as a child process with profkit's sitecustomize first on
PYTHONPATH and its settings in PROFKIT_RECORD; each profiled process writes
its own trace. This parent forwards SIGTERM, lets the terminal's SIGINT reach
the child directly, returns the child's exit status, and corrects the exit
status in the direct child's trace when only the parent could see it
(``raise SystemExit(3)`` at top level, for example).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .detach import await_finalizers, become_subreaper
from .paths import check_writable

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass
class LaunchResult:
    exit_code: int
    traces: list[Path]


#: Environment the recorded program gets unless the user set it: settings that make its work visible
#: to the profiler. torch.compile's CPU kernels (Inductor's C++ ``cpp_fused_*``) record no profiler
#: event by default, so their time read as self time of ``CompiledFunction``, class "other"; with this
#: each records one (``graph_0_cpp_fused_gelu_native_layer_norm_0``). TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=0
#: keeps Inductor's default.
PROFILING_ENVIRONMENT = {"TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE": "1"}


def child_environment(parent: os._Environ | dict, output: Path, run_dir: Path, options: dict) -> dict[str, str]:
    """The recorded program's environment: the parent's, profkit's settings and hook, and
    ``PROFILING_ENVIRONMENT`` where the parent does not set those variables itself."""
    env = {**PROFILING_ENVIRONMENT, **parent}
    env["PROFKIT_RECORD"] = json.dumps({"output": str(output), "run_dir": str(run_dir), "options": options})
    env["PROFKIT_PATH"] = str(PACKAGE_PARENT)
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def launch_recorded(command: list[str], output: str | os.PathLike, options: dict) -> LaunchResult:
    if not command:
        raise UsageError("no command given: profkit record -- python train.py")
    output = Path(output).absolute()
    check_writable(output)
    executable = shutil.which(command[0])
    if executable is None:
        raise UsageError(f"{command[0]}: command not found")

    run_dir = Path(tempfile.mkdtemp(prefix="profkit-run-"))
    env = child_environment(os.environ, output, run_dir, options)
    # Traces are written by forked copies of the exiting processes (detach.py): orphaned, they are
    # reparented to this process, which waits for them.
    become_subreaper()
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise UsageError(f"{command[0]}: cannot run ({exc.strerror or exc})") from None

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {
        # Ctrl-C reaches the child from the terminal itself; the parent waits for it.
        signal.SIGINT: signal.signal(signal.SIGINT, lambda signum, frame: None),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
    }
    try:
        status = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    exit_code = status if status >= 0 else 128 - status  # killed by signal N: 128+N
    for pid in await_finalizers(run_dir):
        sys.stderr.write(f"profkit: process {pid} still writing its trace; not waiting longer\n")
    traces = _collect(run_dir, child.pid, exit_code)
    shutil.rmtree(run_dir, ignore_errors=True)
    return LaunchResult(exit_code=exit_code, traces=traces)


def _collect(run_dir: Path, child_pid: int, exit_code: int) -> list[Path]:
    traces = []
    for record_file in sorted(run_dir.glob("written-*.json")):
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            continue
        path = Path(record["path"])
        if not path.exists():
            continue
        traces.append(path)
        if record.get("pid") == child_pid and exit_code != 0:
            from ..trace.io import read_metadata, update_metadata  # pyarrow, only when a fix-up is due

            meta = read_metadata(path)
            if meta.get("exit_code") != exit_code and not meta.get("stop_reason"):
                update_metadata(path, exit_code=exit_code, partial=True)
            elif meta.get("stop_reason") and meta.get("exit_code") is None:
                update_metadata(path, exit_code=exit_code)
    return sorted(traces, key=lambda p: p.name)
