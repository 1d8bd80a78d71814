"""How wide rich draws a renderable, measured by drawing it: rich's versions space tables differently,
so a width computed by hand from cell lengths is right for one version only."""

from __future__ import annotations

from rich.console import Console


def drawn_width(renderable) -> int:
    """The width of ``renderable`` drawn with room to spare, up to its last visible character."""
    wide = Console(width=1000, color_system=None)
    with wide.capture() as drawn:
        wide.print(renderable)
    return max((len(line.rstrip()) for line in drawn.get().splitlines()), default=0)


def fitted(build, columns: list[str], drop_order: tuple[str, ...], width: int):
    """``build(columns)``, with the columns of ``drop_order`` left out one at a time, in that order, until
    rich draws the table within ``width``: on a narrow console a table shows fewer columns whole
    rather than every figure cut to "99.…" or its last column cut off."""
    shown = list(columns)
    table = build(shown)
    for column in drop_order:
        if drawn_width(table) <= width:
            break
        shown.remove(column)
        table = build(shown)
    return table
