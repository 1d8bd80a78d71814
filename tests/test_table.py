"""EventTable: numpy columns read once from Arrow (or a DataFrame) equal what pandas makes of the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import profkit
from profkit.analyzers.columns import float_values, id_values, int_values, label_codes, positions, texts_at
from profkit.analyzers.table import EventTable, frame_of
from profkit.report import build_report
from profkit.trace.io import Trace

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet"


@pytest.fixture(scope="module")
def trace():
    return profkit.load(SAMPLE)


def _tables(trace):
    return EventTable.from_arrow(trace.arrow, frame=lambda: trace.events), EventTable.from_frame(trace.events)


def test_text_columns_are_the_categoricals_codes_and_labels(trace):
    for table in _tables(trace):
        for name in ("kind", "name", "device_type", "input_shapes", "input_dtypes", "extra"):
            codes, labels = label_codes(table[name])
            expected = trace.events[name].astype(object).to_numpy()
            got = np.append(labels, None)[codes]
            missing = pd.isna(expected)
            assert (got[missing] == None).all()  # noqa: E711 (element-wise)
            assert (got[~missing] == expected[~missing]).all()
            at = np.arange(0, len(table), 7)
            picked = texts_at(table[name], at)
            assert [t if isinstance(t, str) else None for t in picked] == list(got[at])


def test_numeric_columns_as_pandas_converts_them(trace):
    events = trace.events
    for table in _tables(trace):
        for name in ("event_id", "start_ns", "duration_ns", "parent_id", "op_id", "depth", "stream", "bytes"):
            values, known = id_values(table[name])
            want_values, want_known = id_values(events[name])
            assert (known == want_known).all() and (values == want_values).all()
            assert (int_values(table[name], fill=-5) == int_values(events[name], fill=-5)).all()
            np.testing.assert_array_equal(float_values(table[name]), float_values(events[name]))
        np.testing.assert_array_equal(float_values(table["value"]), events["value"].to_numpy(np.float64))
        assert table["start_ns"].to_numpy().dtype == np.int64
        assert table["device_index"].to_numpy().dtype == np.int16


def test_cached_arrays_are_shared_and_read_only(trace):
    table, _ = _tables(trace)
    codes, _ = label_codes(table["name"])
    assert codes is label_codes(table["name"])[0]
    with pytest.raises(ValueError):
        codes[0] = 1


def test_positions_take_an_id_array_as_an_index(trace):
    events = trace.events
    ids = events["event_id"].to_numpy(np.int64)
    parents = events["parent_id"].fillna(-1).astype("int64").to_numpy()  # -1: no such id
    for index in (ids, ids[::-1].copy()):  # contiguous ids (arithmetic), and another order (hash lookup)
        want = pd.Index(index).get_indexer(parents)
        assert (positions(index, events["parent_id"]) == want).all()
        assert (positions(pd.Index(index), events["parent_id"]) == want).all()


def test_nulls_refuse_an_integer_read():
    table = EventTable({"x": pa.array([1, None, 3], pa.int64())}, 3)
    with pytest.raises(ValueError):
        table["x"].to_numpy(np.int64)
    np.testing.assert_array_equal(table["x"].to_numpy(), [1.0, np.nan, 3.0])


def test_take_reads_as_the_frames_rows(trace):
    """``take`` of row positions: every column reads as the same rows of the DataFrame (text, ids and
    their nulls, floats), also for a table of numpy sources and for a take of a take."""
    events = trace.events
    at = np.array([5, 0, 3, 3, len(events) - 1, 17])
    rows = events.iloc[at]
    for table in _tables(trace):
        for taken, want in ((table.take(at), rows), (table.take(np.arange(len(table))).take(at), rows)):
            assert len(taken) == len(at) and taken.columns == table.columns
            for name in ("kind", "name", "input_shapes"):
                codes, labels = label_codes(taken[name])
                assert list(np.append(labels, None)[codes]) == [v if isinstance(v, str) else None for v in want[name]]
            for name in ("event_id", "parent_id", "duration_ns", "device_index"):
                values, known = id_values(taken[name])
                want_values, want_known = id_values(want[name])
                assert (known == want_known).all() and (values == want_values).all()
            np.testing.assert_array_equal(float_values(taken["value"]), want["value"].to_numpy(np.float64))
        assert table.take(at)["device_index"].to_numpy().dtype == np.int16
    numpy_table = EventTable({"x": np.array([1.5, 2.5, 3.5]), "flag": np.array([True, False, True])}, 3)
    np.testing.assert_array_equal(numpy_table.take([2, 0])["x"].to_numpy(), [3.5, 1.5])
    assert numpy_table.take(np.zeros(0, np.int64)).empty


def test_frame_of_hands_out_the_frame(trace):
    table, from_frame = _tables(trace)
    assert frame_of(table) is trace.events and frame_of(from_frame) is trace.events
    assert frame_of(trace.events) is trace.events


def test_report_from_arrow_columns_equals_report_from_the_pandas_table(trace):
    """The report reads a loaded trace's Arrow columns; from a trace holding only the DataFrame the
    columns come from pandas: every number the same."""
    loaded = profkit.load(SAMPLE)
    from_pandas = Trace(events=loaded.events, metadata=loaded.metadata, path=loaded.path)
    assert build_report([profkit.load(SAMPLE)]) == build_report([from_pandas])


def test_classify_table_columns_are_classify_events_columns(trace):
    """The report's numpy view of the classified rows reads as the public DataFrame does, column by column."""
    from profkit.analyzers.classify import classify_events, classify_table
    from profkit.analyzers.hardware import Ceilings, spec_by_name

    limits = Ceilings(spec_by_name("a100-80gb"))
    table = classify_table(EventTable.from_arrow(trace.arrow), ceilings=limits)
    frame = classify_events(trace.events, ceilings=limits)
    assert list(table.columns) == list(frame.columns) and len(table) == len(frame)
    for name in frame.columns:
        got, want = table[name].to_numpy(), frame[name].to_numpy()
        if want.dtype == object or isinstance(frame[name].dtype, (pd.CategoricalDtype, pd.StringDtype)):
            got, want = got.astype(object), frame[name].astype(object).to_numpy()
            assert [None if pd.isna(g) else g for g in got] == [None if pd.isna(w) else w for w in want], name
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
    pd.testing.assert_frame_equal(table.frame, frame)


