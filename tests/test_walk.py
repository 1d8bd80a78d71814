"""classify._Walk (one nesting level at a time, from the depth column) equals _walk_up (climbing chains)."""

from __future__ import annotations

import numpy as np
import pytest

from profkit.analyzers.classify import _Walk, _walk_up


def _forest(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random parent positions (parents before children, -1 for roots) and each row's depth."""
    parent = np.full(n, -1, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        if rng.random() < 0.85:
            parent[i] = rng.integers(max(0, i - 20), i)
            depth[i] = depth[parent[i]] + 1
    order = rng.permutation(n)  # rows in any order: positions follow
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(n)
    return np.where(parent[order] >= 0, where[np.maximum(parent[order], 0)], -1), depth[order]


@pytest.mark.parametrize("seed", range(12))
def test_walk_by_level_equals_the_walk_up(seed):
    rng = np.random.default_rng(seed)
    parent, depth = _forest(rng, int(rng.integers(1, 400)))
    is_op = rng.random(len(parent)) < 0.7
    costed = is_op & (rng.random(len(parent)) < 0.4)
    want = _walk_up(parent, costed, is_op)
    for level in (depth, depth * 3 + 7, None):  # any order that puts parents first; none: the walk up
        walk = _Walk(parent, is_op, level)
        got = walk.units(costed), walk.op_parent
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert (want[0] >= 0).any() or not costed.any()


def test_a_level_that_does_not_put_parents_first_takes_the_walk_up():
    parent = np.array([-1, 0, 1, 2])
    is_op = np.array([True, False, True, True])
    costed = np.array([False, False, True, True])
    want = _walk_up(parent, costed, is_op)
    assert want[0].tolist() == [-1, -1, 2, 2] and want[1].tolist() == [-1, -1, 0, 2]
    for level in (np.array([0, 1, 1, 2]), np.array([0, -1, 2, 3]), np.array([3, 2, 1, 0])):
        walk = _Walk(parent, is_op, level)
        got = walk.units(costed), walk.op_parent
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
