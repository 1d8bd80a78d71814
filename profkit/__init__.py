"""profkit: hardware profiling and trace analysis for PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ProfkitError, TraceFormatError

__all__ = ["ProfkitError", "Trace", "TraceFormatError", "__version__", "load", "phase", "record"]


def __getattr__(name: str):
    # Loaded on first use: `import profkit` stays cheap (the recorder's process hook and
    # `profkit record` import it), and analyzing a trace never needs torch.
    if name in ("load", "Trace"):
        from .trace import io

        return getattr(io, name)
    if name == "record":
        from .collectors.session import record

        return record
    if name == "phase":
        from .collectors.marks import phase

        return phase
    raise AttributeError(name)
