"""Report sections: time and flop per operator class (the paper's Table 1) and the roofline.

``categories``: one object per class (contraction, normalization, elementwise,
memory, communication, other) with its time and flop shares, bytes, achieved
throughput, fraction of the datasheet (and measured) ceilings and its bound.
``roofline``: the ceilings used, ridge points, the top kernels (CPU ops on a
CPU trace) with class, arithmetic intensity and bound, and the device idle
time attributed to the host.

Other sections (phases, HTML) reuse the per-row table through
``classified(ctx)`` and the ceilings through ``ceilings(ctx)``; both are
computed once per report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table

from ...analyzers.classify import classify_table, is_gpu_trace
from ...analyzers.columns import descending_order, is_kind, label_codes, positions
from ...analyzers.hardware import Ceilings, resolve_ceilings
from ...analyzers.idle import idle_attribution
from ...analyzers.roofline import aggregate_columns
from ...analyzers.table import EventTable
from ...trace.schema import Kind
from ..context import ReportContext
from ..drawn import fitted
from ..format import clip, fmt_ns, fmt_share, fmt_si, idle_cause_label, idle_span_words
from ..kernel_names import short_kernel_name, short_kernel_names
from ..registry import section
from ._records import records as _records

_CLASS_COLUMNS = (
    "category", "time_ns", "time_share", "flops", "flop_share", "bytes", "bytes_share", "arithmetic_intensity",
    "achieved_flops_per_s", "achieved_bytes_per_s", "flop_fraction", "bandwidth_fraction", "mue",
    "flop_fraction_measured", "bandwidth_fraction_measured", "bound", "count", "fused_time_ns", "costed_time_ns",
    "roofline_ns",
)
_BOUND_TIME_COLUMNS = ("compute_ns", "memory_ns", "latency_ns", "unknown_ns")


def gpu_trace(ctx: ReportContext) -> bool:
    """Whether the trace has device work (kernels, copies), once per report."""
    return ctx.cached("gpu_trace", lambda: is_gpu_trace(ctx.table))


def ceilings(ctx: ReportContext) -> Ceilings:
    """The ceilings this report analyzes against (``--hardware`` picks a what-if device): the trace's
    device's, as the classification settled them (a generic CPU guess the fastest op outran is raised)."""
    return classified(ctx).ceilings


def classified(ctx: ReportContext) -> EventTable:
    """``classify_events`` over all ranks, once per report, as numpy columns (``.frame``: the DataFrame)."""
    resolved = ctx.cached(
        "resolved_ceilings",
        lambda: resolve_ceilings(ctx.metadata, gpu_trace=gpu_trace(ctx), requested=ctx.options.hardware),
    )
    return ctx.cached("classified_events", lambda: classify_table(ctx.table, ceilings=resolved))


@section("categories", order=30, render=lambda data, console: _render_categories(data, console))
def categories_section(ctx: ReportContext) -> list[dict]:
    table = aggregate_columns(classified(ctx), ceilings(ctx))
    records = _records(table, _CLASS_COLUMNS + _BOUND_TIME_COLUMNS)
    for record in records:
        record["category"] = str(record["category"])
        record["time_by_bound_ns"] = {k[:-3]: record.pop(k) for k in _BOUND_TIME_COLUMNS}
    return records


@section("roofline", order=31, render=lambda data, console: _render_roofline(data, console))
def roofline_section(ctx: ReportContext) -> dict:
    limits = ceilings(ctx)
    rows = classified(ctx)
    gpu = gpu_trace(ctx)
    if not gpu:  # on the CPU a unit of work is the outermost costed op: name rows after it
        rows = rows.frame
        names = pd.Series(rows["name"].to_numpy(), index=rows["event_id"].to_numpy())
        rows = rows.assign(name=rows["unit_id"].map(names).fillna(rows["name"]))
    top = aggregate_columns(rows, limits, by=["name", "category"], share_within=[])
    if not gpu:  # a count of calls: the units (and ops in none), not every op nested in them
        top["count"] = _calls(rows, top)
    listed = descending_order(np.asarray(top["time_ns"]))[: ctx.options.top]
    fused = _fused_names(rows)
    spec = limits.primary
    ridge = None
    if spec is not None:
        ridge = {
            "matrix": {d: spec.ridge_point(d, matrix=True) for d in ("fp32", "tf32", "bf16", "fp16", "fp8")
                       if spec.peak_flops_per_s.get(d)},
            "vector_fp32": spec.ridge_point("fp32", matrix=False),
        }
    return {
        "device": "gpu" if gpu else "cpu",
        "hardware": limits.to_json(),
        "ridge_point_flop_per_byte": ridge,
        "top": [_with_fused(record, fused) for record in _records(top, _TOP_COLUMNS, at=listed)],
        "idle": idle_attribution(ctx.table),
        "notes": _shape_notes(ctx.table) or _uncounted_contraction(classified(ctx), ctx.table),
    }


