"""File-level facts about a recording: versions, devices, command, ranks."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from .. import __version__


def distributed_info() -> dict[str, int | None]:
    """Rank, local rank and world size from torch.distributed or the launcher's env."""
    info = {
        "rank": _env_int("RANK"),
        "local_rank": _env_int("LOCAL_RANK"),
        "world_size": _env_int("WORLD_SIZE"),
    }
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            info["rank"] = dist.get_rank()
            info["world_size"] = dist.get_world_size()
    except Exception:  # a half-torn-down process group at exit: keep the env values
        pass
    return info


def run_metadata(command: list[str] | None = None) -> dict[str, Any]:
    torch = sys.modules.get("torch")
    meta: dict[str, Any] = {
        "producer": "profkit record",
        "profkit_version": __version__,
        "python_version": platform.python_version(),
        "torch_version": getattr(torch, "__version__", None),
        "cuda_version": getattr(getattr(torch, "version", None), "cuda", None),
        "hip_version": getattr(getattr(torch, "version", None), "hip", None),
        "command": command if command is not None else list(getattr(sys, "orig_argv", sys.argv)),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu_name": cpu_name(),
        "cpu_count": os.cpu_count(),
        **distributed_info(),
    }
    meta["devices"] = [{"index": -1, "type": "cpu", "name": meta["cpu_name"]}] + gpu_devices()
    return meta


def gpu_devices() -> list[dict[str, Any]]:
    """Properties of the GPUs this process initialised (never initialises CUDA itself)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "type": "gpu",
                "name": props.name,
                "total_memory_bytes": int(props.total_memory),
                "multiprocessor_count": int(props.multi_processor_count),
                "compute_capability": f"{props.major}.{props.minor}",
                "uuid": str(getattr(props, "uuid", "")) or None,
            }
        )
    return devices


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
