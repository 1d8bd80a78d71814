"""The trace file: schema (the contract), building, reading and writing."""

from .build import build_events
from .io import Trace, expand_paths, load, read_metadata, update_metadata, write_trace
from .schema import COLUMNS, FORMAT_VERSION, Kind

__all__ = ["COLUMNS", "FORMAT_VERSION", "Kind", "Trace", "build_events", "expand_paths", "load", "read_metadata", "update_metadata", "write_trace"]
