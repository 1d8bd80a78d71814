"""The JSON texts of a column (input shapes and dtypes, ``extra``) parsed, many at once.

A call per text costs more than the parse of a short text, so the texts are read as one JSON array
(one call) where that cannot give a text another's value: every text is a bracketed list or a braced
object, or no text (null), and the array holds one value per text. Otherwise, and where that parse
fails, each text is read alone. orjson reads where it can; the standard json where orjson refuses a
text (NaN, Infinity), so both readings give the same values.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _fast_loads = json.loads

#: The closing character of each opening one a text read in the joined array must have.
_CLOSING = {"[": "]", "{": "}"}


def loads(text: str):
    """``json.loads`` (orjson's where it reads the text)."""
    try:
        return _fast_loads(text)
    except ValueError:
        return json.loads(text)


def value_of(text):
    """The JSON value of one text; None for no text (null, a number...) or an unparsable one."""
    try:
        return loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def values_of(texts: list) -> list:
    """``value_of`` each of ``texts`` (a list), in one parse where it can (see the module's docstring)."""
    if all(type(text) is not str or (text[:1] in _CLOSING and text[-1:] == _CLOSING[text[:1]]) for text in texts):
        try:
            values = _fast_loads("[" + ",".join(text if type(text) is str else "null" for text in texts) + "]")
        except ValueError:
            values = None
        if type(values) is list and len(values) == len(texts):
            return values
    return [value_of(text) for text in texts]


def extra_codes(extras, read: Callable[[dict], Any], key: str) -> tuple[np.ndarray, list]:
    """(code per row, -1 for none; the distinct values) of ``read(document)`` over rows' ``extra`` JSON
    objects (None: nothing there). Each distinct text is parsed and read once, each value kept once;
    only texts that name ``key`` are parsed (an imported op's extra holds its ids: mostly distinct)."""
    # The distinct texts that name ``key``, numbered in a dict (a hash a row, as pandas' factorize, without
    # its ~0.3 ms of set-up a call: most calls see a few dozen rows, the ops of one kind).
    quoted = f'"{key}"'
    code_of_text: dict[str, int] = {}
    number = code_of_text.setdefault
    codes = np.array([number(text, len(code_of_text)) if type(text) is str and quoted in text else -1
                      for text in np.asarray(extras, dtype=object).tolist()], dtype=np.int64)
    values: list = []
    seen: dict[str, int] = {}
    text_code = np.full(len(code_of_text) + 1, -1, dtype=np.int64)  # (code -1 reads the trailing -1)
    for i, document in enumerate(values_of(list(code_of_text))):
        value = read(document) if isinstance(document, dict) else None
        if value is None:
            continue
        known = repr(value)
        if known not in seen:
            seen[known] = len(values)
            values.append(value)
        text_code[i] = seen[known]
    return text_code[codes], values
