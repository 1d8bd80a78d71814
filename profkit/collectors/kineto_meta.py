"""File-level facts of an imported Chrome trace: devices, ranks, versions (the trace's metadata)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import __version__
from ..trace.arrow_buffers import to_numpy
from ..trace.build import LabelCodes


def file_metadata(header: dict[str, Any], source: Path, table: pa.Table, notes: list[str]) -> dict[str, Any]:
    """The profkit metadata of a trace imported from ``source`` (header: the JSON's top-level members)."""
    dist = header.get("distributedInfo") if isinstance(header.get("distributedInfo"), dict) else {}
    devices = _devices(header.get("deviceProperties"), table)
    if not isinstance(header.get("deviceProperties"), list) and devices:
        notes.append("no deviceProperties in the trace: GPU model unknown")
    meta: dict[str, Any] = {
        "producer": "profkit import",
        "profkit_version": __version__,
        "source_file": str(source),
        "source_format": "kineto-json" if "schemaVersion" in header or "deviceProperties" in header else "chrome-json",
        "command": [],
        "partial": False,
        "exit_code": None,
        "rank": int_or_none(dist.get("rank")),
        "world_size": int_or_none(dist.get("world_size")),
        "distributed_backend": dist.get("backend"),
        "torch_version": header.get("torch_version") or header.get("pytorch_version"),
        "cuda_version": _cuda_version(header.get("cuda_runtime_version")),
        "cuda_driver_version": _cuda_version(header.get("cuda_driver_version")),
        "hip_version": _hip_version(header.get("hip_runtime_version")),
        "trace_schema_version": header.get("schemaVersion"),
        "devices": devices,
        "notes": notes,
    }
    if meta["rank"] is None:
        meta["rank"] = _rank_from_name(source.name)
    return meta


def _devices(properties: Any, table: pa.Table) -> list[dict[str, Any]]:
    if isinstance(properties, list):
        devices = []
        for prop in properties:
            if not isinstance(prop, dict):
                continue
            major, minor = prop.get("computeMajor"), prop.get("computeMinor")
            devices.append(
                {
                    "index": int_or_none(prop.get("id")),
                    "type": "gpu",
                    "name": prop.get("name") or "unknown GPU",
                    "total_memory_bytes": int_or_none(prop.get("totalGlobalMem")),
                    "multiprocessor_count": int_or_none(prop.get("numSms")),
                    "compute_capability": f"{major}.{minor}" if major is not None else None,
                    "warp_size": int_or_none(prop.get("warpSize")),
                    "max_threads_per_block": int_or_none(prop.get("maxThreadsPerBlock")),
                    "shared_memory_per_block_bytes": int_or_none(prop.get("sharedMemPerBlock")),
                }
            )
        return devices
    on_gpu = LabelCodes(table.column("device_type")).isin({"gpu"})
    used = sorted(set(to_numpy(table.column("device_index"), -1)[on_gpu].tolist()))
    return [{"index": int(i), "type": "gpu", "name": "unknown GPU"} for i in used]


def _cuda_version(value: Any) -> str | None:
    """12040 -> "12.4" (CUDA's encoding: 1000 * major + 10 * minor)."""
    number = int_or_none(value)
    return None if not number else f"{number // 1000}.{number % 1000 // 10}"


def _hip_version(value: Any) -> str | None:
    """60443483 -> "6.4.43483" (HIP's encoding: major * 1e7 + minor * 1e5 + patch)."""
    number = int_or_none(value)
    return None if not number else f"{number // 10_000_000}.{number // 100_000 % 100}.{number % 100_000}"


def _rank_from_name(name: str) -> int | None:
    """``..._rank-3.json.gz`` / ``rank3`` style names, for rank files without distributedInfo."""
    match = re.search(r"rank[-_]?(\d+)", name)
    return int(match.group(1)) if match else None


def int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None
