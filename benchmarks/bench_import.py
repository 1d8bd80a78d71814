"""profkit import vs Holistic Trace Analysis's loader on the same Chrome-trace files, side by side.

For each trace (default: every file in ../shared/traces) and each tool, a fresh
child process loads the file and reports its wall time and peak memory. Both
sides are measured the same way:

- imports excluded: each child first imports its tool's entry module (for
  profkit, ``profkit.cli.import_cmd``, as ``profkit import`` does: it also
  picks Arrow's allocator; for HTA, ``hta.trace_analysis``, which imports
  pandas). Modules a call imports on the way count (profkit's importer
  imports no pandas; bench it so a regression shows);
- peak memory: the rise of the peak RSS (``ru_maxrss`` — of the process, or
  of a worker it forked, as HTA parses several rank files in a forked pool)
  over the process's RSS once those imports are done. RSS, not tracemalloc:
  it counts native buffers (Arrow, numpy, pandas) and allocator overheads;
- time: wall clock around the call (or, with --cpu, the CPU time of the
  process and its children: steadier on a machine others load), the best
  of --repeat rounds; each round runs profkit, then HTA, so that a spell of
  load elsewhere hits both (peak: the largest of the rounds).

- profkit: ``import_paths`` (JSON -> Parquet: exactly what ``profkit
  import`` runs), then, separately, ``profkit report`` on that Parquet file
  (``load`` + ``build_report``);
- HTA: ``TraceAnalysis(trace_dir=...)`` on a folder holding just that file
  (its public entry point: parse, align and filter the trace, with its defaults). HTA is not a profkit dependency: install it
  into its own virtual environment and pass its interpreter:

      python -m venv --system-site-packages /tmp/hta && /tmp/hta/bin/pip install traceinsight psutil
      python benchmarks/bench_import.py --hta-python /tmp/hta/bin/python

``--no-orjson`` hides orjson from both children (HTA does not use it;
profkit's importer does where installed): the path a machine without orjson
takes, CI's.

Targets (issue 6): import >= 5x faster than HTA's load with less peak memory;
``profkit report`` on the imported Parquet >= 20x faster than HTA's load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO.parent / "shared" / "traces"

# Each probe runs in a child process and prints one JSON line: {"seconds": .., "peak_mb": ..}.
_PRELUDE = """
import json, resource, sys, time
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def peak_mb():  # HTA parses in a forked worker by default: its peak counts too
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
def cpu_s():  # user + system time of this process and of the workers it waited for
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
"""

PROBES = {
    "profkit_import": _PRELUDE + """
import profkit.cli.import_cmd  # what `profkit import` imports (it sets ARROW_DEFAULT_MEMORY_POOL first)
from profkit.collectors.kineto_json import import_paths
source, target = sys.argv[1], sys.argv[2]
base = rss_mb(); cpu = cpu_s(); t = time.perf_counter()
written, = import_paths([source], target, progress=False)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s() - cpu, "peak_mb": peak_mb() - base, "events": written.events}))
""",
    "profkit_report": _PRELUDE + """
import profkit
from profkit.report import build_report
from profkit.report.registry import sections
sections()  # import every report section before timing
target = sys.argv[2]
base = rss_mb(); cpu = cpu_s(); t = time.perf_counter()
build_report([profkit.load(target)])
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": cpu_s() - cpu, "peak_mb": peak_mb() - base}))
""",
    "hta_load": _PRELUDE + """
import logging, os, tempfile
from hta.trace_analysis import TraceAnalysis
logging.disable(logging.CRITICAL)
source = sys.argv[1]
folder = tempfile.mkdtemp(prefix="hta-")
os.symlink(os.path.abspath(source), os.path.join(folder, os.path.basename(source)))
base = rss_mb(); cpu = cpu_s(); t = time.perf_counter()
analysis = TraceAnalysis(trace_dir=folder)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s() - cpu, "peak_mb": peak_mb() - base, "events": int(sum(len(df) for df in analysis.t.traces.values()))}))
""",
}


#: Prepended to every probe by --no-orjson: ``import orjson`` then raises ImportError.
_HIDE_ORJSON = "import sys; sys.modules['orjson'] = None\n"


def probe(python: str, name: str, source: Path, target: Path, no_orjson: bool = False) -> dict | None:
    """One run of a probe in a fresh child process (None if it failed, with a line on stderr)."""
    code = (_HIDE_ORJSON if no_orjson else "") + PROBES[name]
    proc = subprocess.run([python, "-c", code, str(source), str(target)], capture_output=True, text=True,
                          cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {name} failed on {source.name}: {tail}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best(runs: list[dict | None], time_key: str) -> dict | None:
    """The fastest run by ``time_key`` as ``seconds``, with the largest peak of them all."""
    if not runs or None in runs:
        return None
    fastest = min(runs, key=lambda r: r[time_key])
    return {**fastest, "seconds": fastest[time_key], "peak_mb": max(r["peak_mb"] for r in runs)}


def scaled_trace(source: Path, copies: int, folder: Path) -> Path:
    """``copies`` back-to-back repetitions of a trace's events (ids and times shifted), as plain JSON."""
    import gzip

    with gzip.open(source, "rt") as handle:
        document = json.load(handle)
    events = document.pop("traceEvents")
    timed = [e for e in events if isinstance(e.get("ts"), (int, float))]
    span = max(e["ts"] + e.get("dur", 0) for e in timed) - min(e["ts"] for e in timed)
    target = folder / f"{source.name.split('.json')[0]}_x{copies}.json"
    with open(target, "w") as out:
        out.write(json.dumps(document)[:-1] + ', "traceEvents": [\n')
        for copy in range(copies):
            for i, event in enumerate(events):
                if copy and event.get("ph") == "M":
                    continue
                event = dict(event)
                if isinstance(event.get("ts"), (int, float)):
                    event["ts"] = event["ts"] + copy * span
                if "id" in event:
                    event["id"] = event["id"] + copy * 10**8
                if isinstance(event.get("args"), dict):
                    event["args"] = dict(event["args"])
                    for key in ("correlation", "External id"):
                        if isinstance(event["args"].get(key), int):
                            event["args"][key] += copy * 10**8
                out.write(("" if copy == 0 and i == 0 else ",\n") + json.dumps(event))
        out.write("\n]}\n")
    return target


