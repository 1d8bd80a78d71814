"""Which NVML devices this process uses, in CUDA's numbering, matched by UUID.

NVML numbers every GPU on the machine and ignores CUDA_VISIBLE_DEVICES; the
process numbers only the visible ones. The mapping goes through UUIDs:

1. torch already initialised CUDA in this process: its device UUIDs are exact.
2. Otherwise CUDA_VISIBLE_DEVICES is parsed as CUDA does (indices, ``GPU-``
   UUID prefixes, ``MIG-`` UUIDs, stopping at the first invalid entry) over
   the devices in PCI bus order — CUDA's order under CUDA_DEVICE_ORDER=PCI_BUS_ID
   and, on the usual node of identical GPUs, under the default order too.
   Mixed GPU models without that setting get a note.

Nothing here imports torch: it is consulted only if the program already did.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from .nvml_errors import reason


@dataclass
class VisibleDevice:
    cuda_index: int  # index as the process sees it
    handle: Any
    uuid: str
    nvml_index: int | None  # None for a MIG slice (reached through its UUID)
    is_mig: bool = False


@dataclass
class Resolution:
    devices: list[VisibleDevice]
    notes: list[str] = field(default_factory=list)


def text(value: Any) -> str:
    """NVML strings arrive as str or bytes depending on the binding version."""
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def resolve(nvml: Any, environ: dict[str, str] | None = None) -> Resolution:
    """The GPUs this process sees, in its own numbering."""
    environ = os.environ if environ is None else environ
    all_devices = _all_devices(nvml)
    by_torch = _torch_uuids()
    if by_torch is not None:
        return _from_uuid_list(nvml, all_devices, by_torch, "torch")
    spec = environ.get("CUDA_VISIBLE_DEVICES")
    notes: list[str] = []
    names = {text(nvml.nvmlDeviceGetName(d[2])) for d in all_devices}
    if len(names) > 1 and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        notes.append(
            "telemetry: GPUs of different models and CUDA_DEVICE_ORDER unset: GPU numbering assumed in PCI "
            "bus order (set CUDA_DEVICE_ORDER=PCI_BUS_ID to be sure)"
        )
    if spec is None:
        found = [VisibleDevice(i, h, uuid, nvml_index) for i, (nvml_index, uuid, h) in enumerate(all_devices)]
        return Resolution(found, notes)
    resolution = _from_uuid_list(nvml, all_devices, _parse_visible(spec, all_devices), "CUDA_VISIBLE_DEVICES")
    resolution.notes[:0] = notes
    return resolution


def _all_devices(nvml: Any) -> list[tuple[int, str, Any]]:
    """(nvml index, uuid, handle) of every GPU, in PCI bus order."""
    found = []
    for nvml_index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(nvml_index)
        bus_id = text(nvml.nvmlDeviceGetPciInfo(handle).busId).lower()
        found.append((bus_id, nvml_index, text(nvml.nvmlDeviceGetUUID(handle)), handle))
    found.sort(key=lambda row: (row[0], row[1]))
    return [(nvml_index, uuid, handle) for _, nvml_index, uuid, handle in found]


def _parse_visible(spec: str, all_devices: list[tuple[int, str, Any]]) -> list[str]:
    """CUDA_VISIBLE_DEVICES entries as UUIDs (or UUID prefixes), cut at the first invalid one."""
    uuids: list[str] = []
    for entry in (part.strip() for part in spec.split(",")):
        if entry.isdigit():
            position = int(entry)
            if position >= len(all_devices):
                break
            uuids.append(all_devices[position][1])
        elif entry.startswith(("GPU-", "MIG-")) and len(entry) > 4:
            uuids.append(entry)
        else:
            break  # CUDA ignores this entry and everything after it
    return uuids


def _from_uuid_list(nvml: Any, all_devices, uuids: list[str], origin: str) -> Resolution:
    devices: list[VisibleDevice] = []
    notes: list[str] = []
    for cuda_index, wanted in enumerate(uuids):
        wanted_key = _uuid_key(wanted)
        match = [] if wanted.startswith("MIG-") else [d for d in all_devices if _uuid_key(d[1]).startswith(wanted_key)]
        if len(match) == 1:
            nvml_index, uuid, handle = match[0]
            devices.append(VisibleDevice(cuda_index, handle, uuid, nvml_index))
            continue
        handle, last_error = None, None
        prefixed = wanted.startswith(("GPU-", "MIG-"))
        for candidate in [wanted] if prefixed else [f"MIG-{wanted}", f"GPU-{wanted}"]:
            try:  # a MIG slice, or a UUID NVML knows but does not enumerate
                handle = nvml.nvmlDeviceGetHandleByUUID(candidate)
            except nvml.NVMLError as exc:
                last_error = exc
                continue
            wanted = candidate
            break
        if handle is None:
            notes.append(f"telemetry: GPU {cuda_index} ({wanted} from {origin}) not found by NVML: {reason(last_error)}")
            continue
        devices.append(VisibleDevice(cuda_index, handle, wanted, None, is_mig=wanted.startswith("MIG-")))
    return Resolution(devices, notes)


def _uuid_key(uuid: str) -> str:
    uuid = uuid.lower()
    return uuid[4:] if uuid.startswith(("gpu-", "mig-")) else uuid


def _torch_uuids() -> list[str] | None:
    """UUIDs of the process's CUDA devices, if torch already initialised CUDA (never initialises it)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not getattr(cuda, "is_initialized", lambda: False)():
        return None
    try:
        uuids = [str(cuda.get_device_properties(i).uuid) for i in range(cuda.device_count())]
    except (RuntimeError, AttributeError):
        return None
    return uuids  # bare (torch prints no GPU-/MIG- prefix) or prefixed: both are matched
