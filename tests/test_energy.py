"""Energy analysis arithmetic, by hand; the section end to end on a trace file.

Sample tables are written out directly (no NVML involved); the end-to-end
test gets its samples from the fake at the pynvml function boundary
(``FakeNvml``) with a hand-stepped clock.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers import energy
from profkit.collectors.telemetry import FakeDevice, FakeNvml
from profkit.collectors.telemetry.buffer import SampleBuffer
from profkit.collectors.telemetry.nvml import NvmlSampler
from profkit.report import build_report
from profkit.trace.build import build_events
from profkit.trace.io import load, write_trace

from fake_sampling import sample_fake

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
S = 1_000_000_000


def samples(name, t_ns, values, *, device_type="gpu", device_index=0, rank=0, extra=None):
    return pd.DataFrame({
        "rank": rank, "name": name, "device_type": device_type, "device_index": device_index,
        "start_ns": np.asarray(t_ns, dtype=np.int64), "duration_ns": 0,
        "value": np.asarray(values, dtype=np.float64), "extra": extra,
    })


# ------------------------------------------------------------------ counters and integration


def test_counter_deltas_reset_and_wrap():
    # 10 -> 20 (+10), 20 -> 5 (drop), 5 -> 15 (+10)
    deltas, resets, wraps = energy.counter_deltas(np.array([10.0, 20.0, 5.0, 15.0]))
    assert deltas.tolist() == [10.0, 5.0, 10.0] and (resets, wraps) == (1, 0)  # reset: counted 5 since restart
    deltas, resets, wraps = energy.counter_deltas(np.array([10.0, 20.0, 5.0, 15.0]), wrap=30.0)
    assert deltas.tolist() == [10.0, 15.0, 10.0] and (resets, wraps) == (0, 1)  # wrap: 30 - 20 + 5 = 15


def test_constant_100_w_for_2_s_is_200_j_both_ways():
    t = T0 + np.arange(0, 101) * 20 * MS  # 0 .. 2 s every 20 ms
    power = energy.power_track(t, np.full(len(t), 100.0))
    assert power.total_j == pytest.approx(200.0)  # 100 W x 2 s
    # the counter refreshes every 100 ms: read every 20 ms it holds its value 4 readings out of 5
    counter_j = 100.0 * ((t - T0) // (100 * MS)) * 0.1
    counter = energy.counter_track(t, counter_j, source="nvml_energy_counter")
    assert counter.total_j == pytest.approx(200.0)
    assert len(counter.t_ns) == 21  # only the changes are kept: 0, 0.1, ..., 2.0 s
    assert counter.refresh_ns == 100 * MS  # measured from the data
    assert counter.avg_power_w == pytest.approx(100.0)


def test_trapezoid_on_a_ramp():
    # power rising 0 -> 200 W linearly over 1 s: 1/2 x 200 W x 1 s = 100 J
    t = T0 + np.arange(0, 11) * 100 * MS
    track = energy.power_track(t, np.linspace(0, 200, 11))
    assert track.total_j == pytest.approx(100.0)
    # the first half second: 1/2 x 100 W x 0.5 s = 25 J
    assert track.between(np.array([T0]), np.array([T0 + 500 * MS]))[0] == pytest.approx(25.0)


def test_averaged_power_marked_with_1_s_resolution():
    t = T0 + np.arange(0, 51) * 20 * MS
    table = samples("power_w", t, np.full(len(t), 50.0), extra=json.dumps({"averaged": True}))
    (track,) = energy.device_tracks(table)
    assert track.source == "nvml_power_average_integrated"
    assert track.refresh_ns == S
    assert track.total_j == pytest.approx(50.0)  # 50 W x 1 s


def test_rapl_zones_summed_with_wrap():
    # package-0 wraps at 100 J: 90 -> 95 -> 3 -> 8 is 5 + 8 + 5 = 18 J; package-1: 0 -> 6 J
    t = T0 + np.arange(4) * 100 * MS
    zone0 = samples("rapl_energy_j", t, [90, 95, 3, 8], device_type="cpu", device_index=-1,
                    extra=json.dumps({"zone": "package-0", "wrap_j": 100.0}))
    zone1 = samples("rapl_energy_j", t, [0, 2, 4, 6], device_type="cpu", device_index=-1,
                    extra=json.dumps({"zone": "package-1", "wrap_j": 100.0}))
    (track,) = energy.device_tracks(pd.concat([zone0, zone1], ignore_index=True))
    assert track.total_j == pytest.approx(24.0)  # 18 + 6
    assert track.wraps == 1 and track.source == "rapl_package_counter"


def test_counter_preferred_over_power():
    t = T0 + np.arange(0, 11) * 100 * MS
    table = pd.concat([samples("power_w", t, np.full(11, 80.0)), samples("energy_j", t, np.arange(11) * 10.0)])
    (track,) = energy.device_tracks(table)
    # the counter's total (10 J x 10), not the integrated power's 80 J; the power only shapes it
    assert track.source == "nvml_energy_counter_power_shaped" and track.total_j == pytest.approx(100.0)


# ------------------------------------------------------------------ the counter shaped by power


def _counter_and_power(counter_s, counter_j, power_w_at, power_every_ms=20, seconds=2.0, extra=None):
    """One device's samples: counter readings at ``counter_s``, power ``power_w_at(t_s)`` every 20 ms."""
    power_t = T0 + np.arange(0, int(seconds * 1e3 / power_every_ms) + 1) * power_every_ms * MS
    return pd.concat([
        samples("energy_j", T0 + np.round(np.asarray(counter_s) * S).astype(np.int64), counter_j),
        samples("power_w", power_t, power_w_at((power_t - T0) / S), extra=extra),
    ], ignore_index=True)


