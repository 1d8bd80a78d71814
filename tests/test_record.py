"""`profkit record` end to end: real programs in subprocesses, traces checked by content."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import profkit
from conftest import run_profkit

pytestmark = pytest.mark.slow

TRAIN = textwrap.dedent(
    """
    import sys, torch
    print("program stdout", flush=True)
    print("program stderr", file=sys.stderr, flush=True)
    model = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.ReLU(), torch.nn.Linear(40, 8))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = int(sys.argv[sys.argv.index("--steps") + 1])
    for _ in range(steps):
        model(torch.randn(16, 24)).sum().backward()
        opt.step()
        opt.zero_grad()
    """
)

ENDINGS = textwrap.dedent(
    """
    import sys, torch
    x = torch.randn(16, 16)
    for _ in range(3):
        x = (x @ x).tanh()
    mode = sys.argv[1]
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "exit":
        sys.exit(3)
    if mode == "systemexit":
        raise SystemExit(4)
    if mode == "wait":
        print("ready", flush=True)
        while True:
            x = (x @ x).tanh()
    """
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_record_script_end_to_end(tmp_path):
    script = _write(tmp_path, "train.py", TRAIN)
    out = tmp_path / "t.parquet"
    proc = run_profkit("record", "-o", str(out), "--", sys.executable, str(script), "--steps", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The program's own output reaches the terminal; the profiler's log lines do not.
    assert "program stdout" in proc.stdout
    assert "program stderr" in proc.stderr
    assert "USDT" not in proc.stderr and "STAGE:" not in proc.stderr

    # Plain pyarrow reads the file and its metadata, without profkit.
    table = pq.read_table(out)
    meta = json.loads(pq.read_schema(out).metadata[b"profkit"])
    assert meta["format_version"] == 1 and meta["exit_code"] == 0 and meta["partial"] is False
    assert str(script) in meta["command"] and "--steps" in meta["command"]
    assert table.num_rows > 50

    trace = profkit.load(out)
    ev = trace.events
    addmm = ev[ev["name"] == "aten::addmm"]
    # 3 steps x 2 Linear layers in forward.
    assert len(addmm) == 6
    shapes = {json.loads(s)[1][1] if json.loads(s)[1] else None for s in addmm["input_shapes"].astype(str)}
    assert shapes == {24, 40}  # inputs [16,24] and [16,40]
    steps = trace.phases[trace.phases["name"] == "train_step"]
    assert len(steps) == 3
    # Times consistent: children lie inside their parents.
    child = ev[ev["parent_id"].notna()]
    parent = ev.set_index("event_id").loc[child["parent_id"].astype("int64")]
    assert (child["start_ns"].to_numpy() >= parent["start_ns"].to_numpy()).all()
    assert ((child["start_ns"] + child["duration_ns"]).to_numpy()
            <= (parent["start_ns"] + parent["duration_ns"]).to_numpy()).all()
    assert (ev["duration_ns"] >= 0).all()
    # Self time adds up: no op's self time exceeds its duration.
    report = json.loads(run_profkit("report", str(out), "--format", "json").stdout)
    assert report["run"]["exit_code"] == 0 and report["run"]["ranks"] == [0]
    names = [row["name"] for row in report["top_ops"]]
    assert "aten::addmm" in names
    assert all(row["self_time_ns"] <= row["total_time_ns"] for row in report["top_ops"])


def test_record_module_with_step_limits(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(pkg, "train.py", TRAIN)
    out = tmp_path / "m.parquet"
    proc = run_profkit("record", "-o", str(out), "--skip-steps", "2", "--steps", "3", "--",
                       sys.executable, "-m", "mypkg.train", "--steps", "8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trace = profkit.load(out)
    steps = trace.phases[trace.phases["name"] == "train_step"]
    # Steps 3, 4, 5 kept: 2 skipped, then 3 recorded; the program ran all 8.
    assert sorted(json.loads(x)["step"] for x in steps["extra"]) == [3, 4, 5]
    assert trace.metadata["stop_reason"]
    assert len(trace.events[trace.events["name"] == "aten::addmm"]) == 6
    assert f"profkit: wrote {out}" in proc.stderr  # written at the limit, still listed at the end


@pytest.mark.parametrize(
    "mode, code, error",
    [("raise", 1, "RuntimeError: boom"), ("exit", 3, None), ("systemexit", 4, None)],
)
def test_exit_code_and_partial_trace(tmp_path, mode, code, error):
    script = _write(tmp_path, "endings.py", ENDINGS)
    out = tmp_path / f"{mode}.parquet"
    proc = run_profkit("record", "-o", str(out), "--", sys.executable, str(script), mode, cwd=tmp_path)
    assert proc.returncode == code
    meta = profkit.load(out).metadata
    assert meta["exit_code"] == code and meta["partial"] is True
    if error:
        assert meta["error"] == error
    assert len(profkit.load(out).ops) > 0


def test_sigterm_leaves_partial_trace(tmp_path):
    script = _write(tmp_path, "endings.py", ENDINGS)
    out = tmp_path / "term.parquet"
    proc = subprocess.Popen([sys.executable, "-m", "profkit", "record", "-o", str(out), "--", sys.executable,
                             str(script), "wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    meta = profkit.load(out).metadata
    assert meta["partial"] is True and meta["signal"] == "SIGTERM" and meta["exit_code"] == 143
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_torchrun_two_ranks(tmp_path):
    script = _write(tmp_path, "dist.py", textwrap.dedent(
        """
        import torch, torch.distributed as dist
        dist.init_process_group("gloo")
        x = torch.ones(256) * (dist.get_rank() + 1)
        for _ in range(2):
            dist.all_reduce(x)
        dist.destroy_process_group()
        """
    ))
    out = tmp_path / "dist.parquet"
    proc = run_profkit("record", "-o", str(out), "--", sys.executable, "-m", "torch.distributed.run",
                       "--nproc_per_node", "2", "--master_port", "29571", str(script), cwd=tmp_path,
                       env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    files = sorted(tmp_path.glob("dist.rank*.parquet"))
    assert [f.name for f in files] == ["dist.rank0.parquet", "dist.rank1.parquet"]
    assert not out.exists(), "the launcher itself is not profiled"
    for rank, path in enumerate(files):
        meta = profkit.load(path).metadata
        assert (meta["rank"], meta["world_size"]) == (rank, 2)
    report = json.loads(run_profkit("report", str(files[0]), str(files[1]), "--format", "json").stdout)
    assert report["run"]["ranks"] == [0, 1]
    assert report["totals"]["op_count"] == sum(len(profkit.load(f).ops) for f in files)
    # the -o path given to record stands for the rank files it wrote
    assert json.loads(run_profkit("report", str(out), "--format", "json").stdout) == report


def test_unwritable_output_fails_before_program_runs(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "a_file").write_text("")
    proc = run_profkit("record", "-o", str(tmp_path / "a_file" / "t.parquet"), "--", sys.executable, "-c",
                       f"open({str(marker)!r}, 'w')")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot make folder" in proc.stderr
    assert not marker.exists()


def test_a_missing_output_folder_is_made(tmp_path):
    # the README's `profkit record -o run/trace.parquet -- ...` on a fresh checkout
    proc = run_profkit("record", "-o", str(tmp_path / "run" / "deeper" / "t.parquet"), "--", sys.executable, "-c",
                       "import torch; torch.ones(4).sum()")
    assert proc.returncode == 0, proc.stderr
    assert profkit.load(tmp_path / "run" / "deeper" / "t.parquet").ops["name"].str.startswith("aten::").any()


def test_program_without_torch_records_nothing(tmp_path):
    proc = run_profkit("record", "-o", str(tmp_path / "t.parquet"), "--", sys.executable, "-c",
                       "import sys; print('hi'); sys.exit(5)")
    assert proc.returncode == 5 and proc.stdout == "hi\n"
    assert "nothing was recorded" in proc.stderr
    assert not (tmp_path / "t.parquet").exists()


def test_a_program_running_torch_profiler_itself_is_told_why_the_trace_is_empty(tmp_path):
    # One profiler runs at a time: the program's own torch.profiler takes over profkit's session.
    program = ("import torch\nfrom torch.profiler import profile\nx = torch.randn(8, 8)\n"
               "with profile():\n    (x @ x).sum()\n")
    proc = run_profkit("record", "-o", str(tmp_path / "t.parquet"), "--", sys.executable, "-c", program)
    assert proc.returncode == 0, proc.stderr
    assert "profkit: warning: the program ran torch.profiler itself" in proc.stderr
    trace = profkit.load(tmp_path / "t.parquet")
    assert trace.ops.empty
    assert any("ran torch.profiler itself" in note for note in trace.metadata["notes"])
    # a program that does not: no such note
    proc = run_profkit("record", "-o", str(tmp_path / "u.parquet"), "--", sys.executable, "-c",
                       "import torch; torch.ones(4).sum()")
    assert "torch.profiler itself" not in proc.stderr
    assert not any("torch.profiler itself" in note for note in profkit.load(tmp_path / "u.parquet").metadata["notes"])


def test_a_displaced_profiler_that_cannot_be_stopped_leaves_no_results(monkeypatch):
    # torch before 2.13 raises where 2.13 warns when profkit stops a session the program's own
    # profiler ended; any other failure to stop still raises.
    from profkit.collectors import profiler as profiler_module

    class Ended:
        def __exit__(self, *exc):
            raise RuntimeError("Can't disable Kineto profiler when it's not running")

    for running in (False, True):
        monkeypatch.setattr(profiler_module, "profiler_enabled", lambda unknown, running=running: running)
        recorder = profiler_module.KinetoProfiler(record_shapes=True)
        recorder._profile = Ended()
        if running:
            with pytest.raises(RuntimeError):
                recorder.stop()
        else:
            assert recorder.stop() is None and recorder.displaced


POOL = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    def work(i):
        import torch  # the workers import torch, the parent does not
        (torch.ones(8, 8) @ torch.ones(8, 8)).sum()
        time.sleep(0.2)  # so that the other worker, once started, takes a task too
        return os.getpid()
    if __name__ == "__main__":
        pool = multiprocessing.get_context(sys.argv[1]).Pool(2)
        # A worker that starts late on a loaded machine may run no task, import no torch and so
        # write no trace: say how many workers did run one.
        print("workers that ran a task:", len(set(pool.map(work, range(4), chunksize=1))))
        if sys.argv[2] == "terminate":
            time.sleep(1)
            pool.terminate()  # SIGTERM to workers that may be ending already
        else:
            pool.close()
        pool.join()
    """
)


@pytest.mark.parametrize("start, ending", [("fork", "close"), ("spawn", "terminate")])
def test_multiprocessing_pool_workers_each_write_a_trace(tmp_path, start, ending):
    # fork: a pool worker ends with os._exit, after multiprocessing's finalizers but no atexit;
    # terminate: the SIGTERM may reach a worker while it writes its trace on its way out.
    script = _write(tmp_path, "pool.py", POOL)
    out = tmp_path / "pool.parquet"
    proc = run_profkit("record", "-o", str(out), "--", sys.executable, str(script), start, ending)
    assert proc.returncode == 0, proc.stderr
    workers = int(re.search(r"workers that ran a task: (\d)", proc.stdout).group(1))
    written = sorted(tmp_path.glob("pool*.parquet"))
    # one per worker that ran a task: pool.parquet, then pool.pid<PID>.parquet
    assert len(written) == workers >= 1, proc.stderr
    for path in written:
        assert profkit.load(path).ops["name"].eq("aten::mm").any()
