"""profkit import without orjson (as in CI): windows decoded at once by the standard library, same values.

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
    assert kineto_events._json_texts(args) == {
        "shapes": ["[[2,3]]", None],
        "dtypes": ['["float"]', None],
        "extra": ['{"external_id":7,"note":"é"}', None],  # shapes, types and stream have columns of their own
    }
