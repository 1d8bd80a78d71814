"""jsonable's fast path for plain values against the reference conversion (every value tested in turn)."""

import json
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

import profkit
from profkit.report.build import _jsonable_other, jsonable
from profkit.report.context import ReportContext
from profkit.report.registry import sections


def _reference(value):
    """The general way for every value, containers included (what jsonable did before its fast path)."""
    return _jsonable_other(value, _reference)


class _Label(str, Enum):
    A = "a"


def _same(got, want) -> None:
    assert json.dumps(got) == json.dumps(want)
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _same(got[k], want[k])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)


def test_tricky_values_convert_as_the_reference_does():
    values = {
        "plain": [1, "x", True, None, 2.5, -0.0],
        "not finite": [float("nan"), float("inf"), -float("inf"), np.float64("nan"), np.float32("inf")],
        "numpy": [np.int64(3), np.bool_(True), np.float32(1.5), np.str_("s"), np.int8(-2)],
        "pandas": [pd.NA, pd.NaT, pd.Timestamp(0)],
        "containers": ({1: "int key", None: (1, 2)}, [[1, [float("nan")]]], (np.int16(4),)),
        "subclasses": [_Label.A, {_Label.A: _Label.A}],
        "objects": [object.__name__, Path("a/b"), 1 + 2j],
        7: "a non-str key",
    }
    _same(jsonable(values), _reference(values))


def test_every_section_of_a_report_converts_as_the_reference_does():
    trace = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet")
    ctx = ReportContext(traces=[trace])
    for sec in sections():
        raw = sec.compute(ctx)
        _same(jsonable(raw), _reference(raw))


def test_values_by_hand():
    got = jsonable({"nan": np.float64("nan"), 1: (np.int64(2), pd.NA), "ok": [1.5, True, "s", None]})
    assert got == {"nan": None, "1": [2, None], "ok": [1.5, True, "s", None]}
    assert type(got["1"][0]) is int
