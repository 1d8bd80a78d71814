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
from .columns import float_values, label_codes
from .group_sums import float_sums, group_ids, int_sums
from .hardware import Ceilings, HardwareSpec
from .table import Coded, Column, EventTable

#: Below this fraction of both roofs a row is latency-bound.
LATENCY_FRACTION = 0.10


class Bound(str, enum.Enum):
    COMPUTE = "compute"
    MEMORY = "memory"
    LATENCY = "latency"
    UNKNOWN = "unknown"


BOUND_DTYPE = pd.CategoricalDtype([b.value for b in Bound])
_BOUND_LABELS = np.array([b.value for b in Bound], dtype=object)
CLASS_DTYPE = pd.CategoricalDtype(list(CLASS_ORDER))  # (built once: a dtype checks its categories when made)


def _peaks(spec: HardwareSpec | None, dtype: np.ndarray | pd.Series | Coded, matrix: np.ndarray) -> np.ndarray:
    """Peak flop/s per row; computed once per unique (dtype, matrix) pair."""
    if spec is None:
        return np.full(len(dtype[0]) if isinstance(dtype, Coded) else len(dtype), np.nan)
    if isinstance(dtype, Coded):  # codes (-1: none) into labels already
        codes, uniques = dtype
    else:
        codes, uniques = pd.factorize(dtype if isinstance(dtype, pd.Series) else np.asarray(dtype, dtype=object))
    labels = [*uniques, "fp32"]  # a null dtype (code -1, the last row) reads as fp32
    matrix = np.asarray(matrix, dtype=bool)
    per_dtype = np.array([[spec.peak_for(d, matrix=False), spec.peak_for(d, matrix=True)] for d in labels], dtype=float)
    return per_dtype[codes, matrix.astype(int)]


def row_bandwidth(spec: HardwareSpec | None, host_copy: np.ndarray | None) -> np.ndarray | float:
    """The bandwidth roof of each row: the device memory's, the host link's for host<->device copies."""
    memory = spec.memory_bytes_per_s if spec else np.nan
    if host_copy is None or not np.any(host_copy):
        return memory
    host_link = spec.host_link_bytes_per_s if spec and spec.host_link_bytes_per_s else np.nan
    return np.where(np.asarray(host_copy, dtype=bool), host_link, memory)


def classify_bound(
    intensity: np.ndarray, ridge: np.ndarray, efficiency: np.ndarray, has_cost: np.ndarray, *, latency: bool = True
) -> np.ndarray:
    """Bound per row from AI vs the ridge point and the fraction of the applicable roof reached."""
    bound = np.where(intensity >= ridge, Bound.COMPUTE.value, Bound.MEMORY.value).astype(object)
    if latency:
        bound = np.where(efficiency < LATENCY_FRACTION, Bound.LATENCY.value, bound)
    return np.where(has_cost & np.isfinite(ridge), bound, Bound.UNKNOWN.value)


_BOUND_CODE = {b: i for i, b in enumerate(Bound)}  # (Bound is a str enum: its values find it too)


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
    matrix = np.asarray(rows["category"] == OpClass.CONTRACTION.value, dtype=bool)
    columns = bound_arrays(rows["flops"], rows["bytes"], rows["span_ns"], matrix, rows["dtype"], ceilings)
    columns["bound"] = pd.Categorical.from_codes(columns["bound"].codes, dtype=BOUND_DTYPE)
    return pd.DataFrame(columns, index=rows.index)


