"""Assemble the report document and render it."""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np

from .context import ReportContext, ReportOptions
from .registry import sections

REPORT_VERSION = 1


def build_report(traces: Iterable, options: ReportOptions | None = None) -> dict[str, Any]:
    """The JSON report: ``report_version`` then one key per registered section."""
    ctx = ReportContext(traces=list(traces), options=options or ReportOptions())
    document: dict[str, Any] = {"report_version": REPORT_VERSION}
    for sec in sections():
        document[sec.key] = jsonable(sec.compute(ctx))
    return document


def render_terminal(document: dict[str, Any], console) -> None:
    for sec in sections():
        if sec.render is not None and document.get(sec.key) is not None:
            sec.render(document[sec.key], console)


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False)


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf and pandas NA become null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
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
