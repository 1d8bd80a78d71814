"""profkit import without orjson (its fallback): windows decoded at once by the standard library, same values;
no pandas import, and the import command on the system allocator.

A list per item made the standard-library path ~20x slower than orjson's on
real traces; these tests pin that a window's items come as one list either
way, and that the standard encoder used for the per-event texts writes what
``json.dumps`` writes.
"""

from __future__ import annotations

import io
import json
import math

import pytest

from profkit.collectors import json_stream, kineto_events


def _chunks(text: str, monkeypatch, orjson: bool) -> list[list]:
    if not orjson:
        monkeypatch.setattr(json_stream, "_orjson", None)
    stream = json_stream.JsonStream(io.BytesIO(text.encode()), "test.json")
    members = dict(iter_members_lists(stream))
    return members["traceEvents"]


def iter_members_lists(stream):
    for key, value in json_stream.iter_members(stream, "traceEvents"):
        yield key, (list(value) if key == "traceEvents" else value)


@pytest.mark.parametrize("orjson", [False, True])
def test_a_window_of_items_is_decoded_in_one_list(monkeypatch, orjson):
    if orjson and json_stream._orjson is None:
        pytest.skip("orjson not installed")
    events = [{"ph": "X", "name": f"k{i}", "ts": i, "dur": 1.5} for i in range(500)]
    chunks = _chunks(json.dumps({"traceEvents": events, "schemaVersion": 1}), monkeypatch, orjson)
    # 500 items in a ~30 KB text: all but the last in the first window's list
    assert len(chunks) <= 2 and len(chunks[0]) >= 499
    assert [item for chunk in chunks for item in chunk] == events


def test_a_cut_inside_a_string_falls_back_to_an_earlier_cut(monkeypatch):
    # The last '}, {' of the window is inside a name: that cut fails to parse, an earlier one is taken.
    events = [{"name": "a"}, {"name": "b"}, {"name": 'x}, {"y'}]
    chunks = _chunks(json.dumps({"traceEvents": events}), monkeypatch, orjson=False)
    assert [item for chunk in chunks for item in chunk] == events
    assert len(chunks) >= 2  # the string's '}, {' ended the first list early


def test_nan_and_huge_integers_decode_as_the_standard_library_does(monkeypatch):
    text = '{"traceEvents": [{"ts": NaN, "id": 123456789012345678901234567890}, {"ts": 1}]}'
    chunks = _chunks(text, monkeypatch, orjson=False)
    items = [item for chunk in chunks for item in chunk]
    assert math.isnan(items[0]["ts"]) and items[0]["id"] == 123456789012345678901234567890
    assert items[1] == {"ts": 1}


VALUES = [
    {"a": 1, "b": [1, 2.5, None, True, False], "c": {"d": "é \u2603 \"q\" \\ \n"}},
    [[1, 3, 224, 224], [], [64]],
    ["float", "c10::BFloat16", ""],
    {"big": 2**70, "neg": -(2**65), "f": 1e-300, "g": 1.0, "h": 0.1 + 0.2},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
    {"order": 1, "kept": 2, "as": 3, "given": 4},
    "just a string",
    12,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_compact_encoder_writes_what_json_dumps_writes(value):
    assert kineto_events._compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_per_event_texts_without_orjson_are_compact_json(monkeypatch):
    monkeypatch.setattr(kineto_events, "_orjson", None)
    args = [{"Input Dims": [[2, 3]], "Input type": ["float"], "External id": 7, "stream": 1, "note": "é"}, {}]
    assert {field: array.to_pylist() for field, array in kineto_events._json_texts(args).items()} == {
        "shapes": ["[[2,3]]", None],
        "dtypes": ['["float"]', None],
        "extra": ['{"external_id":7,"note":"é"}', None],  # shapes, types and stream have columns of their own
    }


def test_importing_a_trace_does_not_import_pandas(tmp_path):
    """pyarrow's converters import pandas on first use (~0.2 s, ~35 MB): the importer avoids them."""
    import subprocess
    import sys

    events = [
        {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#3", "pid": 1, "tid": 1, "ts": 0, "dur": 100},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1, "dur": 10,
         "args": {"External id": 5, "Input Dims": [[2, 3], [3, 4]], "Input type": ["float", "float"]}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 2, "dur": 3,
         "args": {"correlation": 9, "External id": 5}},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 20, "dur": 5,
         "args": {"correlation": 9, "device": 0, "stream": 7, "External id": 5}},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD", "pid": 0, "tid": 7, "ts": 30, "dur": 5,
         "args": {"device": 0, "stream": 7, "bytes": 64}},
        {"ph": "C", "name": "power", "pid": 0, "ts": 5, "args": {"value": 300.5}},
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "GPU 0"}},
        {"ph": "s", "cat": "ac2g", "id": 9, "pid": 1, "tid": 1, "ts": 2},
        {"ph": "i", "s": "t", "name": "[memory]", "pid": 1, "tid": 1, "ts": 3,  # (its block's text went through pa.array)
         "args": {"Total Allocated": 512, "Total Reserved": 2048, "Bytes": 512, "Addr": 4096, "Device Id": 0,
                  "Device Type": 1}},
    ]
    exported = [  # profkit's own phase marks (as profkit export writes them): their args unpacked
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 1, "dur": 10},
        {"ph": "X", "cat": "profkit_phase", "name": "decode", "pid": 1, "tid": 1, "ts": 0, "dur": 50,
         "args": {"batch_size": 2, "token_count": 2, "step": 1}},
    ]
    (tmp_path / "a.json").write_text(json.dumps({"traceEvents": events}))
    (tmp_path / "b.json").write_text(json.dumps({"traceEvents": exported}))
    script = (
        "import sys\n"
        "from profkit.collectors.kineto_json import import_paths\n"
        f"for w in import_paths([{str(tmp_path)!r}], {str(tmp_path / 'out')!r}, progress=False):\n"
        "    print(w.events, w.kernels)\n"
        "print('pandas' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # a.json: 5 spans + 1 step mark + 1 power sample + 2 allocator samples, 1 kernel; b.json: 2 spans; no pandas
    assert result.stdout.split() == ["9", "1", "2", "0", "False"]


@pytest.mark.parametrize("preset, expected", [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_import_command_runs_arrow_on_the_system_allocator(preset, expected):
    """mimalloc keeps the pages it freed (about half the peak RSS of an import); an explicit choice wins."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if preset:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    script = "import profkit.cli.import_cmd, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
