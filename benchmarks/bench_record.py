"""Recording overhead, side by side in one run: no profiler vs torch.profiler + Chrome export vs profkit record.

    python benchmarks/bench_record.py [--steps 20] [--repeat 3]

Each configuration runs the same workload (benchmarks/workload.py) in a fresh process, the three
in turn, --repeat rounds; the best wall time of each is kept. Prints wall time, peak RSS, output size, and profkit's finalize time per
100k events, then the ratios the targets are about:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workload = [str(HERE / "workload.py"), "--steps", str(args.steps)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = {}
        configs = {
            "no profiler": [sys.executable, *workload, "--mode", "plain"],
            "torch.profiler + chrome export": [sys.executable, *workload, "--mode", "torch",
                                               "--chrome-out", str(tmp / "trace.json")],
            "profkit record": [sys.executable, "-m", "profkit", "record", "-q", "--no-telemetry", "-o",
                               str(tmp / "trace.parquet"), "--", sys.executable, *workload, "--mode", "plain"],
        }
        # Round-robin, so a noisy neighbour slows every configuration alike; best wall of each kept.
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in configs}
        exports = []
        for _ in range(args.repeat):
            for name, cmd in configs.items():
                probe = [sys.executable, "-c",
                         "import resource,subprocess,sys,time;t=time.perf_counter();"
                         "out=subprocess.run(sys.argv[1:],check=True,capture_output=True,text=True).stdout;"
                         "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024);"
                         "print(out)",
                         *cmd]
                out = subprocess.run(probe, cwd=tmp, capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(HERE.parent)}).stdout.split()
                samples[name].append((float(out[0]), int(out[1])))
                if "EXPORT_S" in out:
                    exports.append(float(out[out.index("EXPORT_S") + 1]))
        for name, runs in samples.items():
            rows[name] = {"wall_s": min(r[0] for r in runs), "peak_rss_bytes": max(r[1] for r in runs)}
        json_size = (tmp / "trace.json").stat().st_size
        parquet_size = (tmp / "trace.parquet").stat().st_size
        sys.path.insert(0, str(HERE.parent))
        from profkit.trace.io import read_metadata

        meta = read_metadata(tmp / "trace.parquet")
        events = meta["event_count"]
        finalize_s = meta["finalize_ns"] / 1e9

    print(f"workload: tiny transformer, {args.steps} training steps + 32-token generation, CPU, best of {args.repeat}")
    print(f"{'configuration':34} {'wall s':>8} {'peak RSS MiB':>13}")
    for name, row in rows.items():
        print(f"{name:34} {row['wall_s']:8.2f} {row['peak_rss_bytes'] / 2**20:13.0f}")
    print(f"events: {events:,}; profkit finalize (stop, extract, build, write) {finalize_s:.2f} s = "
          f"{finalize_s / events * 1e5:.2f} s per 100k events; torch's export_chrome_trace alone {min(exports):.2f} s")
    print(f"file size: Chrome JSON {json_size / 2**20:.1f} MiB, profkit Parquet {parquet_size / 2**20:.2f} MiB")
    base = rows["no profiler"]["wall_s"]
    torch_wall = rows["torch.profiler + chrome export"]["wall_s"]
    profkit_wall = rows["profkit record"]["wall_s"]
    print("ratios:")
    print(f"  profkit record / (torch.profiler + export) wall: {profkit_wall / torch_wall:.2f}  (target <= 1.00)")
    print(f"  Chrome JSON size / profkit Parquet size:         {json_size / parquet_size:.1f}  (target >= 5)")
    print(f"  overhead vs no profiler: torch {torch_wall / base:.2f}x, profkit {profkit_wall / base:.2f}x")
    print(json.dumps({"rows": rows, "events": events, "json_bytes": json_size, "parquet_bytes": parquet_size}))


if __name__ == "__main__":
    main()
