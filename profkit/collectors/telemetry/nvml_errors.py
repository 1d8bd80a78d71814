"""NVML error codes -> one-line reasons a report can show (a table, not an if-chain).

Codes are NVML's own (nvml.h ``nvmlReturn_t``); they are the same numbers in
pynvml and in the fake, so this module needs neither.
"""

from __future__ import annotations

#: code -> short reason, worded to finish "…: <reason>".
NVML_REASONS: dict[int, str] = {
    1: "NVML not initialized",
    2: "invalid argument",
    3: "not supported on this GPU or driver",
    4: "no permission",
    6: "not found",
    9: "NVIDIA driver not loaded",
    10: "timed out",
    12: "no NVIDIA driver library",
    13: "driver too old for this call",
    15: "GPU is lost (fell off the bus)",
    17: "operating system error",
    18: "NVML library and driver versions differ (reboot or reload the driver)",
    19: "in use",
    21: "no data yet",
    26: "deprecated call",
    27: "not ready",
    28: "GPU not found",
    999: "unknown NVML error",
}

#: Codes after which a device is given up for the rest of the run.
FATAL_CODES = frozenset({15, 28})
#: Codes meaning "this machine has no usable NVML at all".
ABSENT_CODES = frozenset({9, 12, 18})


def error_code(exc: BaseException) -> int | None:
    """The NVML code of an NVMLError (pynvml or fake), else None."""
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def reason(exc: BaseException) -> str:
    """A one-line reason for an NVML exception (unknown codes keep their number)."""
    code = error_code(exc)
    if code is None:
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return NVML_REASONS.get(code, f"NVML error {code}")
