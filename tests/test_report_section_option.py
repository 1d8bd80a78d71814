"""`profkit report --section`: only the sections asked for, with the figures the whole report gives."""

import json
from pathlib import Path

import pytest
from conftest import cli_runner

from profkit.cli.main import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_cpu.parquet"


def _report(*args: str):
    return cli_runner().invoke(cli, ["report", str(SAMPLE), *args])


def test_json_holds_only_the_sections_asked_for_with_the_whole_reports_figures():
    whole = json.loads(_report("--format", "json").stdout)
    result = _report("--format", "json", "-s", "phases", "--section", "categories")
    assert result.exit_code == 0, result.stderr
    part = json.loads(result.stdout)
    assert list(part) == ["report_version", "categories", "phases"]  # (in the report's order, not the asked)
    assert part["categories"] == whole["categories"] and part["phases"] == whole["phases"]
    assert len(whole) > len(part) + 5


def test_text_prints_only_the_sections_asked_for():
    whole, part = _report().stdout, _report("-s", "top_ops").stdout
    assert "Top ops by self time" in part and "Top ops by self time" in whole
    for other in ("Where the time goes", "Top CPU ops (units of work)", "Phases"):
        assert other in whole and other not in part


@pytest.mark.parametrize("args, says", [
    (["-s", "no_such_section"], "'no_such_section' is not one of"),
    (["-s", "phases", "--format", "html"], "--section picks sections of the text and JSON reports"),
])
def test_a_section_that_cannot_be_given_is_a_one_line_error(args, says):
    result = _report(*args)
    assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output
