"""Hardware rows, device-name matching, ceilings resolution and the calibration file."""

from __future__ import annotations

import json

import pytest

from profkit.analyzers import hardware
from profkit.analyzers.hardware import PEAK_DTYPES, match_device, resolve_ceilings, spec_by_name, specs
from profkit.errors import UsageError

from conftest import cli_runner, run_profkit

REQUIRED = ("h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l4", "l40s", "a10g", "v100-sxm2", "b200",
            "mi300x")


@pytest.mark.parametrize("spec", specs(), ids=lambda s: s.key)
def test_every_row_is_complete_and_cited(spec):
    assert spec.source and spec.memory_bytes_per_s > 0
    assert set(spec.peak_flops_per_s) == set(PEAK_DTYPES)
    assert spec.peak_flops_per_s["fp32"] > 0
    for value in spec.peak_flops_per_s.values():
        assert value is None or value > 0


def test_required_devices_are_present():
    keys = {s.key for s in specs()}
    assert set(REQUIRED) <= keys


@pytest.mark.parametrize(
    "key, dtype, tflops, tb_per_s",
    [  # REFERENCE.md §3 datasheet table
        ("h100-sxm", "bf16", 989.4, 3.35), ("h100-sxm", "fp8", 1979, 3.35), ("h100-sxm", "tf32", 494.7, 3.35),
        ("h100-sxm", "fp64", 34, 3.35), ("h200", "bf16", 989.4, 4.8), ("a100-80gb", "bf16", 312, 2.039),
        ("a100-40gb", "tf32", 156, 1.555), ("v100-sxm2", "fp16", 125, 0.9), ("v100-sxm2", "fp32", 15.7, 0.9),
    ],
)
def test_reference_peaks(key, dtype, tflops, tb_per_s):
    spec = spec_by_name(key)
    assert spec.peak_flops_per_s[dtype] == pytest.approx(tflops * 1e12, rel=1e-3)
    assert spec.memory_bytes_per_s == pytest.approx(tb_per_s * 1e12)


@pytest.mark.parametrize(
    "device_name, key",
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA A100 80GB PCIe", "a100-80gb-pcie"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA A100-PG509-200", "a100-40gb"),
        ("NVIDIA A100-PCIE-40GB", "a100-40gb"), ("NVIDIA L4", "l4"), ("NVIDIA L40S", "l40s"),
        ("NVIDIA A10G", "a10g"), ("Tesla V100-SXM2-16GB", "v100-sxm2"), ("Tesla V100-PCIE-32GB", "v100-pcie"),
        ("NVIDIA B200", "b200"), ("AMD Instinct MI300X VF", "mi300x"), ("AMD Instinct MI300X", "mi300x"),
    ],
)
def test_device_names_match(device_name, key):
    assert match_device(device_name).key == key


def test_unknown_device_matches_nothing():
    assert match_device("NVIDIA GeForce RTX 4090") is None and match_device(None) is None


def test_spec_by_name_keys_aliases_and_errors():
    assert spec_by_name("h100").key == "h100-sxm" and spec_by_name("H100-SXM").key == "h100-sxm"
    assert spec_by_name("NVIDIA A100-SXM4-80GB").key == "a100-80gb"
    with pytest.raises(UsageError, match="unknown hardware 'tpu-v5'.*h100-sxm"):
        spec_by_name("tpu-v5")


def test_peaks_and_ridge_points():
    h100 = spec_by_name("h100-sxm")
    # matrix work in bf16 uses the tensor-core peak; 989.4e12 / 3.35e12 = 295.3 flop/byte
    assert h100.ridge_point("bf16", matrix=True) == pytest.approx(295.34, abs=0.01)
    # element-wise work in bf16 runs on the vector units: fp32 rate, 67e12 / 3.35e12 = 20
    assert h100.ridge_point("bf16", matrix=False) == pytest.approx(20.0)
    assert h100.peak_for("fp64", matrix=False) == 34e12
    v100 = spec_by_name("v100-sxm2")
    assert v100.peak_for("bf16", matrix=True) == 15.7e12  # no bf16 path: falls back to fp32


def test_gpu_trace_ceilings_datasheet_and_measured():
    metadata = {"devices": [{"type": "cpu", "name": "Xeon"}, {"type": "gpu", "name": "NVIDIA H100 80GB HBM3"}]}
    entry = {"name": "NVIDIA H100 80GB HBM3", "device_type": "gpu", "peak_tflop_per_s": {"bf16": 798.0},
             "memory_tb_per_s": 3.0}
    limits = resolve_ceilings(metadata, gpu_trace=True, calibration={"gpu:NVIDIA H100 80GB HBM3": entry})
    assert limits.primary.key == "h100-sxm" and limits.datasheet.key == "h100-sxm"
    assert limits.measured.measured and limits.measured.peak_flops_per_s["bf16"] == 798e12
    assert not limits.what_if
    unknown = resolve_ceilings({"devices": [{"type": "gpu", "name": "Mystery GPU"}]}, gpu_trace=True, calibration={})
    assert unknown.primary is None and "--hardware" in unknown.notes[0]


