"""Keep the profiler's own log lines off the user's terminal.

Kineto writes lines such as ``USDT:... profiler_start`` and ``STAGE:...``
straight to file descriptor 2 from C++, so Python's warning filters cannot
catch them. Around profiler start/stop we point fd 2 at a temporary file and
afterwards replay every line that is not the profiler's, so the program's own
stderr output in that window is not lost. Python warnings raised by the
profiler are silenced the usual way.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings

#: Lines the profiler (Kineto, the autograd profiler) writes on its own. The last alternative is
#: Kineto's own log format, "ERROR:2026-11-27 04:56:33 17939:17939 DeviceProperties.cpp:56] ...":
#: a CUDA build of torch on a machine without a GPU logs "gpuGetDeviceCount failed" that way.
_PROFILER_LINE = re.compile(
    rb"^(USDT:|STAGE:|\[W\d*.*(profiler|kineto|Kineto|CUPTI|cupti)|.*ActivityProfiler|.*CuptiActivity|.*libkineto|"
    rb".*Profiler is not initialized|.*CUPTI_ERROR|WARNING:.*kineto|INFO:.*kineto|"
    rb"(INFO|WARNING|ERROR):\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \w+\.(cpp|h):\d+\])"
)


@contextlib.contextmanager
def quiet_profiler():
    """Silence profiler log noise written during the ``with`` block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.(autograd\.)?profiler.*")
        warnings.filterwarnings("ignore", message=r".*(CUDA|cuda|CUPTI|kineto|Kineto|profiler).*")
        try:
            saved_fd = os.dup(2)
        except OSError:  # no stderr at all: nothing to protect
            yield
            return
        with tempfile.TemporaryFile() as capture:
            try:
                sys.stderr.flush()
            except (AttributeError, ValueError, OSError):
                pass
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (AttributeError, ValueError, OSError):
                    pass
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
                capture.seek(0)
                kept = [line for line in capture.read().splitlines(keepends=True) if not _PROFILER_LINE.match(line)]
                if kept:
                    os.write(2, b"".join(kept))
