"""Regenerate the golden report summaries of sample_traces/ (run deliberately, then review the diff).

    python -m tests.regen_golden            # rewrite tests/golden/<trace>.json for every sample trace
    python -m tests.regen_golden --check    # exit 1 if any golden file is stale (what the test asserts)

A golden file is ``profkit report --format json`` of one sample trace, with
the trace's path reduced to its file name. tests/test_golden.py compares the
current report with it, so a change that moves an analyzer's number shows up
in review as a changed golden file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_TRACES = REPO / "sample_traces"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def sample_traces() -> list[Path]:
    return sorted(SAMPLE_TRACES.glob("*.parquet"))


def golden_path(trace: Path) -> Path:
    return GOLDEN_DIR / f"{trace.stem}.json"


def golden_document(trace: Path) -> dict:
    """The report of ``trace`` as plain JSON, free of where the file happens to be."""
    import profkit
    from profkit.report import build_report

    document = json.loads(json.dumps(build_report([profkit.load(trace)])))
    run = document.get("run")
    if isinstance(run, dict) and "files" in run:
        run["files"] = [Path(f).name for f in run["files"]]
    return document


def write_golden(trace: Path) -> Path:
    GOLDEN_DIR.mkdir(exist_ok=True)
    path = golden_path(trace)
    path.write_text(json.dumps(golden_document(trace), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale golden files")
    args = parser.parse_args(argv)
    # Golden files must not depend on this machine's `profkit calibrate` results.
    import os
    import tempfile

    os.environ["PROFKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="profkit-golden-")
    stale = 0
    for trace in sample_traces():
        path = golden_path(trace)
        if args.check:
            current = golden_document(trace)
            saved = json.loads(path.read_text()) if path.exists() else None
            if saved != current:
                stale += 1
                print(f"stale: {path.relative_to(REPO)}")
        else:
            print(f"wrote {write_golden(trace).relative_to(REPO)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
