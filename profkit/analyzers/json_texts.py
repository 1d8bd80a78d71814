"""The JSON texts of a column (input shapes and dtypes, ``extra``) parsed, many at once.

A call per text costs more than the parse of a short text, so the texts are read as one JSON array
(one call) where that cannot give a text another's value: every text is a bracketed list or a braced
object, or no text (null), and the array holds one value per text. Otherwise, and where that parse
fails, each text is read alone. orjson reads where it can; the standard json where orjson refuses a
text (NaN, Infinity), so both readings give the same values.
"""

from __future__ import annotations

import json

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
