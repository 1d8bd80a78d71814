"""Shared fixtures: the ../shared folder (skipped cleanly when absent), CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_TRACES = SHARED / "traces"
SAMPLE_TRACES = REPO / "sample_traces"


@pytest.fixture(autouse=True, scope="session")
def _no_user_calibration(tmp_path_factory):
    """Reports must not depend on a `profkit calibrate` run on this machine (golden files would move)."""
    previous = os.environ.get("PROFKIT_CACHE_DIR")
    os.environ["PROFKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("profkit-cache"))
    yield
    if previous is None:
        os.environ.pop("PROFKIT_CACHE_DIR", None)
    else:
        os.environ["PROFKIT_CACHE_DIR"] = previous


def shared_trace(name: str) -> Path:
    """Path of a trace in ../shared/traces, or skip the test when it is not there."""
    path = SHARED_TRACES / name
    if not path.exists():
        pytest.skip(f"../shared/traces/{name} not present (a user's clone has no ../shared)")
    return path


@pytest.fixture
def shared_traces_dir() -> Path:
    if not SHARED_TRACES.is_dir():
        pytest.skip("../shared/traces not present")
    return SHARED_TRACES


def run_profkit(*args: str, cwd: Path | None = None, timeout: float = 240, env: dict | None = None,
                **kwargs) -> subprocess.CompletedProcess:
    """Run the real `profkit` CLI in a subprocess (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "profkit", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def cli_runner():
    """A click ``CliRunner`` whose results read as click 8.2's: ``stdout`` and ``stderr`` apart, and
    ``output`` both. click 8.1 (the last for Python 3.9) mixes stderr into stdout unless told not to,
    and then its ``output`` is stdout alone."""
    from click.testing import CliRunner

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2: stderr is apart already
        return CliRunner()

    class _Runner:
        def invoke(self, *args, **kwargs):
            return _BothOutputs(runner.invoke(*args, **kwargs))

    return _Runner()


class _BothOutputs:
    """A click 8.1 result whose ``output`` is stdout then stderr."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        return getattr(self._result, name)

    @property
    def output(self) -> str:
        return self._result.stdout + self._result.stderr
