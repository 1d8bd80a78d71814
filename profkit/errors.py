"""One exception tree for everything profkit reports to a user.

The CLI catches ``ProfkitError`` and prints its message on one line with the
error's ``exit_code``; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class ProfkitError(Exception):
    """Base of every error profkit raises on purpose (bad input, bad options)."""

    exit_code = 2


class TraceFormatError(ProfkitError):
    """A file is not a profkit trace, is truncated, or has an unsupported version."""


class TraceImportError(ProfkitError):
    """A foreign trace (Chrome/Kineto JSON) cannot be read."""


class UsageError(ProfkitError):
    """Options or paths that cannot work (unwritable output, unknown hardware...)."""


class RegressionFound(ProfkitError):
    """``profkit check`` found a budget exceeded; exit 1 as CI expects."""

    exit_code = 1
