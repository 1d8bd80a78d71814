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
    new_segment = np.r_[True, s[1:] > running_end[:-1]]
    seg_id = np.cumsum(new_segment) - 1
    seg_start = s[new_segment]
    seg_end = np.zeros(seg_id[-1] + 1, dtype=np.int64)
    np.maximum.at(seg_end, seg_id, e)
    return seg_start, seg_end


def overlap_ns(starts: np.ndarray, ends: np.ndarray, win_start: np.ndarray, win_end: np.ndarray) -> np.ndarray:
    """For each window, how long the (disjoint, sorted) intervals overlap it."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    # Prefix sums of covered time let each window be answered with two lookups.
    lengths = ends - starts
    prefix = np.r_[0, np.cumsum(lengths)]

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
