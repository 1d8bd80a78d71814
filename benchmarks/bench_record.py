"""Recording overhead, side by side in one run: no profiler vs torch.profiler + Chrome export vs profkit record.

    python benchmarks/bench_record.py [--steps 20] [--new-tokens 32] [--repeat 3] [--device cpu|cuda]

Two workloads (benchmarks/workload.py, the bundled tiny transformer, on the CPU unless --device cuda):
- training: --steps training steps, then a --new-tokens generation;
- inference: generation only (--inference-tokens tokens), a program that never builds an optimizer.
  torch.profiler's start imports TorchInductor (1-2 s) and profkit's does not; a training program
  imports it anyway when it builds its optimizer, so only here does that show.

A fourth configuration, profkit record with PROFKIT_DETACHED_WRITE=0, writes the trace inside the
program's process instead of from a forked copy while it exits (collectors/detach.py), to show what
that overlap saves.

Each configuration runs in a fresh process, the four in turn, --repeat rounds (round robin, so a
noisy neighbour slows all alike); the best wall time of each is kept. Prints wall time, peak RSS,
output size, and profkit's finalize time per 100k events, then the ratios the targets are about:
  profkit record (trace written) <= torch.profiler + export_chrome_trace, and JSON size / Parquet size >= 5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IN_PROCESS = "profkit record, written in process"

# Runs a command, prints its wall time and the peak RSS of its process tree's largest member.
_PROBE = ("import resource,subprocess,sys,time;t=time.perf_counter();"
          "out=subprocess.run(sys.argv[1:],check=True,capture_output=True,text=True).stdout;"
          "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024);"
          "print(out)")


def measure(workload: list[str], repeat: int, tmp: Path) -> dict:
    configs = {
        "no profiler": [sys.executable, *workload, "--mode", "plain"],
        "torch.profiler + chrome export": [sys.executable, *workload, "--mode", "torch",
                                           "--chrome-out", str(tmp / "trace.json")],
        "profkit record": [sys.executable, "-m", "profkit", "record", "-q", "--no-telemetry", "-o",
                           str(tmp / "trace.parquet"), "--", sys.executable, *workload, "--mode", "plain"],
        # The same, with the trace written inside the program's process before it exits instead of
        # by a forked copy during its exit (collectors/detach.py): what that overlap saves.
        IN_PROCESS: [sys.executable, "-m", "profkit", "record", "-q", "--no-telemetry", "-o",
                     str(tmp / "trace-in-process.parquet"), "--", sys.executable, *workload, "--mode", "plain"],
    }
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in configs}
    exports = []
    for _ in range(repeat):
        for name, cmd in configs.items():
            env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
            if name == IN_PROCESS:
                env["PROFKIT_DETACHED_WRITE"] = "0"
            out = subprocess.run([sys.executable, "-c", _PROBE, *cmd], cwd=tmp, capture_output=True, text=True,
                                 check=True, env=env).stdout.split()
            samples[name].append((float(out[0]), int(out[1])))
            if "EXPORT_S" in out:
                exports.append(float(out[out.index("EXPORT_S") + 1]))
    from profkit.trace.io import read_metadata

    meta = read_metadata(tmp / "trace.parquet")
    return {
        "rows": {name: {"wall_s": min(r[0] for r in runs), "peak_rss_bytes": max(r[1] for r in runs)}
                 for name, runs in samples.items()},
        "events": meta["event_count"],
        "finalize_s": meta["finalize_ns"] / 1e9,
        "export_s": min(exports),
        "json_bytes": (tmp / "trace.json").stat().st_size,
        "parquet_bytes": (tmp / "trace.parquet").stat().st_size,
    }


def report(title: str, result: dict) -> None:
    rows = result["rows"]
    print(f"\n{title}")
    print(f"  {'configuration':34} {'wall s':>8} {'peak RSS MiB':>13}")
    for name, row in rows.items():
        print(f"  {name:34} {row['wall_s']:8.2f} {row['peak_rss_bytes'] / 2**20:13.0f}")
    events, finalize_s = result["events"], result["finalize_s"]
    print(f"  events: {events:,}; profkit finalize (stop, then extract, build, write in a forked copy while the "
          f"program exits) {finalize_s:.2f} s = "
          f"{finalize_s / events * 1e5:.2f} s per 100k events; torch's export_chrome_trace alone "
          f"{result['export_s']:.2f} s")
    print(f"  file size: Chrome JSON {result['json_bytes'] / 2**20:.1f} MiB, "
          f"profkit Parquet {result['parquet_bytes'] / 2**20:.2f} MiB")
    base = rows["no profiler"]["wall_s"]
    torch_wall = rows["torch.profiler + chrome export"]["wall_s"]
    profkit_wall = rows["profkit record"]["wall_s"]
    print("  ratios:")
    print(f"    profkit record / (torch.profiler + export) wall: {profkit_wall / torch_wall:.2f}  (target <= 1.00)")
    print(f"    Chrome JSON size / profkit Parquet size:         "
          f"{result['json_bytes'] / result['parquet_bytes']:.1f}  (target >= 5)")
    print(f"    overhead vs no profiler: torch {torch_wall / base:.2f}x, profkit {profkit_wall / base:.2f}x")
    print(f"    profkit written in process / (torch.profiler + export): {rows[IN_PROCESS]['wall_s'] / torch_wall:.2f}"
          "  (without the detached write)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--inference-tokens", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the workload runs")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    workloads = {
        f"training: tiny transformer, {args.steps} steps + {args.new_tokens}-token generation, {args.device}":
            ["--steps", str(args.steps), "--new-tokens", str(args.new_tokens), "--device", args.device],
        f"inference: tiny transformer, {args.inference_tokens}-token generation only, {args.device}":
            ["--steps", "0", "--new-tokens", str(args.inference_tokens), "--device", args.device],
    }
    results = {}
    for title, workload_args in workloads.items():
        with tempfile.TemporaryDirectory() as tmp:
            results[title] = measure([str(HERE / "workload.py"), *workload_args], args.repeat, Path(tmp))
        report(f"{title}, best of {args.repeat}", results[title])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
