"""Interval arithmetic over event tables (pure, vectorized)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def union_ns(start_ns: np.ndarray, end_ns: np.ndarray) -> int:
    """Total length of the union of [start, end) intervals."""
    merged = merge_intervals(start_ns, end_ns)
    return int((merged[1] - merged[0]).sum())


def merge_intervals(start_ns: np.ndarray, end_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge overlapping intervals; returns (starts, ends) of the disjoint union."""
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.asarray(end_ns, dtype=np.int64)
    if len(start_ns) == 0:
        return start_ns, end_ns
    order = np.argsort(start_ns, kind="stable")
    s, e = start_ns[order], end_ns[order]
    running_end = np.maximum.accumulate(e)
    # A new merged segment starts where an interval begins after everything before it ended.
    first = np.flatnonzero(np.concatenate(([True], s[1:] > running_end[:-1])))
    return s[first], np.maximum.reduceat(e, first)  # segments are runs of the sorted rows


def intersect_intervals(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The intersection of two unions of intervals, each given merged (``merge_intervals``: sorted,
    disjoint): its non-empty pieces, sorted and disjoint.

    Each interval of ``a`` meets a run of consecutive intervals of ``b``, found by binary
    search; a piece per (a, b) pair met: no sort of all the end points.
    """
    (sa, ea), (sb, eb) = a, b
    first = np.searchsorted(eb, sa, side="right")  # the first b ending after each a starts
    stop = np.searchsorted(sb, ea, side="left")  # past the last b starting before it ends
    count = np.maximum(stop - first, 0)
    i = np.repeat(np.arange(len(sa)), count)
    j = first[i] + np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count)
    start, end = np.maximum(sa[i], sb[j]), np.minimum(ea[i], eb[j])
    kept = end > start
    return start[kept], end[kept]


def subtract_intervals(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``a`` minus ``b`` (both merged): ``a`` intersected with the gaps around ``b``."""
    sb, eb = b
    gaps = (np.concatenate((_LOWEST, np.asarray(eb, np.int64))), np.concatenate((np.asarray(sb, np.int64), _HIGHEST)))
    return intersect_intervals(a, gaps)


# (np.concatenate, not np.r_, here and above: these run ~100 times a report, and np.r_ costs ~10 µs a call)
_LOWEST = np.array([np.iinfo(np.int64).min], dtype=np.int64)
_HIGHEST = np.array([np.iinfo(np.int64).max], dtype=np.int64)


def overlap_ns(starts: np.ndarray, ends: np.ndarray, win_start: np.ndarray, win_end: np.ndarray) -> np.ndarray:
    """For each window, how long the (disjoint, sorted) intervals overlap it."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    # Prefix sums of covered time let each window be answered with two lookups.
    lengths = ends - starts
    prefix = np.concatenate(([0], np.cumsum(lengths)))

    def covered_until(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(starts, t, side="right")  # intervals starting at or before t
        full = prefix[np.maximum(i - 1, 0)]
        last_start = starts[np.maximum(i - 1, 0)] if len(starts) else np.zeros_like(t)
        last_end = ends[np.maximum(i - 1, 0)] if len(ends) else np.zeros_like(t)
        partial = np.clip(np.minimum(t, last_end) - last_start, 0, None)
        return np.where(i > 0, full + partial, 0)

    if len(starts) == 0:
        return np.zeros(len(win_start), dtype=np.int64)
    return covered_until(np.asarray(win_end, dtype=np.int64)) - covered_until(np.asarray(win_start, dtype=np.int64))


def self_time_ns(events: pd.DataFrame) -> pd.Series:
    """Duration minus the time of direct children (host events nest via parent_id)."""
    child_time = events.groupby("parent_id", observed=True)["duration_ns"].sum()
    own = events["event_id"].map(child_time).fillna(0).astype("int64")
    return (events["duration_ns"].astype("int64") - own).clip(lower=0)
