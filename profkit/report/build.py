"""Assemble the report document and render it."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable

import numpy as np

from .context import ReportContext, ReportOptions
from .registry import sections

REPORT_VERSION = 1


def build_report(traces: Iterable, options: ReportOptions | None = None) -> dict[str, Any]:
    """The JSON report: ``report_version`` then one key per registered section (``options.sections``:
    only those)."""
    ctx = ReportContext(traces=list(traces), options=options or ReportOptions())
    document: dict[str, Any] = {"report_version": REPORT_VERSION}
    wanted = set(ctx.options.sections)
    for sec in sections():
        if not wanted or sec.key in wanted:  # (a section another one needs is computed for it, not shown)
            document[sec.key] = jsonable(sec.compute(ctx))
    return document


def render_terminal(document: dict[str, Any], console) -> None:
    for sec in sections():
        if sec.render is not None and document.get(sec.key) is not None:
            sec.render(document[sec.key], console)


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False)


#: Types that are JSON as they are (exact types: a subclass, e.g. a str enum, takes the general way).
_PLAIN = frozenset({str, int, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf and pandas NA become null.

    Plain values inside dicts and lists are kept without a call each: a report holds thousands.
    """
    kind = type(value)
    if kind is dict:
        return {k if type(k) is str else str(k): v if type(v) in _PLAIN else jsonable(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else jsonable(v) for v in value]
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    return _jsonable_other(value)


def _jsonable_other(value: Any, convert: Callable[[Any], Any] = jsonable) -> Any:
    """``jsonable`` of anything but the exact plain types, dicts and lists (the general way: every
    value tested in turn; ``convert`` converts what a container holds)."""
    if isinstance(value, dict):
        return {str(k): convert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [convert(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(value)
