"""profkit.load: a small file read whole into memory gives what reading it from disk gives."""

from __future__ import annotations

import pytest

from profkit.errors import TraceFormatError
from profkit.trace import build_events, io, load, write_trace
from test_trace_io import _raw


def _trace(tmp_path):
    raw = _raw([("cpu_op", "aten::add", 0, 5, 1, 1, None), ("cpu_op", "aten::mm", 6, 9, 1, 1, None)])
    return write_trace(tmp_path / "t.parquet", build_events(raw), {"command": ["x"]})


def test_load_in_memory_equals_load_from_disk(tmp_path, monkeypatch):
    path = _trace(tmp_path)
    whole = load(path)
    monkeypatch.setattr(io, "_WHOLE_BYTES", 0)  # every file now too big to read whole
    from_disk = load(path)
    assert whole.arrow.equals(from_disk.arrow) and whole.arrow.num_rows == 2
    assert whole.metadata == from_disk.metadata and whole.arrow.schema.metadata == from_disk.arrow.schema.metadata


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_a_truncated_file_is_a_one_line_error_either_way(tmp_path, monkeypatch, limit):
    path = _trace(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(path.read_bytes()[:-40])
    monkeypatch.setattr(io, "_WHOLE_BYTES", limit)
    with pytest.raises(TraceFormatError, match="not a Parquet file or truncated") as info:
        load(bad)
    assert "\n" not in str(info.value)
