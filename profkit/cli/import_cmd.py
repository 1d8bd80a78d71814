"""`profkit import TRACE.json[.gz]...`: PyTorch profiler / Kineto Chrome traces -> profkit Parquet."""

from __future__ import annotations

import os
import sys

import click

if "pyarrow" not in sys.modules:  # read once, when pyarrow is first imported: set before that
    # Arrow's default allocator (mimalloc) keeps the pages it freed, beside the ones malloc keeps:
    # measured peak RSS of an import, mimalloc -> system: H100 trace 37 -> 22 MB, rank file
    # 33 -> 17 MB, A100 file 17 -> 11 MB, no slower. A process-wide setting, so only in the
    # `profkit import` process (library callers keep their own), and an explicit value wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from ..collectors.kineto_json import import_paths  # noqa: E402 (after the allocator choice)


@click.command("import")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o", "--output", type=click.Path(), default=None,
    help="A .parquet file (one trace) or a folder (several; created if needed). Default: beside each input.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar for big files.")
def command(traces, output, progress):
    """Convert Chrome-trace JSON files (or folders of rank files) from torch.profiler to profkit traces."""
    for item in import_paths(traces, output, progress=progress):
        rank = "" if item.rank is None else f", rank {item.rank}"
        click.echo(f"profkit: wrote {item.path} ({item.events} events, {item.kernels} kernels{rank})", err=True)
        for note in item.notes:
            click.echo(f"  note: {note}", err=True)
