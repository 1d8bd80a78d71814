"""Report sections: phases (prefill, decode, generate, train_step, user marks), inference, training.

``phases``: a list, one object per phase label, with at least ``phase``,
``count``, ``time_ns``, ``tokens``, ``tokens_per_s``, ``bound``,
``arithmetic_intensity`` and the per-class breakdown ``categories`` (as in
the top-level ``categories`` section); energy
fields when the trace has telemetry. ``inference``: TTFT, TBT (p50/p90/p99),
prefill and decode tokens/s, one entry per generate call; null without
prefill/decode passes. ``training``: median ``step_time_ns``, the
forward/backward/optimizer split, host gaps, ``mfu``; null without training
steps. The analysis is profkit/analyzers/phases.py (training steps: training.py), run once per report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich import box
from rich.markup import escape
from rich.table import Table

from ...analyzers.phases import (
    GENERATE,
    PASS_PHASES,
    STEP,
    TRAIN_STEP,
    PhaseAnalysis,
    analyze_phases,
    percentiles,
)
from ..context import ReportContext
from ..drawn import drawn_width
from ..format import fmt_ns, fmt_share, fmt_si
from ..registry import section
from ._records import records as _records
from .categories import ceilings, classified

#: JSON list order: the passes side by side first, then calls and steps, then user marks.
_ORDER = {name: i for i, name in enumerate((*PASS_PHASES, GENERATE, TRAIN_STEP, STEP))}
_PHASE_FIELDS = ("phase", "count", "time_ns", "host_time_ns", "device_time_ns", "tokens", "tokens_per_s",
                 "batch_size", "mean_pass_ns", "flops", "bytes", "arithmetic_intensity", "achieved_flops_per_s",
                 "achieved_bytes_per_s", "flop_fraction", "bandwidth_fraction", "bound", "energy_j", "avg_power_w",
                 "j_per_token", "uncertainty_j", "uncertain", "source")
_CLASS_FIELDS = ("category", "time_ns", "time_share", "flops", "flop_share", "bytes", "arithmetic_intensity", "bound")
_STEP_FIELDS = ("step", "rank", "startup", "time_ns", "forward_ns", "backward_ns", "optimizer_ns", "host_gap_ns",
                "flops", "achieved_flops_per_s", "samples", "tokens")
MAX_LISTED = 1000  # generate calls / steps listed one by one in the JSON


def analysis(ctx: ReportContext) -> PhaseAnalysis:
    """The phase analysis of this report (computed once, shared by the three sections)."""

    def compute() -> PhaseAnalysis:
        try:
            from .energy import tracks_of
        except ImportError:  # pragma: no cover - only while the energy section is missing
            tracks = None
        else:
            tracks = tracks_of(ctx)[1]
        return analyze_phases(ctx.table, classified(ctx), ceilings(ctx), tracks)

    return ctx.cached("phase_analysis", compute)


@section("phases", order=40, render=lambda data, console: _render_phases(data, console))
def phases_section(ctx: ReportContext) -> list[dict]:
    result = analysis(ctx)
    table = result.phase_columns  # (dicts of columns: no DataFrame)
    names = np.asarray(table["phase"], dtype=object)  # one row per label: no ties
    if not len(names):
        return []
    by_name = {name: i for i, name in enumerate(sorted(names))}
    order = np.lexsort(([by_name[n] for n in names], [_ORDER.get(n, len(_ORDER)) for n in names]))
    records = _records(table, _PHASE_FIELDS, at=order)
    classes = result.class_columns
    by_phase: dict = {}  # each phase's class rows, in table order
    if classes is not None and len(classes["phase"]):
        for phase, row in zip(np.asarray(classes["phase"], dtype=object).tolist(), _records(classes, _CLASS_FIELDS)):
            row["category"] = None if row["category"] is None else str(row["category"])
            by_phase.setdefault(phase, []).append(row)
    for record in records:
        record["categories"] = sorted(by_phase.get(record["phase"], []), key=lambda r: -(r["time_ns"] or 0))
        for key in ("count", "time_ns", "host_time_ns"):
            record[key] = int(record[key])
    return records


@section("inference", order=41, render=lambda data, console: _render_inference(data, console))
def inference_section(ctx: ReportContext) -> dict | None:
    result = analysis(ctx)
    if result.inference is None:
        return None
    calls = result.generation_columns  # (a dict of columns: no DataFrame)
    listed = []
    if calls is not None:
        at = np.arange(min(len(calls["rank"]), MAX_LISTED))
        listed = _records({k: v for k, v in calls.items() if k != "tbt_ns"}, calls, at=at)
        for record, samples in zip(listed, calls["tbt_ns"][at]):
            record["tbt_ns"] = percentiles(samples)
    return {**result.inference, "generations": listed, "generations_listed": len(listed)}


@section("training", order=42, render=lambda data, console: _render_training(data, console))
def training_section(ctx: ReportContext) -> dict | None:
    result = analysis(ctx)
    if result.training is None:
        return None
    training = dict(result.training)
    steps = result.step_columns  # (a dict of columns: no DataFrame)
    listed = _records(steps, _STEP_FIELDS, at=np.arange(min(len(steps["time_ns"]), MAX_LISTED)))
    peak = training.get("peak_flops_per_s") if training.get("mfu") is not None else None
    for record in listed:
        rate = record["achieved_flops_per_s"]
        record["mfu"] = rate / peak if peak and rate is not None else None
    training["notes"] = list(result.notes)
    training["steps_listed"] = listed
    return training


# ---------------------------------------------------------------- terminal rendering (display only)


def _fmt(value: Any, fmt: str = "{:.3g}") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return fmt.format(value)


def _top_class(record: dict) -> str:
    classes = [c for c in record.get("categories", []) if c["time_share"]]
    if not classes:
        return "–"
    top = classes[0]
    return f"{top['category']} {fmt_share(top['time_share'])}"


_ROWS = (
    ("passes", lambda r: str(r["count"])),
    ("time", lambda r: fmt_ns(r["time_ns"])),
    ("per pass", lambda r: fmt_ns(r["mean_pass_ns"])),
    ("batch", lambda r: _fmt(r["batch_size"])),
    ("tokens", lambda r: _fmt(r["tokens"], "{:.0f}")),
    ("tokens/s", lambda r: fmt_si(r["tokens_per_s"])),
    ("flop/byte", lambda r: _fmt(r["arithmetic_intensity"])),
    ("bound", lambda r: r["bound"]),
    ("% peak flop/s", lambda r: fmt_share(r["flop_fraction"])),
    ("% peak bandwidth", lambda r: fmt_share(r["bandwidth_fraction"])),
    ("top class", _top_class),
    ("energy", lambda r: _fmt(r["energy_j"], "{:.3g} J") + (" ?" if r.get("uncertain") else "")),
    ("power", lambda r: _fmt(r["avg_power_w"], "{:.0f} W")),
    ("J/token", lambda r: _fmt(r["j_per_token"])),
)


def _render_phases(records: list[dict], console) -> None:
    if not records:
        return
    energy = any(r["energy_j"] is not None for r in records)
    rows = []
    for label, cell in _ROWS:
        cells = [cell(r) for r in records]
        if all(c in ("–", "– ?") for c in cells):  # e.g. % of peak on a what-if device, energy without telemetry
            continue
        rows.append((label, *cells))
    # Each phase's column as wide as its cells where the console has room for them all ("contraction
    # 46.0 %" once wrapped its "%"); else rich shares the width out (a column too wide to fit is dropped).
    widths = [min(max(max(len(row[i]) for row in rows), 8), 24) for i in range(1, len(records) + 1)]
    table = _phases_table(records, rows, widths)
    if drawn_width(table) > console.width:  # (then a table wider than the console loses its end: "genera")
        table = _phases_table(records, rows, [8] * len(records))
    console.print(table)
    if energy and any(r.get("uncertain") for r in records):
        console.print("[dim]? energy of windows shorter than the counters' refresh period is uncertain[/dim]")


def _phases_table(records: list[dict], rows: list[tuple], widths: list[int]) -> Table:
    table = Table(title="Phases", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True, min_width=16)
    for record, width in zip(records, widths):
        table.add_column(escape(record["phase"]), justify="right", min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def _render_inference(data: dict, console) -> None:
    tbt = data["tbt_ns"]
    parts = [f"{data['generate_calls']} generate call(s)" if data["generate_calls"] else "no generate calls"]
    if data["ttft_ns"] is not None:
        parts.append(f"TTFT {fmt_ns(data['ttft_ns'])}")
    if tbt["p50"] is not None:
        parts.append(f"TBT p50 {fmt_ns(tbt['p50'])} · p90 {fmt_ns(tbt['p90'])} · p99 {fmt_ns(tbt['p99'])}")
    parts.append(f"prefill {fmt_si(data['prefill_tokens_per_s'])} tok/s, decode {fmt_si(data['decode_tokens_per_s'])} tok/s")
    console.print("inference · " + " · ".join(parts))


def _render_training(data: dict, console) -> None:
    split = ", ".join(f"{part} {fmt_share(data[f'{part}_share'])}" for part in ("forward", "backward", "optimizer"))
    ranks = data.get("ranks") or 1
    counted = (f"{data['steps']} steps" if ranks == 1 else f"{data['steps'] // ranks} steps × {ranks} ranks"
               if data["steps"] % ranks == 0 else f"{data['steps']} steps over {ranks} ranks")
    if data.get("steps_summarized", data["steps"]) < data["steps"]:
        counted += " (step 1 left out)"
    line = (f"training · {counted} · median step {fmt_ns(data['step_time_ns'])} ({split}, "
            f"host gaps {fmt_share(data['host_gap_share'])})")
    if data["mfu"] is not None:
        line += f" · MFU {fmt_share(data['mfu'])} of {data['peak_source']} {data['dtype'] or ''}".rstrip()
    for key, unit in (("tokens_per_s", "tokens/s"), ("samples_per_s", "samples/s")):
        if data.get(key):
            line += f" · {fmt_si(data[key])} {unit}" + (" per rank" if ranks > 1 else "")
    console.print(escape(line))
    for note in data.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
