"""profkit diff and profkit check on hand-built traces (synthetic_traces.py) and the shared GPU traces."""

from __future__ import annotations

import json

import pytest

import profkit
from profkit.analyzers.check import Budget, CheckInputError, check, parse_limit, parse_scoped
from profkit.analyzers.diff import compare, diff_sections
from profkit.cli.main import cli
from profkit.collectors.kineto_json import read_kineto
from profkit.trace.io import write_trace

from conftest import cli_runner, shared_trace
from synthetic_traces import make_trace


def run(*args: str):
    return cli_runner().invoke(cli, list(map(str, args)))


@pytest.fixture
def base(tmp_path):
    return make_trace(tmp_path / "base.parquet")


@pytest.fixture
def slower(tmp_path):
    # the GEMM kernel 20 % slower: 1.0 ms -> 1.2 ms in every step
    return make_trace(tmp_path / "slower.parquet", gemm_ns=1_200_000)


# ---------------------------------------------------------------- diff


def test_diff_of_a_trace_with_itself_shows_no_change(base):
    result = run("diff", base, base, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    tables = {"ops": document["ops"], "kernels": document["kernels"], "classes": document["classes"],
              "categories": document["sections"]["categories"]["rows"]}
    for table, rows in tables.items():
        assert rows and {r["status"] for r in rows} == {"same"}, table
        assert all(v == 0 for r in rows for k, v in r.items() if k.startswith("delta_")), table
    assert document["kernels_appeared"] == [] and document["kernels_vanished"] == []
    assert document["cross_device"] is False
    totals = {r["metric"]: r for r in document["sections"]["totals"]["rows"]}
    assert totals["kernel_count"]["change"] == 0


def test_diff_finds_the_slower_kernel(base, slower):
    document = json.loads(run("diff", base, slower, "--format", "json").stdout)
    kernels = {r["name"]: r for r in document["kernels"]}
    # 4 steps x 1.0 ms -> 4 x 1.2 ms
    assert kernels["gemm_kernel"]["base_time_ns"] == 4_000_000
    assert kernels["gemm_kernel"]["new_time_ns"] == 4_800_000
    assert kernels["gemm_kernel"]["change_time_ns"] == pytest.approx(0.2)
    assert kernels["relu_kernel"]["status"] == "same"
    assert document["kernels"][0]["name"] == "gemm_kernel"  # sorted by the size of the change
    ops = {(r["name"], r["input_shapes"]): r for r in document["ops"]}
    mm = ops[("aten::mm", "[[64,128],[128,256]]")]
    assert mm["base_gpu_time_ns"] == 4_000_000 and mm["new_gpu_time_ns"] == 4_800_000
    # 2 * 64 * 128 * 256 = 4,194,304 flop per mm, 4 of them
    assert mm["base_flop"] == 4 * 4_194_304
    # the report's categories section (classes analyzer) is compared too: the GEMM is contraction
    categories = {r["category"]: r for r in document["sections"]["categories"]["rows"]}
    assert categories["contraction"]["base_time_ns"] == 4_000_000
    assert categories["contraction"]["change_time_ns"] == pytest.approx(0.2)
    assert categories["elementwise"]["change_time_ns"] == 0


def test_class_table_without_a_categories_section(base, slower):
    from profkit.analyzers.diff import class_table, diff_traces

    events = profkit.load(base).events
    table = class_table(events).set_index("class")["time_ns"]
    # GPU time by the launching op's class: 4 x 1.0 ms GEMM (aten::mm), 4 x 0.2 ms relu
    assert table.to_dict() == {"contraction": 4_000_000, "elementwise": 800_000}
    document = diff_traces(events, profkit.load(slower).events)  # no report documents
    classes = {r["class"]: r for r in document["classes"]}
    assert classes["contraction"]["change_time_ns"] == pytest.approx(0.2)
    assert document["sections"] == {}


def test_diff_text_and_markdown(base, slower):
    text = run("diff", base, slower)
    assert text.exit_code == 0 and "gemm_kernel" in text.output and "+20.0 %" in text.output
    markdown = run("diff", base, slower, "--format", "markdown").output
    assert markdown.startswith("### profkit diff")
    assert "| name | input_shapes |" in markdown and "+20.0 %" in markdown


def test_diff_text_to_a_file_or_a_pipe_wraps_no_cell(base, slower, tmp_path):
    # A file or a pipe has no width: each table is as wide as its cells (at 140 columns the classes'
    # "9.43 ms → 11.8 ms (+25.1 %)" cells broke into "(+25.1" and "%)" on a line of their own).
    written = tmp_path / "diff.txt"
    assert run("diff", base, slower, "-o", written).exit_code == 0
    for text in (written.read_text(), run("diff", base, slower).output):
        rows = [line for line in text.splitlines() if line.startswith("│")]
        assert len(rows) > 10 and all("→" in row for row in rows), text


def test_diff_on_a_narrow_terminal_puts_base_new_and_change_in_columns(base, slower):
    # At 80 columns the classes' four "base → new (change)" cells each folded over 3-4 lines; there
    # the diff lays a record out as a line of names, then a line per metric.
    from rich.console import Console

    from profkit.cli.diff import compute_diff, render_text

    console = Console(width=80, record=True, color_system=None)
    render_text(compute_diff(str(base), str(slower)), console, 15)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    assert ["contraction", "", "", "", "changed"] in cells
    assert ["time", "4 ms", "4.8 ms", "+20.0 %", ""] in cells  # the GEMM class: 1.0 -> 1.2 ms a step
    assert ["kernel time", "4.8 ms → 5.6 ms (+16.7 %)"] in cells  # one metric per line: as it was
    wide = Console(width=200, record=True, color_system=None)
    render_text(compute_diff(str(base), str(slower)), wide, 15)
    assert "4 ms → 4.8 ms (+20.0 %)" in wide.export_text()  # where they fit, one line per record


def test_a_share_changes_in_points_a_time_relatively(base, slower, tmp_path):
    # contraction's share of the time grows from 4.0 / 4.8 ms to 4.8 / 5.6 ms: +2.4 points, which
    # as a relative change (+2.9 %) would read as if the share itself had moved by that much
    document = json.loads(run("diff", base, slower, "--format", "json").stdout)
    contraction = {r["category"]: r for r in document["sections"]["categories"]["rows"]}["contraction"]
    assert contraction["base_time_share"] == pytest.approx(4.0 / 4.8)
    assert contraction["new_time_share"] == pytest.approx(4.8 / 5.6)
    points = f"{100 * (4.8 / 5.6 - 4.0 / 4.8):+.1f} pt"
    relative = f"{100 * (4.8 / 5.6) / (4.0 / 4.8) - 100:+.1f} %"
    assert points == "+2.4 pt" and relative == "+2.9 %"
    markdown = run("diff", base, slower, "--format", "markdown").output
    row = next(line for line in markdown.splitlines() if line.startswith("| contraction"))
    assert f"83.3 % → 85.7 % ({points})" in row and relative not in row
    assert "(+20.0 %)" in row  # the time itself: relative
    page = tmp_path / "diff.html"
    assert run("diff", base, slower, "--format", "html", "-o", page).exit_code == 0
    html = page.read_text()
    assert ">change time share</th>" in html and points in html


def test_diff_reports_appearing_and_vanishing_kernels(tmp_path, base):
    other = make_trace(tmp_path / "other.parquet")
    trace = profkit.load(other)
    events = trace.events.copy()
    events["name"] = events["name"].astype(str).replace({"relu_kernel": "fused_relu_kernel"})
    from profkit.trace.schema import ARROW_SCHEMA
    import pyarrow as pa

    table = pa.Table.from_pandas(events[[f.name for f in ARROW_SCHEMA]], schema=ARROW_SCHEMA, preserve_index=False)
    renamed = write_trace(tmp_path / "renamed.parquet", table, trace.metadata)
    document = json.loads(run("diff", base, renamed, "--format", "json").stdout)
    assert [r["name"] for r in document["kernels_appeared"]] == ["fused_relu_kernel"]
    assert [r["name"] for r in document["kernels_vanished"]] == ["relu_kernel"]
    assert document["kernel_counts"] == {"matched": 1, "appeared": 1, "vanished": 1}


def test_diff_across_devices_matches_ops_by_name_and_shapes(tmp_path):
    traces = []
    for name in ("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz", "mi300_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"):
        imported = read_kineto(shared_trace(name), progress=False)
        traces.append(write_trace(tmp_path / f"{name}.parquet", imported.table, imported.metadata))
    document = json.loads(run("diff", *traces, "--format", "json").stdout)
    assert document["cross_device"] is True
    assert document["base"]["device"] == "NVIDIA H100 80GB HBM3"
    assert document["new"]["device"] == "AMD Instinct MI300X VF"
    ops = {(r["name"], r["input_shapes"]): r for r in document["ops"]}
    # the same model: the MLP gate and up projections (1024 -> 2816), 2 per layer x 24 layers = 48 on both
    mm = ops[("aten::mm", "[[8944,1024],[1024,2816]]")]
    assert mm["base_count"] == mm["new_count"] == 48 and mm["status"] == "changed"
    assert mm["base_gpu_time_ns"] > 0 and mm["new_gpu_time_ns"] > 0
    # no GEMM kernel name is shared by cuBLAS (sm90_xmma...) and hipBLASLt (Cijk_...)
    assert document["kernel_counts"]["appeared"] > 0 and document["kernel_counts"]["vanished"] > 0
    assert not any("gemm" in r["name"] for r in document["kernels"] if r["status"] in ("same", "changed"))


def test_compare_and_generic_sections():
    import pandas as pd

    base = pd.DataFrame({"class": ["a", "b"], "time_ns": [100, 50]})
    new = pd.DataFrame({"class": ["a", "c"], "time_ns": [150, 10]})
    table = compare(base, new, ["class"], ["time_ns"]).set_index("class")
    assert table.loc["a", "change_time_ns"] == pytest.approx(0.5) and table.loc["a", "status"] == "changed"
    assert table.loc["b", "status"] == "vanished" and table.loc["c", "status"] == "appeared"
    # a section other engineers add (here: per-class energy) is compared without code changes
    sections = diff_sections(
        {"energy": {"total_j": 10.0}, "categories": [{"class": "contraction", "time_ns": 4, "energy_j": 2.0}]},
        {"energy": {"total_j": 12.0}, "categories": [{"class": "contraction", "time_ns": 4, "energy_j": 3.0}]},
    )
    assert sections["energy"]["rows"] == [{"metric": "total_j", "base": 10.0, "new": 12.0, "delta": 2.0,
                                           "change": pytest.approx(0.2)}]
    row = sections["categories"]["rows"][0]
    assert row["change_energy_j"] == pytest.approx(0.5) and row["change_time_ns"] == 0


# ---------------------------------------------------------------- check


def test_check_slower_kernel_fails_at_5_and_passes_at_30(base, slower):
    # GPU busy per step: 1.0 + 0.2 = 1.2 ms -> 1.2 + 0.2 = 1.4 ms, +16.7 %
    failed = run("check", slower, "--baseline", base, "--max-time-regression", "5%")
    assert failed.exit_code == 1, failed.output
    assert "FAIL" in failed.output and "+16.7 %" in failed.output
    assert "budgets exceeded: time +16.7 % > 5 %" in failed.stderr
    passed = run("check", slower, "--baseline", base, "--max-time-regression", "30%")
    assert passed.exit_code == 0, passed.output
    assert "median of 4 steps" in passed.output


def test_check_default_budget_and_identical_traces(base):
    result = run("check", base, "--baseline", base)
    assert result.exit_code == 0 and "within budget" in result.output


def test_one_slow_step_does_not_fail_the_median(tmp_path, base):
    outlier = make_trace(tmp_path / "outlier.parquet", gemm_ns=[1_000_000, 1_000_000, 3_000_000, 1_000_000])
    assert run("check", outlier, "--baseline", base, "--max-time-regression", "5%").exit_code == 0


def test_one_slow_step_does_not_fail_a_class_budget_either(tmp_path, base):
    # the GEMM (contraction) 3 ms in one step of four: its mean per step would grow by 50 %
    outlier = make_trace(tmp_path / "outlier.parquet", gemm_ns=[1_000_000, 1_000_000, 3_000_000, 1_000_000])
    result = run("check", outlier, "--baseline", base, "--max-class-regression", "contraction=5%",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)["budgets"][0]
    assert verdict["base"] == verdict["new"] == 1_000_000  # the median step's GEMM
    assert verdict["new_basis"] == "median of 4 steps"


def test_phase_class_and_energy_budgets(tmp_path, base, slower):
    # decode pass 0.3-2.0 ms holds both kernels: busy 1.2 ms -> 1.4 ms (+16.7 %)
    phase = run("check", slower, "--baseline", base, "--max-phase-regression", "decode=10%", "--format", "json")
    assert phase.exit_code == 1
    verdict = json.loads(phase.stdout)["budgets"][0]
    assert verdict["budget"] == "time of phase decode" and verdict["change"] == pytest.approx(1 / 6)
    # contraction = the GEMM's time: 1.0 -> 1.2 ms per step (+20 %); element-wise unchanged
    assert run("check", slower, "--baseline", base, "--max-class-regression", "contraction=25%").exit_code == 0
    assert run("check", slower, "--baseline", base, "--max-class-regression", "contraction=15%").exit_code == 1
    assert run("check", slower, "--baseline", base, "--max-class-regression", "elementwise=0%").exit_code == 0
    # 300 W -> 360 W at the same step length: +20 % energy per step
    hungrier = make_trace(tmp_path / "hungrier.parquet", power_w=360.0)
    assert run("check", hungrier, "--baseline", base, "--max-energy-regression", "5%").exit_code == 1
    assert run("check", hungrier, "--baseline", base, "--max-energy-regression", "25%").exit_code == 0


def test_a_phase_the_report_finds_is_a_phase_a_budget_can_name(tmp_path):
    # No decode marks: the decode passes are vLLM's step annotations (0.9-1.3 ms of each step), which the
    # report finds; check once said "no phase 'decode'". Each pass's host range ends before the relu
    # kernel it launched (1.6-1.8 ms): as in the report, the pass lasts until that work ends, 0.9-1.8 ms,
    # and holds the GEMM's tail (0.4-1.4 ms, or 1.6 ms when 20 % slower) and the relu: 0.7 -> 0.9 ms.
    base = make_trace(tmp_path / "base.parquet", decode_from="vllm")
    slower = make_trace(tmp_path / "slower.parquet", decode_from="vllm", gemm_ns=1_200_000)
    report = json.loads(run("report", base, "--format", "json").stdout)
    assert [p["count"] for p in report["phases"] if p["phase"] == "decode"] == [4]
    result = run("check", slower, "--baseline", base, "--max-phase-regression", "decode=20%", "--format", "json")
    verdict = json.loads(result.stdout)["budgets"][0]
    assert (verdict["base"], verdict["new"]) == (700_000, 900_000)
    assert verdict["base_basis"] == "median of 4 decode passes" and result.exit_code == 1


def test_class_budgets_classify_each_trace_once(base, slower, monkeypatch):
    import profkit.analyzers.check as check_module

    calls = []
    classify = check_module.classify_table
    monkeypatch.setattr(check_module, "classify_table", lambda events: calls.append(1) or classify(events))
    budgets = [Budget("time", 0.1, "class", name) for name in ("contraction", "elementwise", "memory", "other")]
    verdicts = check(profkit.load(base).events, profkit.load(slower).events, budgets)
    assert [round(v.change, 3) for v in verdicts[:2]] == [0.2, 0.0] and len(calls) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-time-regression", "fast"], "not a percentage"),
        (["--max-phase-regression", "prefill=5%"], "no phase 'prefill'"),
        (["--max-phase-regression", "decode"], "NAME=PERCENT"),
        (["--max-class-regression", "contration=5%"], "unknown class 'contration'"),
    ],
)
def test_check_bad_input_exits_2(base, args, message):
    result = run("check", base, "--baseline", base, *args)
    assert result.exit_code == 2 and message in result.output + result.stderr


