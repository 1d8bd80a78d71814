"""The panels of the HTML report: one registered function per panel, drawn in order.

A panel reads the JSON report (``view.document``) and, when the traces were
passed, the figures computed from the events (``view.timeline``,
``view.roofline``...). It returns its inner HTML, or None to be left out
(a section the report does not have). Each panel names the report sections it
shows (``covers``); sections no panel covers are listed by the "more" panel,
so a section added to the report later still reaches the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..format import fmt_bytes, fmt_ns, fmt_share, fmt_si, idle_cause_label, idle_span_words
from . import charts, series, workload
from .markup import esc
from .tables import KERNEL_NAMES, fmt_field, kv_table, label, records_table, si


@dataclass
class View:
    """What panels draw from: the report document and, optionally, the report context (traces)."""

    document: dict
    ctx: Any = None
    _cache: dict = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute() if self.ctx is not None else None
        return self._cache[key]

    @property
    def timeline(self) -> series.Timeline | None:
        return self.cached("timeline", lambda: series.timeline(self.ctx.events))

    @property
    def roofline(self) -> workload.Roofline | None:
        return self.cached("roofline", lambda: workload.roofline(self.ctx))

    def windows(self, names: tuple[str, ...]) -> list[workload.Window]:
        return self.cached(f"windows:{names}", lambda: workload.windows(self.ctx, names)) or []


@dataclass(frozen=True)
class Panel:
    key: str
    order: int
    title: str
    covers: tuple[str, ...]
    draw: Callable[[View], str | None]


_PANELS: dict[str, Panel] = {}


def panel(key: str, *, order: int, title: str, covers: tuple[str, ...] = ()):
    """Register ``draw(view) -> html | None`` as a panel (refuses duplicates)."""

    def register(draw: Callable[[View], str | None]):
        if key in _PANELS:
            raise ValueError(f"HTML panel {key!r} registered twice")
        _PANELS[key] = Panel(key, order, title, covers, draw)
        return draw

    return register


def panels() -> list[Panel]:
    return sorted(_PANELS.values(), key=lambda p: (p.order, p.key))


def covered() -> set[str]:
    return {"report_version"} | {k for p in _PANELS.values() for k in p.covers}


# ---------------------------------------------------------------- helpers


def kpis(items: list[tuple[str, str]]) -> str:
    cells = "".join(f'<div class="kpi"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
                    for k, v in items if v not in (None, "", "–"))
    return f'<div class="kpis">{cells}</div>' if cells else ""


def chart(svg: str, caption: str = "") -> str:
    cap = f'<p class="caption">{esc(caption)}</p>' if caption else ""
    return f'<div class="chart">{svg}</div>{cap}'


def notes(lines: list[str]) -> str:
    return "".join(f'<p class="note">{esc(line)}</p>' for line in lines if line)


def legend(items: list[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{esc(c)}"></i>{esc(n)}</span>' for n, c in items) + "</div>"


def show(section: dict, key: str, fmt: Callable[[float], str]) -> str:
    """A KPI value: ``fmt(section[key])``, or "–" when it is not a number (the card is then left out)."""
    value = _num(section.get(key))
    return "–" if value is None else fmt(value)


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ---------------------------------------------------------------- panels


@panel("summary", order=0, title="Summary", covers=("run", "totals"))
def summary_panel(view: View) -> str | None:
    run, totals = view.document.get("run") or {}, view.document.get("totals") or {}
    energy = view.document.get("energy") if isinstance(view.document.get("energy"), dict) else {}
    training = view.document.get("training") if isinstance(view.document.get("training"), dict) else {}
    what = "GPU" if totals.get("device") == "gpu" else "CPU"
    items = [
        ("duration", show(run, "duration_ns", fmt_ns)),
        (f"{what} busy", show(totals, "device_busy_share", fmt_share)),  # (of the ranks' spans summed)
        ("kernels", f"{totals['kernel_count']:,}" if totals.get("kernel_count") else "–"),
        ("ops", f"{totals['op_count']:,}" if totals.get("op_count") else "–"),
        ("energy", show(energy, "total_j", lambda v: si(v, "J"))),
        ("MFU", show(training, "mfu", fmt_share)),
    ]
    status = "partial trace" if run.get("partial") else "complete"
    if run.get("exit_code") not in (None, 0):
        status += f", exit code {run['exit_code']}"
    facts = [("device", run.get("device")), ("ranks", ", ".join(str(r) for r in run.get("ranks") or [])),
             ("host", run.get("host")), ("producer", run.get("producer")), ("torch", run.get("torch_version")),
             ("status", status), ("files", ", ".join(run.get("files") or []))]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts if v)
    return kpis(items) + f'<table class="kv"><tbody>{rows}</tbody></table>' + notes(
        [f"note: {n}" for n in run.get("notes") or []])


_TOP_COLUMNS = ("name", "category", "fused", "count", "time_ns", "time_share", "flops", "bytes",
                "arithmetic_intensity", "achieved_flops_per_s", "flop_fraction", "bandwidth_fraction", "bound")


@panel("roofline", order=10, title="Roofline", covers=("roofline",))
def roofline_panel(view: View) -> str | None:
    section = view.document.get("roofline") if isinstance(view.document.get("roofline"), dict) else {}
    data = view.roofline if view.ctx is not None else None
    from_document = data is None or not data.points
    if from_document:
        data = workload.roofline_from_document(section) if section else None
    out = []
    if data is not None and data.points:
        present = {p.category for p in data.points}
        unit = "kernel" if view.document.get("totals", {}).get("device") == "gpu" else "op"
        caption = (f"Each point is one {unit} name" + ("" if from_document else " with the shapes of the op that "
                   "carries its cost") + ", summed over its calls; area ∝ time. Solid lines: datasheet ceilings; "
                   "dashed: measured (profkit calibrate). Hover a point for details.")
        extra = [f"{data.hidden} smaller or flop-free groups are not drawn."] if data.hidden else []
        if from_document:
            extra.append("Only the report's top kernels are drawn (the page was made without the traces).")
        roofs = [f"ceilings: {r.label} ({'measured' if r.measured else 'datasheet'})" for r in data.roofs]
        out.append(legend([(c, col) for c, col in charts.CLASS_COLOURS.items() if c in present]))
        out.append(chart(charts.roofline(data.points, data.roofs), caption) + notes(roofs + data.notes + extra))
    out.append(notes([f"note: {n}" for n in section.get("notes") or []]))  # (no shapes: no points to draw)
    top = [r for r in section.get("top") or [] if isinstance(r, dict)]
    if top:
        columns = [c for c in _TOP_COLUMNS if any(c in r for r in top)]
        gpu = unit_is_gpu(view)
        out.append(records_table(top, columns, caption="top kernels: class, intensity and bound" if gpu
                                 else "top ops: class, intensity and bound", display=KERNEL_NAMES if gpu else None))
    return "".join(out) or None


def unit_is_gpu(view: View) -> bool:
    return (view.document.get("totals") or {}).get("device") == "gpu"


@panel("classes", order=20, title="Where the time goes, by operator class", covers=("categories",))
def classes_panel(view: View) -> str | None:
    categories = view.document.get("categories")
    if not isinstance(categories, list) or not categories:
        return None
    caption = ("Share of runtime (thick bar) beside share of flop (thin bar) per class, as in "
               "“Data Movement Is All You Need”, Table 1.")
    columns = [c for c in ("category", "time_ns", "time_share", "flops", "flop_share", "bytes",
                           "arithmetic_intensity", "achieved_flops_per_s", "flop_fraction", "bandwidth_fraction",
                           "bound", "count") if any(c in row for row in categories if isinstance(row, dict))]
    return chart(charts.class_bars(categories), caption) + records_table(categories, columns)


@panel("timeline", order=30, title="Timeline")
def timeline_panel(view: View) -> str | None:
    data = view.timeline
    section = view.document.get("roofline")
    idle = section.get("idle") if isinstance(section, dict) else None
    out = []
    if data is not None:
        caption = (f"Top: phase marks. Then the share of each {data.busy_label} bin "
                   f"({fmt_ns(data.bin_ns)} wide) spent busy, and telemetry (line: mean, band: min–max per bin).")
        if not data.metrics:
            caption += " No telemetry samples in this trace."
        out.append(chart(charts.timeline(data), caption) + notes(data.notes))
    if isinstance(idle, dict) and _num(idle.get("idle_ns")):
        causes = [c for c in idle.get("causes") or [] if isinstance(c, dict) and _num(c.get("time_ns"))]
        out.append(f"<h3>Device idle: {esc(fmt_ns(idle['idle_ns']))} "
                   f"({esc(fmt_share(_num(idle.get('idle_share'))))} of {esc(idle_span_words(idle))}), by cause</h3>")
        if causes:
            items = [(idle_cause_label(str(c.get("cause")), idle.get("device")), float(c["time_ns"]), "#bab0ac")
                     for c in causes]
            out.append(chart(charts.hbars(items, fmt_ns, "device idle time by cause")))
    return "".join(out) or None


def _phase_rows(view: View) -> list[dict]:
    phases = view.document.get("phases")
    return [p for p in phases if isinstance(p, dict)] if isinstance(phases, list) else []


@panel("inference", order=40, title="Prefill and decode", covers=("phases", "inference"))
def inference_panel(view: View) -> str | None:
    inference = view.document.get("inference") if isinstance(view.document.get("inference"), dict) else {}
    phases = _phase_rows(view)
    windows = view.windows(series.INFERENCE_PHASES)
    if not _has_inference(view):
        return None
    out = []
    tbt = inference.get("tbt_ns") if isinstance(inference.get("tbt_ns"), dict) else {}
    out.append(kpis([
        ("TTFT", show(inference, "ttft_ns", fmt_ns)),
        *[(f"TBT {q}", fmt_ns(tbt[q])) for q in ("p50", "p90", "p99") if _num(tbt.get(q)) is not None],
        ("prefill tokens/s", show(inference, "prefill_tokens_per_s", fmt_si)),
        ("decode tokens/s", show(inference, "decode_tokens_per_s", fmt_si)),
    ]))
    side = [p for p in phases if p.get("phase") in series.INFERENCE_PHASES]
    if side:
        out.append('<div class="side">' + "".join(_phase_card(p) for p in side) + "</div>")
    if windows:
        out.append(chart(charts.window_columns(windows, "time per pass by class"),
                         "One column per forward pass: time per operator class; grey is the rest of the pass."))
    decode = [w.duration_ns for w in windows if w.label.startswith("decode")]
    if len(decode) >= 5:
        out.append(chart(charts.histogram(decode, "decode pass duration (time between tokens)"), ""))
    if phases:
        out.append(records_table(phases, caption="phases"))
    rest = {k: v for k, v in inference.items() if k not in ("ttft_ns",)}
    if rest:
        out.append(kv_table(rest))
    return "".join(out)


def _has_inference(view: View) -> bool:
    """Prefill/decode passes in the report or the trace (a phases table of training steps alone is not)."""
    return (any(p.get("phase") in series.INFERENCE_PHASES for p in _phase_rows(view))
            or bool(view.windows(series.INFERENCE_PHASES)))


def _phase_card(phase: dict) -> str:
    name = str(phase.get("phase"))
    rows = []
    for key, value in phase.items():
        if key == "phase" or value is None or isinstance(value, (list, dict)):
            continue
        rows.append(f"<tr><th>{esc(label(key))}</th><td>{esc(fmt_field(key, value))}</td></tr>")
    classes = phase.get("categories")
    bars = ""
    if isinstance(classes, list) and classes and all(isinstance(c, dict) for c in classes):
        bars = chart(charts.class_bars(classes))
    colour = charts.phase_colours([name])[name]
    return (f'<div class="card"><h3 style="border-color:{esc(colour)}">{esc(name)}</h3>'
            f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>{bars}</div>')


@panel("training", order=50, title="Training steps", covers=("training",))
def training_panel(view: View) -> str | None:
    training = view.document.get("training") if isinstance(view.document.get("training"), dict) else {}
    windows = view.windows(series.STEP_PHASES)
    if not training and not windows and not _phase_rows(view):
        return None
    out = [kpis([
        ("median step", show(training, "step_time_ns", fmt_ns)),
        ("MFU", show(training, "mfu", fmt_share)),
        ("steps", show(training, "steps", lambda v: f"{v:,.0f}") if training else str(len(windows)) if windows else "–"),
    ])]
    if windows:
        left_out = (training.get("steps_summarized") or 0) < (training.get("steps") or 0)
        out.append(chart(charts.window_columns(windows, "time per training step by class"),
                         "One column per step: time per operator class; grey is the rest of the step "
                         "(host work, data loading, idle device)."
                         + (" Step 1, which began with the recording (start-up), is left out." if left_out else "")))
    rest = {k: v for k, v in training.items() if k not in ("step_time_ns", "mfu")}
    if rest:
        out.append(kv_table(rest))
    if _phase_rows(view) and not _has_inference(view):  # the phases table has nowhere else to go
        out.append(records_table(_phase_rows(view), caption="phases"))
    return "".join(out)


#: The memory section's measures, as the panel names them (report/sections/memory.py's keys).
_MEMORY_MEASURES = (("allocated", "allocated peak"), ("reserved", "reserved peak (torch)"),
                    ("process", "process peak (NVML)"), ("device_used", "device used peak (NVML)"),
                    ("host_rss", "resident peak (RSS)"))


@panel("memory", order=58, title="Memory", covers=("memory",))
def memory_panel(view: View) -> str | None:
    memory = view.document.get("memory")
    if not isinstance(memory, dict) or not memory:
        return None
    devices = memory.get("devices") or []
    if not devices:
        return notes([f"No memory figures: {memory.get('reason') or 'no memory samples in the trace'}."])
    out = []
    for device in devices:
        items = [(words, fmt_bytes(device[f"{key}_peak_bytes"])) for key, words in _MEMORY_MEASURES
                 if _num(device.get(f"{key}_peak_bytes")) is not None]
        out.append(f"<h4>{esc(str(device.get('device') or _row_label(device)))}</h4>" + kpis(items))
        if device.get("allocated_peak_op"):
            call = device.get("allocated_peak_call")
            inside = f" (inside {call})" if call and call != device["allocated_peak_op"] else ""
            out.append(notes([f"allocated peak at {fmt_ns(device['allocated_peak_at_ns'])} in "
                              f"{device['allocated_peak_op']}{inside}; {fmt_bytes(device['allocated_first_bytes'])} "
                              f"at the start, {fmt_bytes(device['allocated_last_bytes'])} at the end"]))
        held = device.get("held_at_peak")
        if held:
            before = (_num(device.get("allocated_peak_bytes")) or 0) - (_num(device.get("held_at_peak_bytes")) or 0)
            out.append(records_table(held, caption="held at the peak: blocks allocated while recording, by the op "
                                     f"that allocated them ({fmt_bytes(max(before, 0))} from before)"))
    phases = [p for p in memory.get("phases") or [] if _num(p.get("allocated_peak_bytes")) is not None]
    if phases:
        items = [(str(p["phase"]), float(p["allocated_peak_bytes"]), _colour(str(p["phase"]))) for p in phases[:40]]
        out.append("<h4>allocated peak per phase</h4>" + chart(charts.hbars(items, fmt_bytes, "allocated peak per phase")))
    top = memory.get("top_allocations") or []
    if top:
        out.append("<h4>ops that allocated the most, over the run</h4>" + records_table(top))
    return "".join(out)


@panel("energy", order=60, title="Energy", covers=("energy",))
def energy_panel(view: View) -> str | None:
    energy = view.document.get("energy")
    if not isinstance(energy, dict) or not energy:
        return None
    if all(_num(energy.get(k)) is None for k in ("total_j", "avg_power_w", "peak_power_w")):
        return notes([f"No energy figures: {energy.get('reason') or 'no power or energy samples in the trace'}."])
    out = [kpis([
        ("total", show(energy, "total_j", lambda v: si(v, "J"))),
        ("average power", show(energy, "avg_power_w", lambda v: si(v, "W"))),
        ("peak power", show(energy, "peak_power_w", lambda v: si(v, "W"))),
        ("source", str(energy.get("source") or "–")),
    ])]
    for key, value in energy.items():  # any per-device / per-phase / per-class list with joules
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            joule_key = next((k for k in value[0] if k.endswith("_j") and _num(value[0][k]) is not None), None)
            if joule_key:
                items = [(_row_label(v), _num(v.get(joule_key)) or 0.0, _colour(_row_label(v))) for v in value[:40]]
                out.append(f"<h4>{esc(label(key))}: {esc(label(joule_key))}</h4>")
                out.append(chart(charts.hbars(items, lambda j: si(j, "J"), f"energy per {key}")))
    out.append(kv_table(energy, skip=("total_j", "avg_power_w", "peak_power_w", "source")))
    return "".join(out)


#: Fields that name a record, most telling first.
_NAME_FIELDS = ("category", "phase", "name", "cause", "metric", "key")


def _row_label(row: dict) -> str:
    for key in _NAME_FIELDS:
        if row.get(key) is not None:
            return str(row[key])
    if "device_index" in row:
        return f"{row.get('device_type') or 'device'} {row['device_index']}"
    return next((str(v) for v in row.values() if isinstance(v, str)), "?")


def _colour(name: str) -> str:
    if name in charts.CLASS_COLOURS:
        return charts.CLASS_COLOURS[name]
    return charts.IDLE_COLOUR if name == "idle" else charts.phase_colours([name])[name]


@panel("memory_traffic", order=65, title="Measured memory traffic", covers=("memory_traffic",))
def memory_traffic_panel(view: View) -> str | None:
    traffic = view.document.get("memory_traffic")
    if not isinstance(traffic, dict) or not traffic:
        return None
    if all(_num(traffic.get(k)) is None for k in ("measured_bytes", "ideal_bytes", "movement_efficiency")):
        return notes([f"No measured traffic: {traffic.get('reason') or 'no memory telemetry in the trace'}."])
    out = kpis([
        ("measured", show(traffic, "measured_bytes", lambda v: fmt_si(v, "B"))),
        ("ideal", show(traffic, "ideal_bytes", lambda v: fmt_si(v, "B"))),
        ("movement efficiency", show(traffic, "movement_efficiency", fmt_share)),
        ("source", str(traffic.get("source") or "–")),
    ])
    return out + kv_table(traffic, skip=("measured_bytes", "ideal_bytes", "movement_efficiency", "source"))


@panel("communication", order=15, title="Communication", covers=("communication",))
def communication_panel(view: View) -> str | None:
    section = view.document.get("communication")
    ranks = section.get("ranks") if isinstance(section, dict) else None
    if not ranks:  # (no collective kernels: no panel)
        return None
    communicated = sum(_num(r.get("communication_ns")) or 0 for r in ranks)
    exposed = sum(_num(r.get("exposed_ns")) or 0 for r in ranks)
    out = kpis([
        ("collective kernels", fmt_ns(communicated)),
        ("overlapped by other GPU work", fmt_share(1 - exposed / communicated) if communicated else "–"),
        ("exposed", fmt_ns(exposed)),
    ])
    caption = "per rank: exposed = the collectives' time no other GPU work overlapped"
    if any(r.get("waiting_ns") is not None for r in ranks):
        caption += ("; waiting = their time beyond the fastest rank's, collective by collective (time spent waiting for "
                    "the others); last arrivals = the matched collectives the rank reached last (its kernel the shortest)")
    out += records_table(ranks, caption=caption)
    collectives = section.get("collectives") or []
    if collectives:
        out += records_table(collectives, caption="collective kernels, most exposed first", display=KERNEL_NAMES)
    return out


@panel("top_kernels", order=80, title="Top kernels", covers=("top_kernels",))
def top_kernels_panel(view: View) -> str | None:
    rows = view.document.get("top_kernels")
    return records_table(rows, display=KERNEL_NAMES) if isinstance(rows, list) and rows else None



@panel("top_ops", order=81, title="Top ops", covers=("top_ops",))
def top_ops_panel(view: View) -> str | None:
    rows = view.document.get("top_ops")
    return records_table(rows) if isinstance(rows, list) and rows else None


@panel("more", order=99, title="More from the report")
def more_panel(view: View) -> str | None:
    out = []
    shown = covered()
    for key, value in view.document.items():
        if key in shown or value in (None, [], {}):
            continue
        if isinstance(value, list):
            body = records_table(value) if all(isinstance(v, dict) for v in value) else esc(fmt_field(key, value))
        elif isinstance(value, dict):
            body = kv_table(value)
        else:
            body = esc(fmt_field(key, value))
        out.append(f"<h3>{esc(label(key))}</h3>{body}")
    return "".join(out) or None
