"""group_sums must equal pandas' groupby sums bit for bit (the report's numbers depend on the last bit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.group_sums import float_sums, group_ids, int_sums

#: The summation float_sums reproduces is pandas 3's (reduceat or Kahan, as below); pandas 2's groupby
#: always compensates, so there the sums agree to rounding only.
PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def _keys(rng: np.random.Generator, n: int) -> list[pd.Series]:
    names = [f"k{i}" for i in range(int(rng.integers(1, 15)))]  # category order k0 k1 ... k10 is not sorted text
    name = pd.Series(pd.Categorical(rng.choice(names, n), categories=names))
    phase = pd.Series(rng.choice(["prefill", "decode", "step"], n), dtype="str")
    if n and rng.random() < 0.3:
        name[rng.random(n) < 0.2] = np.nan
    return [name, phase][: int(rng.integers(1, 3))]


def _block(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    block = rng.random((k, n)) * 10.0 ** rng.integers(0, 16, (k, n))  # magnitudes far apart: order shows
    if rng.random() < 0.3:
        block[rng.random((k, n)) < 0.1] = np.nan
    return block


@pytest.mark.parametrize("seed", range(40))
def test_group_numbers_and_sums_equal_pandas(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 3, 8, 40, 300]))
    keys = _keys(rng, n)
    if rng.random() < 0.5:  # sorted rows: pandas takes its np.add.reduceat way
        order = pd.DataFrame({i: k for i, k in enumerate(keys)}).sort_values(list(range(len(keys)))).index
        keys = [k.iloc[order].reset_index(drop=True) for k in keys]
    frame_keys = pd.DataFrame({f"key{i}": k for i, k in enumerate(keys)})
    grouped = frame_keys.groupby(list(frame_keys.columns), observed=True, dropna=False)
    ids, first = group_ids(keys)
    assert ids.tolist() == grouped.ngroup().tolist()
    assert len(first) == grouped.ngroups

    block = _block(rng, n, int(rng.integers(1, 4)))
    columns = [f"v{j}" for j in range(len(block))]
    data = frame_keys.join(pd.DataFrame(block.T, columns=columns))  # the values: one block, as in a table
    expected = data.groupby(list(frame_keys.columns), observed=True, dropna=False)[columns].sum()
    sums, _ = float_sums(block, ids, len(first))
    if PANDAS_3:
        np.testing.assert_array_equal(sums, expected.to_numpy().T)  # exact: same summation order and method
    else:
        np.testing.assert_allclose(sums, expected.to_numpy().T, rtol=1e-12)

    counts = rng.integers(0, 10**9, n)
    expected_ints = frame_keys.assign(v=counts).groupby(list(frame_keys.columns), observed=True, dropna=False)["v"].sum()
    assert int_sums(counts, ids, len(first)).tolist() == expected_ints.tolist()


def test_reduceat_and_kahan_differ_so_the_choice_matters():
    # One group, values 3, 1e16, 1, 1, -1e16 (exact sum 5). np.add.reduceat starts from the first value and
    # adds the rest left to right: 3 + (((1e16 + 1) + 1) - 1e16) = 3, since 1e16 + 1 rounds back to 1e16
    # (doubles are 2 apart there). Kahan's compensation ends at 6. pandas picks reduceat for a NaN-free
    # block of sorted groups and Kahan once the block holds a NaN: both must be reproduced.
    values = [3.0, 1e16, 1.0, 1.0, -1e16]
    ids = np.zeros(len(values), dtype=np.intp)
    plain, kahan_used = float_sums(np.array([values]), ids, 1)
    with_nan, kahan_used_too = float_sums(np.array([values, [np.nan] * len(values)]), ids, 1)
    assert (plain[0][0], kahan_used) == (3.0, False)
    assert (with_nan[0][0], kahan_used_too) == (6.0, True)
    if not PANDAS_3:
        return
    frame = pd.DataFrame({"key": 0, "v": values})
    assert frame.groupby("key")["v"].sum().iloc[0] == 3.0
    assert frame.assign(w=np.nan).groupby("key")[["v", "w"]].sum()["v"].iloc[0] == 3.0  # w: a block of its own
    one_block = pd.DataFrame(np.array([values, [np.nan] * len(values)]).T, columns=["v", "w"]).assign(key=0)
    assert one_block.groupby("key")[["v", "w"]].sum()["v"].iloc[0] == 6.0


def test_group_ids_of_text_keys_number_groups_as_factorize_sorts_them():
    from profkit.analyzers.group_sums import _sorted_codes, group_ids

    rng = np.random.default_rng(7)
    words = np.array(["decode", "prefill", "Décode", "zeta", "Zeta", "a", "", "ß", "日本", "a b", "b"], dtype=object)
    for _ in range(30):
        values = words[rng.integers(0, len(words), rng.integers(1, 40))]
        for key in (pd.Index(values), pd.Series(values), pd.Index(values, dtype="str")):
            codes, uniques = pd.factorize(key, sort=True, use_na_sentinel=True)
            got, size = _sorted_codes(key)
            assert size == len(uniques) and got.tolist() == codes.tolist()
        mixed = pd.Index(np.append(values, None))  # a null: the factorize way, the null last
        ids, first = group_ids([mixed])
        assert ids[-1] == ids.max() and len(first) == len(set(values)) + 1
