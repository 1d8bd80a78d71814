"""Who encloses whom on a host thread, computed without a per-event loop.

Host events on one thread are well nested (a call stack). Sorted by
(start asc, end desc), an event's depth is the number of earlier events that
are still open at its start; its parent is the closest earlier event one level
up. Both come from sorted-array arithmetic per thread (a loop over threads,
not events).
"""

from __future__ import annotations

import numpy as np


def nest(start_ns: np.ndarray, end_ns: np.ndarray, thread_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (depth, parent_index) for intervals grouped by ``thread_key``.

    ``parent_index`` is the row index (into the inputs) of the innermost
    enclosing interval, or -1. Inputs are parallel 1-d arrays.
    """
    n = len(start_ns)
    depth = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return depth, parent
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.maximum(np.asarray(end_ns, dtype=np.int64), start_ns)
    # Stack order: thread, then start ascending, then the longer (enclosing) event first.
    order = np.lexsort((-end_ns, start_ns, thread_key))
    s, e, t = start_ns[order], end_ns[order], np.asarray(thread_key)[order]
    bounds = np.flatnonzero(np.r_[True, t[1:] != t[:-1], True])
    depth_sorted = np.empty(n, dtype=np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # per thread, vectorized inside
        ts, te = s[lo:hi], e[lo:hi]
        position = np.arange(hi - lo)
        ends_sorted = np.sort(te)
        closed = np.searchsorted(ends_sorted, ts, side="right")
        # Zero-length events that start exactly here are not closed before us.
        zero = ts[te == ts]
        if len(zero):
            zero.sort()
            closed -= np.searchsorted(zero, ts, side="right") - np.searchsorted(zero, ts, side="left")
        depth_sorted[lo:hi] = np.maximum(position - closed, 0)
    # Parent: the latest earlier event at depth - 1. Rows are grouped by thread and an event
    # of depth d > 0 has its enclosing event earlier in the same thread, so the latest earlier
    # depth-(d-1) row overall is that parent: one searchsorted per depth level.
    parent_sorted = np.full(n, -1, dtype=np.int64)
    positions = np.arange(n)
    for level in range(1, int(depth_sorted.max(initial=0)) + 1):
        candidates = positions[depth_sorted == level - 1]
        queries = positions[depth_sorted == level]
        found = np.searchsorted(candidates, queries) - 1
        parent_sorted[queries] = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
    depth[order] = depth_sorted
    parent[order] = np.where(parent_sorted >= 0, order[np.maximum(parent_sorted, 0)], -1)
    return depth, parent
