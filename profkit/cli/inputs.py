"""What the report, diff and check commands read: profkit traces, folders of them, or Chrome-trace JSON."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from ..collectors import CHROME_TRACE_SUFFIXES
from ..errors import UsageError
from ..trace.io import Trace, expand_paths, load, write_trace


def load_any(paths: Iterable[str | os.PathLike]) -> list[Trace]:
    """Traces from profkit Parquet files, folders of them, or Chrome-trace JSON (converted in memory)."""
    traces: list[Trace] = []
    for item in map(Path, paths):
        if item.is_file() and item.name.endswith(CHROME_TRACE_SUFFIXES):
            # Converted in memory; the importer is imported only then (~40 ms otherwise saved).
            from ..collectors.kineto_json import read_kineto

            imported = read_kineto(item, progress=False)
            with tempfile.TemporaryDirectory(prefix="profkit-") as folder:
                trace = load(write_trace(Path(folder) / "trace.parquet", imported.table, imported.metadata))
            trace.path = item
            traces.append(trace)
        else:
            traces.extend(load(path) for path in expand_paths([item]))
    if not traces:
        raise UsageError("no traces given")
    return _distinct_ranks(traces)


def _distinct_ranks(traces: list[Trace]) -> list[Trace]:
    """Several traces are read as the ranks of one run; traces that share a rank (a pool's workers'
    ``.pid<PID>`` traces, which have none) are numbered 0..n-1 in the order given, and say so, so
    that their timelines are not merged into one rank's."""
    ranks = [trace.rank for trace in traces]
    if len(set(ranks)) == len(ranks):
        return traces
    names = ", ".join(f"{getattr(trace.path, 'name', '?')} as rank {i}" for i, trace in enumerate(traces))
    note = f"the traces do not have distinct ranks: read in the order given, {names}"
    for i, trace in enumerate(traces):
        trace.metadata = {**trace.metadata, "rank": i, "notes": [*(trace.metadata.get("notes") or []), note]}
    return traces