def bound_arrays(flops, nbytes, span_ns, matrix: np.ndarray, dtype, ceilings: Ceilings,
                 host_copy: np.ndarray | None = None) -> dict[str, Any]:
    """``bounds`` from the columns it reads (``matrix``: the contraction rows); the bound
    as ``Coded`` codes into ``Bound``. ``host_copy``: rows that copy between host and device memory,
    whose bandwidth roof is the host link's (``peak_bytes_per_s``; NaN, so unknown, where the device's
    host link is not known)."""
    spec = ceilings.primary
    flops = np.asarray(flops, dtype=float)
    nbytes = np.asarray(nbytes, dtype=float)
    span_s = np.asarray(span_ns, dtype=float) / 1e9
    peak = _peaks(spec, dtype, matrix)
    bandwidth = row_bandwidth(spec, host_copy)
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
        flop_fraction = np.full(len(flops), np.nan)
        bandwidth_fraction = np.full(len(flops), np.nan)
    return {
        "arithmetic_intensity": np.where(has_cost, intensity, np.nan),
        "achieved_flops_per_s": achieved_flops,
        "achieved_bytes_per_s": achieved_bytes,
        "peak_flops_per_s": peak,
        "peak_bytes_per_s": np.broadcast_to(bandwidth, len(flops)).astype(float),
        "flop_fraction": np.where(has_cost, flop_fraction, np.nan),
        "bandwidth_fraction": np.where(has_cost, bandwidth_fraction, np.nan),
        "roofline_ns": np.where(has_cost, roofline_ns, np.nan),
        "bound": Coded(bound.astype(np.int64), _BOUND_LABELS),
    }


def aggregate_classes(
    rows: pd.DataFrame,
    ceilings: Ceilings,
    by: Sequence[str] = ("category",),
    share_within: Sequence[str] | None = None,
    *,
    at: np.ndarray | None = None,
    labels: dict[str, pd.Categorical] | None = None,
) -> pd.DataFrame:
    """Table 1 per group of device-work rows (``classify_events`` output).

    Shares are within the groups of ``share_within`` (default ``by[:-1]``: the
    whole table for the per-class grouping, each phase for ("phase",
    "category")). Grouping by category alone always lists the paper's three
    classes, with zeros when absent.
    Achieved rates and roof fractions are over the time of rows that have a
    cost (``costed_time_ns``), so uncosted ops do not dilute them.

    ``at`` (row positions, repeats allowed) aggregates those rows, in that order,
    instead of the whole table; ``labels`` are extra key columns aligned with
    ``at`` (categoricals with sorted categories), listed in ``by`` like the
    table's own columns and typed in the result as an object key would be. This
    is ``aggregate_classes(rows.iloc[at].assign(**labels), ...)`` without
    building that table (phases label ~10k rows per report).
    """
    return pd.DataFrame(aggregate_columns(rows, ceilings, by, share_within, at=at, labels=labels))


def aggregate_columns(rows: pd.DataFrame | EventTable, ceilings: Ceilings, by: Sequence[str] = ("category",),
                      share_within: Sequence[str] | None = None, *, at: np.ndarray | None = None,
                      labels: dict[str, pd.Categorical] | None = None) -> dict[str, Any]:
    """``aggregate_classes`` as a dict of its columns (arrays; no DataFrame): what the report reads."""
    return _aggregate(_Work(rows, ceilings, _measured(ceilings), at), ceilings, by, share_within, labels or {})


def aggregate_labelled(rows: pd.DataFrame | EventTable, ceilings: Ceilings, at: np.ndarray,
                       labels: dict[str, pd.Categorical], groupings: Sequence[tuple[Sequence[str], Sequence[str] | None]],
                       ) -> list[dict[str, Any]]:
    """``aggregate_columns(rows, ceilings, by, share_within, at=at, labels=labels)`` for each
    ``(by, share_within)`` of ``groupings``, the rows read once."""
    work = _Work(rows, ceilings, _measured(ceilings), at)
    return [_aggregate(work, ceilings, by, share_within, labels) for by, share_within in groupings]


def _measured(ceilings: Ceilings) -> HardwareSpec | None:
    """The measured ceilings when they are not the primary ones."""
    measured = ceilings.measured
    return measured if (measured is not None and measured is not ceilings.primary) else None


