"""Who encloses whom on a host thread, computed without a per-event loop.

An event's parent is the latest earlier event (sorted by start, the longer
first) still open when it starts: a call stack that drops closed frames
lazily. On a well-nested thread (a call stack) that is the innermost
enclosing event. Not every thread is well nested: a ``record_function``
range (ProfilerStep#N, Optimizer.step#…, any user range) opens inside the
Python frame of its ``__enter__`` and closes inside its ``__exit__``, so in a
trace recorded with ``with_stack`` it outlives the frame it began in, and the
rule puts the work between ``__enter__`` and ``__exit__`` inside the range.

``_nest_open`` finds it for all of a thread's events at once (binary lifting
over range maxima: log2(n) int32 arrays of n). A thread of more than
``_OPEN_WALK_ROWS`` events takes ``_nest_stack`` instead, arithmetic that
needs no such tables but holds only where events nest, and ``_nest_open``
only when a child outlives its parent. The two agree on well-nested threads
(tests/test_trace_io.py).
"""

from __future__ import annotations

import numpy as np

#: Threads up to this many events take ``_nest_open`` directly (its tables: ~4 bytes x 20 per event).
_OPEN_WALK_ROWS = 1 << 20


def nest(start_ns: np.ndarray, end_ns: np.ndarray, thread_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (depth, parent_index) for intervals grouped by ``thread_key``.

    ``parent_index`` is the row index (into the inputs) of the parent interval
    (see the module docstring), or -1. Inputs are parallel 1-d arrays.
    """
    n = len(start_ns)
    depth = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return depth, parent
    start_ns = np.asarray(start_ns, dtype=np.int64)
    end_ns = np.maximum(np.asarray(end_ns, dtype=np.int64), start_ns)
    # Order: thread, then start ascending, then the longer (enclosing) event first.
    order = np.lexsort((-end_ns, start_ns, thread_key))
    s, e, t = start_ns[order], end_ns[order], np.asarray(thread_key)[order]
    bounds = np.flatnonzero(np.r_[True, t[1:] != t[:-1], True])
    depth_sorted = np.empty(n, dtype=np.int64)
    parent_sorted = np.empty(n, dtype=np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # per thread, vectorized inside
        ts, te = s[lo:hi], e[lo:hi]
        thread_depth, thread_parent = (_nest_open if hi - lo <= _OPEN_WALK_ROWS else _nest_stack)(ts, te)
        depth_sorted[lo:hi] = thread_depth
        parent_sorted[lo:hi] = np.where(thread_parent >= 0, thread_parent + lo, -1)
    depth[order] = depth_sorted
    parent[order] = np.where(parent_sorted >= 0, order[np.maximum(parent_sorted, 0)], -1)
    return depth, parent


def _nest_stack(start_ns: np.ndarray, end_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_nest_open``'s (depth, parent) of one sorted thread by call-stack arithmetic: depth = the
    earlier events still open at an event's start, parent = the latest earlier event one level up.
    Exact where events nest; where a child outlives its parent, ``_nest_open`` after all."""
    n = len(start_ns)
    position = np.arange(n)
    closed = np.searchsorted(np.sort(end_ns), start_ns, side="right")
    # Zero-length events that start exactly here are not closed before us.
    zero = start_ns[end_ns == start_ns]
    if len(zero):
        zero.sort()
        closed -= np.searchsorted(zero, start_ns, side="right") - np.searchsorted(zero, start_ns, side="left")
    depth = np.maximum(position - closed, 0)
    # The latest earlier depth-(d-1) event is the parent of a depth-d one: one searchsorted per level.
    parent = np.full(n, -1, dtype=np.int64)
    for level in range(1, int(depth.max(initial=0)) + 1):
        candidates = position[depth == level - 1]
        queries = position[depth == level]
        found = np.searchsorted(candidates, queries) - 1
        parent[queries] = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
    has_parent = parent >= 0
    if (end_ns[has_parent] > end_ns[parent[has_parent]]).any():  # overlapping ranges: not a call stack
        return _nest_open(start_ns, end_ns)
    return depth, parent


def _nest_open(start_ns: np.ndarray, end_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth, parent) of one thread's events sorted as ``nest`` sorts them, where ranges may overlap
    without nesting: the parent of event i is the latest earlier event still open at its start.

    "Open" is as in ``nest``: an earlier event that ends after i starts, or a zero-length one that
    starts where i starts. Found for all events at once by binary lifting over a sparse table of
    range maxima (log2 n levels of int32 ranks: ~80 MB for a million events on one thread, which is
    why ``nest`` takes it for bigger threads only where ranges overlap); depth by pointer jumping (log2
    of the deepest nesting steps).
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
