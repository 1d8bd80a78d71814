"""Interval arithmetic: the binary-search intersection/difference against a reference sweep over all
end points (what idle attribution computed before), on random interval sets; merging against pandas-free
brute force."""

import numpy as np
import pytest

from profkit.analyzers.intervals import (
    intersect_intervals,
    merge_intervals,
    subtract_intervals,
)


def _sweep(a, b, keep_b: bool):
    """Reference: sort every end point, track membership in a and b, keep the segments wanted."""
    (sa, ea), (sb, eb) = a, b
    points = np.concatenate([sa, ea, sb, eb]).astype(np.int64)
    if not len(points):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    da = np.concatenate([np.ones(len(sa)), -np.ones(len(ea)), np.zeros(len(sb) + len(eb))])
    db = np.concatenate([np.zeros(len(sa) + len(ea)), np.ones(len(sb)), -np.ones(len(eb))])
    order = np.argsort(points, kind="stable")
    points, da, db = points[order], da[order], db[order]
    first = np.flatnonzero(np.r_[True, points[1:] != points[:-1]])
    unique, last = points[first], np.r_[first[1:], len(points)] - 1
    in_a, in_b = np.cumsum(da)[last] > 0, np.cumsum(db)[last] > 0
    keep = (in_a & (in_b if keep_b else ~in_b))[:-1]
    return merge_intervals(unique[:-1][keep], unique[1:][keep])


def _random_merged(rng, n: int, span: int):
    start = rng.integers(0, span, n)
    return merge_intervals(start, start + rng.integers(0, span // 8 + 1, n))  # zero lengths included


def _covered(intervals) -> set:
    return {t for s, e in zip(*intervals) for t in range(s, e)}


@pytest.mark.parametrize("seed", range(40))
def test_intersect_and_subtract_agree_with_the_sweep(seed):
    rng = np.random.default_rng(seed)
    a, b = _random_merged(rng, rng.integers(0, 30), 400), _random_merged(rng, rng.integers(0, 30), 400)
    for fast, keep_b in ((intersect_intervals, True), (subtract_intervals, False)):
        got = fast(a, b)
        want = _sweep(a, b, keep_b)
        assert _covered(got) == _covered(want)
        assert int((got[1] - got[0]).sum()) == int((want[1] - want[0]).sum())
        assert (got[1] > got[0]).all() and (got[0][1:] >= got[1][:-1]).all()  # non-empty, sorted, disjoint


def test_intersect_and_subtract_by_hand():
    a = (np.array([0, 20]), np.array([10, 30]))
    b = (np.array([5, 8, 25]), np.array([6, 22, 40]))
    # a ∩ b: 5..6, 8..10, 20..22, 25..30; a - b: 0..5, 6..8, 22..25
    assert [list(x) for x in intersect_intervals(a, b)] == [[5, 8, 20, 25], [6, 10, 22, 30]]
    assert [list(x) for x in subtract_intervals(a, b)] == [[0, 6, 22], [5, 8, 25]]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert [list(x) for x in subtract_intervals(a, empty)] == [[0, 20], [10, 30]]
    assert [len(x) for x in intersect_intervals(a, empty)] == [0, 0]


@pytest.mark.parametrize("seed", range(20))
def test_merge_intervals_covers_the_same_points_with_separate_segments(seed):
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 300, rng.integers(1, 40))
    end = start + rng.integers(1, 40, len(start))
    merged = merge_intervals(start, end)
    assert _covered(merged) == _covered((start, end))
    assert (merged[0][1:] > merged[1][:-1]).all()  # a gap between consecutive segments