def _aggregate(work: _Work, ceilings: Ceilings, by: Sequence[str], share_within: Sequence[str] | None,
               labels: dict[str, pd.Categorical]) -> dict[str, Any]:
    by = list(by)
    spec = ceilings.primary
    measured = _measured(ceilings)
    if not by:
        raise ValueError("No group keys passed!")  # as pandas' groupby says
    keys = [work.label(labels[c]) if c in labels else work.column(c) for c in by]
    ids, first = group_ids(keys)
    n = len(first)
    # Sums as pandas' groupby made them (see group_sums.py): flops, bytes and roofline_ns are one block
    # of float columns, each derived float column a block of its own; integer sums are exact.
    main, kahan = float_sums(np.vstack([work.flops, work.bytes, work.roofline_ns]), ids, n)
    sums: dict[str, np.ndarray] = {
        "time_ns": int_sums(work.time_ns, ids, n),
        "flops": main[0],
        "bytes": main[1],
        "costed_time_ns": float_sums(work.costed_time_ns[None, :], ids, n)[0][0],
        "peak_flop_ns": float_sums(work.peak_flop_ns[None, :], ids, n)[0][0],
        "measured_peak_flop_ns": float_sums(work.measured_peak_flop_ns[None, :], ids, n)[0][0],
        "peak_byte_ns": float_sums(work.peak_byte_ns[None, :], ids, n)[0][0],
        "measured_peak_byte_ns": float_sums(work.measured_peak_byte_ns[None, :], ids, n)[0][0],
        "fused_time_ns": int_sums(work.fused_time_ns, ids, n),
        "roofline_ns": main[2],
        **{f"{b.value}_ns": int_sums(work.time_ns * (work.bound == i), ids, n) for i, b in enumerate(Bound)},
        "count": np.bincount(ids, minlength=n).astype(np.int64),
    }
    groups = {c: _key_column(key, first, as_object=c in labels) for c, key in zip(by, keys)}
    if by == ["category"]:  # the paper's three classes always, then the others found
        labels = np.asarray(groups["category"], dtype=object)
        where = {label: i for i, label in enumerate(labels) if isinstance(label, str)}
        present = [c for c in CLASS_ORDER if c in where or c in CLASS_ORDER[:3]]
        at = np.array([where.get(c, -1) for c in present], dtype=np.int64)
        sums = {c: np.where(at >= 0, v[np.maximum(at, 0)], 0) if len(v) else np.zeros(len(at), v.dtype)
                for c, v in sums.items()}
        groups = {"category": pd.Categorical.from_codes([CLASS_ORDER.index(c) for c in present], dtype=CLASS_DTYPE)}
        n = len(present)
    totals = _share_totals(groups, sums, by, share_within, kahan)
    flops, nbytes, costed_ns, peak_flop_ns = sums["flops"], sums["bytes"], sums["costed_time_ns"], sums["peak_flop_ns"]
    out: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["time_share"] = sums["time_ns"] / totals["time_ns"]
        out["flop_share"] = flops / totals["flops"]
        out["bytes_share"] = nbytes / totals["bytes"]
        costed_s = costed_ns / 1e9
        out["arithmetic_intensity"] = flops / nbytes
        out["achieved_flops_per_s"] = flops / costed_s
        out["achieved_bytes_per_s"] = nbytes / costed_s
        out["flop_fraction"] = flops / (np.where(peak_flop_ns > 0, peak_flop_ns, np.nan) / 1e9)
        peak_byte_ns = np.where(sums["peak_byte_ns"] > 0, sums["peak_byte_ns"], np.nan) if spec else np.nan
        out["bandwidth_fraction"] = nbytes / (peak_byte_ns / 1e9)
        ridge = peak_flop_ns / peak_byte_ns  # (the time-weighted flop roof over the time-weighted bandwidth roof)
        if measured is not None:
            measured_flop_ns = sums["measured_peak_flop_ns"]
            out["flop_fraction_measured"] = flops / (np.where(measured_flop_ns > 0, measured_flop_ns, np.nan) / 1e9)
            measured_byte_ns = sums["measured_peak_byte_ns"]
            out["bandwidth_fraction_measured"] = nbytes / (np.where(measured_byte_ns > 0, measured_byte_ns, np.nan) / 1e9)
        else:
            out["flop_fraction_measured"] = np.full(n, np.nan)
            out["bandwidth_fraction_measured"] = np.full(n, np.nan)
    intensity = out["arithmetic_intensity"]
    efficiency = np.fmax(out["flop_fraction"], out["bandwidth_fraction"])
    out["bound"] = classify_bound(
        np.where(np.isnan(intensity), np.inf, intensity), ridge, efficiency, costed_ns > 0, latency=not ceilings.what_if
    )
    if ceilings.what_if:
        for name in ("flop_fraction", "bandwidth_fraction"):
            out[name] = np.full(n, np.nan)
    out["mue"] = np.where(out["bound"] == Bound.MEMORY.value, out["bandwidth_fraction"], np.nan)
    del sums["peak_flop_ns"], sums["measured_peak_flop_ns"], sums["peak_byte_ns"], sums["measured_peak_byte_ns"]
    return {**groups, **sums, **out}


