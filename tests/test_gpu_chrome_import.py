"""A real GPU Chrome trace, imported, against a recording of the same program (#6 on real input).

benchmarks/gpu_check.sh ran one program twice on an NVIDIA H200 (torch 2.11): under torch.profiler
with export_chrome_trace (sample_traces/torch_profiler_export_nvidia_h200.json.gz, gzipped as
tensorboard_trace_handler writes it), and under `profkit record`
(same_program_recorded_nvidia_h200.parquet). The two runs launch the same kernels on the same
shapes, so what the importer makes of Kineto's JSON must agree with what the recorder read from
torch's events API: two independent paths to the same facts. Runs everywhere (no GPU needed).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

import profkit
from profkit.analyzers.classify import classify_events
from profkit.analyzers.cost import reads_lists
from conftest import SAMPLE_TRACES, run_profkit
from test_gpu_samples import assert_linked_by_kinetos_rules

CHROME_JSON = SAMPLE_TRACES / "torch_profiler_export_nvidia_h200.json.gz"
RECORDED = SAMPLE_TRACES / "same_program_recorded_nvidia_h200.parquet"


@pytest.fixture(scope="module")
def imported_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("chrome_import") / "imported.parquet"
    proc = run_profkit("import", str(CHROME_JSON), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def both(imported_path):
    return profkit.load(imported_path), profkit.load(RECORDED)


def _counts(series) -> Counter:
    return Counter(series.astype(str).tolist())


def test_same_kernels_and_events(both):
    imported, recorded = both
    assert len(imported.kernels) > 900
    assert _counts(imported.kernels["name"]) == _counts(recorded.kernels["name"])
    for kind in ("cpu_op", "runtime", "memcpy", "memset"):
        assert _counts(imported.events.loc[imported.events["kind"] == kind, "name"]) == \
            _counts(recorded.events.loc[recorded.events["kind"] == kind, "name"]), kind


def test_same_shapes_on_the_matrix_products(both):
    imported, recorded = both
    for op in ("aten::mm", "aten::addmm", "aten::bmm"):
        shapes = [_counts(t.events.loc[t.events["name"] == op, "input_shapes"]) for t in (imported, recorded)]
        assert shapes[0] == shapes[1] and sum(shapes[0].values()) > 0, op


def test_imported_kernels_linked_by_kinetos_rules(both):
    imported, _ = both
    assert_linked_by_kinetos_rules(imported)


def test_device_properties_name_the_gpu(both):
    imported, _ = both
    gpus = [d for d in imported.metadata["devices"] if d["type"] == "gpu"]
    assert [d["name"] for d in gpus] == ["NVIDIA H200"] and gpus[0]["compute_capability"] == "9.0"


def _list_op_flops(path) -> dict[str, float]:
    """Flop per class of the units whose cost reads TensorList shapes (aten::cat, aten::_foreach_*)."""
    trace = profkit.load(path)
    rows = classify_events(trace.events, trace.metadata)
    lists = rows[rows["name"].astype(str).map(reads_lists) & (rows["kind"] == "cpu_op")]
    return lists.groupby("category", observed=True)["flops"].sum().to_dict()


def test_reports_agree_on_the_flop(imported_path):
    # torch 2.11's events() (what recorded the Parquet) gives a TensorList as no shapes; Kineto's JSON
    # gives its shapes, so the imported optimizer's _foreach_* ops are costed and the recorded ones are
    # not. Every other op's flop must agree.
    reports = []
    for path in (imported_path, RECORDED):
        proc = run_profkit("report", str(path), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        reports.append({c["category"]: c for c in json.loads(proc.stdout)["categories"]})
    list_flops = [_list_op_flops(imported_path), _list_op_flops(RECORDED)]
    assert list_flops[0].get("elementwise", 0) > 0 and not any(list_flops[1].values())
    for category in ("contraction", "normalization", "elementwise"):
        assert reports[0][category]["flops"] > 0
        imported = reports[0][category]["flops"] - list_flops[0].get(category, 0)
        assert imported == pytest.approx(reports[1][category]["flops"], rel=1e-9), category
