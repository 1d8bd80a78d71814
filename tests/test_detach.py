"""The trace written by a forked copy of the exiting process (collectors/detach.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from profkit.collectors import detach

pytestmark = pytest.mark.skipif(not detach.detach_supported(), reason="detached writes need fork on Linux")


def test_forked_writer_writes_from_another_process_and_returns_the_path(tmp_path):
    target = tmp_path / "out.txt"

    def write() -> Path:
        target.write_text(str(os.getpid()))
        return target

    returned = detach.forked_writer(tmp_path)(target, write)
    assert returned == target
    assert detach.await_finalizers(tmp_path) == []
    assert target.read_text().isdigit() and int(target.read_text()) != os.getpid()


def test_the_exiting_process_never_frees_what_its_copy_writes(tmp_path):
    """Freeing the profiler's results would cost the exiting program a destructor pass (0.3-0.45 s)."""
    import gc
    import weakref

    class Results:  # stands for the profiler's results, captured by the write callable
        pass

    results = Results()
    alive = weakref.ref(results)

    def write(held=results) -> Path:
        return tmp_path / "unused"

    detach.forked_writer(tmp_path)(tmp_path / "unused", write)
    assert detach.await_finalizers(tmp_path) == []
    del results, write
    gc.collect()
    assert alive() is not None


def test_a_failing_copy_reports_on_stderr_and_leaves_no_file(tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        from profkit.collectors import detach
        def write():
            raise RuntimeError("disk on fire")
        detach.forked_writer(Path({str(tmp_path)!r}))(Path({str(tmp_path / 'never')!r}), write)
        assert detach.await_finalizers(Path({str(tmp_path)!r})) == []
        print("parent went on")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("parent went on") == 1
    assert "could not write trace: RuntimeError: disk on fire" in proc.stderr
    assert not (tmp_path / "never").exists()


def test_await_finalizers_waits_for_a_process_that_is_not_its_child(tmp_path):
    # The shell exits at once; its background sleep is orphaned to init (this test process is no subreaper).
    def orphan(seconds: float) -> int:
        out = subprocess.run(["sh", "-c", f"sleep {seconds} >/dev/null 2>&1 & echo $!"], capture_output=True,
                             text=True, check=True).stdout
        return int(out)

    short = orphan(0.4)
    (tmp_path / f"finalizer-{short}").write_text("")
    start = time.monotonic()
    assert detach.await_finalizers(tmp_path) == []
    assert time.monotonic() - start >= 0.2  # it did wait for the sleep

    (tmp_path / f"finalizer-{short}").unlink()
    long = orphan(30)
    (tmp_path / f"finalizer-{long}").write_text("")
    try:
        assert detach.await_finalizers(tmp_path, timeout_s=0.1) == [long]
    finally:
        os.kill(long, 9)


def test_recorded_program_exits_once_with_its_output_once(tmp_path):
    """The copy must not run the program's atexit handlers again nor repeat its buffered output."""
    log = tmp_path / "atexit.log"
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent(f"""
        import atexit, sys
        def note(word):
            with open({str(log)!r}, "a") as f:
                f.write(word + "\\n")
        atexit.register(note, "registered-before-torch")
        sys.stdout.write("buffered-output")  # no newline: still buffered when the program ends
        import torch
        atexit.register(note, "registered-after-torch")
        (torch.ones(8, 8) @ torch.ones(8, 8)).sum()
        sys.exit(3)
    """))
    trace = tmp_path / "t.parquet"
    proc = subprocess.run([sys.executable, "-m", "profkit", "record", "--no-telemetry", "-o", str(trace), "--",
                           sys.executable, str(program)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.count("buffered-output") == 1
    assert sorted(log.read_text().split()) == ["registered-after-torch", "registered-before-torch"]
    import profkit

    loaded = profkit.load(trace)  # written by the copy, complete by the time profkit exits
    assert loaded.metadata["exit_code"] == 3 and loaded.metadata["partial"] is True
    assert (loaded.events["name"] == "aten::mm").any()
    assert not list(tmp_path.glob("*.tmp*"))


def test_detached_and_in_process_writes_give_the_same_trace(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("import torch\nx = torch.ones(16, 16)\nfor _ in range(5):\n    x = torch.relu(x @ x) / 16\n")
    loaded = {}
    for mode in ("1", "0"):
        trace = tmp_path / f"t{mode}.parquet"
        subprocess.run([sys.executable, "-m", "profkit", "record", "-q", "--no-telemetry", "-o", str(trace), "--",
                        sys.executable, str(program)], check=True, timeout=300,
                       env={**os.environ, "PROFKIT_DETACHED_WRITE": mode})
        import profkit

        loaded[mode] = profkit.load(trace)
    columns = ["kind", "name", "depth", "input_shapes"]
    detached, in_process = (loaded[m].events[columns] for m in ("1", "0"))
    assert len(detached) > 10
    assert detached.value_counts().to_dict() == in_process.value_counts().to_dict()
