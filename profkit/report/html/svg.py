"""Inline SVG primitives: scales, axes and the plot frame every chart draws in.

Charts are plain SVG strings built in Python (no plotting library, no
JavaScript needed to see them). Coordinates are in viewBox units; the
stylesheet scales every chart to the width of its panel. Text reaches the
markup only through ``esc``/``attrs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .markup import attrs, esc, num

Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] onto pixels [px0, px1], linearly or on a log10 axis."""

    lo: float
    hi: float
    px0: float
    px1: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, self.lo * 1e-3))
        if hi == lo:
            return (self.px0 + self.px1) / 2
        return self.px0 + (v - lo) / (hi - lo) * (self.px1 - self.px0)

    def ticks(self, count: int = 6) -> list[float]:
        return log_ticks(self.lo, self.hi) if self.log else linear_ticks(self.lo, self.hi, count)


def linear_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten inside [lo, hi]."""
    return [10.0**k for k in range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)]


def log_range(values: Sequence[float], pad: float = 1.5) -> tuple[float, float]:
    """Whole decades around the positive values (a default decade when there are none)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return 1.0, 10.0
    lo = 10 ** math.floor(math.log10(min(positive) / pad))
    hi = 10 ** math.ceil(math.log10(max(positive) * pad))
    return lo, hi if hi > lo else lo * 10


@dataclass
class Plot:
    """A chart area: the viewBox size, the margins, the x and y scales."""

    width: float
    height: float
    left: float = 64
    right: float = 16
    top: float = 14
    bottom: float = 40

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:  # bottom edge (y grows downwards)
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top

    def xscale(self, lo: float, hi: float, log: bool = False) -> Scale:
        return Scale(lo, hi, self.x0, self.x1, log)

    def yscale(self, lo: float, hi: float, log: bool = False) -> Scale:
        return Scale(lo, hi, self.y0, self.y1, log)

    def axes(self, x: Scale | None, y: Scale | None, xfmt: Formatter, yfmt: Formatter,
             xlabel: str = "", ylabel: str = "", x_ticks: Sequence[float] | None = None) -> str:
        """Grid lines, tick labels and axis titles."""
        out = [f'<rect class="frame" x="{num(self.x0)}" y="{num(self.y1)}" width="{num(self.x1 - self.x0)}" '
               f'height="{num(self.y0 - self.y1)}"/>']
        if x is not None:
            for value in x_ticks if x_ticks is not None else x.ticks():
                px = x(value)
                out.append(line(px, self.y1, px, self.y0, cls="grid"))
                out.append(text(px, self.y0 + 15, xfmt(value), anchor="middle", cls="tick"))
            if xlabel:
                out.append(text((self.x0 + self.x1) / 2, self.height - 6, xlabel, anchor="middle", cls="axis"))
        if y is not None:
            for value in y.ticks(5):
                py = y(value)
                out.append(line(self.x0, py, self.x1, py, cls="grid"))
                out.append(text(self.x0 - 5, py + 4, yfmt(value), anchor="end", cls="tick"))
            if ylabel:
                cy = (self.y0 + self.y1) / 2
                out.append(f'<text class="axis" text-anchor="middle" transform="translate(13 {num(cy)}) rotate(-90)">'
                           f"{esc(ylabel)}</text>")
        return "".join(out)

    def svg(self, body: str, label: str) -> str:
        return (f'<svg class="chart-svg" viewBox="0 0 {num(self.width)} {num(self.height)}" role="img"'
                f'{attrs(aria_label=label)} xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def text(x: float, y: float, value: str, *, anchor: str = "start", cls: str | None = None,
         tip: str | None = None) -> str:
    anchor_attr = anchor if anchor != "start" else None
    return (f'<text x="{num(x)}" y="{num(y)}"{attrs(text_anchor=anchor_attr, class_=cls, data_t=tip)}>'
            f"{esc(value)}</text>")


def rect(x: float, y: float, w: float, h: float, *, fill: str | None = None, cls: str | None = None,
         tip: str | None = None, opacity: float | None = None) -> str:
    return (f'<rect x="{num(x)}" y="{num(y)}" width="{num(max(w, 0))}" height="{num(max(h, 0))}"'
            f'{attrs(fill=fill, class_=cls, data_t=tip, fill_opacity=opacity)}/>')


def line(x1: float, y1: float, x2: float, y2: float, *, cls: str | None = None, stroke: str | None = None,
         tip: str | None = None) -> str:
    return (f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}"'
            f'{attrs(class_=cls, stroke=stroke, data_t=tip)}/>')


def path_points(xs: Sequence[float], ys: Sequence[float]) -> str:
    """``M x y L x y ...`` for a polyline."""
    return "M" + "L".join(f"{num(x)} {num(y)}" for x, y in zip(xs, ys))