def test_check_missing_baseline_exits_2(base, tmp_path):
    result = run("check", base, "--baseline", tmp_path / "nope.parquet")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no such file" in result.stderr


def test_check_accepts_chrome_json_directly(tmp_path):
    path = shared_trace("benchmark_result_2869224_1695835535_trace.json.gz")
    result = run("check", path, "--baseline", path)
    assert result.exit_code == 0 and "total" in result.output  # no ProfilerStep: whole-trace busy time


def test_budget_parsing_and_energy_without_samples(base):
    assert parse_limit("5%") == pytest.approx(0.05) and parse_limit("12.5") == pytest.approx(0.125)
    assert parse_scoped("decode=10%") == ("decode", pytest.approx(0.10))
    events = profkit.load(base).events.assign(rank=0)
    no_samples = events[events["kind"] != "sample"]
    with pytest.raises(CheckInputError, match="no power or energy samples"):
        check(no_samples, no_samples, [Budget("energy", 0.05)])


@pytest.mark.parametrize("sample", ["tiny_transformer_nvidia_h200.parquet", "tiny_transformer_cpu.parquet"])
def test_class_table_is_the_reports_class_time(sample):
    # diff's class table and check's class budgets count class time as the report does: a kernel in
    # its unit's class (a bias-add kernel inside aten::linear is contraction time), not its launching op's
    from pathlib import Path

    from profkit.analyzers.diff import class_table
    from profkit.report import build_report

    trace = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / sample)
    table = class_table(trace.events).set_index("class")
    report = {c["category"]: c["time_ns"] for c in build_report([trace])["categories"] if c["time_ns"]}
    assert table["time_ns"].to_dict() == report


