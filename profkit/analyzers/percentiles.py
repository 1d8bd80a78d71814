"""Percentile summaries of samples (times between tokens, step times): p50, p90, p99."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 99)


def percentiles(values) -> dict[str, float | None]:
    """``{"p50": .., "p90": .., "p99": ..}`` of the finite values (None each when there are none)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
