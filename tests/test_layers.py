"""The package's layers, as an import contract (STYLE.md: "an import-linter contract keeps packages
acyclic"): collectors -> trace file -> analyzers -> report; only the CLI sees them all.

Each module's imports are read from its source (every ``import`` statement, at any depth, relative ones
resolved), so an import inside a function counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "profkit"

#: package -> what its modules must not import (profkit subpackages, or third-party top-level modules).
FORBIDDEN = {
    "trace": {"profkit.collectors", "profkit.analyzers", "profkit.report", "profkit.cli", "torch", "pynvml"},
    "collectors": {"profkit.analyzers", "profkit.report", "profkit.cli"},
    # A trace is analyzable on any machine, fast: no torch, no NVML, nothing of the recording side.
    "analyzers": {"profkit.collectors", "profkit.report", "profkit.cli", "torch", "pynvml"},
    "report": {"profkit.collectors", "profkit.cli", "torch", "pynvml"},
}


def imports_of(path: Path) -> set[str]:
    """The absolute names of the modules ``path`` imports."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])  # (an __init__'s is its folder)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            names.add(stem)
            if node.module is None:  # `from . import x`: x is a module too
                names.update(f"{stem}.{alias.name}" for alias in node.names)
    return names


def _breaks(name: str, rule: str) -> bool:
    return name == rule or name.startswith(rule + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_must_not(layer):
    sources = sorted((PACKAGE / layer).rglob("*.py"))
    assert sources
    broken = sorted(f"{path.relative_to(PACKAGE)} imports {name}" for path in sources
                    for name in imports_of(path) if any(_breaks(name, rule) for rule in FORBIDDEN[layer]))
    assert broken == []


def test_relative_imports_are_resolved():
    # The reader itself: a relative import resolves to the absolute name the rules are written in.
    names = imports_of(PACKAGE / "cli" / "calibrate.py")
    assert {"profkit.collectors.calibrate", "profkit.trace.calibration", "click"} <= names
    assert imports_of(PACKAGE / "report" / "__init__.py") & {"profkit.report.build"}
