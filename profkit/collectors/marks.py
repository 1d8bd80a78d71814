"""Phase marks: named time ranges (prefill, decode, train_step, user phases).

``with profkit.phase("prefill"):`` records a range while a recording is
active and does nothing otherwise. Marks become rows of kind ``phase`` with
optional batch size and token count. This module does not import torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from ..trace.kinds import Kind

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class MarkRecorder:
    """Collects phase marks of one recording session (thread-safe appends)."""

    rows: list[tuple] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        name: str,
        start_ns: int,
        end_ns: int,
        *,
        batch_size: int | None = None,
        token_count: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        row = (name, int(start_ns), max(int(end_ns) - int(start_ns), 0), batch_size, token_count,
               threading.get_native_id(), json.dumps(extra) if extra else None)
        with self._lock:
            self.rows.append(row)

    def columns(self) -> dict[str, list]:
        """Raw columns for build_events (no pandas: the recorder writes traces without it)."""
        with self._lock:
            rows = list(self.rows)
        names = ["name", "start_ns", "duration_ns", "batch_size", "token_count", "thread_id", "extra"]
        columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        columns.update(kind=[Kind.PHASE.value] * len(rows), device_type=["cpu"] * len(rows),
                       device_index=[-1] * len(rows), process_id=[os.getpid()] * len(rows))
        return columns

    def frame(self) -> "pd.DataFrame":
        """The same rows as a DataFrame (for tests and interactive use)."""
        import pandas as pd

        frame = pd.DataFrame(self.columns())
        return frame.astype({"batch_size": "Int32", "token_count": "Int64", "thread_id": "Int64"})


_active: MarkRecorder | None = None


def activate(recorder: MarkRecorder | None) -> None:
    """Make ``recorder`` receive marks (None: marks are dropped)."""
    global _active
    _active = recorder


def active() -> MarkRecorder | None:
    return _active


@contextlib.contextmanager
def phase(name: str, *, batch_size: int | None = None, tokens: int | None = None) -> Iterator[None]:
    """Mark the enclosed code as phase ``name`` (e.g. "prefill", "decode", "eval")."""
    start_ns = time.time_ns()
    try:
        yield
    finally:
        recorder = _active
        if recorder is not None:
            recorder.add(name, start_ns, time.time_ns(), batch_size=batch_size, token_count=tokens,
                         extra={"source": "user"})
