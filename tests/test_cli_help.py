"""`profkit --help` lists the commands from main._COMMANDS without importing their modules."""

import re
import subprocess
import sys

import click
import pytest

from profkit.cli.main import _COMMANDS, cli


@pytest.mark.parametrize("width", [60, 80, 120])
def test_listing_is_what_click_writes_from_the_commands_themselves(width):
    # The base class's listing imports each command and reads its own help: the table must say the same.
    ctx = click.Context(cli, info_name="profkit", terminal_width=width)
    ours, clicks = ctx.make_formatter(), ctx.make_formatter()
    cli.format_commands(ctx, ours)
    click.Group.format_commands(cli, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()
    assert all(f"  {name}  " in ours.getvalue() for name in _COMMANDS)


def test_every_command_loads_from_its_module():
    for name, (module, _summary) in _COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command.name == name and command.callback.__module__ == module


def test_help_imports_no_command_module():
    code = ("import sys; from profkit.cli.main import cli\n"
            "try:\n    cli(['--help'], prog_name='profkit')\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow', 'torch')"
            " or m.startswith('profkit.cli.') and m != 'profkit.cli.main'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out and re.search(r"\n  record +Run COMMAND", out)
    assert out.strip().splitlines()[-1] == "[]"