def test_cpu_trace_ceilings_measured_or_fallback():
    metadata = {"cpu_name": "Some CPU", "cpu_count": 4}
    entry = {"name": "Some CPU", "device_type": "cpu", "peak_tflop_per_s": {"fp32": 0.1}, "memory_tb_per_s": 0.01}
    measured = resolve_ceilings(metadata, gpu_trace=False, calibration={"cpu:Some CPU": entry})
    assert measured.primary.measured and measured.primary.peak_flops_per_s["fp32"] == pytest.approx(0.1e12)
    fallback = resolve_ceilings(metadata, gpu_trace=False, calibration={"cpu:Other CPU": entry})
    # 4 cores × 0.05 TFLOP/s per core = 0.2 TFLOP/s; the note says to calibrate
    assert fallback.primary.peak_flops_per_s["fp32"] == pytest.approx(0.2e12)
    assert "profkit calibrate" in fallback.notes[0]
    # an imported trace does not say which CPU ran it (no cpu_count): calibrating here would not help
    imported = resolve_ceilings({}, gpu_trace=False, calibration={"cpu:This CPU": {**entry, "name": "This CPU"}})
    assert imported.primary.peak_flops_per_s["fp32"] == pytest.approx(8 * 0.05e12)
    assert "does not say which CPU" in imported.notes[0] and "calibrate" not in imported.notes[0]


def test_what_if_hardware():
    metadata = {"cpu_name": "Some CPU", "cpu_count": 4}
    limits = resolve_ceilings(metadata, gpu_trace=False, requested="h100", calibration={})
    assert limits.what_if and limits.primary.key == "h100-sxm" and limits.measured is None
    own = resolve_ceilings({"devices": [{"type": "gpu", "name": "NVIDIA H100 80GB HBM3"}]}, gpu_trace=True,
                           requested="h100-sxm", calibration={})
    assert not own.what_if  # asking for the trace's own device is not a what-if
    with pytest.raises(UsageError):
        resolve_ceilings(metadata, gpu_trace=False, requested="no-such-gpu", calibration={})


def test_calibration_file_roundtrip(tmp_path, monkeypatch):
    from profkit.trace.calibration import save

    monkeypatch.setenv("PROFKIT_CACHE_DIR", str(tmp_path / "cache"))
    entry = {"name": "Some CPU", "device_type": "cpu", "peak_tflop_per_s": {"fp32": 0.1}, "memory_tb_per_s": 0.01}
    path = save(entry)
    assert path == tmp_path / "cache" / "calibration.json"
    save({**entry, "name": "Other CPU"})
    assert set(hardware.load_calibration()) == {"cpu:Some CPU", "cpu:Other CPU"}
    (tmp_path / "cache" / "calibration.json").write_text("{broken")
    assert hardware.load_calibration() == {}


def test_calibrate_command_measures_the_cpu(tmp_path):
    # The real command, as a user runs it: one dtype, small problems.
    result = run_profkit("calibrate", "--device", "cpu", "--quick", "--dtype", "fp32", "--json",
                         env={"PROFKIT_CACHE_DIR": str(tmp_path)}, timeout=120)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout[result.stdout.index("{"):])
    assert entry["device_type"] == "cpu" and entry["peak_tflop_per_s"]["fp32"] > 1e-4  # > 0.1 GFLOP/s
    assert entry["memory_tb_per_s"] > 1e-4  # > 0.1 GB/s
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert list(saved["entries"]) == [f"cpu:{entry['name']}"]


def test_calibrate_command_rejects_a_missing_gpu(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    
    from profkit.cli.main import cli

    monkeypatch.setenv("PROFKIT_CACHE_DIR", str(tmp_path))
    result = cli_runner().invoke(cli, ["calibrate", "--device", "cuda"])
    assert result.exit_code == 2 and "use --device cpu" in result.output
    assert not (tmp_path / "calibration.json").exists()


def test_match_device_through_compiled_patterns_equals_re_search_row_by_row():
    import re

    def slow(name):
        return next((s for s in specs() if any(re.search(p, name, re.IGNORECASE) for p in s.match)), None)

    names = [p for s in specs() for p in s.match] + [s.name for s in specs()] + [s.name.upper() for s in specs()]
    names += ["NVIDIA H100 80GB HBM3", "AMD Instinct MI300X", "Intel Xeon", "nvidia a100-sxm4-40gb", ""]
    assert [match_device(n) for n in names] == [slow(n) if n else None for n in names]
    assert sum(match_device(n) is not None for n in names) > len(specs())
