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
from typing import Any, Iterator

import pandas as pd

from ..trace.schema import Kind


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

    def frame(self) -> pd.DataFrame:
        """Raw rows for build_events."""
        with self._lock:
            rows = list(self.rows)
        columns = ["name", "start_ns", "duration_ns", "batch_size", "token_count", "thread_id", "extra"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["kind"] = Kind.PHASE.value
        frame["device_type"] = "cpu"
        frame["device_index"] = -1
        frame["process_id"] = os.getpid()
        frame["batch_size"] = frame["batch_size"].astype("Int32")
        frame["token_count"] = frame["token_count"].astype("Int64")
        frame["thread_id"] = frame["thread_id"].astype("Int64")
        return frame


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
