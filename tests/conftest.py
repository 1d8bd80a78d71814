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
