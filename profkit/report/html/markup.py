"""Safe markup: every string that reaches the page goes through ``esc`` or ``script_json``.

Trace strings (op and kernel names, annotations, the command line, metric
names) are untrusted: a kernel named ``<script>alert(1)</script>`` must show
as text. ``esc`` escapes text and attribute values (quotes included);
``script_json`` makes JSON safe inside a ``<script>`` element, where HTML
escaping does not apply but ``</script>``, ``<!--`` and U+2028/9 would break
out or confuse the parser: every ``<``, ``>`` and ``&`` becomes a JSON
``\\u`` escape, so the text is still valid JSON that parses to the same value.
"""

from __future__ import annotations

import html
import json
from typing import Any

_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped (quotes too); None becomes empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON text safe to place between <script type="application/json"> tags."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).translate(_SCRIPT_ESCAPES)


def attrs(**values: Any) -> str:
    """` key="value"` pairs, escaped; None and False are left out, True is a bare attribute.

    A trailing underscore is dropped (``class_``) and other underscores become
    dashes (``data_t`` -> ``data-t``).
    """
    parts = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def tag(name: str, body: str = "", **values: Any) -> str:
    """An element whose ``body`` is already markup (escape text with ``esc`` first)."""
    return f"<{name}{attrs(**values)}>{body}</{name}>"


def num(value: float) -> str:
    """A coordinate for SVG: short, no exponent, no NaN."""
    if value != value or value in (float("inf"), float("-inf")):
        return "0"
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
