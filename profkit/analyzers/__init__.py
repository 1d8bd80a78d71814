"""Pure, vectorized analyses over event tables (no torch, no pynvml).

Public entry points are imported lazily so that ``import profkit.analyzers.x``
stays cheap for the analyses that do not need the others.
"""

from __future__ import annotations

__all__ = ["Bound", "OpClass", "aggregate_classes", "classify_events"]


def __getattr__(name: str):
    if name == "classify_events":
        from .classify import classify_events

        return classify_events
    if name == "aggregate_classes":
        from .roofline import aggregate_classes

        return aggregate_classes
    if name == "OpClass":
        from .classes import OpClass

        return OpClass
    if name == "Bound":
        from .roofline import Bound

        return Bound
    raise AttributeError(name)
