"""The ``energy`` section: joules and watts, per device, per training step, inference phase and class.

JSON: an object with ``total_j``, ``avg_power_w``, ``peak_power_w``, ``source``
(``nvml_energy_counter_power_shaped``, ``nvml_energy_counter``,
``nvml_power_instant_integrated``, ``nvml_power_average_integrated``,
``rapl_package_counter`` or ``mixed``) and
``scope`` (``gpu`` or ``cpu``); without any power or energy samples these four
are null and ``reason`` says why in one line. See docs/telemetry.md.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from ...analyzers import energy
from ...analyzers.columns import float_values, int_values, label_codes, positions
from ...trace.kinds import Kind
from ..context import ReportContext
from ..format import fmt_ns, fmt_share, fmt_si
from ..registry import section

from .categories import classified
from .phases import analysis

UNCERTAINTY_TEXT = (
    "energy in windows is interpolated between readings ~{refresh:.0f} ms apart (counter updates, or power samples): "
    "each merged segment's edges carry about one refresh period of energy; labels whose segments are "
    "shorter than {shortest:.0f} ms are marked uncertain"
)
CLASS_METHOD = (
    "the energy between consecutive readings (counter updates, or power samples) split by the time each class "
    "kept the device busy in it; classes are assumed to draw equal power within one interval"
)


def samples_of(ctx: ReportContext) -> pd.DataFrame | None:
    """The telemetry sample rows in plain columns (cached for every section that reads them); None when
    the trace has none (most imported traces: no empty table built; torch's allocator rows are no
    telemetry)."""

    def compute():
        at = energy.telemetry_rows(ctx.table)
        if not len(at):  # (an imported trace's allocator rows are no telemetry)
            return None
        samples = energy.samples_of(ctx.table, at)
        return None if samples.empty else samples

    return ctx.cached("telemetry_samples", compute)


def work_rows(ctx: ReportContext, select: Callable[[Any], np.ndarray]) -> pd.DataFrame:
    """The classified rows ``select(rows)`` picks (a mask over the classified table), in plain columns:
    rank, kind, device_index (the event's), category, start_ns, end_ns, bytes, flops. Read column by
    column from the classified table and the events: no DataFrame of either is built (on a recorded
    trace with telemetry, building them was a fifth of the report)."""
    rows = classified(ctx)
    at = np.flatnonzero(select(rows))
    events = ctx.table
    event_pos = positions(events["event_id"].to_numpy(np.int64), rows["event_id"])[at]
    device_index = int_values(events["device_index"], fill=-1)
    start = int_values(rows["start_ns"])[at]

    def text(name: str) -> pd.Series:  # (object: no per-row conversion to pandas' string type)
        codes, labels = label_codes(rows[name])
        return pd.Series(np.append(np.asarray(labels, dtype=object), None)[codes[at]], dtype=object)

    return pd.DataFrame({
        "rank": int_values(rows["rank"])[at] if "rank" in rows else np.zeros(len(at), np.int64),
        "kind": text("kind"),
        "device_index": np.where(event_pos >= 0, device_index[np.maximum(event_pos, 0)], -1),
        "category": text("category"),
        "start_ns": start,
        "end_ns": start + int_values(rows["duration_ns"])[at],
        "bytes": float_values(rows["bytes"])[at],
        "flops": float_values(rows["flops"])[at],
    })


def tracks_of(ctx: ReportContext) -> tuple[pd.DataFrame | None, list[energy.EnergyTrack]]:
    """Samples (None: no sample rows) and energy tracks, one per physical device (cached for other sections)."""

    def compute():
        samples = samples_of(ctx)
        if samples is None:
            return None, []
        return samples, energy.trace_tracks(samples, [(t.rank, t.metadata) for t in ctx.traces])

    return ctx.cached("energy_tracks", compute)


@section("energy", order=45, render=lambda data, console: render(data, console))
def energy_section(ctx: ReportContext) -> dict[str, Any]:
    samples, tracks = tracks_of(ctx)
    summaries = energy.device_summaries(samples, tracks) if samples is not None else []
    high_water = _high_water(summaries)
    gpu = [t for t in tracks if t.device_type == "gpu"]
    cpu = [t for t in tracks if t.device_type == "cpu"]
    scoped = energy.scoped_tracks(tracks)
    if not scoped:
        return {"total_j": None, "avg_power_w": None, "peak_power_w": None, "source": None, "scope": None,
                **high_water, "devices": summaries, "reason": _reason(ctx, samples)}
    start = min(int(t.t_ns[0]) for t in scoped)
    end = max(int(t.t_ns[-1]) for t in scoped)
    total_j = sum(t.total_j for t in scoped)
    sources = sorted({t.source for t in scoped})
    keys = [(t.rank, t.device_type, t.device_index) for t in scoped]
    peak = energy.peak_total_power_w(samples, keys)
    if peak is None:
        peaks = [d["peak_power_w"] for d in summaries if (d["rank"], d["device_type"], d["device_index"]) in keys]
        peak = sum(p for p in peaks if p is not None) or None
    refresh_ns = max(t.refresh_ns for t in scoped)
    shortest_ns = max(energy.MIN_WINDOW_NS, refresh_ns)
    result: dict[str, Any] = {
        "total_j": total_j,
        "avg_power_w": total_j / ((end - start) / 1e9) if end > start else None,
        "peak_power_w": peak,
        "source": sources[0] if len(sources) == 1 else "mixed",
        "scope": "gpu" if gpu else "cpu",
        "span_ns": end - start,
        "refresh_ms": refresh_ns / 1e6,
        "min_window_ms": shortest_ns / 1e6,
        **high_water,
        "cpu_energy_j": sum(t.total_j for t in cpu) if gpu and cpu else None,
        "devices": summaries,
        "steps": _steps(ctx, scoped),
        "phases": _phases(ctx, scoped),
        "uncertainty": UNCERTAINTY_TEXT.format(refresh=refresh_ns / 1e6, shortest=shortest_ns / 1e6),
        "reason": None,
    }
    result["j_per_token"] = _per_token(result["phases"], energy.PASS_PHASES)  # prompt + generated tokens
    result["j_per_generated_token"] = _per_token(result["phases"], (energy.GENERATE_PHASE,))
    result["classes"], result["classes_method"] = _classes(ctx, scoped)
    return result


def _per_token(phases: list[dict], names: tuple[str, ...]) -> float | None:
    """Joules per token over the phases named (a generate call contains its passes: never mix them)."""
    chosen = [p for p in phases if p["phase"] in names and p["tokens"]]
    tokens = sum(p["tokens"] for p in chosen)
    return sum(p["energy_j"] for p in chosen) / tokens if tokens else None


def _high_water(summaries: list[dict]) -> dict[str, Any]:
    def most(key: str) -> float | None:
        values = [d[key] for d in summaries if d.get(key) is not None]
        return max(values) if values else None

    return {label: most(label) for label in energy.HIGH_WATER_METRICS.values()}


def _reason(ctx: ReportContext, samples: pd.DataFrame | None) -> str:
    notes = [n for t in ctx.traces for n in (t.metadata.get("notes") or [])]
    telemetry = [n.removeprefix("telemetry: ") for n in notes if n.startswith("telemetry:") and "energy" in n]
    if telemetry:
        return "; ".join(dict.fromkeys(telemetry))
    if samples is None or samples.empty:
        return "no telemetry samples in the trace (recorded without telemetry, or imported)"
    return "no power or energy samples in the trace (the devices did not report them)"


def _label_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    keep = ["count", "time_ns", "energy_j", "avg_power_w", "tokens", "j_per_token", "j_per_window",
            "uncertainty_j", "uncertain", "resolved_share", "segments", "short_segments"]
    return [{"phase": row["label"], **{k: row[k] for k in keep}} for row in table.to_dict("records")]


def _steps(ctx: ReportContext, tracks) -> dict[str, Any] | None:
    windows = energy.step_windows(analysis(ctx).window_columns)
    table = energy.attribute_windows(tracks, windows)
    if table.empty:
        return None
    row = _label_rows(table)[0]
    out = {k: v for k, v in row.items() if k != "phase"}
    out["j_per_step"] = out.pop("j_per_window")
    long_enough = (windows["end_ns"] - windows["start_ns"]).to_numpy() >= max(
        energy.MIN_WINDOW_NS, max(t.refresh_ns for t in tracks))
    if long_enough.all():  # each step is long enough to be measured on its own
        per_step = energy.window_energy(tracks, windows["rank"], windows["start_ns"], windows["end_ns"])
        out.update(min_j=float(per_step.min()), median_j=float(np.median(per_step)), max_j=float(per_step.max()))
    return out


def _phases(ctx: ReportContext, tracks) -> list[dict[str, Any]]:
    return _label_rows(energy.attribute_windows(tracks, energy.phase_windows(analysis(ctx).window_columns)))


def _classes(ctx: ReportContext, tracks) -> tuple[list[dict] | None, str | None]:
    work = work_rows(ctx, lambda rows: rows["device_work"].to_numpy(bool))
    if work.empty:
        return None, None
    gpu = bool((work["kind"] != Kind.CPU_OP.value).any())
    frame = pd.DataFrame({
        "rank": work["rank"].to_numpy(np.int64),
        "device_type": "gpu" if gpu else "cpu",
        "device_index": work["device_index"].to_numpy(np.int64) if gpu else -1,
        "category": work["category"].to_numpy(),
        "start_ns": work["start_ns"].to_numpy(np.int64),
        "end_ns": work["end_ns"].to_numpy(np.int64),
    })
    table = energy.attribute_classes([t for t in tracks if t.device_type == ("gpu" if gpu else "cpu")], frame)
    if table.empty:
        return None, None
    return table.to_dict("records"), CLASS_METHOD


# ---------------------------------------------------------------- terminal


def render(data: dict[str, Any], console) -> None:
    if data.get("total_j") is None:  # (memory high-water marks: the memory section shows them)
        console.print(f"[bold]energy[/bold]: not measured — {escape(str(data.get('reason')))}")
        return
    scope = "GPU" if data["scope"] == "gpu" else "CPU package"
    line = (f"[bold]energy[/bold] ({scope}, {data['source']}): {fmt_si(data['total_j'], 'J')} over "
            f"{fmt_ns(data['span_ns'])}, average {fmt_si(data['avg_power_w'], 'W')}, peak {fmt_si(data['peak_power_w'], 'W')}")
    console.print(line)
    if data.get("cpu_energy_j") is not None:
        console.print(f"CPU packages (RAPL): {fmt_si(data['cpu_energy_j'], 'J')}")
    steps = data.get("steps")
    if steps:
        console.print(
            f"training steps: {steps['count']} × {fmt_si(steps['j_per_step'], 'J')} per step "
            f"(± {fmt_si(steps['uncertainty_j'], 'J')} in all{', uncertain' if steps['uncertain'] else ''})"
        )
    rows = data.get("phases") or []
    if rows:
        table = Table(title="Energy per phase", title_justify="left")
        for column in ("phase", "count", "time", "energy", "avg power", "J/token", "±"):
            table.add_column(column, justify="left" if column == "phase" else "right")
        for row in rows:
            mark = " ?" if row["uncertain"] else ""
            table.add_row(escape(row["phase"]) + mark, str(row["count"]), fmt_ns(row["time_ns"]), fmt_si(row["energy_j"], "J"),
                          fmt_si(row["avg_power_w"], "W"),
                          "–" if row["j_per_token"] is None else fmt_si(row["j_per_token"], "J"),
                          fmt_si(row["uncertainty_j"], "J"))
        console.print(table)
    classes = data.get("classes") or []
    if classes:
        parts = ", ".join(f"{c['category']} {fmt_si(c['energy_j'], 'J')} ({fmt_share(c['share'])})" for c in classes)
        console.print(f"energy by class: {parts}")
    if any(r.get("uncertain") for r in rows) or (steps and steps.get("uncertain")):
        console.print(f"[dim]? uncertain: {escape(str(data['uncertainty']))}[/dim]")