def _step_100_then_300_w(t_s):
    return np.where(t_s < 1.0, 100.0, 300.0)


def test_power_shapes_a_counter_read_only_at_start_and_end():
    # 100 W for 1 s, then 300 W for 1 s; the counter read only at 0 and 2 s: 400 J
    (track,) = energy.device_tracks(_counter_and_power([0.0, 2.0], [1000.0, 1400.0], _step_100_then_300_w))
    assert track.source == "nvml_energy_counter_power_shaped"
    assert track.total_j == 400.0  # exactly the counter's
    first, second = track.between(np.array([T0, T0 + S]), np.array([T0 + S, T0 + 2 * S]))
    # the counter alone (linear) says 200 J each; the 20 ms power samples place the step to one sample
    # interval, where the trapezoid counts 200 W instead of 100 W (2 J of 402 J of power-weight)
    assert second == pytest.approx(300.0, abs=3.0) and first == pytest.approx(100.0, abs=3.0)
    assert first + second == pytest.approx(400.0)


def test_power_shaping_keeps_every_counter_reading():
    # counter at 0, 0.5, 1, 2 s; power varying inside every interval
    counter_s, counter_j = [0.0, 0.5, 1.0, 2.0], [0.0, 50.0, 100.0, 400.0]
    table = _counter_and_power(counter_s, counter_j, lambda t: 100.0 + 50.0 * np.sin(7 * t) ** 2)
    (track,) = energy.device_tracks(table)
    at_readings = track.between(np.full(4, T0), T0 + np.round(np.asarray(counter_s) * S).astype(np.int64))
    assert at_readings.tolist() == pytest.approx(counter_j)
    assert len(track.t_ns) == 101  # every power sample in [0, 2 s] is a knot (the counter's four are among them)
    assert track.refresh_ns == 20 * MS  # the power changes at every sample: shaped to 20 ms, not the counter's 0.5 s


