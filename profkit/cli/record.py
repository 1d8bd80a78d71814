"""`profkit record [options] -- CMD ARGS...`: run a program unmodified and record it."""

from __future__ import annotations

import click

from ..collectors.launch import launch_recorded
from ..collectors.telemetry.collector import DEFAULT_INTERVAL_MS


def _parse_window(ctx, param, value):
    if value is None:
        return None
    try:
        low, high = (float(x) for x in value.split(":", 1))
    except ValueError:
        raise click.BadParameter("expected START:END in seconds, e.g. 10:40") from None
    if not 0 <= low < high:
        raise click.BadParameter("need 0 <= START < END")
    return (low, high)


@click.command("record", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-o", "--output", default="profkit-trace.parquet", show_default=True, type=click.Path(dir_okay=False),
              help="Trace file. Workers of a distributed run write <stem>.rank<R>.parquet beside it.")
@click.option("--skip-steps", default=0, show_default=True, type=click.IntRange(min=0),
              help="Optimizer steps to leave out at the start (warm-up).")
@click.option("--steps", "max_steps", default=50, show_default=True, type=click.IntRange(min=1),
              help="Stop recording after this many kept optimizer steps (the program runs on).")
@click.option("--window", "window_s", default=None, callback=_parse_window, metavar="START:END",
              help="Keep only events between START and END seconds after recording starts.")
@click.option("--shapes/--no-shapes", "record_shapes", default=True, show_default=True,
              help="Record op input shapes and dtypes (needed for flop counts).")
@click.option("--memory/--no-memory", default=False, show_default=True,
              help="Record torch's allocator: every allocation and free (profile_memory; slows the program).")
@click.option("--telemetry/--no-telemetry", default=True, show_default=True, help="Sample power, energy and memory.")
@click.option("--telemetry-interval-ms", default=DEFAULT_INTERVAL_MS, show_default=True, type=click.FloatRange(min=1.0),
              help="Telemetry sampling interval.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print where traces were written.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def command(output, skip_steps, max_steps, window_s, record_shapes, memory, telemetry, telemetry_interval_ms, quiet,
            command):
    """Run COMMAND and record every Python process that imports torch.

    COMMAND is e.g. `python train.py`, `python -m pkg` or `torchrun ...`; it runs unmodified, and
    profkit exits with its exit code."""
    options = {
        "skip_steps": skip_steps,
        "max_steps": max_steps,
        "window_s": window_s,
        "record_shapes": record_shapes,
        "memory": memory,
        "telemetry": telemetry,
        "telemetry_interval_ms": telemetry_interval_ms,
    }
    result = launch_recorded(list(command), output, options)
    if not quiet:
        if result.traces:
            for path in result.traces:
                click.echo(f"profkit: wrote {path}", err=True)
            click.echo(f"profkit: see `profkit report {' '.join(str(p) for p in result.traces)}`", err=True)
        else:
            click.echo("profkit: no process imported torch; nothing was recorded", err=True)
    raise SystemExit(result.exit_code)
