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
