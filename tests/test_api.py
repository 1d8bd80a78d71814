"""The Python API: profkit.record() in-process, profkit.phase(), profkit.load()."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import profkit


class Boom(Exception):
    pass


def _train(steps: int) -> None:
    model = torch.nn.Linear(12, 5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        model(torch.randn(3, 12)).sum().backward()
        opt.step()
        opt.zero_grad()


def test_record_context_manager_and_load(tmp_path):
    out = tmp_path / "api.parquet"
    with profkit.record(out, telemetry=False) as session:
        _train(2)
        with profkit.phase("eval", batch_size=3, tokens=30):
            torch.nn.functional.relu(torch.randn(3, 12))
    assert session.written == out
    trace = profkit.load(out)
    for table in (trace.events, trace.ops, trace.kernels, trace.samples, trace.phases):
        assert isinstance(table, pd.DataFrame)
    assert trace.metadata["partial"] is False
    phases = trace.phases.set_index("name")
    assert list(trace.phases["name"]).count("train_step") == 2
    assert (phases.loc["eval", "batch_size"], phases.loc["eval", "token_count"]) == (3, 30)
    # The eval range encloses the relu op it wrapped.
    relu = trace.ops[trace.ops["name"] == "aten::relu"].iloc[-1]
    assert phases.loc["eval", "start_ns"] <= relu["start_ns"]
    assert relu["start_ns"] + relu["duration_ns"] <= phases.loc["eval", "start_ns"] + phases.loc["eval", "duration_ns"]


def test_exception_inside_record_leaves_partial_trace(tmp_path):
    out = tmp_path / "boom.parquet"
    with pytest.raises(Boom):
        with profkit.record(out, telemetry=False):
            _train(1)
            raise Boom("stop here")
    meta = profkit.load(out).metadata
    assert meta["partial"] is True and meta["error"] == "Boom: stop here"


def test_phase_outside_recording_is_a_no_op():
    with profkit.phase("nothing"):
        pass  # must not raise or record anywhere


def test_double_stepping_subclass_counts_once(tmp_path):
    class MySGD(torch.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])  # the parent class's step gets hooked too
    model = torch.nn.Linear(4, 2)
    opt = MySGD(model.parameters(), lr=0.1)
    out = tmp_path / "sub.parquet"
    with profkit.record(out, telemetry=False):
        for _ in range(3):
            model(torch.randn(2, 4)).sum().backward()
            opt.step()
    steps = profkit.load(out).phases
    assert [json.loads(x)["step"] for x in steps["extra"]] == [1, 2, 3]


def test_time_window_keeps_only_events_inside(tmp_path):
    import time

    out = tmp_path / "window.parquet"
    with profkit.record(out, telemetry=False, window_s=(0.3, 10.0)) as session:
        torch.nn.functional.relu(torch.randn(4, 4))  # before the window opens: dropped
        time.sleep(0.4)
        torch.tanh(torch.randn(4, 4))  # inside the window: kept
    trace = profkit.load(out)
    names = set(trace.ops["name"].astype(str))
    assert "aten::tanh" in names and "aten::relu" not in names
    assert (trace.events["start_ns"] >= session._start_ns + 300_000_000).all()


def test_a_second_recording_in_one_process_records_nothing_and_breaks_nothing(tmp_path, capsys):
    # One profiler runs at a time: a nested profkit.record (or one under `profkit record`) or one
    # inside the program's own torch.profiler would end the running session and empty its trace.
    import torch
    from torch.profiler import profile

    model = torch.nn.Linear(16, 16)
    with profkit.record(tmp_path / "outer.parquet"):
        with profkit.record(tmp_path / "inner.parquet") as inner:
            model(torch.randn(4, 16))
    assert inner is None and not (tmp_path / "inner.parquet").exists()
    assert "already being recorded to" in capsys.readouterr().err
    assert profkit.load(tmp_path / "outer.parquet").ops["name"].eq("aten::linear").any()
    with profile() as theirs:
        with profkit.record(tmp_path / "theirs.parquet"):
            model(torch.randn(4, 16))
    assert not (tmp_path / "theirs.parquet").exists()
    assert "torch.profiler is already running" in capsys.readouterr().err
    assert any(event.name == "aten::linear" for event in theirs.events())  # their profiler kept its events
    with profkit.record(tmp_path / "after.parquet"):  # and once those ended, recording works again
        model(torch.randn(4, 16))
    assert profkit.load(tmp_path / "after.parquet").ops["name"].eq("aten::linear").any()
