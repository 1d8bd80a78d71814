"""The report is a list of sections; each registers itself here once.

A section is a key in the JSON document, a pure ``compute(ctx) -> JSON-able``
and an optional ``render(data, console)`` for the terminal. Adding a section
to the report = one decorated function in a module imported by
profkit/report/sections/__init__.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .context import ReportContext

Compute = Callable[[ReportContext], Any]
Render = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Section:
    key: str
    order: int
    compute: Compute
    render: Render | None


_SECTIONS: dict[str, Section] = {}


def section(key: str, *, order: int, render: Render | None = None) -> Callable[[Compute], Compute]:
    """Register ``compute`` as the report section ``key`` (refuses duplicates)."""

    def register(compute: Compute) -> Compute:
        if key in _SECTIONS:
            raise ValueError(f"report section {key!r} registered twice")
        _SECTIONS[key] = Section(key=key, order=order, compute=compute, render=render)
        return compute

    return register


def sections() -> list[Section]:
    from . import sections as _load  # noqa: F401  (importing registers the built-in sections)

    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key))
