"""Hardware ceilings: datasheet peaks per dtype and memory bandwidth, and which ones a trace gets.

The peaks live in data/hardware.json, one row per device with a cited source
(the data file is the single way in; rows are checked when loaded). A trace's
device is found by matching the GPU name it recorded against each row's
patterns; ``--hardware NAME`` picks a row by key or alias instead, for a
what-if analysis ("how would this trace classify on an H100?").

Measured ceilings come from ``profkit calibrate`` (collectors/calibrate.py
measures them with torch; trace/calibration.py writes and reads the file in
the user's cache directory: this module only reads it, so the analyzers never
import torch). Reports show both: the datasheet ceiling is the
roofline a GPU trace is classified against, the measured one is what is
attainable. A CPU trace is classified against the calibrated CPU, or against a
per-core fallback scaled by the recorded core count when none was measured.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from ..errors import UsageError
from ..trace.calibration import calibration_key, load_calibration

#: dtypes a peak can be given for (keys of peak_tflop_per_s).
PEAK_DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
_TERA = 1e12


@dataclass(frozen=True)
class HardwareSpec:
    """One device's ceilings, in flop/s and bytes/s."""

    key: str
    name: str
    device_type: str  # "gpu" or "cpu"
    peak_flops_per_s: Mapping[str, float | None]
    memory_bytes_per_s: float
    source: str
    tdp_w: float | None = None
    host_link_bytes_per_s: float | None = None  # copies to/from host memory, one direction (None: unknown)
    aliases: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    measured: bool = False
    per_core: bool = False
    unconfirmed: bool = False

    def peak_for(self, dtype: str | None, *, matrix: bool) -> float:
        """The flop/s roof for work in ``dtype``.

        Matrix work (contractions) runs on tensor/matrix cores at the dtype's
        peak; everything else runs on the vector units, whose roof is the fp32
        rate (fp64 for double). A dtype without a peak falls back to fp32.
        """
        fp32 = self.peak_flops_per_s.get("fp32") or 0.0
        if dtype == "fp64":
            return self.peak_flops_per_s.get("fp64") or fp32
        if not matrix:
            return fp32
        return self.peak_flops_per_s.get(dtype or "fp32") or fp32

    def ridge_point(self, dtype: str | None, *, matrix: bool) -> float:
        """Arithmetic intensity (flop/byte) where the compute roof meets the bandwidth roof."""
        return self.peak_for(dtype, matrix=matrix) / self.memory_bytes_per_s

    def scaled_to_cores(self, cores: int) -> "HardwareSpec":
        """A per-core row (the CPU fallback) scaled to ``cores`` cores; bandwidth stays per socket."""
        if not self.per_core:
            return self
        peaks = {k: (None if v is None else v * cores) for k, v in self.peak_flops_per_s.items()}
        return replace(self, name=f"{self.name}, {cores} cores", peak_flops_per_s=peaks, per_core=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "device_type": self.device_type,
            "measured": self.measured,
            "peak_flops_per_s": dict(self.peak_flops_per_s),
            "memory_bytes_per_s": self.memory_bytes_per_s,
            "host_link_bytes_per_s": self.host_link_bytes_per_s,
            "tdp_w": self.tdp_w,
            "source": self.source,
            "unconfirmed": self.unconfirmed,
        }


@dataclass(frozen=True)
class Ceilings:
    """What a trace is analyzed against.

    ``primary`` sets the bounds (None: unknown device, bounds are 'unknown');
    ``datasheet`` and ``measured`` are both shown when known. ``what_if`` is
    set when the user picked hardware other than the trace's own: its timings
    say nothing about that device, so only intensity-vs-ridge bounds apply.
    """

    primary: HardwareSpec | None
    datasheet: HardwareSpec | None = None
    measured: HardwareSpec | None = None
    what_if: bool = False
    device_name: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "device_name": self.device_name,
            "primary": self.primary.key if self.primary else None,
            "what_if": self.what_if,
            "datasheet": self.datasheet.to_json() if self.datasheet else None,
            "measured": self.measured.to_json() if self.measured else None,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- the data file


