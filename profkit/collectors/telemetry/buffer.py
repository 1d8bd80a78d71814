"""Columnar storage for telemetry samples, cheap to append from the sampler thread.

A *series* is one (metric name, device type, device index, extra) combination;
each sample is (series code, start_ns, duration_ns, value) in four typed arrays,
about 26 bytes a row, so hours of 50 Hz sampling stay small. ``frame()`` turns
them into the raw rows ``profkit.trace.build_events`` takes.
"""

from __future__ import annotations

import json
import os
import threading
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np

from ...trace.kinds import Kind

if TYPE_CHECKING:
    import pandas as pd

FRAME_COLUMNS = (
    "kind", "name", "start_ns", "duration_ns", "device_type", "device_index", "process_id", "thread_id", "value",
    "extra",
)


class SampleBuffer:
    """Append-only sample store; one writer thread, readers take a snapshot."""

    def __init__(self) -> None:
        self._series: dict[tuple, int] = {}
        self._series_rows: list[tuple[str, str, int, str | None]] = []
        self._code = array("H")
        self._start = array("q")
        self._duration = array("q")
        self._value = array("d")
        self._lock = threading.Lock()
        self.process_id = os.getpid()

    def series(self, name: str, device_type: str, device_index: int, extra: dict[str, Any] | None = None) -> int:
        """The code of a series, created on first use (units belong in ``name``)."""
        extra_text = json.dumps(extra, sort_keys=True) if extra else None
        key = (name, device_type, int(device_index), extra_text)
        code = self._series.get(key)
        if code is None:
            code = len(self._series_rows)
            self._series[key] = code
            self._series_rows.append(key)
        return code

    def append(self, code: int, start_ns: int, value: float, duration_ns: int = 0) -> None:
        with self._lock:
            self._code.append(code)
            self._start.append(start_ns)
            self._duration.append(duration_ns)
            self._value.append(value)

    def append_many(self, rows: list[tuple[int, int, float, int]]) -> None:
        """Append (code, start_ns, value, duration_ns) rows under one lock."""
        with self._lock:
            for code, start_ns, value, duration_ns in rows:
                self._code.append(code)
                self._start.append(start_ns)
                self._duration.append(duration_ns)
                self._value.append(value)

    def __len__(self) -> int:
        return len(self._code)

    def frame(self) -> "pd.DataFrame":
        """The raw sample rows as a DataFrame (tests, interactive use)."""
        import pandas as pd

        columns = self.columns()
        columns["thread_id"] = pd.array([pd.NA] * len(columns["start_ns"]), dtype="Int64")  # samples belong to no thread
        return pd.DataFrame(columns, columns=list(FRAME_COLUMNS))

    def columns(self) -> dict:
        """Raw sample rows (kind='sample') for build_events, without pandas."""
        with self._lock:
            code = np.array(self._code, dtype=np.int64)
            start = np.array(self._start, dtype=np.int64)
            duration = np.array(self._duration, dtype=np.int64)
            value = np.array(self._value, dtype=np.float64)
            series = list(self._series_rows)
        names = np.array([s[0] for s in series] or [""], dtype=object)
        types = np.array([s[1] for s in series] or [""], dtype=object)
        indexes = np.array([s[2] for s in series] or [0], dtype=np.int64)
        extras = np.array([s[3] for s in series] or [None], dtype=object)
        return {
            "kind": np.full(len(code), Kind.SAMPLE.value, dtype=object),
            "name": names[code],
            "start_ns": start,
            "duration_ns": duration,
            "device_type": types[code],
            "device_index": indexes[code],
            "process_id": np.full(len(code), self.process_id, dtype=np.int64),
            "value": value,
            "extra": extras[code],
        }