def test_power_shaping_under_constant_power_is_the_linear_counter():
    counter_s, counter_j = [0.0, 0.7, 2.0], [0.0, 70.0, 200.0]
    shaped, = energy.device_tracks(_counter_and_power(counter_s, counter_j, lambda t: np.full(len(t), 100.0)))
    linear, = energy.device_tracks(samples("energy_j", T0 + np.round(np.asarray(counter_s) * S).astype(np.int64),
                                           counter_j))
    rng = np.random.default_rng(0)
    ends = np.sort(rng.integers(T0, T0 + 2 * S, size=(50, 2)), axis=1)
    assert shaped.between(ends[:, 0], ends[:, 1]) == pytest.approx(linear.between(ends[:, 0], ends[:, 1]))


def test_no_power_drawn_in_an_interval_spreads_it_linearly():
    # power reads 0 W in the first second (the counter says 100 J), 300 W in the second
    table = _counter_and_power([0.0, 1.0, 2.0], [0.0, 100.0, 400.0], lambda t: np.where(t <= 1.0, 0.0, 300.0))
    (track,) = energy.device_tracks(table)
    quarter = track.between(np.array([T0, T0 + S + 250 * MS]), np.array([T0 + 250 * MS, T0 + S + 500 * MS]))
    assert quarter[0] == pytest.approx(25.0)  # a quarter of the first second's 100 J
    assert track.total_j == 400.0


def test_counter_without_instant_power_is_unchanged():
    counter_s, counter_j = [0.0, 1.0, 2.0], [0.0, 100.0, 400.0]
    alone = samples("energy_j", T0 + np.round(np.asarray(counter_s) * S).astype(np.int64), counter_j)
    (plain,) = energy.device_tracks(alone)
    assert plain.source == "nvml_energy_counter" and plain.t_ns.tolist() == (alone["start_ns"]).tolist()
    # NVML's 1 s average is not instant power: it does not shape the counter
    averaged = _counter_and_power(counter_s, counter_j, _step_100_then_300_w, extra=json.dumps({"averaged": True}))
    (track,) = energy.device_tracks(averaged)
    assert track.source == "nvml_energy_counter"
    assert track.t_ns.tolist() == plain.t_ns.tolist() and track.cum_j.tolist() == plain.cum_j.tolist()
    assert track.refresh_ns == plain.refresh_ns


# ------------------------------------------------------------------ windows


def _step_power_track():
    # 100 W for 0-1 s, then 300 W for 1-2 s, counter refreshed every 100 ms
    t = T0 + np.arange(0, 21) * 100 * MS
    seconds = (t - T0) / S
    joules = np.where(seconds <= 1, 100 * seconds, 100 + 300 * (seconds - 1))
    return energy.counter_track(t, joules, source="nvml_energy_counter")


def test_window_attribution_by_overlap():
    track = _step_power_track()
    windows = pd.DataFrame({
        "label": ["a", "b", "b"],
        "rank": 0,
        "start_ns": [T0 + 500 * MS, T0, T0 + 1500 * MS],
        "end_ns": [T0 + 1500 * MS, T0 + 200 * MS, T0 + 2000 * MS],
        "tokens": [np.nan, 10, 30],
    })
    table = energy.attribute_windows([track], windows).set_index("label")
    # a: 0.5 s x 100 W + 0.5 s x 300 W = 50 + 150 = 200 J
    assert table.loc["a", "energy_j"] == pytest.approx(200.0)
    assert table.loc["a", "avg_power_w"] == pytest.approx(200.0)
    # b: 0.2 s x 100 W + 0.5 s x 300 W = 20 + 150 = 170 J over 40 tokens = 4.25 J/token
    assert table.loc["b", "energy_j"] == pytest.approx(170.0)
    assert table.loc["b", "j_per_token"] == pytest.approx(4.25)
    assert table.loc["b", "j_per_window"] == pytest.approx(85.0)
    assert not table["uncertain"].any()
    # uncertainty: segments x refresh x average power; average power = 400 J / 2 s = 200 W
    assert table.loc["a", "uncertainty_j"] == pytest.approx(1 * 0.1 * 200.0)
    assert table.loc["b", "uncertainty_j"] == pytest.approx(2 * 0.1 * 200.0)


