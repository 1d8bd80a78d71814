"""Roofline bounds: is a kernel (or a class of work) limited by compute, memory, or neither?

Arithmetic intensity AI = flop / ideal bytes. The ridge point of a device is
peak flop/s / peak bandwidth; below it work is ``memory``-bound, at or above
it ``compute``-bound (REFERENCE.md §3). A row that reaches less than
``LATENCY_FRACTION`` of the roof that applies to it, i.e. of both the flop/s
and the bandwidth ceilings, is ``latency``-bound: too small or too short to
fill the device, so neither roof explains its time. Rows without a cost model
are ``unknown``.

The "% of peak" of the paper is ``flop_fraction`` (achieved / peak flop/s at
the row's dtype); its memory usage efficiency (MUE) is ``bandwidth_fraction``
(ideal bytes / (time × peak bandwidth)) of memory-bound work. ``roofline_ns``
is the time the work would take on the roofline: a what-if lower bound.

``aggregate_classes`` sums rows per class (or per any grouping, e.g. phase
and class) into the paper's Table 1 columns.
"""

from __future__ import annotations

import enum
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .classes import CLASS_ORDER, OpClass
from .hardware import Ceilings, HardwareSpec

#: Below this fraction of both roofs a row is latency-bound.
LATENCY_FRACTION = 0.10


class Bound(str, enum.Enum):
    COMPUTE = "compute"
    MEMORY = "memory"
    LATENCY = "latency"
    UNKNOWN = "unknown"


_BOUND = pd.CategoricalDtype([b.value for b in Bound])


