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
from functools import partial
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..analyzers.table import Deferred, EventTable
from ..trace.io import Trace

_ID_COLUMNS = ("event_id", "parent_id", "op_id", "launch_id")
#: Columns of a trace file no report section reads: a loaded trace's other columns are read at once
#: when the report starts, these only if an analyzer asks (tests/test_report_columns.py keeps the list true).
UNREAD_COLUMNS = ("device_type", "device_index", "stream", "process_id", "thread_id", "correlation_id", "launch_id",
                  "value")


@dataclass
class ReportOptions:
    top: int = 15  # rows in top-N tables
    hardware: str | None = None  # analyze against this device instead of the trace's own
    sections: tuple[str, ...] = ()  # only these sections (registry keys); () for all
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
        trace = self.traces[0] if len(self.traces) == 1 else None
        if trace is not None and trace.one_chunk:  # a loaded trace: its columns read as the analyzers ask
            trace.prefetch(name for name in trace.column_names if name not in UNREAD_COLUMNS)
            columns: dict[str, Any] = {name: Deferred(partial(trace.chunk, name)) for name in trace.column_names}
            columns["rank"] = np.full(trace.num_rows, trace.rank, dtype=np.int32)
            return EventTable(columns, trace.num_rows, frame=lambda: self.events)
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
