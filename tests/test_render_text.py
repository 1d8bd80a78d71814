"""The terminal renderings print what the trace holds as written: names and commands are data, not
rich markup (a C++ kernel name may hold "[with T = float]", a command "[/]")."""

from __future__ import annotations

import importlib.metadata


from profkit.cli.main import cli
from profkit.report.kernel_names import short_kernel_names

from synthetic_traces import make_trace
from conftest import cli_runner

KERNEL = "gemm_kernel [/] [bold]x[/bold] [with T = float]"
COMMAND = ["python", "-c", "import torch; print(1)", "--tags", "[red]", "[/]"]


def run(*args) -> object:
    return cli_runner().invoke(cli, list(map(str, args)), env={"COLUMNS": "200"})


def test_report_prints_bracketed_names_and_commands_as_written(tmp_path):
    path = make_trace(tmp_path / "t.parquet", gemm_kernel=KERNEL, command=COMMAND)
    result = run("report", path)
    assert result.exit_code == 0, result.output
    # as a shell would take it back: the argument with spaces quoted
    assert "python -c 'import torch; print(1)' --tags '[red]' '[/]'" in result.output
    # twice: the roofline's top kernels and the top kernels by time
    assert result.output.count(KERNEL) == 2, result.output


def test_diff_prints_bracketed_names_as_written(tmp_path):
    base = make_trace(tmp_path / "base.parquet")
    new = make_trace(tmp_path / "new.parquet", gemm_kernel=KERNEL)
    result = run("diff", base, new)
    assert result.exit_code == 0, result.output
    assert KERNEL in result.output


def test_short_names_that_coincide_are_told_apart():
    names = [
        "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor"
        "<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> > >(int)",
        "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor"
        "<float, float, float, at::native::binary_internal::MulFunctor<float> > >(int)",
        "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x64_32x6_nt_align1>(cutlass_80_tensorop_s1688gemm_"
        "128x64_32x6_nt_align1::Params)",
        "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x128_16x4_nt_align1>(cutlass_80_tensorop_s1688gemm_"
        "128x128_16x4_nt_align1::Params)",
        "void relu_kernel<float>(float*)",
        "void relu_kernel<float>(float*, int)",  # same dtype, same first argument: numbered
        "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t",
    ]
    shorts = short_kernel_names(names, width=70)
    assert shorts[:2] == ["MulFunctor in elementwise_kernel [bf16]", "MulFunctor in elementwise_kernel [fp32]"]
    assert shorts[2:4] == ["cutlass::Kernel [cutlass_80_tensorop_s1688gemm_128x64_32x6_nt_align1]",
                           "cutlass::Kernel [cutlass_80_tensorop_s1688gemm_128x128_16x4_nt_align1]"]
    assert shorts[4:6] == ["relu_kernel [#1]", "relu_kernel [#2]"]  # (the same template arguments: numbered)
    assert shorts[6] == "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t"  # alone: no tag
    # one name twice (two rows: the kernel ran for two classes of op) is one name: no tag
    # (cut in the middle to the default 34 characters: the variant is often the name's end)
    nccl = "ncclKernel_SendRecv_…LE_Sum_int8_t"
    assert short_kernel_names([names[6], names[4], names[6]]) == [nccl, "relu_kernel", nccl]
    fft = ["void fft2d_r2c_32x32<float, false, 0u, false>(float2*, int)", "void fft2d_r2c_32x32<float, false, 5u, true>(float2*, int)"]
    assert short_kernel_names(fft, 70) == ["fft2d_r2c_32x32 [0u, false]", "fft2d_r2c_32x32 [5u, true]"]
    # two names that differ only at their end stay apart when cut to the column
    split = ["void split_embedding_backward_codegen_rowwise_adagrad_unweighted_kernel_cta_per_row_1<float>(int)",
             "void split_embedding_backward_codegen_rowwise_adagrad_unweighted_kernel_warp_per_row_1<float>(int)"]
    cut = short_kernel_names(split, width=60)
    assert [len(text) for text in cut] == [60, 60] and cut[0].endswith("cta_per_row_1") and cut[1].endswith("warp_per_row_1")
    narrow = short_kernel_names(names[2:4], width=40)  # cut the name, keep the tag
    assert all(len(text) <= 40 for text in narrow) and len(set(narrow)) == 2
    # two hipBLASLt GEMMs (the MI300X sample) whose names differ in the middle, where the cut falls:
    # cut around the difference instead, the macro tile shown
    gemms = [f"Cijk_Alik_Bljk_B_BS_BH_Bias_HA_S_SAV_UserArgs_MT{tile}_MI16x16x1_SN_LDSB1_AFC1_AFEM1_AFEM1_ASEM1_"
             "CLR1_CADS0_DTVA0_DTVB0_EPS0_FDSI0_GRPM1_GSU1_GSUAMB_GLS0_ISA942_IU1_K1_LBSPPA128_LBSPPB128_LBSPPM0_"
             "LPA16_LPB16_LPM0_LRVW8_LWPMn1_MIAV1_MIWT4_4_MO40_NTn1_NTA0_NTB0_NTC0_NTD4_NEPBS16_NLCA1_NLCB1_ONLL1_"
             "WSGRA0_WSGRB0_WS64_WG32_8_1" for tile in ("256x128x64", "128x224x64")]
    apart = short_kernel_names(gemms, width=70)
    assert len(set(apart)) == 2 and all(len(text) <= 70 for text in apart)
    assert "MT256x128x64" in apart[0] and "MT128x224x64" in apart[1] and apart[0].startswith("Cijk_Alik_Bljk")


