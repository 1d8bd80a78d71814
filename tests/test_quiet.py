"""The profiler's own log lines are kept off the user's terminal; the program's own lines are not."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import os
    from profkit.collectors.quiet import quiet_profiler
    with quiet_profiler():
        os.write(2, b"STAGE:2026-11-27 04:56:33 17939:17939 ActivityProfilerController.cpp:314] Completed Stage\\n")
        os.write(2, b"ERROR:2026-11-27 04:56:33 17939:17939 DeviceProperties.cpp:56] gpuGetDeviceCount failed with code 35\\n")
        os.write(2, b"WARNING:2026-11-27 04:56:33 17939:17939 init.cpp:161] function cbapi->getCuptiStatus() failed\\n")
        os.write(2, b"ERROR: the program's own message\\n")
        os.write(2, b"loss 0.25 at 2026-11-27 04:56:33\\n")
    """
)


def test_kineto_log_lines_are_dropped_and_the_programs_own_lines_kept():
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["ERROR: the program's own message", "loss 0.25 at 2026-11-27 04:56:33"]
