"""Column helpers the analyzers share: built from codes, typed as pandas would type the plain values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers.columns import descending_order, label_codes, label_startswith, text_column


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


def test_label_startswith_is_the_anchored_regex_on_every_row():
    """A prefix test per unique name, mapped back to the rows, equals re.match of the escaped prefix
    row by row (null names read as "")."""
    import re

    names = pd.Series(["autograd::engine::evaluate_function: MmBackward0", "aten::mm", None,
                       "Optimizer.step#SGD.step", "Optimizer.zero_grad#SGD.zero_grad", "nn.Module: Linear_0",
                       "aten::mm", "Optimizer.stepper", ""] * 3, dtype="category")
    for prefixes in ("autograd::engine::evaluate_function: ", "nn.Module: ",
                     ("Optimizer.step#", "Optimizer.zero_grad#"), ("",)):
        regex = re.compile("|".join("^" + re.escape(p) for p in ((prefixes,) if isinstance(prefixes, str) else prefixes)))
        want = [bool(regex.match(n if isinstance(n, str) else "")) for n in names]
        assert label_startswith(label_codes(names), prefixes).tolist() == want


def test_label_startswith_on_str_subclasses_and_objects_that_are_no_str():
    class Name(str):
        pass

    class Prefixed:  # no str, with its own startswith: the generator way
        def startswith(self, prefixes):
            return True

    labels = np.array(["ab", Name("ax"), "b", "", Prefixed()], dtype=object)
    codes = np.array([0, 1, -1, 2, 3, 4])
    assert label_startswith((codes, labels), "a").tolist() == [True, True, False, False, False, True]
    assert label_startswith((codes[:5], labels[:4]), ("b", "")).tolist() == [True] * 5  # "" starts every text
