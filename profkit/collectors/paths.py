"""Output-path checks shared by `profkit record` and the recording session."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import UsageError


def check_writable(path: Path) -> None:
    """Fail before anything runs if ``path`` cannot be written."""
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a file name such as {path / 'trace.parquet'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: folder {parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from None
