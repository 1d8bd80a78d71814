"""analyzers/json_texts.py: many JSON texts read in one parse where that cannot mix them up, each
alone otherwise; the values are those json.loads gives each text alone (None where it fails)."""

import json
import math

import numpy as np
import pytest

from profkit.analyzers.json_texts import values_of
from profkit.analyzers.memory import sample_blocks


def _alone(text):
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


@pytest.mark.parametrize("texts", [
    ['[[2,3]]', '{"address": 1, "bytes": 8}', None, '[]'],  # lists, objects and no text: one parse
    ['[[2,3]]', '[1],[2]', '[[4]]'],  # a text that is two lists is not split into two texts' values
    ['{"a": 1}', '{"b": 2}, {"c": 3}', '{}'],  # nor one that is two objects
    ['[[2,3]]', 'not json', '[[4]]'],  # one unparsable text: the others still read
    ['"[[5]]"', '7', '', '[1]'],  # a JSON string, a number, an empty text
    ['[1', '2]'],  # halves of one list are two unparsable texts
    ['{"size": NaN}', '[Infinity, 1]', '[-Infinity]'],  # what orjson refuses, json reads
])
def test_each_text_reads_as_it_would_alone(texts):
    values = values_of(texts)
    expected = [_alone(text) for text in texts]
    assert len(values) == len(texts)
    # (NaN != NaN: compare the texts json writes back)
    assert json.dumps(values) == json.dumps(expected)


def test_allocator_blocks_read_as_numbers_and_nan_where_a_row_has_none():
    texts = np.array(['{"address": 4096, "bytes": 512}', None, '{"address": 8192, "bytes": -512}', "garbled",
                      '{"address": 1' + "0" * 400 + ', "bytes": "many"}'], dtype=object)
    address, size = sample_blocks(texts)
    assert address[0] == 4096 and size[0] == 512 and address[2] == 8192 and size[2] == -512
    # no block, an unparsable text, a number beyond float's range and a text where a number belongs: NaN
    assert all(math.isnan(v) for v in (address[1], size[1], address[3], size[3], address[4], size[4]))
