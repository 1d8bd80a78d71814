"""Arrow arrays built from numpy buffers equal what pyarrow's own converters build."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from profkit.trace.arrow_buffers import dictionary, from_numpy, strings, text_array, to_arrow, to_numpy, validity


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.float32, np.float64, np.bool_])
def test_from_numpy_matches_pa_array(dtype):
    values = (np.arange(37) % 5).astype(dtype)
    valid = np.arange(37) % 3 != 0
    assert from_numpy(values).equals(pa.array(values))
    assert from_numpy(values, valid).equals(pa.array(values, mask=~valid))
    assert from_numpy(values[:0]).equals(pa.array(values[:0]))


def test_to_numpy_reads_slices_chunks_and_nulls():
    array = pa.array([5, None, 7, 8, None, 10], pa.int64())
    assert to_numpy(array, -1).tolist() == [5, -1, 7, 8, -1, 10]
    assert to_numpy(array.slice(3), 0).tolist() == [8, 0, 10]
    assert to_numpy(pa.chunked_array([array.slice(0, 2), array.slice(4)]), 9).tolist() == [5, 9, 9, 10]
    assert to_numpy(pa.array([True, None, False]), True).tolist() == [True, True, False]
    values = to_numpy(array, 0)
    values[0] = 99  # a copy, not a view on Arrow's immutable buffer
    assert array[0].as_py() == 5


def test_strings_and_dictionary():
    values = ["b", None, "a", "b", "é", None]
    encoded = strings(values)
    assert encoded.to_pylist() == values
    assert encoded.dictionary.to_pylist() == ["b", "a", "é"]
    assert strings([]).to_pylist() == []
    assert dictionary(np.array([1, 0, 1]), ["cpu", "gpu"]).to_pylist() == ["gpu", "cpu", "gpu"]


def test_to_arrow_on_collector_columns():
    assert to_arrow([3, None, 5]).equals(pa.array([3, None, 5], pa.int64()))
    assert to_arrow([1.5, None, 2]).equals(pa.array([1.5, None, 2.0]))
    assert to_arrow(np.array(["x", None, "y"], dtype=object)).to_pylist() == ["x", None, "y"]
    assert to_arrow([None, None]).null_count == 2
    arrow = pa.array([1, 2])
    assert to_arrow(arrow) is arrow


def test_validity_and_an_all_null_array_without_data_buffer():
    array = pa.array([1, None, 3], pa.int32())
    assert validity(array).tolist() == [True, False, True]
    assert validity(array.slice(1)).tolist() == [False, True]
    assert validity(pa.array([4, 5])).tolist() == [True, True]

    class AllNullWithoutValues:  # what some readers hand over; pyarrow will not build one itself
        type, offset, null_count = pa.int16(), 0, 3

        def __len__(self):
            return 3

        def buffers(self):
            return [pa.py_buffer(bytes(1)), None]

    no_data = AllNullWithoutValues()
    assert to_numpy(no_data, -1).tolist() == [-1, -1, -1]
    assert to_numpy(no_data, -1).dtype == np.int16


def test_text_array_builds_what_pa_array_builds():
    values = ["aten::mm", "", "é\u2603 ünïcode", "x" * 1000, "last"]
    built = text_array(values)
    assert built.equals(pa.array(values, pa.string())) and built.null_count == 0
    # empty texts as nulls: the per-event JSON texts (no JSON value encodes to "")
    assert text_array(["[1]", "", "{}"], empty_is_null=True).to_pylist() == ["[1]", None, "{}"]
    assert text_array([]).to_pylist() == []
    with pytest.raises(TypeError):
        text_array(["a", None])


def test_cast_encodes_text_as_the_dictionary_type_with_nulls_kept():
    # pyarrow before 15 has no cast from string to dictionary: cast encodes instead (write_trace's path).
    from profkit.trace.arrow_buffers import cast, cast_table

    target = pa.dictionary(pa.int32(), pa.string())
    texts = pa.chunked_array([pa.array(["cpu_op", None, "kernel"]), pa.array(["kernel"])])
    encoded = cast(texts, target)
    assert encoded.type == target and encoded.to_pylist() == ["cpu_op", None, "kernel", "kernel"]
    assert cast(encoded, target).to_pylist() == encoded.to_pylist()  # already dictionary: as it is
    assert cast(pa.array([1, None], pa.int32()), pa.int64()).to_pylist() == [1, None]
    schema = pa.schema([("kind", target), ("n", pa.int64())])
    table = cast_table(pa.table({"kind": texts, "n": pa.chunked_array([[1, 2, 3], [4]], pa.int32())}), schema)
    assert table.schema == schema and table.to_pydict() == {"kind": ["cpu_op", None, "kernel", "kernel"], "n": [1, 2, 3, 4]}
