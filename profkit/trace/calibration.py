"""The calibration file: the attainable ceilings ``profkit calibrate`` measures on a machine
(collectors/calibrate.py) and the reports read (analyzers/hardware.py), keyed by device.

Like the trace, it is a contract between the two halves of the package: JSON,
``{"version": 1, "entries": {"<device_type>:<name>": entry}}``, in the user's
cache directory, written whole to a temporary file and renamed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError


def cache_dir() -> Path:
    """$PROFKIT_CACHE_DIR, else $XDG_CACHE_HOME/profkit, else ~/.cache/profkit."""
    explicit = os.environ.get("PROFKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "profkit"


def calibration_path() -> Path:
    return cache_dir() / "calibration.json"


def calibration_key(device_type: str, name: str) -> str:
    return f"{device_type}:{name}"


def load_calibration(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Calibration entries by key; {} when the file is missing or unreadable."""
    path = Path(path) if path else calibration_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = document.get("entries") if isinstance(document, dict) else None
    return entries if isinstance(entries, dict) else {}


def save(entry: dict[str, Any], path: str | os.PathLike | None = None) -> Path:
    """Add or replace ``entry`` in the calibration file (atomic write); returns the file's path."""
    path = Path(path) if path else calibration_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{path.parent}: cannot create the calibration folder ({exc.strerror or exc})") from None
    entries = load_calibration(path)
    entries[calibration_key(entry["device_type"], entry["name"])] = entry
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"version": 1, "entries": entries}, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write the calibration file ({exc.strerror or exc})") from None
    return path