def _key_column(key: pd.Series | pd.Categorical | Coded, first: np.ndarray, as_object: bool = False) -> Any:
    """A grouping column of the result, typed as groupby's result index types it (``Coded``: the
    labels as objects, NaN for a null)."""
    if isinstance(key, Coded):
        return np.append(key.labels, np.nan)[key.codes[first]]
    if isinstance(key, pd.Categorical):
        if as_object and len(first):  # a label key stands for a column of strings
            return pd.Index(np.asarray(key.categories, dtype=object)[key.codes[first]])
        return key.take(first)
    if isinstance(key.dtype, pd.CategoricalDtype) or not len(first):
        return key.iloc[first].array
    return pd.Index(key.iloc[first].to_numpy(dtype=object))  # object keys: the type pandas infers


def _share_totals(groups: dict, sums: dict, by: list[str], share_within, kahan: bool) -> dict[str, np.ndarray]:
    """time, flop and byte totals the shares divide by, summed as pandas summed them.

    Within ``share_within`` groups (default ``by[:-1]``): a groupby-transform sum over
    the grouped rows; over the whole table: DataFrame.sum, whose float sum depends on
    the layout of the block holding flops and bytes (column-major after a Kahan groupby).
    """
    outer = list(by[:-1] if share_within is None else share_within)
    if outer:
        ids, first = group_ids([groups[c] for c in outer])  # (Categorical or Index: no Series around them)
        keep = np.ones(len(ids), bool)
        for c in outer:  # groupby's default dropna: rows with a null outer key get no total
            keep &= ~np.asarray(pd.isna(groups[c]), dtype=bool)
        ids = np.where(keep, ids, -1)
        block, _ = float_sums(np.vstack([sums["flops"], sums["bytes"]]), ids, len(first))
        time_total = int_sums(sums["time_ns"], ids, len(first))
        at = np.maximum(ids, 0)
        if keep.all():
            return {"time_ns": time_total[at], "flops": block[0][at], "bytes": block[1][at]}
        return {"time_ns": np.where(keep, time_total[at], np.nan), "flops": np.where(keep, block[0][at], np.nan),
                "bytes": np.where(keep, block[1][at], np.nan)}
    n = len(sums["flops"])
    # pandas sums the [flops, bytes] rows of its (flops, bytes, roofline_ns) result block: the same layout here.
    layout = np.empty((n, 3)).T if kahan else np.empty((3, n))
    layout[0], layout[1] = sums["flops"], sums["bytes"]
    pair = layout[0:2]
    if np.isnan(pair).any():  # pandas fills NaN with 0 in a (row-major) copy
        pair = np.where(np.isnan(pair), 0.0, pair)
    totals = pair.sum(axis=1)
    return {"time_ns": sums["time_ns"].sum(), "flops": totals[0], "bytes": totals[1]}


