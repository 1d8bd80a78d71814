"""`profkit` entry point: a click group; each subcommand lives in its own module.

To add a command: write ``profkit/cli/<name>.py`` defining a click command
named ``command`` and add it to ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import ProfkitError

#: What a command that needs torch says where it is not installed.
NO_TORCH = ("`profkit {command}` needs PyTorch, which this Python cannot import: pip install torch "
            "(report, import, diff, check and export work without it)")

#: Subcommand name -> module defining ``command``. Modules load only when their
#: command runs, so `profkit record` does not pay for pandas and the analyzers.
_COMMAND_MODULES = {
    "record": "profkit.cli.record",
    "report": "profkit.cli.report",
    "demo": "profkit.cli.demo",
    "import": "profkit.cli.import_cmd",
    "export": "profkit.cli.export",
    "diff": "profkit.cli.diff",
    "check": "profkit.cli.check",
    "calibrate": "profkit.cli.calibrate",
}


class _Group(click.Group):
    """Loads subcommands lazily and turns ProfkitError into one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = _COMMAND_MODULES.get(name)
        return importlib.import_module(module_name).command if module_name else None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProfkitError as exc:
            click.echo(f"profkit: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except ModuleNotFoundError as exc:  # (report, import, diff, check and export run without torch)
            if exc.name != "torch":
                raise
            click.echo(f"profkit: error: {NO_TORCH.format(command=ctx.invoked_subcommand)}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="profkit")
def cli() -> None:
    """Profile PyTorch programs and explain where the time and energy go."""


def main() -> None:
    cli(prog_name="profkit")


if __name__ == "__main__":
    main()
