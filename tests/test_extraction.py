"""The recorder's extraction from torch's profiler results, and what starting the profiler costs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_profkit
from profkit.collectors.profiler import KinetoProfiler
from profkit.collectors.torch_events import _input_signature, _shapes_and_dtypes, extract_events


@pytest.fixture(scope="module")
def kineto_results():
    """A small real profile: views, a TensorList op (cat), scalars, a Linear forward and backward."""
    profiler = KinetoProfiler(record_shapes=True)
    profiler.start()
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(6, 8, requires_grad=True)
    y = layer(x).relu()
    z = torch.cat([y, y * 2.0], dim=0).view(-1)
    (z.sum() + x.t().mean()).backward()
    return profiler.stop()


needs_activities = pytest.mark.skipif(not hasattr(torch._C._autograd._ProfilerResult, "trace_activities"),
                                      reason="this torch has no trace_activities()")


def _plain(column):
    if hasattr(column, "to_pylist"):
        return column.to_pylist()
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


@needs_activities
def test_both_extraction_paths_give_the_same_columns(kineto_results):
    from_events = extract_events(kineto_results, use_activities=False)
    from_activities = extract_events(kineto_results, use_activities=True)
    assert from_events.keys() == from_activities.keys()
    assert len(from_events["name"]) > 20
    for column in from_events:
        if column != "input_shapes":
            assert _plain(from_events[column]) == _plain(from_activities[column]), column
    # Shapes agree everywhere but on TensorList inputs, which only Kineto's metadata spells out.
    names = from_events["name"]
    for name, old, new in zip(names, from_events["input_shapes"], from_activities["input_shapes"]):
        if name == "aten::cat":
            assert old == "[[],[]]" and new == "[[[6,4],[6,4]],[]]"
        else:
            assert old == new, name
    mm = [i for i, name in enumerate(names) if name == "aten::addmm"]
    assert mm and from_activities["input_shapes"][mm[0]] == "[[4],[6,8],[8,4],[],[]]"


@needs_activities
def test_fast_metadata_parse_matches_a_json_parser(kineto_results):
    """Every op's shapes and dtypes, parsed by string search, equal what json.loads reads from the same text."""
    checked = 0
    for activity in kineto_results.trace_activities():
        metadata = activity.metadata_json()
        if activity.type() != "cpu_op" or '"Input Dims"' not in metadata:
            continue
        parsed = json.loads("{" + metadata + "}")
        shapes, dtypes = _shapes_and_dtypes(_input_signature(metadata))
        if parsed["Input Dims"] == []:
            assert (shapes, dtypes) == (None, None)
            continue
        assert json.loads(shapes) == parsed["Input Dims"]
        assert json.loads(dtypes) == parsed["Input type"]
        assert " " not in shapes
        checked += 1
    assert checked > 10


def test_input_signature_drops_per_call_fields():
    first = '"Sequence number": 7, "Fwd thread id": 0, "Input type": ["float"], "Input Dims": [[3]], "Ev Idx": 11'
    second = '"Sequence number": 9, "Fwd thread id": 0, "Input type": ["float"], "Input Dims": [[3]], "Ev Idx": 40'
    assert _input_signature(first) == _input_signature(second) == '"Input type": ["float"], "Input Dims": [[3]]'
    assert _shapes_and_dtypes(_input_signature(first)) == ("[[3]]", '["float"]')
    assert _shapes_and_dtypes(_input_signature('"Record function id": 0, "Ev Idx": 2')) == (None, None)


def test_recording_does_not_import_torchinductor(tmp_path):
    """torch.profiler's own start imports TorchInductor (1-2 s); profkit's must not."""
    script = textwrap.dedent(
        f"""
        import sys, torch, profkit
        with profkit.record({str(tmp_path / 't.parquet')!r}, telemetry=False):
            torch.randn(8, 8) @ torch.randn(8, 8)
        print("torch._inductor" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    names = pq.read_table(tmp_path / "t.parquet", columns=["name"])["name"].to_pylist()
    assert "aten::mm" in names


@pytest.mark.slow
def test_program_that_runs_no_op_still_gets_a_trace(tmp_path):
    trace = tmp_path / "t.parquet"
    proc = run_profkit("record", "--no-telemetry", "-o", str(trace), "--", sys.executable, "-c", "import torch")
    assert proc.returncode == 0, proc.stderr
    assert "could not write" not in proc.stderr
    table = pq.read_table(trace)
    assert table.num_rows == 0
    assert json.loads(table.schema.metadata[b"profkit"])["event_count"] == 0


def test_recording_imports_neither_pandas_nor_pyarrow_until_the_end(tmp_path):
    """pyarrow's converters import pandas (~0.35 s); the recorder builds its arrays from buffers instead."""
    script = textwrap.dedent(
        f"""
        import sys, torch, profkit
        model = torch.nn.Linear(8, 4)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with profkit.record({str(tmp_path / 't.parquet')!r}, telemetry_interval_ms=5):
            with profkit.phase("warmup"):
                for _ in range(3):
                    model(torch.randn(2, 8)).sum().backward()
                    opt.step()
                    opt.zero_grad()
            during = "pyarrow" in sys.modules or "pandas" in sys.modules
        print(during, "pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    table = pq.read_table(tmp_path / "t.parquet")
    kinds = set(table["kind"].to_pylist())
    assert {"cpu_op", "phase", "sample"} <= kinds
    assert "warmup" in table["name"].to_pylist()
