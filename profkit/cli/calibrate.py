"""`profkit calibrate`: measure this machine's attainable matmul flop/s and copy bandwidth.

Saves them to the calibration file (``$PROFKIT_CACHE_DIR`` or
``~/.cache/profkit/calibration.json``) where reports find them: CPU traces get
their roofline from it, GPU reports show it beside the datasheet.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from ..collectors.calibrate import measure
from ..analyzers.hardware import match_device, spec_by_name
from ..report.format import fmt_share, fmt_si
from ..trace.calibration import save


@click.command("calibrate")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quick", is_flag=True, help="Smaller problems and shorter timing (a rough figure in seconds).")
@click.option("--dtype", "dtypes", multiple=True, help="Only these matmul dtypes (fp64 fp32 tf32 bf16 fp16 fp8 int8).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Calibration file to update (default: the user cache file).")
@click.option("--json", "as_json", is_flag=True, help="Print the measured entry as JSON.")
def command(device, quick, dtypes, output, as_json):
    """Measure matmul flop/s per dtype and copy bandwidth, and save them for reports."""
    entry = measure(device, quick=quick, dtypes=tuple(dtypes) or None)
    path = save(entry, output)
    if as_json:
        click.echo(json.dumps(entry, indent=2))
    else:
        _render(entry, Console())
    click.echo(f"profkit: saved calibration of {entry['name']} to {path}", err=True)


def _render(entry: dict, console) -> None:
    sheet = match_device(entry["name"]) if entry["device_type"] == "gpu" else None
    table = Table(title=f"Measured ceilings · {entry['name']}", title_justify="left")
    for column in ("", "measured", "datasheet", "of datasheet"):
        table.add_column(column, justify="right" if column else "left")
    for dtype, tflops in entry["peak_tflop_per_s"].items():
        peak = sheet.peak_for(dtype, matrix=True) if sheet and sheet.peak_flops_per_s.get(dtype) else None
        table.add_row(f"matmul {dtype}", fmt_si(tflops * 1e12, "flop/s"), fmt_si(peak, "flop/s"),
                      fmt_share(tflops * 1e12 / peak) if peak else "–")
    bandwidth = entry["memory_tb_per_s"] * 1e12
    sheet_bw = sheet.memory_bytes_per_s if sheet else None
    table.add_row("copy (read + write)", fmt_si(bandwidth, "B/s"), fmt_si(sheet_bw, "B/s"),
                  fmt_share(bandwidth / sheet_bw) if sheet_bw else "–")
    console.print(table)
    if entry["device_type"] == "cpu":
        generic = spec_by_name("cpu-generic")
        console.print(f"[dim]CPU traces recorded on this machine now use these figures instead of the "
                      f"per-core guess ({fmt_si(generic.peak_for('fp32', matrix=True), 'flop/s')} fp32 per core).[/dim]")
