"""Roofline bounds at and around the ridge point, latency, what-if, class aggregation, idle time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.hardware import Ceilings, spec_by_name
from profkit.analyzers.idle import idle_attribution
from profkit.analyzers.roofline import LATENCY_FRACTION, aggregate_classes, bounds, classify_bound

H100 = spec_by_name("h100-sxm")
RIDGE_BF16 = 989.4e12 / 3.35e12  # 295.34 flop/byte


def rows(*items):
    """Rows of (category, dtype, flops, bytes, span_ns) as classify_events would give them."""
    frame = pd.DataFrame(items, columns=["category", "dtype", "flops", "bytes", "span_ns"])
    frame["time_ns"] = frame["span_ns"]
    frame["device_work"] = True
    frame["fused"] = False
    return frame


@pytest.mark.parametrize(
    "intensity, expected",
    [(RIDGE_BF16, "compute"), (RIDGE_BF16 * 1.001, "compute"), (RIDGE_BF16 * 0.999, "memory"), (1.0, "memory"),
     (np.inf, "compute")],
)
def test_at_and_around_the_ridge(intensity, expected):
    bound = classify_bound(np.array([intensity]), np.array([RIDGE_BF16]), np.array([0.5]), np.array([True]))
    assert bound[0] == expected


def test_latency_below_a_small_fraction_of_both_roofs():
    efficiency = np.array([LATENCY_FRACTION * 0.99, LATENCY_FRACTION, 0.5])
    bound = classify_bound(np.full(3, 1.0), np.full(3, RIDGE_BF16), efficiency, np.full(3, True))
    assert list(bound) == ["latency", "memory", "memory"]
    assert classify_bound(np.array([1.0]), np.array([RIDGE_BF16]), np.array([0.01]), np.array([True]),
                          latency=False)[0] == "memory"
    assert classify_bound(np.array([1.0]), np.array([RIDGE_BF16]), np.array([0.5]), np.array([False]))[0] == "unknown"


def test_bounds_of_kernels_on_an_h100():
    table = rows(
        # 4096³ bf16 GEMM: 2·4096³ = 137.4e9 flop, 3·4096²·2 = 100.7e6 bytes (AI 1365) in 200 µs: 687 TF/s, 69 % of 989.4
        ("contraction", "bf16", 2 * 4096**3, 3 * 4096**2 * 2, 200_000),
        # 16M-element bf16 add: 16.8e6 flop, 3·16.8e6·2 = 100.7e6 bytes (AI 1/6) in 40 µs: 2.52 TB/s, 75 % of 3.35
        ("elementwise", "bf16", 2**24, 3 * 2**24 * 2, 40_000),
        # a tiny add: 1024 flop, 6144 bytes in 3 µs: 2 GB/s, far below both roofs
        ("elementwise", "bf16", 1024, 6144, 3_000),
        # no cost model
        ("other", None, 0, 0, 5_000),
    )
    out = bounds(table, Ceilings(H100, H100))
    assert list(out["bound"]) == ["compute", "memory", "latency", "unknown"]
    assert out["flop_fraction"][0] == pytest.approx(2 * 4096**3 / 200e-6 / 989.4e12)  # 0.6946
    assert out["bandwidth_fraction"][1] == pytest.approx(3 * 2**24 * 2 / 40e-6 / 3.35e12)  # 0.7513
    assert out["arithmetic_intensity"][1] == pytest.approx(1 / 6)
    # element-wise bf16 work is measured against the vector (fp32) roof, contraction against the tensor roof
    assert list(out["peak_flops_per_s"][:2]) == [989.4e12, 67e12]
    # roofline time of the GEMM: max(137.4e9/989.4e12, 100.7e6/3.35e12) s = 138.9 µs
    assert out["roofline_ns"][0] == pytest.approx(2 * 4096**3 / 989.4e12 * 1e9)
    assert np.isnan(out["arithmetic_intensity"][3])


def test_what_if_has_no_latency_and_no_fractions():
    table = rows(("elementwise", "bf16", 1024, 6144, 3_000), ("contraction", "bf16", 2 * 4096**3, 3 * 4096**2 * 2, 1))
    out = bounds(table, Ceilings(H100, H100, what_if=True))
    assert list(out["bound"]) == ["memory", "compute"]
    assert out["flop_fraction"].isna().all() and out["bandwidth_fraction"].isna().all()


def test_unknown_device_gives_unknown_bounds():
    out = bounds(rows(("contraction", "bf16", 1e9, 1e6, 1000)), Ceilings(None))
    assert list(out["bound"]) == ["unknown"]


def test_aggregate_classes_table_one():
    table = rows(
        ("contraction", "bf16", 2 * 4096**3, 3 * 4096**2 * 2, 200_000),
        ("contraction", "bf16", 2 * 4096**3, 3 * 4096**2 * 2, 200_000),
        ("elementwise", "bf16", 2**24, 3 * 2**24 * 2, 40_000),
        ("memory", None, 0, 2**20, 60_000),
        ("other", None, 0, 0, 100_000),
    )
    limits = Ceilings(H100, H100)
    classes = aggregate_classes(pd.concat([table, bounds(table, limits)], axis=1), limits).set_index("category")
    # total time 600 µs: contraction 400 (2/3), elementwise 40, memory 60, other 100; normalization listed with 0
    assert list(classes.index) == ["contraction", "normalization", "elementwise", "memory", "other"]
    assert classes["time_share"].to_dict() == pytest.approx(
        {"contraction": 400 / 600, "normalization": 0, "elementwise": 40 / 600, "memory": 60 / 600, "other": 100 / 600})
    assert classes.loc["contraction", "flop_share"] == pytest.approx(2 * 2 * 4096**3 / (2 * 2 * 4096**3 + 2**24))
    assert classes.loc["contraction", "bound"] == "compute" and classes.loc["elementwise", "bound"] == "memory"
    assert classes.loc["elementwise", "mue"] == pytest.approx(0.7513, abs=1e-4)
    assert classes.loc["other", "bound"] == "unknown" and classes.loc["normalization", "count"] == 0
    assert classes.loc["contraction", "compute_ns"] == 400_000


def test_aggregate_by_phase_shares_within_each_phase():
    table = rows(
        ("contraction", "bf16", 1e12, 1e9, 300), ("elementwise", "bf16", 1e6, 1e7, 100),
        ("contraction", "bf16", 1e12, 1e9, 100), ("elementwise", "bf16", 1e6, 1e7, 100),
    )
    table["phase"] = ["prefill", "prefill", "decode", "decode"]
    limits = Ceilings(H100, H100)
    out = aggregate_classes(pd.concat([table, bounds(table, limits)], axis=1), limits, by=["phase", "category"])
    shares = out.set_index(["phase", "category"])["time_share"]
    assert shares[("prefill", "contraction")] == pytest.approx(0.75) and shares[("decode", "contraction")] == 0.5


def test_aggregate_of_labelled_positions_equals_the_table_it_stands_for():
    """``at``/``labels`` give exactly what aggregating the taken, labelled table gives (the phases' fast path)."""
    from pathlib import Path

    import profkit
    from profkit.analyzers.classify import classify_events

    trace = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet")
    limits = Ceilings(H100, H100)
    classified = classify_events(trace.events, ceilings=limits)
    rng = np.random.default_rng(0)
    at = np.concatenate([np.sort(rng.choice(len(classified), 4000, replace=False)), rng.integers(0, len(classified), 3000)])
    names = np.array(["prefill", "decode", "generate"], dtype=object)
    phase = names[rng.integers(0, 3, len(at))]
    categorical = pd.Categorical(phase, categories=sorted(names))
    reference_rows = classified.iloc[at].reset_index(drop=True).assign(phase=phase)
    for by, share_within in ((["phase"], []), (["phase", "category"], None)):
        fast = aggregate_classes(classified, limits, by=by, share_within=share_within, at=at,
                                 labels={"phase": categorical})
        reference = aggregate_classes(reference_rows, limits, by=by, share_within=share_within)
        pd.testing.assert_frame_equal(fast, reference, check_exact=True)


def test_aggregate_columns_of_the_numpy_table_equal_the_dataframe_aggregation():
    """The report's path (classify_table's numpy columns, aggregate_columns' dict, records from it)
    lists what the public DataFrame path lists, value for value, for each grouping the report uses."""
    from pathlib import Path

    import profkit
    from profkit.analyzers.classify import classify_events, classify_table
    from profkit.analyzers.roofline import aggregate_columns
    from profkit.analyzers.table import EventTable
    from profkit.report.sections._records import records

    trace = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet")
    limits = Ceilings(H100, H100)
    table = classify_table(EventTable.from_arrow(trace.arrow), ceilings=limits)
    frame = classify_events(trace.events, ceilings=limits)
    for by, share_within in ((["category"], None), (["name", "category"], [])):
        fast = aggregate_columns(table, limits, by=by, share_within=share_within)
        reference = aggregate_classes(frame, limits, by=by, share_within=share_within)
        assert list(fast) == list(reference.columns)
        at = np.arange(len(reference))[::-1][:7]
        assert records(fast, reference.columns, at=at) == records(reference.iloc[at], reference.columns)
        assert len(records(fast, reference.columns)) == len(reference) > 0


def _timeline(items):
    frame = pd.DataFrame(items, columns=["kind", "name", "start_ns", "duration_ns"])
    frame["event_id"] = range(len(frame))
    frame["parent_id"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame


def test_idle_attribution_by_host_cause():
    events = _timeline(
        [
            ("kernel", "k1", 0, 10),
            ("runtime", "cudaDeviceSynchronize", 10, 12),  # idle 10..20 is waiting on the device
            ("kernel", "k2", 20, 10),
            ("cpu_op", "aten::add", 28, 12),  # 30..40: in an op (30..35) then launching (35..38)
            ("runtime", "cudaLaunchKernel", 35, 3),
            ("kernel", "k3", 50, 10),  # 40..50: nothing on the host
            ("runtime", "cudaMalloc", 60, 5),
            ("kernel", "k4", 70, 5),  # 60..70: allocating (5), then nothing (5)
        ]
    )
    idle = idle_attribution(events)
    causes = {c["cause"]: c["time_ns"] for c in idle["causes"]}
    # span 0..75, busy 10+10+10+5 = 35, idle 40 = sync 10 + host ops 7 (30..35, 38..40) + launch 3 + other
    # runtime 5 + nothing 15 (40..50, 65..70)
    assert idle["span_ns"] == 75 and idle["busy_ns"] == 35 and idle["idle_ns"] == 40
    assert causes == {"synchronization": 10, "data_loading": 0, "kernel_launch": 3, "other_runtime": 5,
                      "host_ops": 7, "no_host_activity": 15}


_SYNC_REFERENCE = (  # the one-pattern form of idle's synchronization test, kept here as the reference
    r"(?i)synchronize|^(?:cuda|hip)Memcpy(?:2D|3D)?$|^(?:cuda|hip)Memcpy(?:2D|3D)?(?:To|From)Symbol$|"
    r"^cuMemcpy[DH]to[DH](?:_v2)?$|^aten::(?:item|_local_scalar_dense)$|^cudaStreamWaitEvent$"
)


@pytest.mark.parametrize("name", [
    "cudaDeviceSynchronize", "hipStreamSynchronize", "cudaEventSYNCHRONIZE", "cudaMemcpy", "hipMemcpy2D",
    "cudaMemcpy3DToSymbol", "hipMemcpyFromSymbol", "cuMemcpyDtoH_v2", "cuMemcpyHtoD", "aten::item",
    "aten::_local_scalar_dense", "cudaStreamWaitEvent", "CUDAMEMCPY", "cudaMemcpy\n",  # $ matches before a final \n
    "cudaMemcpyAsync", "xcudaMemcpy", "aten::itemx", "cudaStreamWaitEvents", "cudaLaunchKernel", "aten::mm", "",
    "cudaDeviceſynchronize", "enumerate(DataLoader)#_MultiProcessingDataLoaderIter.__next__", "hipLAUNCHKernel",
    "cuLaunch\u212aernel", "data_Loader_next", "ſynchronize LAUNCH dataloader",  # (ſ and K: Unicode case folding)
])
def test_cause_names_as_the_single_patterns_read_them(name):
    """_name_causes (lowered ASCII names, several patterns) reads each name as the (?i) patterns do."""
    import re

    from profkit.analyzers.idle import _name_causes

    causes = _name_causes(name)
    assert bool(causes & 1) == bool(re.search(_SYNC_REFERENCE, name))
    assert bool(causes & 2) == bool(re.search(r"(?i)dataloader|data_loader|_next_data|__next__", name))
    assert bool(causes & 4) == bool(re.search(r"(?i)launch", name))


def test_a_trace_without_shapes_says_why_its_flop_is_unknown(tmp_path):
    import profkit
    from profkit.report import build_report
    from profkit.trace import build_events, write_trace
    from synthetic_traces import make_trace
    from test_trace_io import _raw

    raw = _raw([("cpu_op", "aten::mm", 0, 5, 1, 1, None), ("cpu_op", "aten::add", 6, 9, 1, 1, None)])
    bare = write_trace(tmp_path / "bare.parquet", build_events(raw), {"command": ["x"]})
    document = build_report([profkit.load(bare)])
    assert any("no op recorded its input shapes" in note for note in document["roofline"]["notes"])
    assert all(row["flops"] == 0 for row in document["categories"])
    # one op with shapes is enough for the flop to mean something: no such note
    shaped = build_report([profkit.load(make_trace(tmp_path / "shaped.parquet"))])
    assert shaped["roofline"]["notes"] == [] and any(row["flops"] > 0 for row in shaped["categories"])


def _copies_trace(device: str) -> "pd.DataFrame":
    import pandas as pd

    from profkit.trace.build import build_events

    mib64 = 64 << 20
    raw = pd.DataFrame([
        # 64 MiB in 5 ms each: 13.4 GB/s
        dict(kind="memcpy", name="Memcpy HtoD (Pageable -> Device)", start_ns=0, duration_ns=5_000_000, bytes=mib64),
        dict(kind="memcpy", name="Memcpy DtoD (Device -> Device)", start_ns=6_000_000, duration_ns=5_000_000,
             bytes=mib64),
    ])
    raw["device_type"], raw["device_index"], raw["stream"], raw["process_id"] = "gpu", 0, 7, 1
    raw["device_index"] = raw["device_index"].astype("int16")
    return build_events(raw).to_pandas(), {"devices": [{"index": 0, "type": "gpu", "name": device}]}


def test_a_host_copy_is_measured_against_the_host_link():
    # A100: PCIe 4.0 x16, 31.5 GB/s each way. 13.4 GB/s is 42.6 % of it (memory-bound on the link), but
    # 0.9 % of the 1.555 TB/s of HBM, which called every pageable copy latency-bound.
    from profkit.analyzers import classify_events
    from profkit.analyzers.roofline import aggregate_classes
    from profkit.analyzers.hardware import resolve_ceilings

    events, metadata = _copies_trace("NVIDIA A100-SXM4-40GB")
    rows = classify_events(events, metadata).set_index("name")
    rate = (64 << 20) / 5e-3
    host, device = rows.loc["Memcpy HtoD (Pageable -> Device)"], rows.loc["Memcpy DtoD (Device -> Device)"]
    assert host["bandwidth_fraction"] == pytest.approx(rate / 31.5e9) and host["bound"] == "memory"
    assert device["bandwidth_fraction"] == pytest.approx(rate / 1.555e12) and device["bound"] == "latency"
    assert host["roofline_ns"] == pytest.approx((64 << 20) / 31.5e9 * 1e9)
    # the memory class holds both: its bandwidth share weighs each copy's time by its own roof
    ceilings = resolve_ceilings(metadata, gpu_trace=True)
    memory = aggregate_classes(classify_events(events, metadata), ceilings).set_index("category").loc["memory"]
    expected = 2 * (64 << 20) / (5e-3 * 31.5e9 + 5e-3 * 1.555e12)
    assert memory["bandwidth_fraction"] == pytest.approx(expected)
    # a device whose host link the table does not give: the copy's bound is unknown, not latency
    events, metadata = _copies_trace("NVIDIA B200")
    rows = classify_events(events, metadata).set_index("name")
    assert rows.loc["Memcpy HtoD (Pageable -> Device)", "bound"] == "unknown"
    assert rows.loc["Memcpy DtoD (Device -> Device)", "bound"] == "latency"


def _cpu_mm_trace(mm_ns: int, *, cores: int = 2) -> tuple[pd.DataFrame, dict]:
    """A CPU trace of one fp32 aten::mm of 2·1024³ flop taking ``mm_ns``, on a machine of ``cores``."""
    from profkit.trace.build import build_events

    raw = {"kind": ["cpu_op", "cpu_op"], "name": ["aten::mm", "aten::relu"],
           "start_ns": np.array([0, mm_ns + 1000], np.int64), "duration_ns": np.array([mm_ns, 50_000], np.int64),
           "thread_id": [1, 1], "input_shapes": ["[[1024,1024],[1024,1024]]", "[[1024,1024]]"],
           "input_dtypes": ['["float","float"]', '["float"]']}
    return build_events(raw).to_pandas().assign(rank=0), {"cpu_count": cores, "cpu_name": "some CPU"}


def test_a_guessed_cpu_peak_the_fastest_op_outran_is_raised_to_its_rate():
    from profkit.analyzers.classify import classify_table
    from profkit.analyzers.hardware import resolve_ceilings

    flop = 2.0 * 1024**3
    events, metadata = _cpu_mm_trace(mm_ns=10_000_000)  # 215 Gflop/s
    guess = resolve_ceilings(metadata, gpu_trace=False, calibration={})
    guessed_peak = guess.primary.peak_for("fp32", matrix=True)
    assert guessed_peak < flop / 0.01  # (the premise: the guess is below what the op reached)
    rows = classify_table(events, metadata, ceilings=guess)
    assert rows.ceilings.primary.peak_for("fp32", matrix=True) == pytest.approx(flop / 0.01)
    fractions = rows.frame.set_index("name")["flop_fraction"]
    assert fractions["aten::mm"] == pytest.approx(1.0)  # no op above 100 % of peak
    assert any("raised" in note and "aten::mm" in note for note in rows.ceilings.notes)
    # An op slower than the guess leaves it as it is.
    slow_events, _ = _cpu_mm_trace(mm_ns=100_000_000)  # 21 Gflop/s
    slow = classify_table(slow_events, metadata, ceilings=guess)
    assert slow.ceilings is guess


def test_datasheets_and_measurements_are_never_raised():
    from profkit.analyzers.classify import classify_table
    from profkit.analyzers.hardware import resolve_ceilings

    events, metadata = _cpu_mm_trace(mm_ns=100_000)  # 21 Tflop/s: far above any CPU's peak
    guess = resolve_ceilings(metadata, gpu_trace=False, calibration={})
    assert classify_table(events, metadata, ceilings=guess).ceilings is not guess  # (a guess would be raised)
    measured = resolve_ceilings({**metadata, "cpu_name": "calibrated CPU"}, gpu_trace=False, calibration={
        "cpu:calibrated CPU": {"name": "calibrated CPU", "device_type": "cpu", "memory_tb_per_s": 0.05,
                               "peak_tflop_per_s": {"fp32": 1.0}}})
    assert measured.primary.measured
    rows = classify_table(events, metadata, ceilings=measured)
    assert rows.ceilings is measured
    assert rows.frame.set_index("name")["flop_fraction"]["aten::mm"] > 20  # shown as it is: a wrong count shows
