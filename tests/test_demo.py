"""The front door: `profkit demo` records the bundled example and reports it."""

from __future__ import annotations

import pytest

import profkit
from conftest import run_profkit

pytestmark = pytest.mark.slow


def test_demo_records_and_reports(tmp_path):
    out = tmp_path / "demo.parquet"
    proc = run_profkit("demo", "-o", str(out), "--steps", "2", "--new-tokens", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Top ops by self time" in proc.stdout
    assert "allocated most" in proc.stdout  # the demo records torch's allocator
    assert "generated 4 tokens x 2" in proc.stdout  # the program's own output came through
    trace = profkit.load(out)
    assert trace.metadata["exit_code"] == 0
    # --skip-steps 1 is the demo's setting: step 1 is warm-up, step 2 is kept.
    assert list(trace.phases["name"]).count("train_step") == 1
    assert (trace.ops["name"] == "aten::bmm").sum() > 0


@pytest.mark.parametrize("command", [["demo"], ["calibrate", "--device", "cpu", "--quick"]])
def test_commands_that_need_torch_say_so_in_one_line_where_it_is_missing(command, tmp_path):
    """report, import, diff, check and export run without torch (an analysis-only install); demo and
    calibrate need it: one line and exit 2, not an import traceback (as on Python 3.9 without torch)."""
    import subprocess
    import sys

    script = ("import sys; sys.modules['torch'] = None  # (import torch now fails, as where it is not installed)\n"
              f"sys.argv = ['profkit', *{command!r}]\n"
              "from profkit.cli.main import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"profkit: error: `profkit {command[0]}` needs PyTorch, which this Python cannot import: pip install torch "
        "(report, import, diff, check and export work without it)"]
