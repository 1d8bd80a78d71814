"""Column helpers the analyzers share: built from codes, typed as pandas would type the plain values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.columns import descending_order, text_column


@pytest.mark.parametrize("texts, codes", [
    (["aten::mm", None, "gemm"], [0, 1, 2, 2, 1, 0]),  # text and missing: pandas' str type
    ([None, None], [0, 1, 1]),  # no text at all: pandas keeps object
    (["x"], []),  # no rows
    (["a", "b"], [1, 1]),  # some labels unused
])
def test_text_column_is_what_pandas_makes_of_the_object_array(texts, codes):
    codes = np.asarray(codes, dtype=np.int64)
    reference = pd.DataFrame({"c": np.array(texts, dtype=object)[codes]})["c"]
    built = pd.DataFrame({"c": text_column(texts, codes)})["c"]
    pd.testing.assert_series_equal(built, reference, check_exact=True)
    assert type(built.array) is type(reference.array)


def test_descending_order_is_sort_values_order_with_ties():
    values = np.random.default_rng(1).integers(0, 5, 500)
    expected = pd.Series(values).sort_values(ascending=False).index.to_numpy()
    assert (descending_order(values) == expected).all()
