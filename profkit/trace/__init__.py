"""The trace file: schema (the contract), building, reading and writing.

Names are loaded on first use: importing ``Kind`` imports neither pyarrow nor pandas.
"""

from .kinds import Kind

_LAZY = {
    "COLUMNS": "schema",
    "FORMAT_VERSION": "schema",
    "build_events": "build",
    "Trace": "io",
    "expand_paths": "io",
    "load": "io",
    "read_metadata": "io",
    "update_metadata": "io",
    "write_trace": "io",
}

__all__ = ["COLUMNS", "FORMAT_VERSION", "Kind", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
