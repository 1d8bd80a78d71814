"""Operator classes: every rule of the table, shadowing, real kernel names, the H100 trace."""

from __future__ import annotations

import pytest

from profkit.analyzers import classes
from profkit.analyzers.casefold import line_form
from profkit.analyzers.classes import OpClass, Tier, classify_name, classify_names, rules

from conftest import shared_trace

C, N, E, M, X, O = (
    OpClass.CONTRACTION, OpClass.NORMALIZATION, OpClass.ELEMENTWISE, OpClass.MEMORY, OpClass.COMMUNICATION, OpClass.OTHER
)


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.rule_id[:80])
def test_each_rule_matches_its_own_example_first(rule):
    # No row is shadowed: the rule's example lands on that very rule, not an earlier one.
    match = classify_name(rule.example)
    assert match.rule_id == rule.rule_id
    if rule.derive is None:
        assert match.op_class is rule.op_class
        assert match.fused == rule.fused


def test_tiers_come_in_order():
    tiers = [r.tier for r in rules()]
    order = [Tier.OP_EXACT, Tier.OP_PATTERN, Tier.KERNEL_PATTERN]
    assert [order.index(t) for t in tiers] == sorted(order.index(t) for t in tiers)


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="twice"):
        classes.exact(E, "aten::add")
    with pytest.raises(ValueError, match="twice"):
        classes.kernel_pattern(r"(?i)nccl|rccl", X, "ncclKernel")
    with pytest.raises(ValueError, match="before kernel-name"):
        classes.op_pattern(r"^never::", O, "never::x")


# Real names (most from ../shared/traces and torch 2.13 CPU traces), one per case the table must get right.
CASES = [
    # op names
    ("aten::linear", C, False), ("aten::addmm", C, False), ("aten::bmm", C, False), ("aten::matmul", C, False),
    ("aten::convolution_backward", C, False), ("aten::_scaled_dot_product_flash_attention", C, True),
    ("aten::_flash_attention_backward", C, True), ("aten::_softmax", N, False),
    ("aten::native_layer_norm_backward", N, False), ("aten::sum", N, False), ("aten::gelu", E, False),
    ("aten::native_dropout", E, False), ("aten::add_", E, False), ("aten::copy_", M, False), ("aten::view", M, False),
    ("aten::empty_strided", M, False), ("c10d::allreduce_", X, False), ("record_param_comms", X, False),
    ("aten::_foreach_mul_", E, False), ("aten::max_pool2d_with_indices", N, False), ("aten::topk", O, False),
    # derived: backward nodes take the forward op's class, in-place ops the out-of-place one's
    ("autograd::engine::evaluate_function: AddmmBackward0", C, False), ("SoftmaxBackward0", N, False),
    ("autograd::engine::evaluate_function: GeluBackward0", E, False), ("TBackward0", M, False),
    ("UnsafeViewBackward0", M, False), ("ScaledDotProductFlashAttentionForCpuBackward0", C, True),
    ("aten::clamp_min_", E, False), ("aten::logical_and_", E, False),
    ("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", E, False),
    # CUDA library kernels
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas", C, False),
    ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTT", C, False),
    ("ampere_sgemm_128x64_nn", C, False),
    ("void cutlass::Kernel2<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>(cutlass_80_simt_sgemm_128x32_8x5_nn_align1::Params)", C, False),
    ("void splitKreduce_kernel<float, float, float, float, true, false, false>(cublasSplitKParams<float>)", C, False),
    ("std::enable_if<!(false), void>::type internal::gemvx::kernel<int, int, float, float, float, float, false, true>", C, False),
    ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16_stage4", C, False),
    ("cudnn_ampere_scudnn_128x64_relu_xregs_large_nn_v1", C, False),
    ("void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, cutlass::bfloat16_t> >(pytorch_flash::Flash_fwd_params)", C, True),
    ("fmha_cutlassF_f16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::half_t>::Params)", C, True),
    ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x64x64_4x1x1_kernel0_0", C, True),
    ("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)", X, False),
    ("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", X, False),
    ("Memcpy HtoD (Pageable -> Device)", M, False), ("Memset (Device)", M, False),
    ("void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true, (cudnnKernelDataType_t)2>(cudnn::ops::nchw2nhwc_params_t<float>, float const*, float*)", M, False),
    ("void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#12}::operator()() const::{lambda(c10::BFloat16)#1}> >(int, at::native::gpu_kernel_impl_nocast)", M, False),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)", M, False),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::masked_fill_kernel(at::TensorIterator&, c10::Scalar const&)::{lambda()#1}>(int)", E, False),
    ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>(int, float, float const*, float const*, float const*, float*, float*, float*)", N, False),
    ("void (anonymous namespace)::softmax_warp_forward<float, float, float, 1, false, false>(float*, float const*, int, int, int, bool const*, int, bool)", N, False),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4> >(at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4>)", N, False),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)", E, False),
    ("void at::native::(anonymous namespace)::fused_dropout_kernel_vec<float, float, unsigned int, 1, 4, bool>(at::cuda::detail::TensorInfo<float, unsigned int>)", E, False),
    # an fbgemm kernel is not a GEMM because its namespace says "fbgemm"
    ("void at::native::vectorized_elementwise_kernel<4, fbgemm_gpu::_float_to_hfp8_gpu(at::Tensor const&, long, long, double)::{lambda(float)#1}, at::detail::Array<char*, 2> >(int)", E, False),
    # torch.compile (Inductor) Triton kernels
    ("triton_poi_fused_add_mul_0", E, True), ("triton_per_fused__softmax_0", N, True),
    ("triton_red_fused_native_layer_norm_1", N, True), ("triton_tem_fused_addmm_0", C, True),
    ("triton_for_fused_2", E, True),
    # ROCm: rocBLAS/hipBLASLt (Tensile Cijk_), CK, MIOpen, flash attention, copies
    ("Cijk_Alik_Bljk_B_BS_BH_Bias_HA_S_SAV_UserArgs_MT256x128x64_MI16x16x1_SN_LDSB1_AFC1_AFEM1", C, False),
    ("void ck::kernel_gemm_xdl_cshuffle_v3<ck::GridwiseGemm_xdl_cshuffle_v3<ck::tensor_layout::gemm::RowMajor> >(ck::Argument)", C, False),
    ("igemm_fwd_gtc_gfx940_nhwc_bf16_bx0_ex1_bt256x128x32", C, False),
    ("MIOpenConvUni", C, False), ("naive_conv_fwd_nchw_float_double_float", C, False),
    ("MIOpenBatchNormFwdTrainSpatial", N, False),
    ("attn_fwd", C, True),
    ("__amd_rocclr_copyBuffer", M, False), ("__amd_rocclr_fillBufferAligned", M, False),
    # nothing known
    ("my_custom_kernel", O, False), ("aten::not_an_op_we_know", O, False),
    ("void cask_cudnn::computeOffsetsKernel<false, false>(cask_cudnn::ComputeOffsetsParams)", O, False),
]