def _peaks(spec: HardwareSpec | None, dtype: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Peak flop/s per row; computed once per unique (dtype, matrix) pair."""
    if spec is None:
        return np.full(len(dtype), np.nan)
    dtype = np.asarray(dtype, dtype=object)
    codes, uniques = pd.factorize(np.where(pd.isna(dtype), "fp32", dtype).astype(object))
    matrix = np.asarray(matrix, dtype=bool)
    per_dtype = np.array([[spec.peak_for(d, matrix=False), spec.peak_for(d, matrix=True)] for d in uniques], dtype=float)
    return per_dtype[codes, matrix.astype(int)] if len(per_dtype) else np.zeros(len(dtype))


def classify_bound(
    intensity: np.ndarray, ridge: np.ndarray, efficiency: np.ndarray, has_cost: np.ndarray, *, latency: bool = True
) -> np.ndarray:
    """Bound per row from AI vs the ridge point and the fraction of the applicable roof reached."""
    bound = np.where(intensity >= ridge, Bound.COMPUTE.value, Bound.MEMORY.value).astype(object)
    if latency:
        bound = np.where(efficiency < LATENCY_FRACTION, Bound.LATENCY.value, bound)
    return np.where(has_cost & np.isfinite(ridge), bound, Bound.UNKNOWN.value)


_BOUND_CODE = {b: i for i, b in enumerate(Bound)}


def _bound_codes(intensity: np.ndarray, ridge: np.ndarray, efficiency: np.ndarray, has_cost: np.ndarray,
                 *, latency: bool) -> np.ndarray:
    """``classify_bound`` as codes into ``Bound`` (builds the categorical column without strings)."""
    code = np.where(intensity >= ridge, _BOUND_CODE[Bound.COMPUTE], _BOUND_CODE[Bound.MEMORY]).astype(np.int8)
    if latency:
        code[efficiency < LATENCY_FRACTION] = _BOUND_CODE[Bound.LATENCY]
    code[~(has_cost & np.isfinite(ridge))] = _BOUND_CODE[Bound.UNKNOWN]
    return code


def bounds(rows: pd.DataFrame, ceilings: Ceilings) -> pd.DataFrame:
    """Roofline columns for rows with flops, bytes, dtype, category and span_ns (the time of the point)."""
    spec = ceilings.primary
    flops = rows["flops"].to_numpy(float)
    nbytes = rows["bytes"].to_numpy(float)
    span_s = rows["span_ns"].to_numpy(float) / 1e9
    matrix = (rows["category"] == OpClass.CONTRACTION.value).to_numpy()
    peak = _peaks(spec, rows["dtype"].to_numpy(object), matrix)
    bandwidth = spec.memory_bytes_per_s if spec else np.nan
    has_cost = (span_s > 0) & ((flops > 0) | (nbytes > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(nbytes > 0, flops / nbytes, np.where(flops > 0, np.inf, np.nan))
        achieved_flops = np.where(has_cost, flops / span_s, np.nan)
        achieved_bytes = np.where(has_cost, nbytes / span_s, np.nan)
        flop_fraction = achieved_flops / peak
        bandwidth_fraction = achieved_bytes / bandwidth
        roofline_ns = np.maximum(flops / peak, nbytes / bandwidth) * 1e9
    efficiency = np.fmax(flop_fraction, bandwidth_fraction)  # = achieved / attainable at this AI
    with np.errstate(invalid="ignore"):
        bound = _bound_codes(intensity, peak / bandwidth, efficiency, has_cost, latency=not ceilings.what_if)
    if ceilings.what_if:  # timings come from another device
        flop_fraction = np.full(len(rows), np.nan)
        bandwidth_fraction = np.full(len(rows), np.nan)
    return pd.DataFrame(
        {
            "arithmetic_intensity": np.where(has_cost, intensity, np.nan),
            "achieved_flops_per_s": achieved_flops,
            "achieved_bytes_per_s": achieved_bytes,
            "peak_flops_per_s": peak,
            "flop_fraction": np.where(has_cost, flop_fraction, np.nan),
            "bandwidth_fraction": np.where(has_cost, bandwidth_fraction, np.nan),
            "roofline_ns": np.where(has_cost, roofline_ns, np.nan),
            "bound": pd.Categorical.from_codes(bound, dtype=_BOUND),
        },
        index=rows.index,
    )


def aggregate_classes(
    rows: pd.DataFrame,
    ceilings: Ceilings,
    by: Sequence[str] = ("category",),
    share_within: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Table 1 per group of device-work rows (``classify_events`` output).

    Shares are within the groups of ``share_within`` (default ``by[:-1]``: the
    whole table for the per-class grouping, each phase for ("phase",
    "category")). Grouping by category alone always lists the paper's three
    classes, with zeros when absent.
    Achieved rates and roof fractions are over the time of rows that have a
    cost (``costed_time_ns``), so uncosted ops do not dilute them.
    """
    by = list(by)
    work = _work_columns(rows, by, ceilings)
    sums = ["time_ns", "flops", "bytes", "costed_time_ns", "peak_flop_ns", "measured_peak_flop_ns",
            "fused_time_ns", "roofline_ns"] + [f"{b.value}_ns" for b in Bound]
    grouped = work.groupby(by, observed=True, dropna=False)[sums + ["count"]].sum()  # count: a sum of ones
    if by == ["category"]:
        found = set(grouped.index.astype(str))
        present = [c for c in CLASS_ORDER if c in found or c in CLASS_ORDER[:3]]
        grouped = grouped.reindex(pd.CategoricalIndex(present, categories=CLASS_ORDER, name="category"), fill_value=0)
    grouped = grouped.reset_index()
    outer = list(by[:-1] if share_within is None else share_within)
    totals = grouped.groupby(outer, observed=False)[["time_ns", "flops", "bytes"]].transform("sum") if outer else grouped[["time_ns", "flops", "bytes"]].sum()
    spec = ceilings.primary
    measured = ceilings.measured if (ceilings.measured is not None and ceilings.measured is not spec) else None
    # The small per-group table in numpy: element-wise, the same arithmetic as on Series.
    column = {c: grouped[c].to_numpy() for c in ("time_ns", "flops", "bytes", "costed_time_ns", "peak_flop_ns",
                                                  "measured_peak_flop_ns")}
    total = {c: np.asarray(totals[c]) for c in ("time_ns", "flops", "bytes")}
    flops, nbytes, costed_ns, peak_flop_ns = column["flops"], column["bytes"], column["costed_time_ns"], column["peak_flop_ns"]
    out: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["time_share"] = column["time_ns"] / total["time_ns"]
        out["flop_share"] = flops / total["flops"]
        out["bytes_share"] = nbytes / total["bytes"]
        costed_s = costed_ns / 1e9
        out["arithmetic_intensity"] = flops / nbytes
        out["achieved_flops_per_s"] = flops / costed_s
        out["achieved_bytes_per_s"] = nbytes / costed_s
        out["flop_fraction"] = flops / (np.where(peak_flop_ns > 0, peak_flop_ns, np.nan) / 1e9)
        bandwidth = spec.memory_bytes_per_s if spec else np.nan
        out["bandwidth_fraction"] = nbytes / (costed_s * bandwidth)
        ridge = (peak_flop_ns / costed_ns) / bandwidth
        if measured is not None:
            measured_flop_ns = column["measured_peak_flop_ns"]
            out["flop_fraction_measured"] = flops / (np.where(measured_flop_ns > 0, measured_flop_ns, np.nan) / 1e9)
            out["bandwidth_fraction_measured"] = nbytes / (costed_s * measured.memory_bytes_per_s)
        else:
            out["flop_fraction_measured"] = np.full(len(grouped), np.nan)
            out["bandwidth_fraction_measured"] = np.full(len(grouped), np.nan)
    intensity = out["arithmetic_intensity"]
    efficiency = np.fmax(out["flop_fraction"], out["bandwidth_fraction"])
    out["bound"] = classify_bound(
        np.where(np.isnan(intensity), np.inf, intensity), ridge, efficiency, costed_ns > 0, latency=not ceilings.what_if
    )
    if ceilings.what_if:
        for name in ("flop_fraction", "bandwidth_fraction"):
            out[name] = np.full(len(grouped), np.nan)
    out["mue"] = np.where(out["bound"] == Bound.MEMORY.value, out["bandwidth_fraction"], np.nan)
    kept = {c: grouped[c] for c in grouped.columns if c not in ("peak_flop_ns", "measured_peak_flop_ns")}
    return pd.DataFrame({**kept, **out}).reset_index(drop=True)


def _work_columns(rows: pd.DataFrame, by: list[str], ceilings: Ceilings) -> pd.DataFrame:
    """The device-work rows: the ``by`` columns and the per-row quantities ``aggregate_classes`` sums."""
    mask = rows["device_work"].to_numpy(bool)
    keys = rows[by] if mask.all() else rows[by][mask]

    def values(name: str) -> np.ndarray:
        array = rows[name].to_numpy()
        return array if mask.all() else array[mask]

    span = values("span_ns").astype(float)
    flops, nbytes, time_ns = values("flops"), values("bytes"), values("time_ns")
    costed = (span > 0) & ((flops > 0) | (nbytes > 0))
    peak = rows["peak_flops_per_s"].fillna(0).to_numpy(float)
    peak = peak if mask.all() else peak[mask]
    spec = ceilings.primary
    measured = ceilings.measured if (ceilings.measured is not None and ceilings.measured is not spec) else None
    if measured is not None and not ceilings.what_if:
        matrix = values("category") == OpClass.CONTRACTION.value
        measured_peak = np.where(costed, span * _peaks(measured, values("dtype").astype(object), matrix), 0.0)
    else:
        measured_peak = np.zeros(len(span))
    bound = np.asarray(values("bound"), dtype=object)
    # How pandas sums a float column depends on the block holding it (np.add.reduceat when the
    # groups are sorted and the block has no NaN, else Kahan summation): flops, bytes and
    # roofline_ns share one block, each derived float column has its own, as in the table this
    # replaced, so every sum keeps its last bit. Integer sums are exact: one block for them all.
    frame = pd.DataFrame({
        "flops": flops,
        "bytes": nbytes,
        "roofline_ns": values("roofline_ns"),
        "time_ns": time_ns,
        "fused_time_ns": np.where(values("fused").astype(bool), time_ns, 0),
        **{f"{b.value}_ns": np.where(bound == b.value, time_ns, 0) for b in Bound},
        "count": np.ones(len(time_ns), dtype=np.int64),
    }, index=keys.index)
    frame["costed_time_ns"] = np.where(costed, span, 0.0)
    frame["peak_flop_ns"] = np.where(costed, span * peak, 0.0)  # flop the roof allows in that time, x1e9
    frame["measured_peak_flop_ns"] = measured_peak
    for name in reversed(by):
        frame.insert(0, name, keys[name])
    return frame