@lru_cache(maxsize=1)
def specs() -> tuple[HardwareSpec, ...]:
    """Every datasheet row, in matching order."""
    text = resources.files("profkit.analyzers").joinpath("data/hardware.json").read_text(encoding="utf-8")
    table = json.loads(text)
    links = {key: float(link["gb_per_s"]) * 1e9 for key, link in table.get("host_links", {}).items()
             if isinstance(link, dict)}
    return tuple(replace(_spec_from_row(row), host_link_bytes_per_s=links.get(row.get("host_link")))
                 for row in table["devices"])


def _spec_from_row(row: dict[str, Any], *, measured: bool = False) -> HardwareSpec:
    peaks = row.get("peak_tflop_per_s") or {}
    unknown = set(peaks) - set(PEAK_DTYPES)
    if unknown:
        raise ValueError(f"hardware row {row.get('key')!r}: unknown dtypes {sorted(unknown)}")
    return HardwareSpec(
        key=str(row["key"]),
        name=str(row.get("name") or row["key"]),
        device_type=str(row.get("type", "gpu")),
        peak_flops_per_s={d: (None if peaks.get(d) is None else float(peaks[d]) * _TERA) for d in PEAK_DTYPES},
        memory_bytes_per_s=float(row["memory_tb_per_s"]) * _TERA,
        source=str(row.get("source") or ""),
        tdp_w=row.get("tdp_w"),
        aliases=tuple(row.get("aliases") or ()),
        match=tuple(row.get("match") or ()),
        measured=measured,
        per_core=bool(row.get("per_core")),
        unconfirmed=bool(row.get("unconfirmed")),
    )


def spec_by_name(name: str) -> HardwareSpec:
    """A row by key or alias (case-insensitive), else by device-name match; UsageError if none."""
    wanted = name.strip().lower()
    for spec in specs():
        if wanted == spec.key or wanted in (a.lower() for a in spec.aliases):
            return spec
    found = match_device(name)
    if found is not None:
        return found
    known = ", ".join(s.key for s in specs())
    raise UsageError(f"unknown hardware {name!r}; known: {known}")


def match_device(device_name: str | None) -> HardwareSpec | None:
    """The first GPU row whose pattern matches the recorded device name."""
    if not device_name:
        return None
    for spec, patterns in _matchers():
        if any(pattern.search(device_name) for pattern in patterns):
            return spec
    return None


@lru_cache(maxsize=1)
def _matchers() -> tuple[tuple[HardwareSpec, tuple[re.Pattern, ...]], ...]:
    """Each row with its device-name patterns compiled (case-insensitive)."""
    return tuple((spec, tuple(re.compile(p, re.IGNORECASE) for p in spec.match)) for spec in specs())


#: The data file is read and its patterns compiled as the module loads: every report matches its device
#: against them (~1 ms, moved out of the first report of a process into the import that precedes it).
_matchers()


def measured_spec(entry: Mapping[str, Any]) -> HardwareSpec:
    """A calibration entry as a HardwareSpec (measured=True)."""
    row = {
        "key": f"measured:{entry.get('name', '?')}",
        "name": f"{entry.get('name', '?')} (measured)",
        "type": entry.get("device_type", "cpu"),
        "peak_tflop_per_s": {k: v for k, v in (entry.get("peak_tflop_per_s") or {}).items() if k in PEAK_DTYPES},
        "memory_tb_per_s": entry["memory_tb_per_s"],
        "source": f"profkit calibrate on {entry.get('host', '?')} at {entry.get('measured_at', '?')}",
    }
    return _spec_from_row(row, measured=True)


# ---------------------------------------------------------------- what a trace is analyzed against


