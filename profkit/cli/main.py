"""`profkit` entry point: a click group; each subcommand lives in its own module.

To add a command: write ``profkit/cli/<name>.py`` defining a click command and
add the module to ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import ProfkitError

_COMMAND_MODULES = (
    "profkit.cli.record",
    "profkit.cli.report",
    "profkit.cli.demo",
    "profkit.cli.import_cmd",
    "profkit.cli.export",
    "profkit.cli.diff",
    "profkit.cli.check",
    "profkit.cli.calibrate",
)


class _Group(click.Group):
    """Turns ProfkitError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProfkitError as exc:
            click.echo(f"profkit: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="profkit")
def cli() -> None:
    """Profile PyTorch programs and explain where the time and energy go."""


for _module_name in _COMMAND_MODULES:
    _module = importlib.import_module(_module_name)
    cli.add_command(_module.command)


def main() -> None:
    cli(prog_name="profkit")


if __name__ == "__main__":
    main()
