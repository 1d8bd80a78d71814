"""`profkit` entry point: a click group; each subcommand lives in its own module.

To add a command: write ``profkit/cli/<name>.py`` defining a click command
named ``command`` and add it, with its summary, to ``_COMMANDS``.
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

#: Subcommand name -> (module defining ``command``, the first paragraph of its help). Modules load only
#: when their command runs, so `profkit record` does not pay for pandas and the analyzers, and
#: `profkit --help` lists the commands from here without importing any (tests/test_cli_help.py keeps
#: each summary equal to its command's own).
_COMMANDS = {
    "record": ("profkit.cli.record", "Run COMMAND and record every Python process that imports torch."),
    "report": ("profkit.cli.report", "Report on TRACES: profkit traces, folders of per-rank traces, or Chrome-trace "
                                     "JSON (imported on the fly)."),
    "demo": ("profkit.cli.demo", "Record and report the bundled example end to end."),
    "import": ("profkit.cli.import_cmd", "Convert Chrome-trace JSON files (or folders of rank files) from "
                                         "torch.profiler to profkit traces."),
    "export": ("profkit.cli.export", "Write TRACE (a profkit .parquet file) in another tool's format."),
    "diff": ("profkit.cli.diff", "Compare NEW with BASE (profkit traces, folders of rank traces, or Chrome-trace "
                                 "JSON)."),
    "check": ("profkit.cli.check", "Compare TRACE with --baseline against budgets; exit 1 if one is exceeded."),
    "calibrate": ("profkit.cli.calibrate", "Measure matmul flop/s per dtype and copy bandwidth, and save them for "
                                           "reports."),
}


class _Group(click.Group):
    """Loads subcommands lazily and turns ProfkitError into one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = _COMMANDS.get(name, (None,))[0]
        return importlib.import_module(module_name).command if module_name else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as click lists them, from ``_COMMANDS``: importing every
        command's module (pandas, pyarrow, torch's probe) took ~1 s of `profkit --help`."""
        limit = formatter.width - 6 - max(map(len, _COMMANDS))
        # (a bare Command shortens a summary as the real one shortens its help)
        rows = [(name, click.Command(name, help=_COMMANDS[name][1]).get_short_help_str(limit))
                for name in sorted(_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