@pytest.mark.parametrize("name, op_class, fused", CASES, ids=lambda v: str(v)[:60])
def test_real_names(name, op_class, fused):
    match = classify_name(name)
    assert (match.op_class, match.fused) == (op_class, fused)


def test_classify_names_classifies_each_unique_name_once():
    classify_name.cache_clear()
    names = ["aten::mm"] * 1000 + ["aten::add"] * 500 + ["triton_poi_fused_0"] * 10
    table = classify_names(names)
    assert list(table["name"]) == ["aten::mm", "aten::add", "triton_poi_fused_0"]
    assert list(table["op_class"]) == ["contraction", "elementwise", "elementwise"]
    info = classify_name.cache_info()
    assert info.misses == 3 and info.hits == 0  # three unique names, three lookups


def test_h100_qwen_gemm_and_flash_kernels_are_contraction():
    from profkit.analyzers import classify_events
    from profkit.cli.inputs import load_any

    trace = load_any([shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")])[0]
    rows = classify_events(trace.events, trace.metadata)
    kernels = rows[rows["kind"] == "kernel"]
    gemm = kernels[kernels["name"].str.contains("sm90_xmma_gemm")]
    flash = kernels[kernels["name"].str.contains("flash_fwd_kernel")]
    assert len(gemm) == 241 and len(flash) == 34  # counted in the trace file by hand (grep)
    assert (gemm["category"] == "contraction").all()
    assert (flash["category"] == "contraction").all() and flash["fused"].all()
    # GEMMs launched inside the recorded window carry their op's flop (aten::addmm/mm shapes); the 30 %
    # that ran before the first recorded CPU op have no launching op and no cost.
    launched = gemm[gemm["unit_id"].notna()]
    assert len(launched) >= 0.6 * len(gemm) and (launched["flops"] > 0).all()
    assert (launched["bound"] == "compute").mean() > 0.5
    assert not (rows["category"] == "other").any() or rows.loc[rows["category"] == "other", "time_ns"].sum() < 0.01 * rows["time_ns"].sum()


def test_ascii_forms_of_the_patterns_read_ascii_names_as_the_patterns_do():
    """classify_name searches ASCII names with each rule's re.ASCII form: same match, same span."""
    import random
    import string

    from profkit.analyzers.classes import _PATTERNS

    rng = random.Random(0)
    alphabet = string.printable + "\x1c\x1d\x1e\x1f"
    names = [rule.example for *_, rule in _PATTERNS if rule.example]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    names += [name.upper() for name in names[:200]] + ["aten::layer_norm", "void ampere_sgemm_128x64_nn",
                                                         "ncclDevKernel_AllReduce", "ROCBLAS_gemm", "LayerNorm\x1c"]
    for regex, ascii_regex, *_ in _PATTERNS:
        for name in names:
            plain, fast = regex.search(name), ascii_regex.search(name)
            assert (plain is None) == (fast is None), (regex.pattern, name)
            assert plain is None or (plain.span(), plain.groupdict()) == (fast.span(), fast.groupdict())


def _pattern_fragments(pattern: str) -> list[str]:
    """Literal runs of a pattern (its alternatives' words), to build names that do match."""
    import re

    return [f for f in re.split(r"\\.|[^A-Za-z0-9_:]+", pattern) if len(f) > 1]


def test_lowered_forms_of_the_patterns_match_ascii_names_as_the_patterns_do():
    """classify_name tests an ASCII name's lowercased form with each (?i) rule's lowered form: the
    same names match, at the same place. Names built from the patterns' own words, in mixed case."""
    import random

    from profkit.analyzers.classes import _PATTERNS

    rng = random.Random(1)
    lowered_patterns = [(regex, lowered) for regex, _, lowered, *_ in _PATTERNS if lowered is not None]
    assert len(lowered_patterns) >= 8  # the kernel tier's (?i) rules all have one
    words = [w for regex, _ in lowered_patterns for w in _pattern_fragments(regex.pattern[4:])]
    words += ["fb", "gemm", "GEMM", "Fb", "^", "[", "]", "\\", "\n", " ", "<", ">", "::", "x"]

    def mixed(word: str) -> str:
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in word)

    names = [rule.example for *_, rule in _PATTERNS]
    names += ["".join(mixed(rng.choice(words)) for _ in range(rng.randint(1, 6))) for _ in range(4000)]
    names += [name.upper() for name in names[:300]] + [name.swapcase() for name in names[:300]]
    matched = 0
    for regex, lowered in lowered_patterns:
        for name in names:
            plain, fast = regex.search(name), lowered.search(name.lower())
            assert (plain is None) == (fast is None), (regex.pattern, name)
            assert plain is None or plain.span() == fast.span()
            matched += plain is not None
    assert matched > 2000  # the names do exercise the patterns


def test_the_alternatives_of_the_patterns_match_the_names_the_patterns_match():
    """classify_name tests an ASCII name with each alternative of a rule alone: a name matches one of
    them exactly when the whole pattern finds a match in it. Names from the patterns' own words."""
    import random

    from profkit.analyzers.casefold import alternatives
    from profkit.analyzers.classes import _PATTERNS

    rng = random.Random(2)
    words = [w for regex, *_ in _PATTERNS for w in _pattern_fragments(regex.pattern)]
    words += ["fb", "gemm", "_attn_", "attn_fwd", "Memcpy", "^", "|", "[", "]", "\\", "\n", " ", "::", "_", "x"]
    names = [rule.example for *_, rule in _PATTERNS]
    names += ["".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(4000)]
    names += [name.lower() for name in names[:2000]]
    split = matched = 0
    for regex, ascii_regex, lowered, ascii_test, _ in _PATTERNS:
        assert ascii_test == alternatives(lowered or ascii_regex)
        split += len(ascii_test) > 1
        for form in (regex, ascii_regex, lowered):
            if form is None:
                continue
            parts = alternatives(form)
            for name in names:
                whole = form.search(name) is not None
                assert whole == any(part.search(name) for part in parts), (form.pattern, name)
                matched += whole
    assert split >= 8 and matched > 3000


def test_alternatives_split_at_the_top_level_only():
    import re

    from profkit.analyzers.casefold import alternatives

    def parts(pattern: str) -> list[str]:
        return [a.pattern for a in alternatives(re.compile(pattern))]

    assert parts(r"(?<!fb)gemm|^nvjet|(a|b)c|[|]x|\|y") == [r"gemm(?<!fbgemm)", "^nvjet", "(a|b)c", "[|]x", r"\|y"]
    assert parts(r"(?<=a_)b\w+|(?<!x)[y]") == [r"b(?<=a_b)\w+", "(?<!x)[y]"]  # (a class: kept as it is)
    assert parts("[]|]|q") == ["[]|]", "q"] and parts("[^]|]|q") == ["[^]|]", "q"]
    assert alternatives(re.compile("(?i)A|b"))[0].search("a")  # a flag group: kept whole
    for pattern in ("gemm", "(a)|\\1", "(?P<x>a)|(?P=x)", "(?i)A|b", "a(?#c|d)", "(?x)a | b", "(?:a|b)"):
        assert parts(pattern) == [pattern], pattern
    assert alternatives(re.compile("a|B", re.ASCII))[1].flags & re.ASCII


def test_lowered_form_declines_patterns_whose_meaning_lowering_changes():
    import re

    from profkit.analyzers.casefold import lowered_form

    assert lowered_form(re.compile(r"(?i)Gemm|nvjet")).pattern == "gemm|nvjet"
    assert lowered_form(re.compile(r"(?i)cuMemcpy[DH]to\w+$")).pattern == r"cumemcpy[dh]to\w+$"
    for pattern in (r"GEMM", r"(?i)\Wx", r"(?i)\x41", r"(?i)[A-z]", r"(?i)a(?-i:B)", r"(?i)\S", r"(?i)é"):
        assert lowered_form(re.compile(pattern)) is None, pattern


def test_a_name_may_be_fused_wherever_its_match_is_fused():
    """``may_be_fused`` False promises an unfused match: checked on every rule's example, the real names
    above and every op and kernel name of the sample traces (fused ones among them)."""
    from pathlib import Path

    import profkit

    names = {rule.example for rule in rules()} | {case[0] for case in CASES}
    for path in sorted((Path(__file__).resolve().parents[1] / "sample_traces").glob("*.parquet")):
        names |= set(profkit.load(path).events["name"].dropna().astype(str).unique())
    fused = [name for name in names if classify_name(name).fused]
    assert fused and all(classes.may_be_fused(name) for name in fused)
    assert not classes.may_be_fused("void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float> >")


def test_classified_rows_carry_their_names_rule_and_kernels_their_names_fused_flag():
    """classify_table finds the rules of kernel names whose class comes from their op only when the rule
    column is read: every row's rule is still its name's, and a kernel is fused when its name is."""
    from pathlib import Path

    import numpy as np

    import profkit
    from profkit.analyzers.classify import classify_table
    from profkit.analyzers.columns import label_codes
    from profkit.analyzers.table import EventTable

    trace = profkit.load(Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_nvidia_h200.parquet")
    rows = classify_table(EventTable.from_arrow(trace.arrow))
    names = np.asarray(rows["name"].to_numpy(), dtype=object)
    codes, labels = label_codes(rows["rule"])
    assert list(np.append(labels, None)[codes]) == [classify_name(name).rule_id for name in names]
    kernels = np.flatnonzero(rows["kind"].to_numpy() == "kernel")
    fused = rows["fused"].to_numpy(bool)
    assert all(fused[i] for i in kernels if classify_name(names[i]).fused)


def test_fused_flags_over_joined_names_equal_may_be_fused_name_by_name():
    """The scan of the names joined by newlines gives each name what ``may_be_fused`` gives it alone:
    anchors at name edges, exact names, and the name-by-name way for non-ASCII or multi-line names."""
    from pathlib import Path

    import profkit

    names = sorted({rule.example for rule in rules()} | {case[0] for case in CASES})
    names += ["attn_fwd_kernel", "xattn_fwd", "aten::mm", "aten::_scaled_dot_product_flash_attention",
              "NativeLayerNormBackward0", "void k<Attention>()", "triton_tem_fused_0", "x triton_tem_fused_0", ""]
    for path in sorted((Path(__file__).resolve().parents[1] / "sample_traces").glob("*.parquet")):
        names += sorted(set(profkit.load(path).events["name"].dropna().astype(str).unique()))
    assert classes.fused_flags(names) == [classes.may_be_fused(name) for name in names]
    odd = names[:40] + ["flash\nkernel", "noflash", "ñ_flash_kernel", "plain_kernel"]
    assert classes.fused_flags(odd) == [classes.may_be_fused(name) for name in odd]
    assert classes.fused_flags([]) == []
    assert all(pattern is not None for pattern, _ in classes._FUSED_LINE_TESTS)  # the fast way is the one taken


@pytest.mark.parametrize("pattern, expected", [
    (r"z?$", [True, True, True, True]),  # an empty match at each name's end is that name's
    (r"^q", [False, False, False, True]),  # anchored: read at the newline before the name
    (r"^$", [False, True, False, False]),  # the empty name
    (r"b", [True, False, False, False]),
])
def test_fused_flags_credit_each_match_to_its_own_name(monkeypatch, pattern, expected):
    import re

    monkeypatch.setattr(classes, "_FUSED_LINE_TESTS", [(line_form(re.compile(pattern)), False)])
    assert classes.fused_flags(["abc", "", "xz", "q"]) == expected


def test_torch_compile_work_is_its_own_class_and_carries_no_flop():
    # Dynamo traces the model with fake tensors inside "<step> (dynamo_timed)" ranges; Inductor's
    # autotuning runs benchmark kernels in them. Then the compiled graph runs: real work.
    import json

    import pandas as pd

    from profkit.analyzers import classify_events
    from profkit.trace.build import build_events

    linear = {"input_shapes": "[[64,128],[256,128],[256]]", "input_dtypes": json.dumps(["float"] * 3)}
    rows = [
        dict(kind="cpu_op", name="entire_frame_compile", start_ns=0, duration_ns=1000),
        dict(kind="cpu_op", name="bytecode_tracing (dynamo_timed)", start_ns=10, duration_ns=500),
        dict(kind="cpu_op", name="aten::linear", start_ns=20, duration_ns=400, **linear),  # a fake tensor's
        dict(kind="cpu_op", name="autotune_select_algorithm (dynamo_timed)", start_ns=600, duration_ns=300),
        dict(kind="cpu_op", name="aten::mm", start_ns=610, duration_ns=100,
             input_shapes="[[64,128],[128,256]]", input_dtypes=json.dumps(["float"] * 2)),
        dict(kind="runtime", name="cudaLaunchKernel", start_ns=620, duration_ns=10, correlation_id=1),
        dict(kind="kernel", name="sm90_xmma_gemm_f32f32_tn", start_ns=640, duration_ns=50, device_type="gpu",
             correlation_id=1, linked_correlation_id=1),
        dict(kind="cpu_op", name="Torch-Compiled Region: 0/0", start_ns=2000, duration_ns=400),
        dict(kind="cpu_op", name="aten::linear", start_ns=2010, duration_ns=300, **linear),  # the real one
        dict(kind="runtime", name="cudaLaunchKernel", start_ns=2020, duration_ns=10, correlation_id=2),
        dict(kind="kernel", name="sm90_xmma_gemm_f32f32_tn", start_ns=2040, duration_ns=80, device_type="gpu",
             correlation_id=2, linked_correlation_id=2),
    ]
    raw = pd.DataFrame(rows)
    raw["device_type"] = raw["device_type"].fillna("cpu")
    raw["device_index"] = (raw["device_type"] == "gpu").map({True: 0, False: -1}).astype("int16")
    raw["process_id"], raw["thread_id"] = 1, pd.array([1 if k != "kernel" else None for k in raw["kind"]], "Int64")
    for column in ("correlation_id", "linked_correlation_id"):
        raw[column] = raw[column].astype("Int64")
    events = build_events(raw).to_pandas()
    rows = classify_events(events, {"devices": [{"index": 0, "type": "gpu", "name": "NVIDIA H100 80GB HBM3"}]})
    by_start = rows.set_index("start_ns")
    compiling = [10, 20, 600, 610, 640]  # the ranges, the traced linear, autotuning's mm and its kernel
    assert set(by_start.loc[compiling, "category"]) == {"compile"}
    assert (by_start.loc[compiling, "flops"] == 0).all() and by_start.loc[compiling, "unit_id"].isna().all()
    # the compiled graph's linear is the unit of work, contraction, and its kernel carries its flop
    real_linear, real_kernel = by_start.loc[2010], by_start.loc[2040]
    assert real_linear["category"] == real_kernel["category"] == "contraction"
    assert real_linear["flops"] > 0 and real_kernel["flops"] == real_linear["flops"]
    # the same linear outside any compile range costs the same: the traced one was not a unit
    assert by_start.loc[2010, "unit_id"] == by_start.loc[2010, "event_id"]
    # a device-time table: compile holds the autotuning kernel's 50 ns, contraction the real 80 ns
    device = rows[rows["device_work"]].groupby("category", observed=True)["time_ns"].sum()
    assert device.to_dict() == {"contraction": 80, "compile": 50}
