"""`profkit report` on an imported Parquet trace vs Holistic Trace Analysis's load of the JSON, side by side.

Issue 6's target: the report on the imported Parquet >= 20x faster than HTA's
load of the Chrome-trace JSON. One run prints, for one trace (default: the
H100 Qwen trace in ../shared/traces):

- HTA: ``TraceAnalysis(trace_dir=...)`` on a folder holding just the JSON, in a
  fresh child process per run, imports excluded (best of --repeat);
- profkit in-process: ``profkit.load`` + ``build_report`` in a child process whose
  imports (pandas, every report section) are done before the clock starts: the
  first report of the process (what one CLI call pays) and the best of --runs
  reports after it;
- profkit CLI: the wall time of ``python -m profkit report TRACE.parquet --format
  json`` (interpreter start-up and imports included, best of --repeat), and of
  an interpreter that only imports what the CLI imports, for scale;

then the ratios. HTA is not a profkit dependency; install it into its own
virtual environment and pass its interpreter (the default is /tmp/hta_venv):

    python -m venv --system-site-packages /tmp/hta_venv && /tmp/hta_venv/bin/pip install traceinsight
    python benchmarks/bench_report.py [TRACE.json.gz] [--parquet TRACE.parquet]

On a shared, loaded machine compare checkouts side by side rather than across runs:

    git worktree add /tmp/profkit-base COMMIT
    python benchmarks/bench_report.py --baseline /tmp/profkit-base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = REPO.parent / "shared" / "traces" / "h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
DEFAULT_HTA_PYTHON = "/tmp/hta_venv/bin/python"

_HTA_PROBE = """
import json, logging, os, sys, tempfile, time
from hta.trace_analysis import TraceAnalysis
logging.disable(logging.CRITICAL)
source = sys.argv[1]
folder = tempfile.mkdtemp(prefix="hta-")
os.symlink(os.path.abspath(source), os.path.join(folder, os.path.basename(source)))
t = time.perf_counter()
TraceAnalysis(trace_dir=folder)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

_REPORT_PROBE = """
import json, sys, time
import profkit
from profkit.report import build_report
from profkit.report.registry import sections
sections()  # import every report section before timing
target, runs = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(runs + 1):
    t = time.perf_counter()
    build_report([profkit.load(target)])
    times.append(time.perf_counter() - t)
print(json.dumps({"first": times[0], "best": min(times[1:]) if runs else times[0]}))
"""

_CLI_IMPORTS = "import profkit.cli.main, profkit.cli.report, profkit.report.registry as r; r.sections()"


def _child(python: str, code: str, *args: str, repo: Path = REPO) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(repo)} if repo != REPO else None
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, cwd=repo, timeout=1800,
                          check=False, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  failed: {tail}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _wall(command: list[str], repeat: int) -> float | None:
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, cwd=REPO, timeout=600, check=False)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            tail = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            print(f"  failed: {' '.join(command[:4])}...: {tail}", file=sys.stderr)
            return None
        best = seconds if best is None else min(best, seconds)
    return best


def _reports(parquet: Path, runs: int, rounds: int, baseline: Path | None) -> tuple[dict | None, dict | None]:
    """The report probe on this checkout (and on ``baseline``, alternating), best of ``rounds`` processes."""
    best: dict[str, dict | None] = {"this": None, "baseline": None}
    for _ in range(rounds):
        for name, repo in (("this", REPO), ("baseline", baseline)):
            if repo is None:
                continue
            found = _child(sys.executable, _REPORT_PROBE, str(parquet), str(runs), repo=repo.resolve())
            if found is None:
                return None, None
            kept = best[name]
            best[name] = found if kept is None else {k: min(kept[k], found[k]) for k in found}
    return best["this"], best["baseline"]


def hta_load(python: str, source: Path, repeat: int) -> float | None:
    if not Path(python).exists() or subprocess.run([python, "-c", "import hta.trace_analysis"],
                                                   capture_output=True, check=False).returncode != 0:
        print(f"HTA: skipped, {python} cannot import hta (see this file's docstring)")
        return None
    runs = [_child(python, _HTA_PROBE, str(source)) for _ in range(repeat)]
    return min(r["seconds"] for r in runs if r) if all(runs) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", type=Path, default=DEFAULT_TRACE, help="Chrome-trace JSON[.gz]")
    parser.add_argument("--parquet", type=Path, help="The trace already imported (default: import it now)")
    parser.add_argument("--hta-python", default=DEFAULT_HTA_PYTHON, help="An interpreter that can import hta")
    parser.add_argument("--repeat", type=int, default=3, help="Fresh processes per wall-time figure (best kept)")
    parser.add_argument("--runs", type=int, default=10, help="Reports timed in the warm process (best kept)")
    parser.add_argument("--baseline", type=Path, help="Another profkit checkout (e.g. a git worktree of an older "
                        "commit): its in-process report is timed too, alternating with this one's --repeat times")
    args = parser.parse_args()
    if not args.trace.exists():
        sys.exit(f"{args.trace}: no such trace (pass a Chrome-trace JSON file)")
    with tempfile.TemporaryDirectory(prefix="profkit-bench-report-") as scratch:
        parquet = args.parquet
        if parquet is None:
            parquet = Path(scratch) / "trace.parquet"
            subprocess.run([sys.executable, "-m", "profkit", "import", str(args.trace), "-o", str(parquet)],
                           check=True, capture_output=True, cwd=REPO)
        hta = hta_load(args.hta_python, args.trace, args.repeat)
        report, baseline = _reports(parquet, args.runs, args.repeat if args.baseline else 1, args.baseline)
        env_python = [sys.executable]
        cli = _wall(env_python + ["-m", "profkit", "report", str(parquet), "--format", "json",
                                  "-o", os.path.join(scratch, "report.json")], args.repeat)
        imports = _wall(env_python + ["-c", _CLI_IMPORTS], args.repeat)

    print(f"trace: {args.trace.name} ({parquet.name if args.parquet else 'imported to Parquet first'})")
    rows = [
        ("HTA load of the JSON (TraceAnalysis)", hta),
        ("profkit report in-process, first of the process", report and report["first"]),
        (f"profkit report in-process, best of {args.runs}", report and report["best"]),
        ("profkit report CLI wall (--format json)", cli),
        ("  of which interpreter + imports", imports),
    ]
    if baseline:  # the same probe on the other checkout, alternated with this one's (a loaded machine hits both)
        rows[3:3] = [(f"baseline ({args.baseline.name}) first of the process", baseline["first"]),
                     (f"baseline ({args.baseline.name}) best of {args.runs}", baseline["best"])]
    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        shown = "–" if seconds is None else f"{seconds * 1000:9.1f} ms"
        ratio = f"HTA/this {hta / seconds:6.1f}x" if hta and seconds and not label.startswith(("HTA", "  ")) else ""
        print(f"{label:<{width}}  {shown:>12}  {ratio}")
    if baseline and report:
        print(f"this checkout vs baseline: {baseline['first'] / report['first']:.2f}x first report, "
              f"{baseline['best'] / report['best']:.2f}x warm")
    if hta and report:
        verdict = "meets" if hta / report["first"] >= 20 else "misses"
        print(f"issue 6 target (report >= 20x faster than HTA's load): {verdict} it in-process "
              f"({hta / report['first']:.1f}x first report, {hta / report['best']:.1f}x warm)")


if __name__ == "__main__":
    main()