def test_a_budget_from_nothing_says_so(tmp_path, base):
    # A class with no time in the baseline and some now is a regression; the error line says from what.
    result = run("check", base, "--baseline", base, "--max-class-regression", "memory=5%")
    assert result.exit_code == 0  # none in either: no change
    from profkit.analyzers.check import Budget, Measurement, Verdict
    from profkit.cli.check import _failure

    verdict = Verdict(Budget("time", 0.05, "class", "memory"), Measurement(0.0, "total"), Measurement(2e6, "total"))
    assert not verdict.ok and _failure(verdict) == "time of class memory 2 ms where the baseline has none"


def test_check_per_step_leaves_out_the_step_that_began_with_the_recording():
    # Two steps: step 1 opened with the recording (its window holds 50 ms of start-up work), step 2 is
    # the 1 ms iteration. The median of two would be their mean; the figure is step 2's.
    import pandas as pd

    from profkit.analyzers.check import Budget, measure, step_windows
    from profkit.trace.build import build_events

    t0 = 1_700_000_000_000_000_000
    rows = [
        {"kind": "phase", "name": "train_step", "start_ns": t0, "duration_ns": 60_000_000,
         "extra": json.dumps({"step": 1, "source": "optimizer"})},
        {"kind": "phase", "name": "train_step", "start_ns": t0 + 60_000_000, "duration_ns": 2_000_000,
         "extra": json.dumps({"step": 2, "source": "optimizer"})},
        {"kind": "cpu_op", "name": "aten::mm", "start_ns": t0 + 1_000_000, "duration_ns": 50_000_000},
        {"kind": "cpu_op", "name": "aten::mm", "start_ns": t0 + 60_500_000, "duration_ns": 1_000_000},
    ]
    raw = pd.DataFrame(rows)
    raw["device_type"], raw["device_index"], raw["process_id"], raw["thread_id"] = "cpu", -1, 1, 1
    events = build_events(raw).to_pandas()
    assert len(step_windows(events)[0]) == 1 and len(step_windows(events, steady=False)[0]) == 2
    figure = measure(events, Budget("time", 0.05), per_step=True)
    assert figure.value == 1_000_000 and figure.basis == "median of 1 step"


