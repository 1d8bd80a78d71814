"""GPM (NVML GPU Performance Monitoring) sampling and the memory-traffic analysis, on the CPU.

GPU side: ``FakeNvml``, a fake at the pynvml function boundary, including the
GPM calls (nvmlGpmQueryDeviceSupport, nvmlGpmSampleAlloc/Get/Free,
nvmlGpmMetricsGet), driven by a hand-stepped clock.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers import memory_traffic as traffic
from profkit.analyzers.energy import samples_of
from profkit.collectors.telemetry import FakeDevice, FakeNvml
from profkit.collectors.telemetry.buffer import SampleBuffer
from profkit.collectors.telemetry.nvml import NvmlSampler
from profkit.report import build_report
from profkit.trace.build import build_events
from profkit.trace.io import load, write_trace

from fake_sampling import sample_fake

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
PEAK = 5120 / 8 * 2619e6 * 2  # the fake H100's bus width x memory clock x 2 = 3.35232e12 B/s


def dram(t_s: float) -> float:
    return 80.0 if t_s < 1.0 else 10.0  # % of peak bandwidth: busy first second, quiet second


def record(device: FakeDevice, seconds: float = 2.0, **fake_kwargs):
    buffer, sampler, fake = sample_fake(device, seconds, sampler_kwargs={"gpm_interval_ns": 100 * MS}, **fake_kwargs)
    return buffer.frame(), sampler, fake


def test_gpm_sample_pairs_span_their_windows():
    device = FakeDevice(gpm={**FakeDevice().gpm, "NVML_GPM_METRIC_DRAM_BW_UTIL": dram})
    samples, sampler, fake = record(device)
    rows = samples[samples["name"] == "gpm_dram_bw_util_pct"].sort_values("start_ns")
    # one window per 100 ms: [0, 0.1), [0.1, 0.2) ... [1.9, 2.0) s -> 20 windows, contiguous
    assert len(rows) == 20
    assert rows["start_ns"].iloc[0] == T0 and (rows["duration_ns"] == 100 * MS).all()
    assert np.array_equal(rows["start_ns"].to_numpy()[1:], (rows["start_ns"] + rows["duration_ns"]).to_numpy()[:-1])
    assert rows["value"].tolist() == [80.0] * 10 + [10.0] * 10
    # 2 buffers allocated once, 1 + 20 samples taken, both freed at close
    assert fake.calls["nvmlGpmSampleAlloc"] == 2 and fake.calls["nvmlGpmSampleGet"] == 21
    assert fake.calls["nvmlGpmSampleFree"] == 2
    assert sampler.device_info()[0]["telemetry"]["gpm"] == "nvml_gpm"
    # link throughput in bytes/s (the fake says 100 MiB/s out over PCIe)
    pcie = samples[samples["name"] == "gpm_pcie_tx_bytes_per_s"]["value"]
    assert pcie.eq(100 * 2**20).all()
    # NVLink is not configured on this fake: one note names both missing metrics
    assert [n for n in sampler.notes if "GPM lacks" in n] == [
        "telemetry: GPU 0: GPM lacks gpm_nvlink_tx_bytes_per_s, gpm_nvlink_rx_bytes_per_s "
        "(not supported on this GPU or driver)"
    ]


def test_a_nan_gpm_reading_is_dropped_with_a_note():
    """A real H200 returned one NaN DRAM reading (with success) in 60: a mean over the phase was NaN."""
    def dram_with_a_hole(t_s: float) -> float:
        return float("nan") if 0.5 < t_s < 0.6 else 80.0

    device = FakeDevice(gpm={**FakeDevice().gpm, "NVML_GPM_METRIC_DRAM_BW_UTIL": dram_with_a_hole})
    samples, sampler, _ = record(device)
    rows = samples[samples["name"] == "gpm_dram_bw_util_pct"]
    assert len(rows) == 19 and rows["value"].eq(80.0).all()  # 20 windows, the NaN one left out
    assert len(samples[samples["name"] == "gpm_sm_util_pct"]) == 20  # the other metrics keep that window
    assert "telemetry: GPU 0: dropped 1 GPM readings that NVML returned as NaN or infinite" in sampler.notes


def test_gpm_does_not_change_the_other_samples():
    with_gpm, _, _ = record(FakeDevice())
    buffer, _, _ = sample_fake(FakeDevice(), 2.0, sampler_kwargs={"gpm": False})  # the same run, closed the same way
    without = buffer.frame()
    other = lambda frame: frame[~frame["name"].str.startswith("gpm_")].groupby("name").size()  # noqa: E731
    assert other(with_gpm).equals(other(without))


@pytest.mark.parametrize(
    "device, fake_kwargs, words",
    [
        (FakeDevice(gpm_supported=False), {}, "GPM not supported on this GPU (Hopper or newer needed)"),
        (FakeDevice(), {"gpm": False}, "this NVML binding has no GPM calls"),
    ],
)
def test_gpm_unavailable_falls_back_with_a_note(device, fake_kwargs, words):
    samples, sampler, _ = record(device, seconds=0.5, **fake_kwargs)
    assert not samples["name"].str.startswith("gpm_").any()
    assert "memory_util_pct" in set(samples["name"])
    note = [n for n in sampler.notes if words in n]
    assert len(note) == 1 and "falls back to NVML memory utilization" in note[0]


def test_gpm_skipped_on_a_mig_slice():
    mig = FakeDevice(uuid="MIG-11111111-2222-3333-4444-555555555555", mig=True)
    now = [T0]
    fake = FakeNvml([FakeDevice()], mig_devices=[mig], clock=lambda: now[0])
    sampler = NvmlSampler(fake, SampleBuffer(), 20 * MS, clock=lambda: now[0],
                          environ={"CUDA_VISIBLE_DEVICES": mig.uuid})
    sampler.open([])
    assert any("GPM not sampled on a MIG slice" in n for n in sampler.notes)
    assert fake.calls["nvmlGpmSampleAlloc"] == 0
    sampler.close([])


# ------------------------------------------------------------------ the analysis


def _events(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(rank=0)


def test_measured_bytes_by_hand():
    device = FakeDevice(gpm={**FakeDevice().gpm, "NVML_GPM_METRIC_DRAM_BW_UTIL": dram})
    samples, _, _ = record(device)
    (measured,) = traffic.device_traffic(samples_of(_events(samples)), {(0, 0): PEAK})
    assert measured.source == "gpm" and measured.interval_ns == 100 * MS
    # 80 % x peak x 1 s + 10 % x peak x 1 s = 0.9 x 3.35232e12 = 3.017088e12 bytes
    assert measured.bytes.sum == pytest.approx(0.9 * PEAK)
    windows = pd.DataFrame({"label": ["prefill", "decode"], "rank": 0,
                            "start_ns": [T0, T0 + 1000 * MS], "end_ns": [T0 + 1000 * MS, T0 + 2000 * MS]})
    work = pd.DataFrame({"rank": [0], "device_index": [0], "category": ["memory"], "start_ns": [T0],
                         "end_ns": [T0 + 1000 * MS], "bytes": [1e12], "flops": [0.0]})
    rows = {r["phase"]: r for r in traffic.window_traffic([measured], windows, work)}
    assert rows["prefill"]["measured_bytes"] == pytest.approx(0.8 * PEAK)
    assert rows["decode"]["measured_bytes"] == pytest.approx(0.1 * PEAK)
    assert rows["prefill"]["ideal_bytes"] == pytest.approx(1e12)
    assert rows["prefill"]["movement_efficiency"] == pytest.approx(1e12 / (0.8 * PEAK))  # 0.3729
    assert rows["prefill"]["dram_bw_util_pct"] == pytest.approx(80.0)
    assert rows["decode"]["tensor_util_pct"] == pytest.approx(20.0)
    assert not rows["prefill"]["uncertain"]
    (memory,) = traffic.class_traffic([measured], work)
    assert memory["category"] == "memory" and memory["coverage"] == 1.0
    assert memory["measured_bytes"] == pytest.approx(0.8 * PEAK)


def test_nvml_utilization_fallback_is_an_upper_bound():
    samples, _, _ = record(FakeDevice(gpm_supported=False, memory_util_pct=20.0), seconds=1.0)
    (measured,) = traffic.device_traffic(samples_of(_events(samples)), {(0, 0): PEAK})
    assert measured.source == "nvml_utilization"
    # readings every 100 ms from 0 to 1 s: 20 % busy x peak x 1 s
    assert measured.bytes.sum == pytest.approx(0.2 * PEAK)


def _trace(tmp_path, device, extra_rows: pd.DataFrame, **fake_kwargs):
    samples, sampler, _ = record(device, **fake_kwargs)
    extra_rows = extra_rows.assign(process_id=os.getpid())
    table = build_events(pd.concat([samples, extra_rows], ignore_index=True))
    write_trace(tmp_path / "t.parquet", table, {"devices": sampler.device_info(), "notes": sampler.notes})
    return load(tmp_path / "t.parquet")


def _phases_and_copy():
    return pd.DataFrame({
        "kind": ["phase", "phase", "memcpy"],
        "name": ["prefill", "decode", "Memcpy DtoD (Device -> Device)"],
        "start_ns": [T0, T0 + 1000 * MS, T0],
        "duration_ns": [1000 * MS, 1000 * MS, 1000 * MS],
        "device_type": ["cpu", "cpu", "gpu"],
        "device_index": [-1, -1, 0],
        "stream": pd.array([pd.NA, pd.NA, 7], dtype="Int64"),
        "bytes": pd.array([pd.NA, pd.NA, 10**12], dtype="Int64"),
        "thread_id": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
    })


def test_section_gpm(tmp_path):
    device = FakeDevice(gpm={**FakeDevice().gpm, "NVML_GPM_METRIC_DRAM_BW_UTIL": dram})
    report = build_report([_trace(tmp_path, device, _phases_and_copy())])["memory_traffic"]
    assert report["source"] == "gpm"
    assert report["measured_bytes"] == pytest.approx(0.9 * PEAK)
    assert report["ideal_bytes"] == pytest.approx(1e12)  # the copy's recorded bytes
    assert report["movement_efficiency"] == pytest.approx(1e12 / (0.9 * PEAK))
    phases = {p["phase"]: p for p in report["phases"]}
    assert phases["prefill"]["dram_bw_util_pct"] == pytest.approx(80.0)
    assert phases["decode"]["dram_bw_util_pct"] == pytest.approx(10.0)  # the quiet phase moves less
    assert phases["decode"]["ideal_bytes"] == 0.0
    assert report["peak_source"] == ["nvml_bus_width_x_memory_clock"]
    assert report["reason"] is None


def test_section_fallback_and_absent(tmp_path):
    report = build_report([_trace(tmp_path, FakeDevice(gpm_supported=False), _phases_and_copy())])["memory_traffic"]
    assert report["source"] == "nvml_utilization" and report["measured_bytes"] is None
    assert report["busy_bytes_upper_bound"] == pytest.approx(0.2 * PEAK * 2.0)  # 20 % busy for 2 s
    assert "Hopper or newer" in report["reason"] and "not bytes" in report["reason"]
    assert all(p["movement_efficiency"] is None for p in report["phases"])

    nothing = build_report([_trace(tmp_path, FakeDevice(), _phases_and_copy(), init_error=12)])["memory_traffic"]
    assert nothing["source"] is None and nothing["measured_bytes"] is None
    assert "NVML not available" in nothing["reason"]


def test_render_explains_an_efficiency_above_one():
    """Seen on an H200: DRAM moved less than the per-operator ideal (cache reuse); the report says why."""
    from io import StringIO

    from rich.console import Console

    from profkit.report.sections.memory_traffic import CACHE_REUSE_NOTE, render

    def rendered(efficiency: float) -> str:
        out = StringIO()
        render({"source": "gpm", "measured_bytes": 25.5e9, "ideal_bytes": 25.5e9 * efficiency,
                "movement_efficiency": efficiency, "phases": []}, Console(file=out, width=400))
        return out.getvalue()

    assert CACHE_REUSE_NOTE in rendered(1.13)
    assert "L2 cache" not in rendered(0.8)
