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
from profkit.collectors.torch_events import (_derived_activity_types, _input_signature, _shapes_and_dtypes,
                                             extract_events)


@pytest.fixture(scope="module")
def kineto_results():
    """A small real profile: views, a TensorList op (cat), scalars, a Linear forward and backward, a
    strided convolution and a max pooling (ops whose argument values are kept)."""
    profiler = KinetoProfiler(record_shapes=True)
    profiler.start()
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(6, 8, requires_grad=True)
    y = layer(x).relu()
    z = torch.cat([y, y * 2.0], dim=0).view(-1)
    (z.sum() + x.t().mean()).backward()
    image = torch.nn.functional.conv2d(torch.randn(1, 2, 9, 9), torch.randn(3, 2, 3, 3), stride=2, padding=1)
    torch.nn.functional.max_pool2d(image, 2)
    return profiler.stop()


needs_activities = pytest.mark.skipif(not hasattr(torch._C._autograd._ProfilerResult, "trace_activities"),
                                      reason="this torch has no trace_activities()")


def _plain(column):
    if hasattr(column, "to_pylist"):
        return column.to_pylist()
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def test_activity_types_derived_for_older_torch_agree_with_torch():
    """torch 2.11 events have no activity_type(): the derived types must be what 2.13 reports."""
    profiler = KinetoProfiler(record_shapes=True)
    profiler.start()
    with torch.profiler.record_function("## region ##"):
        torch.nn.functional.gelu(torch.randn(4, 8) @ torch.randn(8, 2))
    events = profiler.stop().events()
    if not hasattr(events[0], "activity_type"):
        pytest.skip("this torch has no activity_type() to compare with")
    derived = _derived_activity_types(events, [event.name() for event in events])
    assert derived == [event.activity_type() for event in events]
    assert {"cpu_op", "user_annotation"} <= set(derived)


class _OldTorchEvent:
    """A torch 2.11 _KinetoEvent as far as extraction reads it: no activity_type(), no trace_activities()."""

    def __init__(self, name, device, *, annotation=False, correlation=0, linked=0, stream=7, nbytes=0, metadata=""):
        self._name, self._device, self._annotation = name, device, annotation
        self._correlation, self._linked, self._stream, self._nbytes = correlation, linked, stream, nbytes
        self._metadata = metadata

    def name(self):
        return self._name

    def device_type(self):
        return getattr(torch._C._autograd.DeviceType, self._device)

    def is_user_annotation(self):
        return self._annotation

    def is_python_function(self):
        return False

    def start_ns(self):
        return 1_000

    def duration_ns(self):
        return 10

    def device_resource_id(self):
        return self._stream

    def correlation_id(self):
        return self._correlation

    def device_index(self):
        return 0

    def linked_correlation_id(self):
        return self._linked

    def nbytes(self):
        return self._nbytes

    def metadata_json(self):
        return self._metadata

    def shapes(self):
        return [[2, 3]]

    def dtypes(self):
        return ["float"]


def test_old_torch_gpu_events_get_their_kinds():
    events = [
        _OldTorchEvent("aten::mm", "CPU"),
        _OldTorchEvent("cudaLaunchKernel", "CPU", correlation=5),
        _OldTorchEvent("cuLaunchKernelEx", "CPU", correlation=6),
        _OldTorchEvent("hipMemcpyAsync", "CPU", correlation=8),
        _OldTorchEvent("## forward ##", "CPU", annotation=True),
        _OldTorchEvent("sm90_xmma_gemm_bf16bf16_bf16f32", "CUDA", linked=5),
        _OldTorchEvent("Memcpy HtoD (Pageable -> Device)", "CUDA", linked=8, nbytes=4096),
        _OldTorchEvent("Memset (Device)", "CUDA", nbytes=64),
        _OldTorchEvent("## forward ##", "CUDA", annotation=True),
        _OldTorchEvent("cudaMallocHost-like name in a kernel", "CUDA"),  # GPU rows are never runtime calls
        # Seen on an H200 with torch 2.11: an unnamed driver call and CUPTI overhead on the CPU side,
        # and copies whose nbytes() is 0 while Kineto's metadata has their size.
        _OldTorchEvent("INVALID", "CPU", correlation=9),
        _OldTorchEvent("Lazy Function Loading", "CPU", correlation=9),
        _OldTorchEvent("Memcpy DtoD (Device -> Device)", "CUDA", linked=9,
                       metadata='"device": 0, "stream": 7, "correlation": 9, "bytes": 2048, "memory bandwidth (GB/s)": 1.2'),
    ]

    class OldResults:
        def events(self):
            return events

    columns = extract_events(OldResults(), use_activities=False)
    assert _plain(columns["kind"]) == ["cpu_op", "runtime", "runtime", "runtime", "annotation", "kernel", "memcpy",
                                       "memset", "gpu_annotation", "kernel", "runtime", "other", "memcpy"]
    assert _plain(columns["bytes"]) == [None] * 6 + [4096, 64, None, None, None, None, 2048]
    assert _plain(columns["stream"]) == [None] * 5 + [7] * 5 + [None, None, 7]
    assert _plain(columns["device_type"]) == ["cpu"] * 5 + ["gpu"] * 5 + ["cpu", "cpu", "gpu"]


@needs_activities
def test_both_extraction_paths_give_the_same_columns(kineto_results):
    from_events = extract_events(kineto_results, use_activities=False)
    from_activities = extract_events(kineto_results, use_activities=True)
    assert from_events.keys() == from_activities.keys()
    assert len(from_events["name"]) > 20
    for column in from_events:
        assert _plain(from_events[column]) == _plain(from_activities[column]), column
    # TensorList shapes too: events() records none (Kineto's metadata spells them out), so they are
    # read from the profiler's event tree, with the elements' dtype.
    names = from_events["name"]
    cat = names.index("aten::cat")
    assert from_events["input_shapes"][cat] == "[[[6,4],[6,4]],[]]"
    assert from_events["extra"][cat] == '{"tensor_list_dtype":"torch.float32"}'
    mm = [i for i, name in enumerate(names) if name == "aten::addmm"]
    assert mm and from_activities["input_shapes"][mm[0]] == "[[4],[6,8],[8,4],[],[]]"
    # Both read the convolution's argument values (torch before 2.13 has events() only)
    conv = names.index("aten::conv2d")
    assert from_events["extra"][conv] == '{"concrete_inputs":["","","","[2, 2]","[1, 1]","[1, 1]","1"]}'


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
    bare = subprocess.run([sys.executable, "-c", "import sys, torch; print('torch._inductor' in sys.modules)"],
                          capture_output=True, text=True, timeout=240)
    if bare.stdout.strip() == "True":  # (torch 2.5: torch.export imports torch._inductor.config)
        pytest.skip(f"torch {torch.__version__}'s own import loads TorchInductor")
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
