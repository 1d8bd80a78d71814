"""profkit: hardware profiling and trace analysis for PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ProfkitError, TraceFormatError
from .trace.io import Trace, load

__all__ = ["ProfkitError", "Trace", "TraceFormatError", "__version__", "load", "phase", "record"]


def __getattr__(name: str):
    # record/phase import torch lazily: analyzing a trace must not need torch.
    if name == "record":
        from .collectors.session import record

        return record
    if name == "phase":
        from .collectors.marks import phase

        return phase
    raise AttributeError(name)
