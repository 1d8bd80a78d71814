"""Who encloses whom on a host thread, computed without a per-event loop.

Host events on one thread are mostly well nested (a call stack). Sorted by
(start asc, end desc), an event's depth is the number of earlier events that
are still open at its start; its parent is the closest earlier event one level
up. Both come from sorted-array arithmetic per thread (a loop over threads,
not events).

Not always well nested: a ``record_function`` range (ProfilerStep#N,
Optimizer.step#…, any user range) opens inside the Python frame of its
``__enter__`` and closes inside its ``__exit__``, so in a trace recorded with
``with_stack`` it outlives the frame it began in. A thread with such a range
takes ``_nest_open``: each event's parent is the latest earlier event still
open at its start (a call stack that drops closed frames lazily), so the
work between ``__enter__`` and ``__exit__`` sits inside the range.
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
    # A child that outlives its parent: that thread's ranges overlap (see the module docstring).
    has_parent = np.flatnonzero(parent_sorted >= 0)
    outlived = has_parent[e[has_parent] > e[parent_sorted[has_parent]]]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if len(outlived) and np.searchsorted(outlived, lo) < np.searchsorted(outlived, hi):
            depth_sorted[lo:hi], parent_sorted[lo:hi] = _nest_open(s[lo:hi], e[lo:hi])
            parent_sorted[lo:hi] += np.where(parent_sorted[lo:hi] >= 0, lo, 0)
    depth[order] = depth_sorted
    parent[order] = np.where(parent_sorted >= 0, order[np.maximum(parent_sorted, 0)], -1)
    return depth, parent


def _nest_open(start_ns: np.ndarray, end_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth, parent) of one thread's events sorted as ``nest`` sorts them, where ranges may overlap
    without nesting: the parent of event i is the latest earlier event still open at its start.

    "Open" is as in ``nest``: an earlier event that ends after i starts, or a zero-length one that
    starts where i starts. Found for all events at once by binary lifting over a sparse table of
    range maxima (log2 n levels of int32 ranks: ~80 MB for a million events on one thread, and only
    on threads whose ranges overlap); depth by pointer jumping (log2 of the deepest nesting steps).
    """
    n = len(start_ns)
    base = start_ns.min()
    # Doubled times: a zero-length event stays open for an event that starts where it starts.
    close_key = 2 * (end_ns - base) + (end_ns == start_ns)
    open_key = 2 * (start_ns - base)
    keys = np.sort(close_key)
    close_rank = np.searchsorted(keys, close_key, side="left").astype(np.int32)  # j open at i's start
    open_rank = np.searchsorted(keys, open_key, side="right").astype(np.int32)  # <=> close_rank[j] >= open_rank[i]
    levels = [close_rank]  # levels[k][j] = max of close_rank[j : j + 2**k]
    while 2 ** len(levels) <= n:
        half = 2 ** (len(levels) - 1)
        levels.append(np.maximum(levels[-1][:-half], levels[-1][half:]))
    bound = np.arange(n)  # exclusive: the parent is below it; each level skips a block of closed events
    for k in range(len(levels) - 1, -1, -1):
        block = bound - 2 ** k
        # (whole-array steps: a block before the start reads entry 0 and is masked off)
        closed = (block >= 0) & (levels[k].take(np.maximum(block, 0)) < open_rank)
        bound = np.where(closed, block, bound)
    parent = bound - 1
    depth, jump = (parent >= 0).astype(np.int64), parent.copy()  # depth: edges from each event to ``jump``
    while True:
        live = np.flatnonzero(jump >= 0)
        if not len(live):
            return depth, parent
        depth[live], jump[live] = depth[live] + depth[jump[live]], jump[jump[live]]