def resolve_ceilings(
    metadata: Mapping[str, Any] | None,
    *,
    gpu_trace: bool,
    requested: str | None = None,
    calibration: Mapping[str, Mapping[str, Any]] | None = None,
) -> Ceilings:
    """Pick the datasheet and measured ceilings for a trace (or the ``requested`` what-if device)."""
    metadata = metadata or {}
    calibration = load_calibration() if calibration is None else calibration
    devices = metadata.get("devices") or []
    if gpu_trace:
        names = [d.get("name") for d in devices if isinstance(d, dict) and d.get("type") == "gpu" and d.get("name")]
        device_name = names[0] if names else None
    else:
        device_name = metadata.get("cpu_name") or next(
            (d.get("name") for d in devices if isinstance(d, dict) and d.get("type") == "cpu"), None
        )
    own = _own_ceilings(device_name, gpu_trace, metadata, calibration)
    if requested is None:
        return own
    chosen = spec_by_name(requested)
    if own.datasheet is not None and chosen.key == own.datasheet.key:
        return own
    if chosen.per_core:
        chosen = chosen.scaled_to_cores(_cores(metadata))
    return Ceilings(
        primary=chosen,
        datasheet=chosen,
        measured=None,
        what_if=True,
        device_name=device_name,
        notes=(f"what-if: classified against {chosen.name}; the trace ran on {device_name or 'another device'}, "
               "so achieved fractions are not shown and no kernel is called latency-bound",),
    )


def _own_ceilings(device_name, gpu_trace, metadata, calibration) -> Ceilings:
    device_type = "gpu" if gpu_trace else "cpu"
    entry = calibration.get(calibration_key(device_type, device_name)) if device_name else None
    if entry is None and not gpu_trace and "cpu_count" in metadata:  # (recorded: not an imported trace)
        cpu_entries = [e for k, e in calibration.items() if k.startswith("cpu:")]
        if not device_name and len(cpu_entries) == 1:
            entry = cpu_entries[0]
    measured = measured_spec(entry) if entry else None
    notes: list[str] = []
    if gpu_trace:
        datasheet = match_device(device_name)
        if datasheet is None:
            notes.append(
                f"no datasheet for GPU {device_name or '(name not recorded)'}: pass --hardware NAME to set the roofline"
            )
        primary = datasheet or measured
        return Ceilings(primary, datasheet, measured, False, device_name, tuple(notes))
    if measured is None:
        cores = _cores(metadata)
        fallback = spec_by_name(GENERIC_CPU).scaled_to_cores(cores)
        guess = f"CPU roofline is {'an' if str(cores).startswith('8') or cores in (11, 18) else 'a'} {cores}-core guess"
        if "cpu_count" in metadata:  # recorded by profkit: on a machine that can be calibrated
            notes.append(f"{guess}, not a measurement: run `profkit calibrate` on the machine that recorded it")
        else:  # an imported trace does not say which CPU ran it
            notes.append(f"{guess}: the trace does not say which CPU ran it")
        return Ceilings(fallback, None, None, False, device_name, tuple(notes))
    return Ceilings(measured, None, measured, False, device_name, tuple(notes))


#: The CPU fallback's key: a guess, not a datasheet or a measurement.
GENERIC_CPU = "cpu-generic"


def is_guess(ceilings: Ceilings) -> bool:
    """Whether the trace is analyzed against the generic CPU guess (no calibration, no what-if)."""
    return ceilings.primary is not None and ceilings.primary.key == GENERIC_CPU and not ceilings.what_if


def raised_guess(ceilings: Ceilings, factor: float, rate_text: str) -> Ceilings:
    """The generic CPU guess with its flop/s peaks raised by ``factor`` (> 1): the trace's fastest op ran
    that much faster than the guess, so the real peak is at least its rate (``rate_text``). Without
    this, a modern core (two FMA pipes, 512-bit vectors) shows ops above 100 % of peak and an MFU over
    100 %."""
    spec = ceilings.primary
    peaks = {k: (None if v is None else v * factor) for k, v in spec.peak_flops_per_s.items()}
    raised = replace(spec, name=f"{spec.name}, raised to the fastest op's rate", peak_flops_per_s=peaks)
    note = (f"the guessed CPU peak was below the rate the fastest op reached ({rate_text}): its flop/s peaks are "
            f"raised {factor:.2f}x to that rate, a lower bound of the real peak")
    return replace(ceilings, primary=raised, notes=(*ceilings.notes, note))


def _cores(metadata: Mapping[str, Any]) -> int:
    value = metadata.get("cpu_count")
    return int(value) if isinstance(value, int) and value > 0 else 8