def _calls(rows: pd.DataFrame, top: dict) -> np.ndarray:
    """Per (name, category) group of ``top``: the calls, i.e. the counted rows that are units of work
    or in none (an op inside a unit is part of its call)."""
    unit = rows["unit_id"].to_numpy(dtype=np.float64, na_value=np.nan)
    call = rows["device_work"].to_numpy(bool) & (np.isnan(unit) | (unit == rows["event_id"].to_numpy(np.float64)))
    calls = pd.Series(1, index=pd.MultiIndex.from_arrays(
        [rows["name"].to_numpy()[call], np.asarray(rows["category"].astype(str))[call]])).groupby(level=[0, 1]).sum()
    keys = list(zip(np.asarray(top["name"], dtype=object), np.asarray(top["category"]).astype(str)))
    return np.array([int(calls.get(key, 0)) for key in keys], dtype=np.int64)


def _shape_notes(events) -> list[str]:
    """Why every flop and bound reads unknown, when that is why: no op recorded its input shapes."""
    ops = is_kind(events, Kind.CPU_OP.value)
    if not ops.any() or "input_shapes" not in events or (label_codes(events["input_shapes"])[0][ops] >= 0).any():
        return []
    return ["no op recorded its input shapes (profkit record --no-shapes, or torch.profiler without "
            "record_shapes=True): flop, bytes and bounds are unknown"]


#: The share of contraction time with no flop count from which a note says so (below it the class's
#: flop share is still about right).
UNCOUNTED_NOTE_SHARE = 0.05


def _uncounted_contraction(rows, events) -> list[str]:
    """Contraction work in no costed unit (quantized GEMMs, whose packed weights record no shape; GEMM
    kernels no op launched), when it is a notable share of the class's time: its flop are missing
    from the class's % flop and flop/B. An op with a costed unit below it (autograd's
    ``AddmmBackward0`` over its ``aten::mm``) is the call's overhead, not uncounted arithmetic."""
    codes, labels = rows["category"].labels()
    work = rows["device_work"].to_numpy(bool) & (codes == list(labels).index("contraction"))
    time_ns = rows["time_ns"].to_numpy(np.int64)
    total = int(time_ns[work].sum())
    unit_ids, in_unit = rows["unit_id"].ids()
    uncounted = work & ~in_unit
    if uncounted.any() and "parent_id" in events:
        row_ids = rows["event_id"].to_numpy(np.int64)
        contraction_units = row_ids[work & in_unit & (unit_ids == row_ids)]
        uncounted &= ~_above(events, contraction_units, row_ids)
    share = time_ns[uncounted].sum() / total if total else 0.0
    if share < UNCOUNTED_NOTE_SHARE:
        return []
    name_codes, name_labels = rows["name"].labels()
    by_name = np.bincount(name_codes[uncounted], weights=time_ns[uncounted], minlength=len(name_labels))
    names = [clip(short_kernel_name(str(name_labels[i])), 48)
             for i in np.argsort(-by_name, kind="stable")[:2] if by_name[i] > 0]
    return [f"{share:.0%} of contraction time has no flop count ({', '.join(names)}: no usable shapes, or no "
            "launching op): the class's % flop and flop/B leave it out"]


def _above(events, unit_ids: np.ndarray, row_ids: np.ndarray) -> np.ndarray:
    """Per row id: whether one of ``unit_ids`` nests below it (one step up the parents per level)."""
    event_ids = events["event_id"].to_numpy(np.int64)
    parent = positions(event_ids, events["parent_id"])
    marked = np.zeros(len(event_ids), dtype=bool)
    level = parent[positions(event_ids, pd.Series(unit_ids))]
    level = level[level >= 0]
    while len(level):
        marked[level] = True
        level = parent[level]
        level = level[(level >= 0) & ~marked[np.maximum(level, 0)]]
    at = positions(event_ids, pd.Series(row_ids))
    return marked[np.maximum(at, 0)] & (at >= 0)


_TOP_COLUMNS = ("name", "category", "count", "time_ns", "time_share", "flops", "bytes", "arithmetic_intensity",
                "achieved_flops_per_s", "flop_fraction", "bandwidth_fraction", "bound")


def _with_fused(record: dict, fused: dict) -> dict:
    """A top row with its class as text and, third, whether the name ran fused kernels."""
    name, category, *rest = record.items()
    return {"name": name[1], "category": str(category[1]), "fused": bool(fused.get(name[1], False)), **dict(rest)}


def _fused_names(rows: pd.DataFrame) -> dict:
    """Name -> whether any of its device-work rows is a fused kernel."""
    work = rows["device_work"].to_numpy(bool)
    codes, labels = label_codes(rows["name"])
    named = work & (codes >= 0)
    fused = np.zeros(len(labels), dtype=bool)
    np.logical_or.at(fused, codes[named], rows["fused"].to_numpy(bool)[named])
    seen = np.zeros(len(labels), dtype=bool)
    seen[codes[named]] = True
    return {label: bool(f) for label, f, s in zip(labels, fused, seen) if s}


