"""What the report, diff and check commands read: profkit traces, folders of them, or Chrome-trace JSON."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from ..collectors import CHROME_TRACE_SUFFIXES, chrome_traces_in
from ..errors import UsageError
from ..trace.io import Trace, expand_paths, load, write_trace


def load_any(paths: Iterable[str | os.PathLike]) -> list[Trace]:
    """Traces from profkit Parquet files, folders of them, or Chrome-trace JSON (converted in memory):
    files, or a folder of them without Parquet files in it (``tensorboard_trace_handler``'s, a job's
    rank files)."""
    traces: list[Trace] = []
    for item in map(Path, paths):
        if item.is_file() and item.name.endswith(CHROME_TRACE_SUFFIXES):
            traces.append(_converted(item))
        elif item.is_dir() and not any(item.glob("*.parquet")):
            chrome = chrome_traces_in(item)
            if not chrome:
                raise UsageError(f"{item}: folder holds no .parquet, .json or .json.gz traces")
            traces.extend(_converted(path) for path in chrome)
        else:
            traces.extend(load(path) for path in expand_paths([item]))
    if not traces:
        raise UsageError("no traces given")
    return _distinct_ranks(traces)


def _converted(path: Path) -> Trace:
    """A Chrome-trace JSON file as a trace, converted in memory (a temporary Parquet file, gone after)."""
    from ..collectors.kineto_json import read_kineto  # (imported only here: ~40 ms otherwise saved)

    imported = read_kineto(path, progress=False)
    with tempfile.TemporaryDirectory(prefix="profkit-") as folder:
        trace = load(write_trace(Path(folder) / "trace.parquet", imported.table, imported.metadata))
    trace.path = path
    return trace


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