class _Work:
    """The device-work rows of a classified table, as the arrays ``aggregate_classes`` sums.

    ``rows``: a DataFrame or an ``EventTable`` (classify_table). ``at``: positions of
    the rows to take (in that order, repeats allowed) before keeping the device work;
    all rows when None.
    """

    def __init__(self, rows: pd.DataFrame | EventTable, ceilings: Ceilings, measured: HardwareSpec | None,
                 at: np.ndarray | None = None):
        mask = rows["device_work"].to_numpy(bool)
        if at is None:
            self._label_at = None
            keep = None if mask.all() else mask
        else:
            at = np.asarray(at, np.int64)
            self._label_at = mask[at]  # which of the ``at`` rows (and their labels) are kept
            keep = at[self._label_at]
        self._rows, self._mask = rows, keep
        self.n = len(rows) if keep is None else (int(keep.sum()) if keep.dtype == bool else len(keep))
        span = self.values("span_ns").astype(float)
        self.flops, self.bytes = self.values("flops").astype(float), self.values("bytes").astype(float)
        self.time_ns = self.values("time_ns").astype(np.int64)
        self.roofline_ns = self.values("roofline_ns").astype(float)
        costed = (span > 0) & ((self.flops > 0) | (self.bytes > 0))
        peak = self._kept(float_values(rows["peak_flops_per_s"]))
        peak = np.where(np.isnan(peak), 0.0, peak)
        self.costed_time_ns = np.where(costed, span, 0.0)
        self.peak_flop_ns = np.where(costed, span * peak, 0.0)  # flop the roof allows in that time, x1e9
        # Bytes the bandwidth roof allows in that time (x1e9): a row's roof is the device memory's, or the
        # host link's for a host<->device copy (classify's peak_bytes_per_s).
        spec = ceilings.primary
        memory = spec.memory_bytes_per_s if spec else np.nan
        has_roof = "peak_bytes_per_s" in (rows.columns if isinstance(rows, pd.DataFrame) else rows)
        roof = self._kept(float_values(rows["peak_bytes_per_s"])) if has_roof else np.full(self.n, memory)
        self.peak_byte_ns = np.where(costed, span * roof, 0.0)
        if measured is not None and not ceilings.what_if:
            matrix = self.values("category") == OpClass.CONTRACTION.value
            peaks = _peaks(measured, self.values("dtype").astype(object), matrix)
            self.measured_peak_flop_ns = np.where(costed, span * peaks, 0.0)
            # (calibrate measures no host link: a host copy keeps the datasheet's)
            measured_roof = np.where(roof == memory, measured.memory_bytes_per_s, roof)
            self.measured_peak_byte_ns = np.where(costed, span * measured_roof, 0.0)
        else:
            self.measured_peak_flop_ns = np.zeros(self.n)
            self.measured_peak_byte_ns = np.zeros(self.n)
        self.fused_time_ns = np.where(self.values("fused").astype(bool), self.time_ns, 0)
        codes, labels = label_codes(rows["bound"])  # codes into Bound (-1: none of them)
        to_bound = np.array([_BOUND_CODE.get(label, -1) for label in labels] + [-1], dtype=np.int64)
        self.bound = self._kept(to_bound[codes])

    def _kept(self, array: np.ndarray) -> np.ndarray:
        return array if self._mask is None else array[self._mask]

    def values(self, name: str) -> np.ndarray:
        return self._kept(self._rows[name].to_numpy())

    def column(self, name: str) -> pd.Series | pd.Categorical | Coded:
        """A key column of the kept rows: a categorical one as its array (no Series to index), a
        text column of an ``EventTable`` as its codes and labels."""
        column = self._rows[name]
        if isinstance(column, Column):
            if column.table.is_text(name):
                codes, labels = column.labels()
                return Coded(self._kept(codes), labels)
            return pd.Series(self.values(name))
        if isinstance(column.dtype, pd.CategoricalDtype):
            return column.array if self._mask is None else column.array[self._mask]
        if self._mask is None:
            return column
        return column[self._mask] if self._mask.dtype == bool else column.iloc[self._mask]

    def label(self, values: pd.Categorical) -> pd.Categorical:
        """An extra key column aligned with ``at``, kept like the rows."""
        return values if self._label_at is None else values[self._label_at]
