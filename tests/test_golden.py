"""Golden report summaries of sample_traces/: an analyzer change that moves a number shows in review.

Each sample_traces/*.parquet has tests/golden/<name>.json (``profkit report
--format json``). After a deliberate change, regenerate and review:

    python -m tests.regen_golden
"""

from __future__ import annotations

import json
import math

import pytest

from regen_golden import GOLDEN_DIR, golden_document, golden_path, sample_traces

REGENERATE = "if the change is intended, run `python -m tests.regen_golden` and review the diff"


def _mismatches(saved, current, where="$") -> list[str]:
    """Paths where two JSON documents differ; floats compare to 1e-9 relative (platform rounding)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = [f"{where}.{k}: only in {'golden' if k in saved else 'report'}" for k in saved.keys() ^ current.keys()]
        for key in saved.keys() & current.keys():
            out += _mismatches(saved[key], current[key], f"{where}.{key}")
        return out
    if isinstance(saved, list) and isinstance(current, list):
        if len(saved) != len(current):
            return [f"{where}: {len(saved)} items in golden, {len(current)} now"]
        return [m for i, (a, b) in enumerate(zip(saved, current)) for m in _mismatches(a, b, f"{where}[{i}]")]
    if isinstance(saved, float) or isinstance(current, float):
        if isinstance(saved, (int, float)) and isinstance(current, (int, float)) and math.isclose(
                saved, current, rel_tol=1e-9, abs_tol=1e-12):
            return []
    elif saved == current:
        return []
    return [f"{where}: golden {saved!r}, now {current!r}"]


@pytest.mark.parametrize("trace", sample_traces(), ids=lambda p: p.stem)
def test_report_matches_golden(trace):
    path = golden_path(trace)
    assert path.exists(), f"no golden summary for {trace.name}: {REGENERATE}"
    mismatches = _mismatches(json.loads(path.read_text()), golden_document(trace))
    assert not mismatches, f"{len(mismatches)} differences ({REGENERATE}):\n" + "\n".join(mismatches[:30])


def test_every_golden_file_has_its_sample_trace():
    names = {golden_path(t).name for t in sample_traces()}
    orphans = sorted(p.name for p in GOLDEN_DIR.glob("*.json") if p.name not in names)
    assert not orphans, f"golden files without a sample trace (delete them): {orphans}"


def test_mismatch_finder_reports_moved_numbers():
    assert _mismatches({"a": {"b": [1, 2.0]}}, {"a": {"b": [1, 2.0 + 1e-12]}}) == []
    assert _mismatches({"a": {"b": [1, 2.0]}}, {"a": {"b": [1, 2.5]}}) == ["$.a.b[1]: golden 2.0, now 2.5"]
    assert sorted(_mismatches({"x": 1}, {"y": 1})) == ["$.x: only in golden", "$.y: only in report"]