# ---------------------------------------------------------------- terminal rendering (display only)


def _fmt_ai(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.3g}"


def _render_categories(rows: list[dict], console) -> None:
    if not rows:
        return
    cells = {
        "class": lambda row: row["category"],
        "% flop": lambda row: fmt_share(row["flop_share"]),
        "% time": lambda row: fmt_share(row["time_share"]),
        "time": lambda row: fmt_ns(row["time_ns"]),
        "flop/B": lambda row: _fmt_ai(row["arithmetic_intensity"]),
        "% peak": lambda row: fmt_share(row["flop_fraction"]),
        "MUE": lambda row: fmt_share(row["mue"]),
        "bound": lambda row: row["bound"],
    }

    def build(columns: list[str]) -> Table:
        table = Table(title="Where the time goes, by operator class", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False)
        for column in columns:
            table.add_column(column, justify="left" if column in ("class", "bound") else "right", no_wrap=True)
        for row in rows:
            table.add_row(*(cells[column](row) for column in columns))
        return table

    # Below ~78 columns the least read figures go first, rather than every figure cut to "99.…".
    console.print(fitted(build, list(cells), ("MUE", "% peak", "flop/B", "% flop"), console.width))


#: The peaks a header names, most used first: the one maximum (fp8 or int8 on a recent GPU) says
#: little about a bf16 or fp32 run.
_HEADER_DTYPES = ("bf16", "fp16", "fp32")


def _peaks_text(peaks: dict) -> str:
    """"bf16 989 Tflop/s, fp32 67 Tflop/s" (bf16 and fp16 share a figure when they are equal)."""
    named = [(dtype, peaks[dtype]) for dtype in _HEADER_DTYPES if peaks.get(dtype)]
    if len(named) > 1 and named[0][0] == "bf16" and named[1] == ("fp16", named[0][1]):
        named = [("bf16/fp16", named[0][1])] + named[2:]
    if not named:
        best = max((v for v in peaks.values() if v), default=None)
        return f"up to {fmt_si(best, 'flop/s')}"
    return ", ".join(f"{dtype} {fmt_si(value, 'flop/s')}" for dtype, value in named)


def _render_roofline(data: dict, console) -> None:
    hardware = data["hardware"]
    sheet, measured = hardware.get("datasheet"), hardware.get("measured")
    parts = []
    for label, spec in (("datasheet", sheet), ("measured", measured)):
        if spec:
            link = spec.get("host_link_bytes_per_s")
            parts.append(f"{label} {spec['name']}: {_peaks_text(spec['peak_flops_per_s'])}, "
                         f"{fmt_si(spec['memory_bytes_per_s'], 'B/s')}"
                         + (f", host link {fmt_si(link, 'B/s')} each way" if link else ""))
    if parts:
        console.print("roofline · " + escape(" · ".join(parts)))
    for note in [*hardware.get("notes", []), *data.get("notes", [])]:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if data["top"]:
        what = "GPU kernels" if data["device"] == "gpu" else "CPU ops (units of work)"
        # Fixed widths that fit 80 columns (rich otherwise cuts the last column: "latenc"); names
        # narrower on a narrower console, then flop/B and class left out where even that is too wide.
        widths = {"name": max(16, min(70, console.width - 50)), "class": 14, "share": 7, "flop/B": 6, "bound": 7}
        names = short_kernel_names([row["name"] for row in data["top"]], widths["name"])
        cells = {
            "name": lambda row, name: escape(name),
            "class": lambda row, name: row["category"] + ("*" if row["fused"] else ""),
            "share": lambda row, name: fmt_share(row["time_share"]),
            "flop/B": lambda row, name: _fmt_ai(row["arithmetic_intensity"]),
            "bound": lambda row, name: row["bound"],
        }

        def build(columns: list[str]) -> Table:
            table = Table(title=f"Top {what} by class and bound", title_justify="left", box=box.SIMPLE_HEAD,
                          pad_edge=False)
            for column in columns:
                table.add_column(column, justify="left" if column in ("name", "class", "bound") else "right",
                                 no_wrap=True, overflow="ellipsis", min_width=widths[column], max_width=widths[column])
            for row, name in zip(data["top"], names):
                table.add_row(*(cells[column](row, name) for column in columns))
            return table

        console.print(fitted(build, list(cells), ("flop/B", "class"), console.width))
        if any(row["fused"] for row in data["top"]):
            console.print("[dim]* fused kernel: classed by its dominant work[/dim]")
    idle = data["idle"]
    if idle["idle_ns"]:
        causes = ", ".join(f"{idle_cause_label(c['cause'], idle['device'])} {fmt_share(c['share_of_idle'])}"
                           for c in idle["causes"] if c["time_ns"])
        console.print(f"{idle['device'].upper()} idle {fmt_ns(idle['idle_ns'])} "
                      f"({fmt_share(idle['idle_share'])} of {idle_span_words(idle)}): {causes}")
