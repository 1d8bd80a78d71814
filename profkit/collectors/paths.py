"""Output-path checks shared by `profkit record` and the recording session."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import UsageError


def check_writable(path: Path) -> None:
    """Fail before anything runs if ``path`` cannot be written; make its folder when missing."""
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a file name such as {path / 'trace.parquet'}")
    parent = path.parent if str(path.parent) else Path(".")
    try:  # `-o run/trace.parquet` makes run/, as torch's tensorboard_trace_handler makes its folder
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{path}: cannot make folder {parent} ({exc.strerror or exc})") from None
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from None
