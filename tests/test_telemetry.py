"""Telemetry collector tests, on the CPU.

The GPU side runs against ``profkit.collectors.telemetry.FakeNvml``, a fake at
the pynvml function boundary (same calls, shapes and NVML error codes), driven
by a hand-stepped clock so every sample time and value is known. The CPU
sampler runs for real (plus a fake /sys/class/powercap folder for RAPL).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pytest

from profkit.analyzers import energy
from profkit.collectors.telemetry import FakeDevice, FakeNvml, TelemetryCollector
from profkit.collectors.telemetry import cpu as cpu_module
from profkit.collectors.telemetry.buffer import SampleBuffer
from profkit.collectors.telemetry.collector import load_pynvml
from profkit.collectors.telemetry.nvml import NvmlSampler
from profkit.errors import UsageError

T0 = 1_700_000_000_000_000_000
STEP_NS = 20_000_000  # 20 ms ticks


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def drive(fake: FakeNvml, clock: Clock, ticks: int, **kwargs):
    """Open a sampler over ``fake``, tick it ``ticks`` times 20 ms apart, close it: (samples, sampler)."""
    buffer = SampleBuffer()
    sampler = NvmlSampler(fake, buffer, STEP_NS, clock=clock, **kwargs)
    rows: list = []
    active = sampler.open(rows)
    for _ in range(ticks if active else 0):
        clock.now += STEP_NS
        sampler.tick(rows)
    sampler.close(rows)
    buffer.append_many(rows)
    return buffer.frame(), sampler


def uuid(n: int) -> str:
    return f"GPU-{n:02x}{n:02x}0000-0000-0000-0000-00000000000{n}"


# ------------------------------------------------------------------ what is sampled


def test_every_metric_sampled_with_units_and_cadence():
    clock = Clock()
    fake = FakeNvml([FakeDevice(processes={os.getpid(): 3 * 2**30})], clock=clock)
    samples, sampler = drive(fake, clock, ticks=50, gpm=False)  # 1 s
    counts = samples.groupby("name").size()
    # power every tick: 1 probe + 50 ticks = 51; the energy counter (~4 ms of CPU a read on a real GPU)
    # once a second: the probe at 0 s, the tick at 1 s, and the read at stop (also 1 s here)
    assert counts["power_w"] == 51 and counts["energy_j"] == 3
    # 100 ms metrics every 5th tick: 1 + 10 = 11; 500 ms (process memory, clocks, temperature,
    # throttle reasons): 1 + 2 = 3; total memory once
    assert counts["memory_used_bytes"] == 11 and counts["gpu_util_pct"] == 11
    assert counts["process_memory_bytes"] == 3 and counts["temperature_c"] == 3 and counts["sm_clock_mhz"] == 3
    assert counts["memory_total_bytes"] == 1
    assert set(samples["device_type"]) == {"gpu"} and set(samples["device_index"]) == {0}
    assert (samples["duration_ns"] == 0).all() and (samples["process_id"] == os.getpid()).all()
    power = samples[samples["name"] == "power_w"]
    assert power["value"].eq(100.0).all() and power["extra"].isna().all()  # instant field, not averaged
    assert samples.loc[samples["name"] == "process_memory_bytes", "value"].iloc[0] == 3 * 2**30
    # the energy counter in J: 100 W for 1 s = 100 J between first and last reading
    energy_j = samples[samples["name"] == "energy_j"]["value"]
    assert energy_j.iloc[-1] - energy_j.iloc[0] == pytest.approx(100.0)
    info = sampler.device_info()[0]
    assert info["uuid"] == FakeDevice().uuid and info["power_limit_w"] == 700.0
    # 5120 bit / 8 x 2619 MHz x 2 = 3.352 TB/s
    assert info["peak_memory_bandwidth_bytes_per_s"] == pytest.approx(3.35232e12)


def test_unsupported_instant_power_falls_back_to_average_marked_and_probed_once():
    clock = Clock()
    fake = FakeNvml([FakeDevice(unsupported=frozenset({"power_instant"}))], clock=clock)
    samples, sampler = drive(fake, clock, ticks=30, gpm=False)
    power = samples[samples["name"] == "power_w"]
    assert len(power) == 31
    assert {json.loads(e)["averaged"] for e in power["extra"]} == {True}
    # the instant-power field is tried once, at the probe; every other field call reads the energy counter
    energy_reads = (samples["name"] == "energy_j").sum()
    assert fake.calls["nvmlDeviceGetFieldValues"] == 1 + energy_reads
    assert fake.calls["nvmlDeviceGetPowerUsage"] == 31
    assert any("1 s average" in n for n in sampler.notes)


def test_unsupported_fields_become_one_note_and_no_rows():
    clock = Clock()
    device = FakeDevice(unsupported=frozenset({"temperature", "throttle", "energy"}))
    samples, sampler = drive(FakeNvml([device], clock=clock), clock, ticks=10, gpm=False)
    assert not samples["name"].isin(["temperature_c", "throttle_reasons_mask", "energy_j"]).any()
    assert (samples["name"] == "power_w").sum() == 11
    lacks = [n for n in sampler.notes if "lacks" in n]
    assert len(lacks) == 1
    for metric in ("energy_j", "temperature_c", "throttle_reasons_mask"):
        assert metric in lacks[0]


def test_energy_counter_read_once_a_second_and_at_stop():
    # 100 W for 2.6 s: the counter is read at the probe, at 1 s and 2 s, and once more at stop (2.6 s)
    clock = Clock()
    samples, _ = drive(FakeNvml([FakeDevice()], clock=clock), clock, ticks=130, gpm=False)
    readings = samples[samples["name"] == "energy_j"]
    assert ((readings["start_ns"] - T0) / 1e9).tolist() == pytest.approx([0.0, 1.0, 2.0, 2.6])
    # the stop read makes the counter cover the whole run: 100 W x 2.6 s
    assert readings["value"].iloc[-1] - readings["value"].iloc[0] == pytest.approx(260.0)


def test_energy_read_at_stop_comes_from_close():
    clock = Clock()
    buffer = SampleBuffer()
    sampler = NvmlSampler(FakeNvml([FakeDevice()], clock=clock), buffer, STEP_NS, clock=clock, gpm=False)
    sampler.open([])
    clock.now += 300 * 1_000_000  # no tick: the 1 s read was never reached
    rows: list = []
    sampler.close(rows)
    buffer.append_many(rows)
    closing = buffer.frame()
    assert closing["name"].tolist() == ["energy_j"]  # only the metric marked read_at_close
    assert closing["start_ns"].tolist() == [clock.now]
    assert closing["value"].iloc[0] == pytest.approx(30.0)  # 100 W x 0.3 s since the fake started


def test_energy_counter_reset_mid_run():
    # 100 W; the counter restarts from 0 at t = 1.5 s (driver reload). Read at 0, 1 and 2 s (the stop is at 2 s).
    clock = Clock()
    fake = FakeNvml([FakeDevice(energy_reset_at_s=1.5, energy_start_mj=5_000_000)], clock=clock)
    samples, _ = drive(fake, clock, ticks=100, gpm=False)
    readings = samples[samples["name"] == "energy_j"]
    track = energy.counter_track(readings["start_ns"], readings["value"], source="nvml_energy_counter")
    # 0 -> 1 s: 100 J; at 2 s the counter reads 50 J since its restart (the 50 J from 1 to 1.5 s are lost).
    assert track.total_j == pytest.approx(150.0)
    assert track.resets == 1


def test_energy_counter_wrap_known_range():
    # A counter that wraps every 150 J (RAPL-like, range known): 100 W for 2.5 s, read at 0, 1, 2 s and stop.
    clock = Clock()
    fake = FakeNvml([FakeDevice(energy_wrap_mj=150_000)], clock=clock)
    samples, _ = drive(fake, clock, ticks=125, gpm=False)
    readings = samples[samples["name"] == "energy_j"]
    assert readings["value"].tolist() == pytest.approx([0.0, 100.0, 50.0, 100.0])  # wrapped after 150 J
    track = energy.counter_track(readings["start_ns"], readings["value"], wrap=150.0, source="rapl_package_counter")
    assert track.total_j == pytest.approx(250.0)  # 100 W x 2.5 s
    assert track.wraps == 1


def test_lost_gpu_stops_sampling_with_a_note():
    clock = Clock()
    samples, sampler = drive(FakeNvml([FakeDevice(lost_at_s=0.5)], clock=clock), clock, ticks=50, gpm=False)
    power = samples[samples["name"] == "power_w"]
    assert (power["start_ns"] < T0 + 500_000_000).all()
    assert any("GPU is lost" in n for n in sampler.notes)


# ------------------------------------------------------------------ which devices


def _three_gpus():
    # NVML enumerates them in list order; CUDA (PCI order) sees bus 01, 02, 03.
    return [
        FakeDevice(uuid=uuid(1), pci_bus_id="00000000:03:00.0", power_w=300.0),
        FakeDevice(uuid=uuid(2), pci_bus_id="00000000:01:00.0", power_w=100.0),
        FakeDevice(uuid=uuid(3), pci_bus_id="00000000:02:00.0", power_w=200.0),
    ]


@pytest.mark.parametrize(
    "visible, expected_power",
    [
        (None, [100.0, 200.0, 300.0]),  # all, in PCI order
        ("2,0", [300.0, 100.0]),  # CUDA indices count in PCI order
        (f"{uuid(3)[:10]},{uuid(1)}", [200.0, 300.0]),  # UUIDs and UUID prefixes
        ("1,bogus,0", [200.0]),  # CUDA stops at the first invalid entry
        ("", []),  # nothing visible
    ],
)
def test_cuda_visible_devices_mapped_by_uuid(visible, expected_power):
    clock = Clock()
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    samples, sampler = drive(FakeNvml(_three_gpus(), clock=clock), clock, ticks=2, gpm=False, environ=environ)
    power = samples[samples["name"] == "power_w"].groupby("device_index")["value"].first()
    assert power.tolist() == expected_power
    assert [d["index"] for d in sampler.device_info()] == list(range(len(expected_power)))
    if not expected_power:
        assert any("sees no GPU" in n for n in sampler.notes)


def test_explicit_missing_device_raises_with_the_fix():
    collector = TelemetryCollector(devices=[3], nvml=FakeNvml(_three_gpus()), cpu=False,
                                   environ={"CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(UsageError, match=r"telemetry device 3 is not visible.*GPUs 0, 1 \(CUDA_VISIBLE_DEVICES=0,1\)"):
        collector.start()
    assert collector.notes() == [] or all("telemetry" in n for n in collector.notes())


def test_explicit_device_subset():
    clock = Clock()
    samples, sampler = drive(FakeNvml(_three_gpus(), clock=clock), clock, ticks=1, gpm=False, devices=[2], environ={})
    assert set(samples["device_index"]) == {2}
    assert sampler.device_info()[0]["uuid"] == uuid(1)  # CUDA 2 = third on the PCI bus = 03:00.0


def test_mig_slice_by_uuid():
    clock = Clock()
    mig = FakeDevice(uuid="MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", mig=True,
                     unsupported=frozenset({"power_instant", "power_average", "energy"}))
    fake = FakeNvml([FakeDevice()], mig_devices=[mig], clock=clock)
    samples, sampler = drive(fake, clock, ticks=5, environ={"CUDA_VISIBLE_DEVICES": mig.uuid})
    assert set(samples["device_index"]) == {0}
    assert "memory_used_bytes" in set(samples["name"]) and "power_w" not in set(samples["name"])
    assert sampler.device_info()[0]["mig"] is True
    assert any("MIG slice" in n for n in sampler.notes)


# ------------------------------------------------------------------ graceful absence


@pytest.mark.parametrize("code, words", [(12, "NVML not available (no NVIDIA driver library)"), (9, "NVML not available (NVIDIA driver not loaded)")])
def test_no_nvml_gives_a_note_and_cpu_samples(code, words):
    collector = TelemetryCollector(nvml=FakeNvml(init_error=code), interval_ms=20)
    with collector:
        time.sleep(0.05)
    notes = collector.notes()
    assert any(words in n and "no GPU power" in n for n in notes)
    assert set(collector.samples()["device_type"]) == {"cpu"}
    assert collector.device_info() == []


def test_pynvml_missing_is_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    module, note = load_pynvml()
    assert module is None and "not installed" in note


def test_real_pynvml_without_a_gpu_never_raises():
    """On this machine pynvml is installed but there is no driver: a note, not a traceback."""
    collector = TelemetryCollector(interval_ms=20, cpu=False)
    with collector:
        time.sleep(0.02)
    if not collector.device_info():
        assert any(n.startswith("telemetry: NVML") or "no GPU" in n for n in collector.notes())


def test_start_stop_idempotent_and_thread_samples():
    collector = TelemetryCollector(interval_ms=10, nvml=FakeNvml())
    collector.stop()  # before start: nothing
    collector.start()
    collector.start()  # second start: no second thread
    time.sleep(0.15)
    collector.stop()
    collector.stop()
    stats = collector.stats()
    assert stats["ticks"] >= 5 and 0 <= stats["cpu_share"] < 1
    power = collector.samples().query("name == 'power_w'")
    assert len(power) >= 5 and power["start_ns"].is_monotonic_increasing


def test_bad_interval_is_a_usage_error():
    with pytest.raises(UsageError, match="positive"):
        TelemetryCollector(interval_ms=0)


# ------------------------------------------------------------------ the CPU sampler


def test_cpu_sampler_values_plausible():
    collector = TelemetryCollector(nvml=FakeNvml(init_error=12), interval_ms=10, cpu_interval_ms=10)
    with collector:
        deadline = time.process_time() + 0.15
        while time.process_time() < deadline:  # burn 150 ms of CPU
            pass
    samples = collector.samples()
    cpu_time = samples.loc[samples["name"] == "cpu_time_s", "value"].to_numpy()
    rss = samples.loc[samples["name"] == "rss_bytes", "value"].to_numpy()
    assert np.all(np.diff(cpu_time) >= 0)
    assert cpu_time[-1] - cpu_time[0] >= 0.1
    assert 10 * 2**20 < rss.max() < 1 * 2**40  # a Python process with pandas: more than 10 MiB
    assert (samples["device_index"] == -1).all()


def _powercap(tmp_path, micro_j=1_000_000, wrap=262_143_328_850):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{micro_j}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    sub = tmp_path / "intel-rapl:0:0"  # a sub-zone (core): not a package, not read
    sub.mkdir()
    (sub / "name").write_text("core\n")
    return zone


def test_rapl_package_energy_read_from_powercap(tmp_path):
    _powercap(tmp_path, micro_j=12_500_000)
    collector = TelemetryCollector(nvml=FakeNvml(init_error=12), powercap_root=str(tmp_path))
    with collector:
        pass
    rapl = collector.samples().query("name == 'rapl_energy_j'")
    assert len(rapl) >= 2 and rapl["value"].eq(12.5).all()
    assert json.loads(rapl["extra"].iloc[0]) == {"zone": "package-0", "wrap_j": 262143.32885}
    assert not any("RAPL" in n for n in collector.notes())


def test_rapl_unreadable_without_root_is_a_note(tmp_path, monkeypatch):
    _powercap(tmp_path)
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(cpu_module.os, "open", deny)
    collector = TelemetryCollector(nvml=FakeNvml(init_error=12), powercap_root=str(tmp_path))
    with collector:
        pass
    assert "rapl_energy_j" not in set(collector.samples()["name"])
    assert any("RAPL energy not readable without root" in n for n in collector.notes())


def test_no_powercap_is_a_note(tmp_path):
    collector = TelemetryCollector(nvml=FakeNvml(init_error=12), powercap_root=str(tmp_path / "absent"))
    with collector:
        pass
    assert any("no RAPL energy counters" in n for n in collector.notes())


def test_uuids_from_torch_when_cuda_is_initialised(monkeypatch):
    """torch's own device UUIDs (printed without the GPU- prefix) win over CUDA_VISIBLE_DEVICES parsing."""
    from types import SimpleNamespace

    order = [uuid(3), uuid(1)]  # CUDA 0 = the 200 W GPU, CUDA 1 = the 300 W one
    cuda = SimpleNamespace(
        is_initialized=lambda: True,
        device_count=lambda: len(order),
        get_device_properties=lambda i: SimpleNamespace(uuid=order[i].removeprefix("GPU-")),
    )
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    clock = Clock()
    samples, sampler = drive(FakeNvml(_three_gpus(), clock=clock), clock, ticks=1, gpm=False,
                             environ={"CUDA_VISIBLE_DEVICES": "0"})
    power = samples[samples["name"] == "power_w"].groupby("device_index")["value"].first()
    assert power.tolist() == [200.0, 300.0]
    assert [d["uuid"] for d in sampler.device_info()] == order