def test_short_windows_merged_or_marked_uncertain():
    track = _step_power_track()
    # ten back-to-back 50 ms decode passes (one 500 ms segment) and one lone 30 ms pass
    starts = T0 + np.arange(10) * 50 * MS
    windows = pd.DataFrame({
        "label": ["decode"] * 10 + ["tiny"],
        "rank": 0,
        "start_ns": np.r_[starts, T0 + 1700 * MS],
        "end_ns": np.r_[starts + 50 * MS, T0 + 1730 * MS],
    })
    table = energy.attribute_windows([track], windows).set_index("label")
    assert table.loc["decode", "segments"] == 1 and not table.loc["decode", "uncertain"]
    assert table.loc["decode", "energy_j"] == pytest.approx(50.0)  # 0.5 s x 100 W
    assert table.loc["decode", "resolved_share"] == 1.0
    assert table.loc["tiny", "uncertain"] and table.loc["tiny", "resolved_share"] == 0.0
    # its energy is still the interpolated 0.03 s x 300 W = 9 J, but ± 0.1 s x 200 W = 20 J
    assert table.loc["tiny", "energy_j"] == pytest.approx(9.0)
    assert table.loc["tiny", "uncertainty_j"] == pytest.approx(20.0)


def test_windows_of_another_rank_use_that_ranks_devices():
    t = T0 + np.arange(0, 11) * 100 * MS
    rank0 = energy.counter_track(t, np.arange(11) * 10.0, source="c", key=(0, "gpu", 0))  # 100 W
    rank1 = energy.counter_track(t, np.arange(11) * 30.0, source="c", key=(1, "gpu", 0))  # 300 W
    got = energy.window_energy([rank0, rank1], np.array([0, 1]), np.array([T0, T0]), np.array([T0 + S, T0 + S]))
    assert got.tolist() == pytest.approx([100.0, 300.0])


def test_class_energy_split_by_busy_time():
    # one 100 ms counter interval with 10 J: contraction busy 60 ms, elementwise 20 ms, idle 20 ms
    track = energy.counter_track(np.array([T0, T0 + 100 * MS]), np.array([0.0, 10.0]), source="c")
    work = pd.DataFrame({
        "rank": 0, "device_type": "gpu", "device_index": 0,
        "category": ["contraction", "contraction", "elementwise"],
        "start_ns": [T0, T0 + 30 * MS, T0 + 60 * MS],
        "end_ns": [T0 + 30 * MS, T0 + 60 * MS, T0 + 80 * MS],
    })
    table = energy.attribute_classes([track], work).set_index("category")
    assert table.loc["contraction", "energy_j"] == pytest.approx(6.0)  # 60 % of 10 J
    assert table.loc["elementwise", "energy_j"] == pytest.approx(2.0)
    assert table.loc["idle", "energy_j"] == pytest.approx(2.0)
    assert table["share"].sum() == pytest.approx(1.0)


def test_duplicate_gpu_sampled_by_two_ranks_counted_once():
    t = T0 + np.arange(0, 11) * 100 * MS
    tracks = [energy.counter_track(t, np.arange(11) * 10.0, source="c", key=(r, "gpu", 0)) for r in (0, 1)]
    kept = energy.drop_duplicate_devices(tracks, {(0, 0): "GPU-a", (1, 0): "GPU-a"})
    assert [(k.rank, k.device_index) for k in kept] == [(0, 0)]
    kept = energy.drop_duplicate_devices(tracks, {(0, 0): "GPU-a", (1, 0): "GPU-b"})
    assert len(kept) == 2


# ------------------------------------------------------------------ the report section


def _trace(tmp_path, device: FakeDevice, phases: pd.DataFrame, seconds: float = 2.0):
    buffer, sampler, _ = sample_fake(device, seconds, sampler_kwargs={"gpm": False})
    phases = phases.assign(kind="phase", device_type="cpu", device_index=-1, process_id=os.getpid())
    table = build_events(pd.concat([buffer.frame(), phases], ignore_index=True))
    path = tmp_path / "trace.parquet"
    write_trace(path, table, {"devices": sampler.device_info(), "notes": sampler.notes})
    return load(path)


