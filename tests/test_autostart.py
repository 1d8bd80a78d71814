"""Which processes are profiled and which file each writes (docs/recording.md's naming rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from profkit.collectors.autostart import is_launcher, trace_path


@pytest.mark.parametrize(
    "argv, launcher",
    [
        (["python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "t.py"], True),
        (["python", "-m", "torch.distributed.launch", "t.py"], True),
        (["/usr/bin/python3", "/venv/bin/torchrun", "t.py"], True),
        (["python", "train.py", "--lr", "1"], False),
        (["python", "-m", "mypkg.train"], False),
        (["python", "-c", "import torch"], False),
    ],
)
def test_launchers_are_not_profiled(argv, launcher):
    assert is_launcher(argv) is launcher


def test_trace_path_naming(tmp_path):
    base = tmp_path / "run.parquet"
    assert trace_path(base, None, env={"RANK": "3"}) == tmp_path / "run.rank3.parquet"
    run_dir = tmp_path / "rundir"
    run_dir.mkdir()
    first = trace_path(base, run_dir, env={})
    second = trace_path(base, run_dir, env={})
    assert first == base  # the first process claims the name given with -o
    assert second.name.startswith("run.pid") and second.suffix == ".parquet"
    assert trace_path(Path("t"), None, env={"RANK": "0"}).name == "t.rank0.parquet"
