"""What every report section sees: the traces, their combined events, options.

Several traces (one per rank) are combined into one events table with a
``rank`` column; ids are offset so event_id/parent_id/op_id stay unique.
Derived tables are computed once and cached by name (``ctx.cached``).
``ctx.table`` is the same events as numpy columns converted once each
(analyzers/table.py): the sections hand it to the analyzers, and a single
loaded trace is read from its Arrow columns without building pandas' table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..analyzers.table import EventTable
from ..trace.io import Trace

_ID_COLUMNS = ("event_id", "parent_id", "op_id", "launch_id")


@dataclass
class ReportOptions:
    top: int = 15  # rows in top-N tables
    hardware: str | None = None  # analyze against this device instead of the trace's own
    extra: dict[str, Any] = field(default_factory=dict)  # options later sections add


@dataclass
class ReportContext:
    traces: list[Trace]
    options: ReportOptions = field(default_factory=ReportOptions)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def events(self) -> pd.DataFrame:
        return self.cached("events", self._combine)

    @property
    def table(self) -> EventTable:
        """``events`` as numpy columns, each converted once (``table.frame`` is ``events``)."""
        return self.cached("table", self._table)

    @property
    def metadata(self) -> dict[str, Any]:
        """The first trace's metadata (rank 0 when ranks are present)."""
        return self.traces[0].metadata

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a derived value once per report."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _table(self) -> EventTable:
        arrow = self.traces[0].arrow if len(self.traces) == 1 else None
        if arrow is not None and all(column.num_chunks == 1 for column in arrow.columns):
            trace = self.traces[0]
            rank = np.full(arrow.num_rows, trace.rank, dtype=np.int32)
            return EventTable.from_arrow(arrow, frame=lambda: self.events, rank=rank)
        return EventTable.from_frame(self.events)

    def _combine(self) -> pd.DataFrame:
        traces = sorted(self.traces, key=lambda t: t.rank)
        if len(traces) == 1:
            return traces[0].events.assign(rank=np.int32(traces[0].rank))
        frames, offset = [], 0
        for trace in traces:
            frame = trace.events.copy()
            for column in _ID_COLUMNS:
                frame[column] = frame[column] + offset
            frame["rank"] = np.int32(trace.rank)
            offset += len(frame)
            frames.append(frame)
        combined = pd.concat(frames, ignore_index=True)
        for column in ("kind", "name", "device_type", "input_shapes", "input_dtypes"):
            combined[column] = combined[column].astype("category")
        return combined