def test_section_prefill_decode_and_steps(tmp_path):
    device = FakeDevice(power_w=[(0, 100.0), (1.0, 300.0)], refresh_ms=100)
    phases = pd.DataFrame({
        "name": ["prefill", "decode", "train_step", "train_step"],
        "start_ns": [T0 + 500 * MS, T0 + 1000 * MS, T0, T0 + 1000 * MS],
        "duration_ns": [500 * MS, 1000 * MS, 1000 * MS, 1000 * MS],
        "token_count": pd.array([100, 50, pd.NA, pd.NA], dtype="Int64"),
    })
    generate = pd.DataFrame({"name": ["generate"], "start_ns": [T0 + 500 * MS], "duration_ns": [1500 * MS],
                             "token_count": pd.array([50], dtype="Int64")})
    report = build_report([_trace(tmp_path, device, pd.concat([phases, generate]))])["energy"]
    # 100 W x 1 s + 300 W x 1 s = 400 J over 2 s
    assert report["total_j"] == pytest.approx(400.0)
    assert report["avg_power_w"] == pytest.approx(200.0)
    assert report["peak_power_w"] == pytest.approx(300.0)
    assert report["source"] == "nvml_energy_counter_power_shaped" and report["scope"] == "gpu"
    assert report["memory_high_water_bytes"] == 2 * 2**30
    phases_out = {p["phase"]: p for p in report["phases"]}
    # Power is sampled every 20 ms: over the sample interval that straddles the step at 1 s the trapezoid
    # counts (100 + 300) / 2 W, not 100 W, so the first second gets 2 J more power-weight than it drew.
    edge_j = 2.0
    assert phases_out["prefill"]["energy_j"] == pytest.approx(50.0, abs=edge_j)  # 0.5 s x 100 W
    assert phases_out["decode"]["energy_j"] == pytest.approx(300.0)  # 1 s x 300 W
    assert phases_out["prefill"]["j_per_token"] == pytest.approx(0.5, abs=edge_j / 100)  # 50 J / 100 tokens
    assert phases_out["decode"]["j_per_token"] == pytest.approx(6.0)  # 300 J / 50 tokens
    # passes only: (50 + 300) J / (100 + 50) tokens; the generate call: 350 J / 50 tokens
    assert report["j_per_token"] == pytest.approx(350.0 / 150, abs=edge_j / 150)
    assert report["j_per_generated_token"] == pytest.approx(350.0 / 50, abs=edge_j / 50)
    steps = report["steps"]
    assert steps["count"] == 2 and steps["j_per_step"] == pytest.approx(200.0)
    assert (steps["min_j"], steps["max_j"]) == pytest.approx((100.0, 300.0))
    assert report["reason"] is None


def test_section_falls_back_to_integrated_power(tmp_path):
    device = FakeDevice(power_w=150.0, unsupported=frozenset({"energy"}))
    report = build_report([_trace(tmp_path, device, pd.DataFrame(columns=["name", "start_ns", "duration_ns"]))])
    assert report["energy"]["source"] == "nvml_power_instant_integrated"
    assert report["energy"]["total_j"] == pytest.approx(300.0)  # 150 W x 2 s


def test_section_without_samples_says_why(tmp_path):
    device = FakeDevice(unsupported=frozenset({"power_instant", "power_average", "energy"}))
    phases = pd.DataFrame({"name": ["decode"], "start_ns": [T0], "duration_ns": [S]})
    report = build_report([_trace(tmp_path, device, phases)])["energy"]
    assert report["total_j"] is None and report["avg_power_w"] is None and report["source"] is None
    assert "power_w" in report["reason"] and "energy_j" in report["reason"]
    assert report["memory_high_water_bytes"] == 2 * 2**30  # what was measured is still reported


