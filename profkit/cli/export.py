"""`profkit export TRACE --format chrome -o out.json[.gz]`: open a profkit trace in Perfetto UI or chrome://tracing."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from ..report.chrome_export import write_chrome
from ..trace.io import load


@click.command("export")
@click.argument("trace", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["chrome"]), default="chrome", show_default=True,
              help="chrome: Chrome-trace JSON (Perfetto UI, chrome://tracing, re-importable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Output file: .json, or .json.gz to compress.")
def command(trace, fmt, output):
    """Write TRACE (a profkit .parquet file) in another tool's format."""
    output = Path(output)
    if not output.name.endswith((".json", ".json.gz")):
        raise UsageError(f"{output}: a Chrome trace ends in .json or .json.gz")
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent}: no such folder")
    counts = write_chrome(load(trace), output)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    click.echo(f"profkit: wrote {output} ({summary}); open it at https://ui.perfetto.dev", err=True)
