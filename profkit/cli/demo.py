"""`profkit demo`: record the bundled example (train a small transformer, then
generate) and report it — on the GPU when there is one, else on the CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click
from rich.console import Console

from ..collectors.launch import launch_recorded
from ..errors import UsageError
from ..report import ReportOptions, build_report, render_terminal
from ..trace.io import load
from .main import NO_TORCH


@click.command("demo")
@click.option("-o", "--output", default="profkit-demo.parquet", show_default=True, type=click.Path(dir_okay=False))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--steps", default=6, show_default=True, type=click.IntRange(min=1), help="Training steps.")
@click.option("--new-tokens", default=16, show_default=True, type=click.IntRange(min=2), help="Tokens to generate.")
def command(output, device, steps, new_tokens):
    """Record and report the bundled example end to end."""
    if importlib.util.find_spec("torch") is None:  # (the example would die on its first line)
        raise UsageError(NO_TORCH.format(command="demo"))
    program = [sys.executable, "-m", "profkit.examples.tiny_transformer", "--device", device,
               "--steps", str(steps), "--new-tokens", str(new_tokens)]
    click.echo(f"profkit: recording {' '.join(program[1:])}", err=True)
    # (torch's allocator too: the demo shows the memory section's peaks and the ops that allocate most)
    result = launch_recorded(program, output, {"skip_steps": 1, "memory": True})
    if result.exit_code != 0 or not result.traces:
        raise SystemExit(result.exit_code or 1)
    document = build_report([load(Path(output))], ReportOptions())
    render_terminal(document, Console())
    click.echo(f"profkit: trace {output}; try `profkit report {output} --format json`", err=True)
