"""The report's charts as inline SVG: roofline, class breakdown, timeline, per-window bars, histogram.

Each function takes small plain data (see series.py and workload.py) and
returns one ``<svg>`` string. Hover text rides in ``data-t`` attributes that
report.js shows as a tooltip; it is escaped like every other attribute.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..format import fmt_bytes, fmt_ns, fmt_share, fmt_si
from .markup import esc, num
from .series import Line, Metric, Timeline
from .svg import Plot, Scale, line, log_range, path_points, rect, text
from .workload import Point, Roof, Window

#: Colour per operator class (Tableau 10), in the analyzers' class order.
CLASS_COLOURS = {
    "contraction": "#4e79a7",
    "normalization": "#f28e2b",
    "elementwise": "#59a14f",
    "memory": "#e15759",
    "communication": "#b07aa1",
    "compile": "#edc948",
    "other": "#9c9c9c",
}
IDLE_COLOUR = "#d9d9d9"
#: Phase shading colours; other phase names take the palette in order of appearance.
PHASE_COLOURS = {"prefill": "#f28e2b", "decode": "#4e79a7", "train_step": "#76b7b2", "step": "#76b7b2"}
_PALETTE = ("#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#59a14f", "#e15759")
_LINE_COLOURS = ("#4e79a7", "#e15759", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2", "#edc948", "#9c755f")


def class_colour(name: str) -> str:
    return CLASS_COLOURS.get(name, CLASS_COLOURS["other"])


def phase_colours(names: Sequence[str]) -> dict[str, str]:
    out, spare = {}, iter(_PALETTE * 4)
    for name in names:
        if name not in out:
            out[name] = PHASE_COLOURS.get(name) or next(spare, "#bab0ac")
    return out


def fmt_unit(value: float, unit: str) -> str:
    if unit == "bytes":
        return fmt_bytes(value)
    if unit in ("%", "°C"):
        return f"{value:.0f} {unit}"
    if unit == "cores":
        return f"{value:.2g}"
    return fmt_si(value, unit)


# ---------------------------------------------------------------- roofline


def roofline(points: Sequence[Point], roofs: Sequence[Roof]) -> str:
    plot = Plot(920, 460, left=70, right=150, bottom=44)
    ridges = [peak / roof.bytes_per_s for roof in roofs for _, peak in roof.peaks]
    xlo, xhi = log_range([p.intensity for p in points] + ridges, pad=3)
    ylo, yhi = log_range([p.flops_per_s for p in points] + [peak for roof in roofs for _, peak in roof.peaks], pad=2)
    x, y = plot.xscale(xlo, xhi, log=True), plot.yscale(ylo, yhi, log=True)
    body = [plot.axes(x, y, _axis, _axis,
                      "arithmetic intensity (flop / byte)", "achieved flop/s")]
    body.append(f'<clipPath id="roof-clip"><rect x="{num(plot.x0)}" y="{num(plot.y1)}" '
                f'width="{num(plot.x1 - plot.x0)}" height="{num(plot.y0 - plot.y1)}"/></clipPath>')
    for roof in roofs:
        body.append(_roof(plot, x, y, roof, xlo, xhi))
    total = sum(p.time_ns for p in points) or 1.0
    biggest = max((p.time_ns for p in points), default=1.0) or 1.0
    circles = []
    for p in sorted(points, key=lambda p: -p.time_ns):  # small points drawn last, on top
        radius = 2.5 + 15 * math.sqrt(p.time_ns / biggest)
        circles.append(
            f'<circle cx="{num(x(p.intensity))}" cy="{num(y(p.flops_per_s))}" r="{num(radius)}" '
            f'fill="{class_colour(p.category)}" class="pt" data-t="{esc(_point_tip(p, total))}"/>'
        )
    body.append(f'<g clip-path="url(#roof-clip)">{"".join(circles)}</g>')
    return plot.svg("".join(body), "roofline: arithmetic intensity against achieved flop/s")


def _axis(value: float) -> str:
    """Log-axis tick: 0.01, 1, 10 k, 1 P; plain exponent beyond the SI prefixes."""
    return fmt_si(value) if value < 1e18 else f"{value:.0e}"


def _roof(plot: Plot, x, y, roof: Roof, xlo: float, xhi: float) -> str:
    """The bandwidth diagonal and one flat roof per peak; lines clipped to the plot, labels outside it."""
    cls = "roof measured" if roof.measured else "roof"
    kind = "measured" if roof.measured else "datasheet"
    lines, labels = [], []
    top = roof.peaks[0][1] if roof.peaks else roof.bytes_per_s * xhi
    ridge = top / roof.bytes_per_s
    start = max(xlo, y.lo / roof.bytes_per_s)
    tip = f"{roof.label} ({kind}): {fmt_si(roof.bytes_per_s, 'B/s')} memory bandwidth"
    lines.append(line(x(start), y(roof.bytes_per_s * start), x(min(ridge, xhi)),
                      y(min(top, roof.bytes_per_s * xhi)), cls=cls, tip=tip))
    labels.append(text(x(start) + 8, y(roof.bytes_per_s * start) - 6 - (12 if roof.measured else 0),
                       f"{fmt_si(roof.bytes_per_s, 'B/s')} {kind}", cls="roof-label"))
    for label, peak in roof.peaks:
        knee = peak / roof.bytes_per_s
        if knee >= xhi:
            continue
        tip = f"{roof.label} ({kind}): {fmt_si(peak, 'flop/s')} {label}"
        lines.append(line(x(max(knee, xlo)), y(peak), x(xhi), y(peak), cls=cls, tip=tip))
        labels.append(text(plot.x1 + 4, y(peak) + 4, f"{fmt_si(peak, 'flop/s')} {label}", cls="roof-label"))
        labels.append(text(plot.x1 + 4, y(peak) + 16, kind, cls="roof-label faint"))
    return f'<g clip-path="url(#roof-clip)">{"".join(lines)}</g>{"".join(labels)}'


def _point_tip(p: Point, total: float) -> str:
    lines = [p.name]
    if p.op:
        lines.append(f"op: {p.op}")
    if p.shapes:
        lines.append(f"shapes: {p.shapes}")
    lines += [
        f"class: {p.category} · bound: {p.bound}",
        f"time: {fmt_ns(p.time_ns)} ({fmt_share(p.time_ns / total)} of plotted) · {p.count}×",
        f"{fmt_si(p.intensity)} flop/B · {fmt_si(p.flops_per_s, 'flop/s')}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- class breakdown


def class_bars(categories: Sequence[dict]) -> str:
    """Per class: % of runtime beside % of flop (the paper's Table 1 as a picture)."""
    rows = [c for c in categories if isinstance(c, dict) and c.get("category")]
    plot = Plot(920, 40 + 44 * len(rows), left=130, right=70, top=30, bottom=10)
    width = plot.x1 - plot.x0
    body = [
        rect(plot.x0, 6, 12, 12, cls="swatch-time"), text(plot.x0 + 17, 16, "% of runtime", cls="tick"),
        rect(plot.x0 + 120, 6, 12, 12, cls="swatch-flop"), text(plot.x0 + 137, 16, "% of flop", cls="tick"),
    ]
    for i, row in enumerate(rows):
        top = plot.top + 44 * i
        name = str(row.get("category"))
        colour = class_colour(name)
        time_share = _share(row.get("time_share"))
        flop_share = _share(row.get("flop_share"))
        body.append(text(plot.x0 - 8, top + 22, name, anchor="end", cls="label"))
        tip = _class_tip(row)
        body.append(rect(plot.x0, top + 4, width * time_share, 16, fill=colour, tip=tip))
        body.append(rect(plot.x0, top + 21, width * flop_share, 12, fill=colour, cls="flop-bar", tip=tip))
        body.append(text(plot.x0 + width * time_share + 4, top + 16, fmt_share(time_share), cls="tick"))
        body.append(text(plot.x0 + width * flop_share + 4, top + 31, fmt_share(flop_share), cls="tick faint"))
    body.append(line(plot.x0, plot.top, plot.x0, plot.top + 44 * len(rows), cls="axis-line"))
    return plot.svg("".join(body), "share of runtime and of flop per operator class")


def _share(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else 0.0


def _class_tip(row: dict) -> str:
    parts = [str(row.get("category"))]
    for key, fmt in (("time_ns", fmt_ns), ("flops", lambda v: fmt_si(v, "flop")), ("bytes", fmt_bytes),
                     ("bound", str), ("arithmetic_intensity", lambda v: f"{fmt_si(v)} flop/B")):
        if row.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')}: {fmt(row[key])}")
    return "\n".join(parts)


# ---------------------------------------------------------------- timeline


def timeline(data: Timeline) -> str:
    phase_names = list(dict.fromkeys(w.name for w in data.phases))[:8]
    colours = phase_colours(phase_names)
    lane_h, busy_h, phase_h = 64, 26, 14
    top = 8 + phase_h * len(phase_names)
    height = top + busy_h * len(data.busy) + (lane_h + 10) * len(data.metrics) + 36
    plot = Plot(1000, height, left=170, right=20, top=8, bottom=30)
    x = plot.xscale(0, data.span_ns)
    body = [plot.axes(x, None, lambda v: fmt_ns(v), lambda v: "", "time since the first event")]
    shade = [n for n in phase_names if n in ("prefill", "decode")] or phase_names[:1]
    for w in data.phases:  # light shading under the data lanes
        if w.name in shade:
            body.append(rect(x(w.start_ns), top, max(x(w.end_ns) - x(w.start_ns), 0.6), plot.y0 - top,
                             fill=colours[w.name], opacity=0.10))
    for row, name in enumerate(phase_names):
        y0 = 8 + phase_h * row
        body.append(text(plot.x0 - 6, y0 + 10, name, anchor="end", cls="tick"))
        for i, w in enumerate(v for v in data.phases if v.name == name):
            tip = f"{w.label}\nstart {fmt_ns(w.start_ns)} · {fmt_ns(w.end_ns - w.start_ns)}"
            body.append(rect(x(w.start_ns), y0 + 1, max(x(w.end_ns) - x(w.start_ns), 0.8), phase_h - 3,
                             fill=colours[name], opacity=0.9 if i % 2 == 0 else 0.6, tip=tip))
    y0 = top
    step = data.span_ns / len(data.busy[0][1]) if data.busy else 1
    for label, fraction in data.busy:
        xs = np.repeat(np.arange(len(fraction) + 1) * step, 2)[1:-1]
        ys = np.repeat(fraction, 2)
        px = [x(v) for v in xs]
        py = [y0 + busy_h - 3 - (busy_h - 6) * f for f in ys]
        area = path_points([px[0]] + px + [px[-1]], [y0 + busy_h - 3] + py + [y0 + busy_h - 3]) + "Z"
        tip = f"{label}: {fmt_share(float(np.mean(fraction)))} of the time busy (shaded height = busy share per bin)"
        body.append(rect(plot.x0, y0 + 3, plot.x1 - plot.x0, busy_h - 6, fill=IDLE_COLOUR, tip=tip))
        body.append(f'<path class="busy" d="{area}" data-t="{esc(tip)}"/>')
        body.append(text(plot.x0 - 6, y0 + busy_h / 2 + 4, label, anchor="end", cls="label"))
        y0 += busy_h
    for lane in data.metrics:
        body.append(_metric_lane(plot, x, y0 + 6, lane_h, lane.metric, lane.lines))
        y0 += lane_h + 10
    return plot.svg("".join(body), "timeline: device busy, telemetry and phases")


def _metric_lane(plot: Plot, x, top: float, height: float, metric: Metric, lines: Sequence[Line]) -> str:
    values = np.concatenate([ln.hi if ln.hi is not None else ln.mean for ln in lines])
    lows = np.concatenate([ln.lo if ln.lo is not None else ln.mean for ln in lines])
    hi = float(np.nanmax(values)) if len(values) else 1.0
    lo = min(0.0, float(np.nanmin(lows))) if len(lows) else 0.0
    hi = hi if hi > lo else lo + 1.0
    y = Scale(lo, hi * 1.05, top + height, top)
    out = [rect(plot.x0, top, plot.x1 - plot.x0, height, cls="lane"),
           text(plot.x0 - 6, top + 14, metric.title, anchor="end", cls="label"),
           text(plot.x0 - 6, top + 28, f"max {fmt_unit(hi, metric.unit)}", anchor="end", cls="tick faint")]
    for i, ln in enumerate(lines):
        colour = _LINE_COLOURS[i % len(_LINE_COLOURS)]
        px = [x(v) for v in ln.x_ns]
        if ln.lo is not None and ln.hi is not None and len(px) > 1:
            band = path_points(px + px[::-1], [y(v) for v in ln.hi] + [y(v) for v in ln.lo[::-1]]) + "Z"
            out.append(f'<path class="band" fill="{colour}" d="{band}"/>')
        stats = " · ".join(f"{name} {fmt_unit(float(fn(ln.mean)), metric.unit)}"
                           for name, fn in (("min", np.nanmin), ("mean", np.nanmean), ("max", np.nanmax)))
        tip = f"{metric.title} · {ln.label}\n{stats}"
        if len(px) == 1:
            out.append(f'<circle cx="{num(px[0])}" cy="{num(y(ln.mean[0]))}" r="3" fill="{colour}" '
                       f'data-t="{esc(tip)}"/>')
        else:
            out.append(f'<path class="series" stroke="{colour}" d="{path_points(px, [y(v) for v in ln.mean])}" '
                       f'data-t="{esc(tip)}"/>')
        if len(lines) > 1:
            out.append(text(plot.x1 - 4, top + 12 + 12 * i, ln.label, anchor="end", cls="tick"))
    return "".join(out)


# ---------------------------------------------------------------- per-window bars, histogram, bars


def window_columns(windows: Sequence[Window], title: str) -> str:
    """One stacked column per step or pass: time per class, the rest of the window idle/host."""
    plot = Plot(920, 260, left=64, right=12, top=12, bottom=40)
    top_ns = max((w.duration_ns for w in windows), default=1) or 1
    y = plot.yscale(0, top_ns * 1.05)
    slot = (plot.x1 - plot.x0) / max(len(windows), 1)
    body = [plot.axes(None, y, str, lambda v: fmt_ns(v), "", "time")]
    classes = [c for c in CLASS_COLOURS if any(c in w.by_class for w in windows)]
    for i, w in enumerate(windows):
        bar = min(slot * 0.76, 56)
        x0 = plot.x0 + slot * i + (slot - bar) / 2
        base = 0.0
        tip_lines = [w.label, f"window {fmt_ns(w.duration_ns)}"]
        segments = []
        for c in classes:
            value = w.by_class.get(c, 0.0)
            if value <= 0:
                continue
            tip_lines.append(f"{c}: {fmt_ns(value)} ({fmt_share(value / w.duration_ns if w.duration_ns else 0)})")
            segments.append((base, value, class_colour(c)))
            base += value
        idle = max(w.duration_ns - base, 0)
        tip_lines.append(f"outside the classified work: {fmt_ns(idle)}")
        segments.append((base, idle, IDLE_COLOUR))
        tip = "\n".join(tip_lines)
        for start, value, colour in segments:
            body.append(rect(x0, y(start + value), bar, y(start) - y(start + value), fill=colour, tip=tip))
        if len(windows) <= 24:
            body.append(text(x0 + bar / 2, plot.y0 + 14, w.label, anchor="middle", cls="tick"))
    if len(windows) > 24:
        body.append(text((plot.x0 + plot.x1) / 2, plot.y0 + 14, f"{windows[0].label} … {windows[-1].label}",
                         anchor="middle", cls="tick"))
    return plot.svg("".join(body), title)


def histogram(values_ns: Sequence[float], title: str) -> str:
    values = np.asarray(values_ns, dtype=float)
    bins = int(min(max(2 * math.sqrt(len(values)), 5), 40))
    plot = Plot(920, 220, left=64, right=12, top=12, bottom=40)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    x, y = plot.xscale(lo, hi), plot.yscale(0, max(int(counts.max()), 1) * 1.1)
    body = [plot.axes(x, y, lambda v: fmt_ns(v), lambda v: f"{v:g}", title, "passes")]
    for c, a, b in zip(counts.tolist(), edges[:-1], edges[1:]):
        if c:
            body.append(rect(x(a) + 0.5, y(c), x(b) - x(a) - 1, y(0) - y(c), cls="hist",
                             tip=f"{fmt_ns(a)} – {fmt_ns(b)}: {c} passes"))
    return plot.svg("".join(body), title)


def hbars(items: Sequence[tuple[str, float, str]], fmt, title: str) -> str:
    """Horizontal bars: (label, value, colour), largest first as given."""
    plot = Plot(920, 16 + 26 * len(items), left=200, right=90, top=8, bottom=8)
    top = max((v for _, v, _ in items), default=1.0) or 1.0
    width = plot.x1 - plot.x0
    body = []
    for i, (label, value, colour) in enumerate(items):
        y0 = plot.top + 26 * i
        w = width * max(value, 0) / top
        body.append(text(plot.x0 - 8, y0 + 14, label, anchor="end", cls="label"))
        body.append(rect(plot.x0, y0 + 2, w, 18, fill=colour, tip=f"{label}: {fmt(value)}"))
        body.append(text(plot.x0 + w + 4, y0 + 15, fmt(value), cls="tick"))
    return plot.svg("".join(body), title)


def paired_bars(rows: Sequence[tuple[str, float, float]], fmt, names: tuple[str, str], title: str) -> str:
    """Per row a base bar above a new bar, with the relative change: (label, base, new)."""
    plot = Plot(920, 34 + 40 * len(rows), left=130, right=230, top=28, bottom=6)
    top = max((max(b, n) for _, b, n in rows), default=1.0) or 1.0
    width = plot.x1 - plot.x0
    body = [rect(plot.x0, 6, 12, 12, cls="swatch-base"), text(plot.x0 + 17, 16, names[0], cls="tick"),
            rect(plot.x0 + 260, 6, 12, 12, cls="swatch-new"), text(plot.x0 + 277, 16, names[1], cls="tick")]
    for i, (label, base, new) in enumerate(rows):
        y0 = plot.top + 40 * i
        change = (new - base) / base if base else None
        tip = f"{label}\n{names[0]}: {fmt(base)}\n{names[1]}: {fmt(new)}" + (
            f"\nchange: {100 * change:+.1f} %" if change is not None else "")
        body.append(text(plot.x0 - 8, y0 + 20, label, anchor="end", cls="label"))
        body.append(rect(plot.x0, y0 + 3, width * max(base, 0) / top, 14, cls="bar-base", tip=tip))
        body.append(rect(plot.x0, y0 + 18, width * max(new, 0) / top, 14, cls="bar-new", tip=tip))
        verdict = "–" if change is None else f"{100 * change:+.1f} %"
        cls = "tick" if change is None or abs(change) < 0.005 else ("worse" if change > 0 else "better")
        body.append(text(plot.x1 + 8, y0 + 21, f"{fmt(base)} → {fmt(new)} ({verdict})", cls=cls))
    return plot.svg("".join(body), title)