def test_section_energy_per_class_from_kernels(tmp_path):
    # 100 W throughout; in the first second a GEMM kernel runs 0-0.6 s and an add kernel 0.6-0.8 s.
    kernels = pd.DataFrame({
        "name": ["ampere_sgemm_128x64_nn", "vectorized_elementwise_kernel<4, CUDAFunctor_add<float>>"],
        "start_ns": [T0, T0 + 600 * MS],
        "duration_ns": [600 * MS, 200 * MS],
    })
    now = [T0]
    fake = FakeNvml([FakeDevice(power_w=100.0, refresh_ms=100)], clock=lambda: now[0])
    buffer = SampleBuffer()
    sampler = NvmlSampler(fake, buffer, 20 * MS, clock=lambda: now[0], gpm=False)
    rows: list = []
    sampler.open(rows)
    for _ in range(50):  # 1 s
        now[0] += 20 * MS
        sampler.tick(rows)
    buffer.append_many(rows)
    kernels = kernels.assign(kind="kernel", device_type="gpu", device_index=0, stream=7, process_id=os.getpid(),
                             thread_id=pd.NA)
    table = build_events(pd.concat([buffer.frame(), kernels], ignore_index=True))
    write_trace(tmp_path / "k.parquet", table, {"devices": sampler.device_info()})
    report = build_report([load(tmp_path / "k.parquet")])["energy"]
    classes = {c["category"]: c["energy_j"] for c in report["classes"]}
    # 100 J over 1 s: contraction 0.6 s -> 60 J, elementwise 0.2 s -> 20 J, idle 0.2 s -> 20 J
    assert classes == pytest.approx({"contraction": 60.0, "elementwise": 20.0, "idle": 20.0})
    assert "equal power" in report["classes_method"]


def test_section_cpu_only_run_with_rapl(tmp_path):
    # two packages, 30 W and 10 W for 1 s (readings every 100 ms), RSS sampled beside them
    t = T0 + np.arange(11) * 100 * MS
    raw = pd.concat([
        samples("rapl_energy_j", t, np.arange(11) * 3.0, device_type="cpu", device_index=-1,
                extra=json.dumps({"zone": "package-0", "wrap_j": 262143.0})),
        samples("rapl_energy_j", t, np.arange(11) * 1.0, device_type="cpu", device_index=-1,
                extra=json.dumps({"zone": "package-1", "wrap_j": 262143.0})),
        samples("rss_bytes", t, np.full(11, 2.0**30), device_type="cpu", device_index=-1),
    ]).drop(columns="rank").assign(kind="sample", process_id=os.getpid(), thread_id=pd.NA)
    write_trace(tmp_path / "c.parquet", build_events(raw), {})
    report = build_report([load(tmp_path / "c.parquet")])["energy"]
    assert report["scope"] == "cpu" and report["source"] == "rapl_package_counter"
    assert report["total_j"] == pytest.approx(40.0)  # (30 + 10) W x 1 s
    assert report["avg_power_w"] == pytest.approx(40.0)
    assert report["rss_high_water_bytes"] == 2.0**30


def test_section_splits_energy_over_the_phases_the_report_finds(tmp_path):
    # No phase marks: the decode passes are vLLM's step annotations, found by the report's engine rule.
    # The energy section once read marks only and listed no phase, while the Phases table gave decode
    # its joules. Each pass runs 0.9-1.8 ms of its step (until its kernel ends) at 300 W: 0.27 J.
    from synthetic_traces import make_trace

    document = build_report([load(make_trace(tmp_path / "vllm.parquet", decode_from="vllm"))])
    (decode,) = document["energy"]["phases"]
    (row,) = [p for p in document["phases"] if p["phase"] == "decode"]
    assert (decode["phase"], decode["count"], decode["time_ns"]) == ("decode", 4, 4 * 900_000)
    assert decode["energy_j"] == pytest.approx(4 * 0.9e-3 * 300) == row["energy_j"]
