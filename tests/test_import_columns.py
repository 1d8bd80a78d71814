"""profkit import, the fast path: windows, encoders and the vectorized assembly give the same trace.

The importer streams every file in windows and turns each window's events into
columns at once; these tests pin that the window size, the JSON encoder and the
Arrow pool do not change a single value, and the few per-value fallbacks
(odd names and categories, integers beyond 64 bits) behave as the plain path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from profkit.collectors import json_stream, kineto_events
from profkit.collectors.kineto_json import _first_row, read_kineto

from conftest import shared_trace


def _write(tmp_path: Path, document: dict, name: str = "trace.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("name", ["sampled_rank-0.json.gz", "benchmark_result_2869224_1695835535_trace.json.gz"])
def test_tiny_windows_give_the_same_table_as_the_default_ones(name, monkeypatch):
    path = shared_trace(name)
    default = read_kineto(path, progress=False).table
    monkeypatch.setattr(json_stream, "_CHUNK_BYTES", 4096)  # hundreds of windows, events cut across them
    monkeypatch.setattr(json_stream, "_MARGIN_CHARS", 1024)
    small = read_kineto(path, progress=False).table
    assert small.num_rows == default.num_rows > 800
    assert small.equals(default)


def test_the_standard_encoder_gives_the_same_texts_as_orjson(monkeypatch):
    if kineto_events._orjson is None:
        pytest.skip("orjson not installed: the standard library path is the only one")
    path = shared_trace("sampled_rank-1.json.gz")
    fast = read_kineto(path, progress=False).table
    monkeypatch.setattr(kineto_events, "_orjson", None)
    plain = read_kineto(path, progress=False).table
    for column in ("extra", "input_shapes", "input_dtypes"):
        assert plain.column(column).equals(fast.column(column)), column


def test_integers_beyond_64_bits_keep_every_digit():
    # The standard decoder (used where orjson refuses a window) gives Python ints of any size;
    # orjson's encoder refuses them, so the batch falls back to json.dumps.
    big = 2**70
    args = [{"Input Dims": [[big]], "Input type": ["long int"], "seed": big, "correlation": 3},
            {"Input Dims": [[3]], "Input type": ["float"]}]
    texts = {field: array.to_pylist() for field, array in kineto_events._json_texts(args).items()}
    assert texts == {
        "shapes": ["[[1180591620717411303424]]", "[[3]]"],
        "dtypes": ['["long int"]', '["float"]'],
        "extra": ['{"seed":1180591620717411303424}', None],  # correlation has a column of its own
    }


def test_names_and_categories_that_are_not_strings(tmp_path):
    document = {"traceEvents": [
        {"ph": "X", "cat": "KERNEL", "name": 12, "pid": 0, "tid": 7, "ts": 10, "dur": 1},
        {"ph": "X", "cat": None, "name": None, "pid": 1, "tid": 1, "ts": 20, "dur": 1},
        {"ph": "X", "name": "no category", "pid": 1, "tid": 1, "ts": 30, "dur": 1},
        {"ph": "X", "cat": 5, "pid": 1, "tid": 1, "ts": 40, "dur": 1},
    ]}
    table = read_kineto(_write(tmp_path, document), progress=False).table
    rows = [(row["name"], row["kind"]) for row in table.to_pylist()]
    # a number is named by its text, a missing or null name is ""; categories are matched lower-cased
    assert rows == [("12", "kernel"), ("", "other"), ("no category", "other"), ("", "other")]


def test_pid_strings_among_numbers_become_their_trailing_digits(tmp_path):
    document = {"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "a", "pid": 41, "tid": 7, "ts": 10, "dur": 1},
        {"ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": "Spans", "tid": "PyTorch Profiler",
         "ts": 5, "dur": 20},
        {"ph": "X", "cat": "cpu_op", "name": "b", "pid": 41, "tid": "thread 9", "ts": 12, "dur": 1},
    ]}
    table = read_kineto(_write(tmp_path, document), progress=False).table
    threads = {row["name"]: (row["process_id"], row["thread_id"]) for row in table.to_pylist()}
    # "Spans" has no digits: its pid falls back to the main host pid (41); "thread 9" -> 9
    assert threads == {"a": (41, 7), "PyTorch Profiler (0)": (41, None), "b": (41, 9)}


def test_arrows_pool_is_restored_after_an_import():
    before = pa.default_memory_pool().backend_name
    read_kineto(shared_trace("benchmark_result_2869224_1695835535_trace.json.gz"), progress=False)
    assert pa.default_memory_pool().backend_name == before


def test_first_row_finds_the_first_row_with_each_key():
    keys = np.array([7.0, 3.0, 7.0, 5.0])
    rows = np.array([10, 11, 12, 13])
    found = _first_row(keys, rows, np.array([7.0, 5.0, 4.0, np.nan]))
    # 7 first appears at row 10 (not 12); 4 and NaN have no row
    assert found[:2].tolist() == [10.0, 13.0] and np.isnan(found[2:]).all()
    assert np.isnan(_first_row(np.zeros(0), np.zeros(0, dtype=np.int64), np.array([1.0]))).all()


def test_no_python_object_per_event_outlives_its_window():
    # Memory grows with the compact columns, not with dicts or str objects per event.
    header, collected = kineto_events.read_document(shared_trace("sampled_rank-0.json.gz"), progress=False)
    assert header["distributedInfo"]["rank"] == 0
    for field in kineto_events.NUMBER_FIELDS:
        assert collected.columns[field].dtype == np.float64, field
    for field in kineto_events.TEXT_FIELDS:
        assert isinstance(collected.columns[field], (pa.Array, pa.ChunkedArray)), field
    assert len(collected.columns["ts"]) == len(collected.columns["extra"]) == 4811  # the file's "X" events