def importable(python: str, module: str) -> bool:
    """Whether interpreter ``python`` can import ``module``."""
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path, help="Chrome-trace files (default: ../shared/traces/*)")
    parser.add_argument("--hta-python", default=sys.executable, help="An interpreter that can import hta")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per measurement (best time is kept)")
    parser.add_argument("--scale", type=int, default=0, metavar="N",
                        help="Also time a large trace: the H100 trace's events repeated N times (e.g. 10 -> ~90 MB)")
    parser.add_argument("--no-orjson", action="store_true",
                        help="Hide orjson from both tools (the standard-library path, as in CI)")
    parser.add_argument("--cpu", action="store_true",
                        help="Compare CPU time (process + children) instead of wall time: steadier on a busy machine")
    args = parser.parse_args()
    traces = args.traces or sorted(SHARED_TRACES.glob("*.json*"))
    scratch = tempfile.TemporaryDirectory(prefix="profkit-bench-big-")
    if args.scale:
        traces.append(scaled_trace(SHARED_TRACES / "h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", args.scale,
                                   Path(scratch.name)))
    if not traces:
        sys.exit("no traces: pass files, or run beside ../shared/traces")
    with_hta = importable(args.hta_python, "hta.trace_analysis")
    print("orjson hidden (standard-library JSON)" if args.no_orjson else
          f"orjson {'installed' if importable(sys.executable, 'orjson') else 'not installed'} for profkit",
          "; CPU seconds" if args.cpu else "; wall seconds", sep="")
    if not with_hta:
        print(f"HTA not importable by {args.hta_python}: showing profkit alone (see this file's docstring)")
    header = (f"{'trace':<48} {'events':>7} {'import s':>9} {'HTA s':>7} {'speed-up':>8} "
              f"{'import MB':>9} {'HTA MB':>7} {'mem ratio':>9} {'report s':>9} {'HTA/report':>10}")
    print(header)
    print("-" * len(header))
    totals = {"import": 0.0, "hta": 0.0, "report": 0.0}
    with tempfile.TemporaryDirectory(prefix="profkit-bench-") as folder:
        for source in traces:
            target = Path(folder) / (source.name + ".parquet")
            runs: dict[str, list] = {"ours": [], "report": [], "hta": []}
            for _ in range(args.repeat):  # rounds: each tool once a round
                runs["ours"].append(probe(sys.executable, "profkit_import", source, target, args.no_orjson))
                if runs["ours"][-1] is None:
                    break
                runs["report"].append(probe(sys.executable, "profkit_report", source, target, args.no_orjson))
                if with_hta:
                    runs["hta"].append(probe(args.hta_python, "hta_load", source, target, args.no_orjson))
            time_key = "cpu_s" if args.cpu else "seconds"
            ours, report, hta = (best(runs[tool], time_key) for tool in ("ours", "report", "hta"))
            if ours is None:
                continue
            totals["import"] += ours["seconds"]
            totals["report"] += report["seconds"] if report else 0.0
            totals["hta"] += hta["seconds"] if hta else 0.0
            print(
                f"{source.name[:48]:<48} {ours['events']:>7} {ours['seconds']:>9.3f} "
                f"{_f(hta, 'seconds', '.3f'):>7} {_ratio(hta, ours, 'seconds'):>8} "
                f"{ours['peak_mb']:>9.1f} {_f(hta, 'peak_mb', '.1f'):>7} {_ratio(hta, ours, 'peak_mb'):>9} "
                f"{_f(report, 'seconds', '.3f'):>9} {_ratio(hta, report, 'seconds'):>10}"
            )
    if with_hta and totals["import"]:
        print(f"all files: import {totals['import']:.3f} s, HTA {totals['hta']:.3f} s "
              f"({totals['hta'] / totals['import']:.1f}x), report on Parquet {totals['report']:.3f} s "
              f"({totals['hta'] / max(totals['report'], 1e-9):.1f}x faster than HTA's load)")


def _f(row: dict | None, key: str, spec: str) -> str:
    return "–" if row is None else format(row[key], spec)


def _ratio(theirs: dict | None, ours: dict | None, key: str) -> str:
    if theirs is None or ours is None or ours[key] <= 0:
        return "–"
    return f"{theirs[key] / ours[key]:.1f}x"


if __name__ == "__main__":
    main()
