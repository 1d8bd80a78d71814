"""The GPU evidence script fails loudly — never skips — when the GPU is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the script is run for real")
def test_gpu_check_without_gpu_fails_every_check(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    summary = json.loads((tmp_path / "summary.json").read_text())
    checks = summary["checks"]
    assert len(checks) >= 8 and not any(c["ok"] for c in checks.values())
    # One FAIL line per check, then the count.
    assert sum(line.startswith("FAIL ") for line in lines) == len(checks)
    assert lines[-1] == f"0 passed, {len(checks)} failed"
