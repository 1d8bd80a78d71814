"""Where a command's rendered text goes: stdout, or a file named with -o."""

from __future__ import annotations

from pathlib import Path

import click


def emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"profkit: wrote {output}", err=True)