def test_diff_markdown_keeps_names_literal():
    # In a pull-request comment "<float>" would be an HTML tag GitHub drops, and "|" would end the cell;
    # kernel names read short (as in the report), op names and shapes as they are, in code spans.
    from profkit.cli.diff import render_markdown

    op = {"name": "custom::scale<float>|x", "input_shapes": "[[`2`]]", "base_gpu_time_ns": 1, "new_gpu_time_ns": 2,
          "change_gpu_time_ns": 1.0, "status": "changed"}
    kernel = {"name": "void vectorized_kernel<MulFunctor<float> >(int)", "kind": "kernel", "base_time_ns": 0,
              "new_time_ns": 4, "change_time_ns": None, "status": "appeared"}
    document = {"base": {"label": "a"}, "new": {"label": "b"}, "sections": {}, "classes": [],
                "ops": [op], "op_metric": "gpu_time_ns", "ops_matched": 1, "ops_total": 1, "kernels": [kernel],
                "kernels_appeared": [kernel], "kernels_vanished": [],
                "kernel_counts": {"matched": 0, "appeared": 1, "vanished": 0}}
    markdown = render_markdown(document, top=10)
    assert "| `custom::scale<float>\\|x` | ``[[`2`]]`` |" in markdown
    assert "| `MulFunctor in vectorized_kernel` |" in markdown


def test_a_command_with_a_newline_prints_on_one_line(tmp_path):
    path = make_trace(tmp_path / "t.parquet", command=["python", "-c", "import torch\nprint(1)"])
    result = run("report", path)
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "profkit report · python -c 'import torch\\nprint(1)'"


def test_kernels_are_listed_by_time_and_ops_by_self_time(tmp_path):
    # a kernel has no child work: "self time" is for ops, whose children's time is taken out
    result = run("report", make_trace(tmp_path / "t.parquet"))
    lines = result.output.splitlines()
    kernels = lines.index(next(line for line in lines if line.strip() == "Top GPU kernels"))
    ops = lines.index(next(line for line in lines if line.startswith("Top ops by self time")))
    kernel_header = next(line for line in lines[kernels + 1:] if "name" in line)
    op_header = next(line for line in lines[ops + 1:] if "name" in line)
    assert "time" in kernel_header and "self time" not in kernel_header
    assert "self time" in op_header


def test_cpu_idle_covered_by_python_frames_says_so():
    # on a CPU trace the ops are the "device": what covers their idle time is Python or annotations
    from profkit.report.format import idle_cause_label

    assert idle_cause_label("host_ops", "cpu") == "Python or annotations"
    assert idle_cause_label("host_ops", "gpu") == "host ops"
    assert idle_cause_label("no_host_activity", "cpu") == "no host activity"


RICH_15 = int(importlib.metadata.version("rich").split(".")[0]) >= 15


def test_phase_columns_keep_a_cell_on_one_line_where_the_console_has_room():
    # Three phases at 80 columns: "contraction 46.0 %" once wrapped its "%" onto a line of its own.
    # On a console too narrow for that, every phase still shows (a column too wide to fit is dropped).
    from rich.console import Console

    from profkit.report.sections.phases import _render_phases

    def record(phase, share):
        return {"phase": phase, "count": 2, "time_ns": 12_500_000, "host_time_ns": None, "device_time_ns": None,
                "tokens": 128, "tokens_per_s": 10_300.0, "batch_size": 2.0, "mean_pass_ns": 6_230_000.0,
                "arithmetic_intensity": 5.62, "bound": "compute", "flop_fraction": 0.167, "bandwidth_fraction": 0.148,
                "categories": [{"category": "contraction", "time_share": share}], "energy_j": None,
                "avg_power_w": None, "j_per_token": None, "uncertain": False}

    records = [record("prefill", 0.452), record("decode", 0.46), record("generate", 0.354)]
    for width in (80, 60):
        console = Console(width=width, record=True, color_system=None)
        _render_phases(records, console)
        text = console.export_text()
        assert all(name in text for name in ("prefill", "decode", "generate")), text
        # (rich before 15 spaces the columns two characters wider: at 80 the cells wrap there, all shown)
        assert ("contraction 46.0 %" in text) == (width == 80 and RICH_15), text


def test_a_narrow_console_drops_whole_columns_instead_of_cutting_figures(tmp_path):
    # At 64 columns the class table showed "99.…" for every figure and the top-units table lost its
    # bound column's end; now the least read columns are left out and the rest shown whole.
    from rich.console import Console

    import profkit
    from profkit.report import build_report
    from profkit.report.build import render_terminal

    document = build_report([profkit.load(make_trace(tmp_path / "t.parquet"))])
    bounds = ("memory", "compute", "latency", "unknown")
    for width in (100, 64, 50):
        console = Console(width=width, record=True, color_system=None)
        render_terminal(document, console)
        lines = console.export_text().splitlines()

        def rows_of(title: str) -> tuple[str, list[str]]:  # (header line, body lines) of a table
            start = next(i for i, line in enumerate(lines) if line.startswith(title))
            body = []
            for line in lines[start + 4:]:
                if not line.strip():
                    break
                body.append(line)
            return lines[start + 2], body

        class_header, classes = rows_of("Where the time goes")
        _, units = rows_of("Top GPU kernels")
        assert classes and units, "\n".join(lines)
        for line in classes + units:
            assert "…" not in line.split()[1:] and line.split()[-1] in bounds, (width, line)  # whole, to the end
        assert ("MUE" in class_header) == (width == 100)