def _two_ranks(folder, **options):
    """A 2-rank job, each rank the synthetic trace (both sampled the one GPU, same UUID: 300 W once)."""
    folder.mkdir()
    for rank in (0, 1):
        make_trace(folder / f"job.rank{rank}.parquet", rank=rank, gpu_uuid="GPU-0000", **options)
    return folder


def test_a_job_of_two_ranks_checks_per_rank_step_against_one_rank(tmp_path, base):
    # Each rank does one rank's work per step: 1.0 ms GEMM + 0.2 ms relu on its GPU. Against the one-rank
    # trace the job's step time is unchanged (once each window summed both ranks' work: +100 %), and the
    # median is over 4 steps × 2 ranks, as the report counts them.
    job = _two_ranks(tmp_path / "job")
    result = run("check", job, "--baseline", base, "--max-time-regression", "1%",
                 "--max-class-regression", "contraction=1%", "--format", "json")
    assert result.exit_code == 0, result.output
    time, contraction = json.loads(result.stdout)["budgets"]
    assert time["base"] == time["new"] == 1_200_000 and contraction["new"] == 1_000_000
    assert time["new_basis"] == "median of 4 steps × 2 ranks" and time["base_basis"] == "median of 4 steps"
    # Rank 1's GEMM 50 % slower (0.4-1.9 ms, over its relu's 1.6-1.8 ms: busy 1.5 ms): half the windows
    # hold 1.2 ms, half 1.5 ms, the median between them.
    folder = tmp_path / "uneven"
    folder.mkdir()
    make_trace(folder / "job.rank0.parquet", rank=0)
    make_trace(folder / "job.rank1.parquet", rank=1, gemm_ns=1_500_000)
    uneven = json.loads(run("check", folder, "--baseline", base, "--max-time-regression", "50%",
                            "--format", "json").stdout)["budgets"][0]
    assert uneven["new"] == pytest.approx((1_200_000 + 1_500_000) / 2)


def test_check_counts_a_gpu_two_ranks_sampled_once_as_the_report_does(tmp_path, base):
    job = _two_ranks(tmp_path / "job")
    report = json.loads(run("report", job, "--format", "json").stdout)["energy"]
    alone = json.loads(run("report", base, "--format", "json").stdout)["energy"]
    assert report["total_j"] == pytest.approx(alone["total_j"])  # the report counts the GPU once
    # Per step: the one GPU's 300 W over each step, against the one-rank trace: no change (once +100 %).
    result = run("check", job, "--baseline", base, "--max-energy-regression", "1%", "--format", "json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)["budgets"][0]
    assert verdict["new"] == pytest.approx(verdict["base"]) and verdict["base"] > 0
