"""The report says when a notable share of contraction time carries no flop count: its % flop and flop/B
would otherwise read as if that work did no arithmetic."""

from __future__ import annotations

import json

import profkit
from profkit.collectors.kineto_json import import_paths
from profkit.report.sections.categories import UNCOUNTED_NOTE_SHARE
from conftest import run_profkit, shared_trace
from synthetic_traces import make_trace


def _notes(path) -> list[str]:
    proc = run_profkit("report", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["roofline"]["notes"]


def test_gemm_kernels_no_op_launched_are_named(tmp_path):
    # The H100 Qwen trace records no launch call for some kernels (no runtime event, no External id):
    # they keep their class by name, but no op's shapes give them flop.
    source = shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
    target = tmp_path / "h100.parquet"
    import_paths([source], target, progress=False)
    events = profkit.load(target).events
    report = json.loads(run_profkit("report", str(target), "--format", "json").stdout)
    contraction_ns = next(c["time_ns"] for c in report["categories"] if c["category"] == "contraction")
    gemm = events["name"].astype(str).str.startswith(("sm90_xmma_gemm", "void pytorch_flash::flash_fwd"))
    unlaunched_ns = events.loc[(events["kind"] == "kernel") & gemm & events["op_id"].isna(), "duration_ns"].sum()
    share = unlaunched_ns / contraction_ns
    assert share > UNCOUNTED_NOTE_SHARE
    [note] = [n for n in report["roofline"]["notes"] if "no flop count" in n]
    assert note.startswith(f"{share:.0%} of contraction time has no flop count (sm90_xmma_gemm")


def test_no_note_when_every_contraction_is_costed(tmp_path):
    assert not [n for n in _notes(make_trace(tmp_path / "t.parquet")) if "no flop count" in n]


def test_autograd_nodes_over_a_costed_matmul_are_no_uncounted_contraction():
    # On a CPU trace the backward node and its evaluate_function wrapper have self time of their own
    # (classed contraction, from AddmmBackward0's forward op) around the aten::mm that carries the flop:
    # that is overhead, not arithmetic missing a count. Alone, a quantized GEMM's time is.
    from profkit.analyzers.classify import classify_table
    from profkit.analyzers.table import EventTable
    from profkit.report.sections.categories import _uncounted_contraction
    from test_cost import _events

    mm = ("[[4,16],[16,8]]", '["float","float"]')
    events = _events([
        ("cpu_op", "autograd::engine::evaluate_function: AddmmBackward0", 0, 100, None, None, 1, None),
        ("cpu_op", "AddmmBackward0", 5, 90, None, None, 2, None),
        ("cpu_op", "aten::mm", 20, 40, *mm, 3, None),
        ("cpu_op", "quantized::linear_dynamic", 200, 10, "[[4,16],[],[]]", '["float","","Scalar"]', 4, None),
    ])
    table = EventTable.from_frame(events)
    rows = classify_table(table)
    # contraction self time: 10 + 50 (the two wrappers) + 40 (mm) + 10 (quantized): only the last is uncounted
    assert _uncounted_contraction(rows, table) == [
        "9% of contraction time has no flop count (quantized::linear_dynamic: no usable shapes, or no launching "
        "op): the class's % flop and flop/B leave it out"]