def test_idle_name_causes_with_one_search_equal_the_four_tests():
    """The one-search shortcut for names without any unanchored word gives the bits the four tests give."""
    from profkit.analyzers import idle

    def slow(name: str) -> int:
        bits = 0
        for regex, bit in idle._NAME_TESTS:
            if not bits & bit and regex.search(name):
                bits |= bit
        return bits

    names = ["cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaMemcpy", "cudaMemcpyAsync", "cuMemcpyDtoH_v2",
             "hipMemcpy2DToSymbol", "aten::item", "aten::_local_scalar_dense", "aten::linear", "cudaLaunchKernel",
             "cuLaunchKernel", "hipLaunchKernel", "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__",
             "_next_data", "cudaStreamWaitEvent", "cudaMalloc", "nn.Module: Linear_0", "ProfilerStep#3", "",
             "CUDAMEMCPY", "cudaMemcpyX", "xcudaMemcpy", "LAUNCH", "größe synchronize", "ÄDataLoader"]
    trace = profkit.load(SAMPLE)
    names += list(label_codes(trace.events["name"])[1])
    assert [idle._name_causes(n) for n in names] == [slow(n) for n in names]
    assert idle._name_causes("cudaMemcpy") == idle._SYNCHRONIZATION and idle._name_causes("aten::linear") == 0


def test_idle_label_causes_over_joined_names_equal_name_causes_per_name():
    """_label_causes searches the used names joined into one text: the bits _name_causes gives each used
    name, 0 for the others and for a null code; names with a newline or non-ASCII take the per-name way."""
    import random

    from profkit.analyzers import idle

    words = ["cuda", "Memcpy", "2D", "ToSymbol", "cuMemcpyDtoH", "_v2", "aten::item", "aten::", "item",
             "Synchronize", "Launch", "Kernel", "DataLoader", "__next__", "_next_data", "StreamWaitEvent", "hip", "x",
             " ", "::", "_"]
    rng = random.Random(3)
    names = ["cudaMemcpy", "aten::item", "cudaLaunchKernel", "", "CUDAMEMCPY", "xcudaMemcpy", "cudaMemcpyx"]
    names += ["".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    names += list(label_codes(profkit.load(SAMPLE).events["name"])[1])
    texts = np.array(list(dict.fromkeys(names)), dtype=object)
    want = np.array([idle._name_causes(t) for t in texts] + [0])
    for extra in ([], ["cudaMemcpy\n"], ["größe launch"]):  # the joined way, then the two per-name fallbacks
        labels = np.append(texts, np.array(extra, dtype=object))
        used = np.flatnonzero(np.arange(len(labels)) % 3 != 1)
        got = idle._label_causes(labels, used)
        expect = np.append(np.array([idle._name_causes(t) for t in labels]), 0)
        unused = np.ones(len(labels) + 1, bool)
        unused[used] = False
        expect[unused] = 0
        np.testing.assert_array_equal(got, expect)
    assert (want > 0).sum() > 300 and idle._label_causes(texts, np.zeros(0, np.int64)).sum() == 0
