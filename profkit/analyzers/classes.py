"""Operator classes: which kind of work each op and kernel is.

"Data Movement Is All You Need" (Ivanov et al., MLSys 2021) sorts transformer
work into tensor contractions, statistical normalizations and element-wise
operators; profkit adds ``memory`` (copies, layout changes, allocation),
``communication`` (collectives), ``compile`` (torch.compile's own work: Dynamo
tracing, Inductor code generation and autotuning, everything inside its
``… (dynamo_timed)`` ranges; found by nesting in classify.py, not by name) and
``other`` so that no time goes unlisted.

Classification is an ordered rule table, first match wins, in three tiers:

1. exact aten/torch op names (a dict lookup),
2. regular expressions on op names (backward nodes, families such as
   ``aten::_foreach_*``, collectives),
3. regular expressions on GPU kernel names, for kernels whose launching op is
   unknown (imported traces, torch.compile's Triton kernels, library kernels).

Every rule carries an example name; tests check each example lands on its own
rule, so no row is shadowed by an earlier pattern. A kernel that fuses several
operators (flash attention, Triton ``fused`` kernels, cuBLASLt epilogues)
takes the class of its dominant work and is flagged ``fused``.

Each unique name is classified once (``classify_names``) and mapped back.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np
import pandas as pd

from .casefold import alternatives, joined_lines, line_form, line_owner, lowered_form


class OpClass(str, enum.Enum):
    """The class of an op or kernel; the value is the name used in reports."""

    CONTRACTION = "contraction"
    NORMALIZATION = "normalization"
    ELEMENTWISE = "elementwise"
    MEMORY = "memory"
    COMMUNICATION = "communication"
    COMPILE = "compile"
    OTHER = "other"


#: Report order of the classes.
CLASS_ORDER = tuple(c.value for c in OpClass)


class Tier(str, enum.Enum):
    OP_EXACT = "op_exact"
    OP_PATTERN = "op_pattern"
    KERNEL_PATTERN = "kernel_pattern"


@dataclass(frozen=True)
class Rule:
    """One row of the table: names it matches -> class (and whether it is a fused kernel)."""

    tier: Tier
    key: str  # the exact name, or the regular expression
    op_class: OpClass
    example: str  # a real name this rule must match (tested)
    fused: bool = False
    derive: str | None = None  # a key of _DERIVE: classify a related op name instead

    @property
    def rule_id(self) -> str:
        return f"{self.tier.value}:{self.key}"


@dataclass(frozen=True)
class Match:
    op_class: OpClass
    fused: bool
    rule_id: str | None  # None: no rule matched (class OTHER)


_EXACT: dict[str, Rule] = {}
#: (regex, the same regex for ASCII names, its lowered form or None, ASCII test, rule): op tier, then
#: kernel tier, each in order. The lowered form (casefold.py) reads a lowercased ASCII name: (?i) is the
#: slow way. The ASCII test is the alternatives (casefold.py) of the lowered form, else of the ASCII
#: regex: whether an ASCII name matches, for a rule that needs no groups.
_PATTERNS: list[tuple[re.Pattern, re.Pattern, re.Pattern | None, tuple[re.Pattern, ...], Rule]] = []


def _add(rule: Rule) -> None:
    """The single way into the table; refuses a name or pattern given twice."""
    if rule.tier is Tier.OP_EXACT:
        if rule.key in _EXACT:
            raise ValueError(f"op class rule for {rule.key!r} registered twice")
        _EXACT[rule.key] = rule
        return
    if any(existing.key == rule.key and existing.tier is rule.tier for *_, existing in _PATTERNS):
        raise ValueError(f"op class pattern {rule.key!r} registered twice")
    if _PATTERNS and _tier_rank(_PATTERNS[-1][-1].tier) > _tier_rank(rule.tier):
        raise ValueError("op-name patterns must all come before kernel-name patterns")
    regex = re.compile(rule.key)
    ascii_regex, lowered = _ascii_form(regex), lowered_form(regex)
    ascii_test = alternatives(lowered or ascii_regex)
    _PATTERNS.append((regex, ascii_regex, lowered, ascii_test, rule))
    if rule.fused or rule.derive is not None:
        _FUSED_LINE_TESTS.extend((line_form(alternative), lowered is not None) for alternative in ascii_test)
    classify_name.cache_clear()
    may_be_fused.cache_clear()


#: ``may_be_fused``'s ASCII tests (the alternatives of the fused and deriving patterns) as multi-line
#: patterns over "\n" + ASCII names joined by newlines, each with whether it reads the lowered text; a
#: None pattern is one that could match across a newline (``fused_flags`` then tests name by name).
_FUSED_LINE_TESTS: list[tuple[re.Pattern | None, bool]] = []



def _ascii_form(regex: re.Pattern) -> re.Pattern:
    """The pattern under re.ASCII, which reads ASCII names the same way and several times faster
    (case folding without Unicode tables: kernel names run to thousands of characters). Only for
    ASCII patterns without \\s/\\S, the one class whose ASCII form drops ASCII characters (\\x1c-\\x1f)."""
    key = regex.pattern
    if not key.isascii() or "\\s" in key or "\\S" in key:
        return regex
    try:
        return re.compile(key, (regex.flags & ~re.UNICODE) | re.ASCII)
    except ValueError:  # an inline (?u) asks for Unicode
        return regex


def _tier_rank(tier: Tier) -> int:
    return (Tier.OP_EXACT, Tier.OP_PATTERN, Tier.KERNEL_PATTERN).index(tier)


def exact(op_class: OpClass, *names: str, fused: bool = False) -> None:
    """Tier 1: these exact op names are ``op_class`` (each name is its own rule and example)."""
    for name in names:
        _add(Rule(Tier.OP_EXACT, name, op_class, example=name, fused=fused))


def op_pattern(pattern: str, op_class: OpClass, example: str, *, fused: bool = False, derive: str | None = None) -> None:
    """Tier 2: a regular expression (``re.search``) over op names.

    With ``derive``, the pattern's ``base`` group names a related op (the
    forward op of a backward node, the out-of-place op of an in-place one)
    whose class is taken; ``op_class`` is then unused.
    """
    if derive is not None and derive not in _DERIVE:
        raise ValueError(f"unknown derive {derive!r}")
    _add(Rule(Tier.OP_PATTERN, pattern, op_class, example=example, fused=fused, derive=derive))


def kernel_pattern(pattern: str, op_class: OpClass, example: str, *, fused: bool = False) -> None:
    """Tier 3: a regular expression (``re.search``) over GPU kernel names."""
    _add(Rule(Tier.KERNEL_PATTERN, pattern, op_class, example=example, fused=fused))


def rules() -> list[Rule]:
    """The whole table in match order."""
    return list(_EXACT.values()) + [rule for *_, rule in _PATTERNS]


_UNMATCHED = Match(OpClass.OTHER, False, None)


@lru_cache(maxsize=65536)
def classify_name(name: str) -> Match:
    """Class of one op or kernel name: first matching rule, else OTHER."""
    rule = _EXACT.get(name)
    if rule is not None:
        return Match(rule.op_class, rule.fused, rule.rule_id)
    ascii_name = name.isascii()
    lower_name = name.lower() if ascii_name else None
    for regex, ascii_regex, lowered, ascii_test, rule in _PATTERNS:
        if ascii_name and rule.derive is None:  # a yes or no: each alternative alone is the fast way
            text = lower_name if lowered is not None else name
            for alternative in ascii_test:
                if alternative.search(text) is not None:
                    return Match(rule.op_class, rule.fused, rule.rule_id)
            continue
        if lowered is not None and ascii_name and lowered.search(lower_name) is None:
            continue
        found = (ascii_regex if ascii_name else regex).search(name)  # (the groups of the name itself)
        if found is None:
            continue
        if rule.derive is not None:
            related = classify_name(_DERIVE[rule.derive](found.group("base")))
            if related.rule_id is None:
                continue  # unknown related op: let later rules try
            return Match(related.op_class, related.fused, rule.rule_id)
        return Match(rule.op_class, rule.fused, rule.rule_id)
    return _UNMATCHED


@lru_cache(maxsize=65536)
def may_be_fused(name: str) -> bool:
    """Whether ``classify_name(name).fused`` can be True, tested without finding the name's rule: its
    exact rule is fused, or a fused pattern or one that takes a related op's class matches it. False:
    the name's match is not fused (the test for a kernel whose class comes from its launching op; only
    the few fused and deriving patterns are tried, not the whole table)."""
    rule = _EXACT.get(name)
    if rule is not None:
        return rule.fused
    ascii_name = name.isascii()
    text = {True: name.lower(), False: name} if ascii_name else None
    for regex, _, lowered, ascii_test, rule in _PATTERNS:
        if not rule.fused and rule.derive is None:
            continue
        if not ascii_name:
            if regex.search(name) is not None:
                return True
        elif any(alternative.search(text[lowered is not None]) is not None for alternative in ascii_test):
            return True
    return False


def fused_flags(names: list[str]) -> list[bool]:
    """``may_be_fused`` of each name, ASCII names without newlines read at once: each test scans the
    names joined by newlines (a few scans, not a few searches per name)."""
    lines = joined_lines(names)
    if lines is None or any(pattern is None for pattern, _ in _FUSED_LINE_TESTS):
        return [may_be_fused(name) for name in names]
    joined, starts = lines
    lowered = joined.lower()
    hit = np.zeros(len(names), dtype=bool)
    for pattern, reads_lowered in _FUSED_LINE_TESTS:
        anchored = pattern.pattern.startswith("\n")  # its match starts at the newline before its name
        found = [match.start() + anchored for match in pattern.finditer(lowered if reads_lowered else joined)]
        hit[line_owner(starts, found)] = True
    exact = map(_EXACT.get, names)
    return [rule.fused if rule is not None else bool(h) for rule, h in zip(exact, hit.tolist())]


def classify_names(names: Iterable[str] | pd.Series) -> pd.DataFrame:
    """Classify each unique name once; returns ``name, op_class, fused, rule`` per unique name."""
    unique = pd.unique(pd.Series(list(names) if not isinstance(names, pd.Series) else names, dtype=object).astype(str))
    matches = [classify_name(n) for n in unique]  # one call per unique name, cached
    return pd.DataFrame(
        {
            "name": unique,
            "op_class": [m.op_class.value for m in matches],
            "fused": [m.fused for m in matches],
            "rule": [m.rule_id for m in matches],
        }
    )


def _forward_op_name(node: str) -> str:
    """``NativeLayerNormBackward0``'s node part ``NativeLayerNorm`` -> ``aten::native_layer_norm``."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", node).lower()
    candidate = f"aten::{snake}"
    if candidate not in _EXACT and f"aten::_{snake}" in _EXACT:
        candidate = f"aten::_{snake}"  # UnsafeView -> aten::_unsafe_view
    return candidate


_DERIVE = {
    "backward_node": _forward_op_name,
    "inplace": lambda base: f"aten::{base}",  # aten::clamp_min_ -> aten::clamp_min
}


C, N, E, M, X, O = (
    OpClass.CONTRACTION,
    OpClass.NORMALIZATION,
    OpClass.ELEMENTWISE,
    OpClass.MEMORY,
    OpClass.COMMUNICATION,
    OpClass.OTHER,
)

# ---------------------------------------------------------------- tier 1: exact op names
exact(
    C,
    "aten::linear", "aten::mm", "aten::addmm", "aten::_addmm_activation", "aten::bmm", "aten::baddbmm",
    "aten::addbmm", "aten::matmul", "aten::einsum", "aten::tensordot", "aten::dot", "aten::vdot", "aten::mv",
    "aten::addmv", "aten::bilinear", "aten::_scaled_mm", "aten::_int_mm", "aten::mkldnn_linear",
    "aten::convolution", "aten::_convolution", "aten::conv1d", "aten::conv2d", "aten::conv3d",
    "aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d", "aten::convolution_backward",
    "aten::cudnn_convolution", "aten::cudnn_convolution_transpose", "aten::mkldnn_convolution",
    "aten::miopen_convolution", "aten::_scaled_dot_product_attention_math",
)
exact(
    C,
    "aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_flash_attention_backward", "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_efficient_attention_backward", "aten::_scaled_dot_product_cudnn_attention",
    "aten::_scaled_dot_product_cudnn_attention_backward", "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::_flash_attention_forward",
    "aten::_flash_attention_backward", "aten::_efficient_attention_forward", "aten::_efficient_attention_backward",
    fused=True,
)
exact(  # recurrent layers: gate GEMMs with their element-wise gate math fused in
    C,
    "aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu", "aten::_cudnn_rnn", "aten::_cudnn_rnn_backward",
    "aten::miopen_rnn", "aten::miopen_rnn_backward", "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward",
    fused=True,
)
exact(
    N,
    "aten::softmax", "aten::_softmax", "aten::log_softmax", "aten::_log_softmax", "aten::_softmax_backward_data",
    "aten::_log_softmax_backward_data", "aten::layer_norm", "aten::native_layer_norm",
    "aten::native_layer_norm_backward", "aten::rms_norm", "aten::_fused_rms_norm", "aten::_fused_rms_norm_backward",
    "aten::group_norm", "aten::native_group_norm", "aten::native_group_norm_backward", "aten::batch_norm",
    "aten::_batch_norm_impl_index", "aten::native_batch_norm", "aten::native_batch_norm_backward",
    "aten::_native_batch_norm_legit", "aten::_native_batch_norm_legit_no_training", "aten::cudnn_batch_norm",
    "aten::cudnn_batch_norm_backward", "aten::miopen_batch_norm", "aten::instance_norm",
    "aten::sum", "aten::mean", "aten::var", "aten::std", "aten::var_mean", "aten::std_mean", "aten::norm",
    "aten::linalg_vector_norm", "aten::amax", "aten::amin", "aten::logsumexp", "aten::prod",
    "aten::max", "aten::min", "aten::all", "aten::any", "aten::cumsum", "aten::binary_cross_entropy_with_logits",
    "aten::cross_entropy_loss", "aten::nll_loss", "aten::nll_loss_nd", "aten::nll_loss_forward",
    "aten::nll_loss_backward", "aten::mse_loss", "aten::mse_loss_backward",
)
exact(
    E,
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::neg", "aten::log2", "aten::logit", "aten::logit_backward", "aten::nan_to_num", "aten::exp", "aten::exp_", "aten::log", "aten::sqrt", "aten::rsqrt", "aten::pow",
    "aten::pow_", "aten::abs", "aten::reciprocal", "aten::square", "aten::sin", "aten::cos", "aten::erf",
    "aten::relu", "aten::relu_", "aten::gelu", "aten::gelu_", "aten::silu", "aten::silu_", "aten::sigmoid",
    "aten::tanh", "aten::hardtanh", "aten::leaky_relu", "aten::elu", "aten::softplus", "aten::mish",
    "aten::threshold", "aten::threshold_backward", "aten::gelu_backward", "aten::silu_backward",
    "aten::sigmoid_backward", "aten::tanh_backward", "aten::where", "aten::masked_fill", "aten::masked_fill_",
    "aten::clamp", "aten::clamp_", "aten::clamp_min", "aten::clamp_max", "aten::maximum", "aten::minimum",
    "aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge", "aten::logical_and",
    "aten::logical_or", "aten::logical_not", "aten::addcmul", "aten::addcmul_", "aten::addcdiv", "aten::addcdiv_",
    "aten::lerp", "aten::lerp_", "aten::dropout", "aten::native_dropout", "aten::native_dropout_backward",
    "aten::feature_dropout", "aten::_fused_dropout", "aten::_masked_scale", "aten::bernoulli", "aten::bernoulli_",
    "aten::uniform_", "aten::normal_", "aten::rand", "aten::randn", "aten::randint", "aten::rand_like",
    "aten::randn_like", "torch::autograd::AccumulateGrad",
    "aten::_transform_bias_rescale_qkv",  # nn.MultiheadAttention's inference fast path: QKV bias and scale
)
exact(
    M,
    "aten::copy_", "aten::_to_copy", "aten::to", "aten::clone", "aten::contiguous", "aten::cat", "aten::stack",
    "aten::fill_", "aten::zero_", "aten::zeros", "aten::zeros_like", "aten::ones", "aten::ones_like", "aten::full",
    "aten::full_like", "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::new_empty",
    "aten::new_zeros", "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view", "aten::t",
    "aten::transpose", "aten::permute", "aten::expand", "aten::expand_as", "aten::as_strided", "aten::slice",
    "aten::select", "aten::narrow", "aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind",
    "aten::unsqueeze", "aten::squeeze", "aten::flatten", "aten::unflatten", "aten::detach", "aten::detach_",
    "aten::alias", "aten::lift_fresh", "aten::view_as", "aten::resolve_conj", "aten::resolve_neg",
    "aten::broadcast_tensors", "aten::index_select", "aten::gather", "aten::scatter", "aten::scatter_",
    "aten::scatter_add_", "aten::index", "aten::index_put_", "aten::embedding", "aten::embedding_dense_backward",
    "aten::index_put", "aten::_index_put_impl_", "aten::repeat_interleave", "aten::repeat", "aten::arange",
    "aten::resize_", "aten::scalar_tensor", "aten::type_as", "aten::is_nonzero", "aten::result_type",
    "aten::_has_compatible_shallow_copy_type", "aten::value_selecting_reduction_backward", "detach",
    "aten::item", "aten::_local_scalar_dense", "aten::set_", "aten::pin_memory", "aten::_pin_memory",
)
# Quantized inference (torch.ao dynamic and static quantization): quantizing computes a scale and rounds
# each element, a range is a reduction (min and max), dequantizing scales back.
exact(E, "aten::quantize_per_tensor", "aten::quantize_per_tensor_dynamic", "aten::quantize_per_channel",
      "aten::dequantize", "aten::fake_quantize_per_tensor_affine", "aten::fake_quantize_per_channel_affine",
      "quantized::add", "quantized::add_relu", "quantized::mul", "quantized::mul_relu", "quantized::add_scalar",
      "quantized::mul_scalar")
exact(N, "aten::aminmax", "aten::_aminmax", "aten::_choose_qparams_per_tensor", "aten::choose_qparams_optimized",
      "quantized::layer_norm", "quantized::batch_norm2d", "quantized::batch_norm1d", "quantized::instance_norm",
      "quantized::group_norm")
exact(O, "aten::sort", "aten::topk", "aten::nonzero", "aten::unique", "aten::argmax", "aten::multinomial")
exact(X, "record_param_comms")

# ---------------------------------------------------------------- tier 2: op-name patterns
# autograd's backward nodes take the class of their forward op (AddmmBackward0 -> aten::addmm).
op_pattern(
    r"^(?:autograd::engine::evaluate_function: )?(?P<base>[A-Z][A-Za-z0-9]*?)Backward\d*$",
    O,
    "autograd::engine::evaluate_function: NativeLayerNormBackward0",
    derive="backward_node",
)
op_pattern(r"^aten::(?P<base>[a-z]\w*?)_$", O, "aten::clamp_min_", derive="inplace")
op_pattern(r"AccumulateGrad$", E, "autograd::engine::evaluate_function: torch::autograd::AccumulateGrad")
op_pattern(r"^(?:c10d|_c10d_functional|c10d_functional)::", X, "c10d::allreduce_")
op_pattern(r"^(?:nccl|gloo|mpi|rccl):", X, "nccl:all_reduce")
op_pattern(r"^aten::_foreach_", E, "aten::_foreach_add_")
op_pattern(r"^aten::_fused_(?:adam|adamw|sgd)", E, "aten::_fused_adamw_")
op_pattern(r"attention", C, "aten::_scaled_dot_product_fused_attention_overrideable", fused=True)
op_pattern(r"^aten::\w*(?:conv(?:olution)?\w*)$", C, "aten::_convolution_double_backward")
op_pattern(r"^aten::\w*(?:softmax|_norm)\w*$", N, "aten::_weight_norm_interface")
# Quantized GEMMs and convolutions (fbgemm/qnnpack/onednn: quantized::linear_dynamic, quantized::conv2d_relu...);
# their weights are packed objects whose shapes torch.profiler does not record, so they are classed, not
# costed. Packing a weight (done once) is a layout change.
op_pattern(r"^_?quantized::\w*(?:prepack|unpack)", M, "quantized::linear_prepack")
op_pattern(r"^_?quantized::(?:linear|conv|matmul|bmm)", C, "quantized::linear_dynamic")
# Pooling reduces each window (a max, or a sum then a divide): a reduction, as aten::amax or aten::mean are.
op_pattern(r"^aten::\w*pool\w*$", N, "aten::max_pool2d_with_indices")

# torch.compile's CPU kernels (Inductor's C++, recorded with TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1, which
# profkit record sets) are named after the ops they fuse, like its Triton kernels but without the per/red/poi
# kind: a reduction or normalization among them makes the kernel one; only copies and layout make it memory.
_CPP_KERNEL = r"cpp_fused_"  # (a literal start: the scans of every name joined look for it first)
op_pattern(_CPP_KERNEL + r"\w*?(?<=_)(?:_?softmax|[a-z_]*norm|sum|mean|amax|amin|var|std|logsumexp|[a-z0-9_]*pool\w*?|cumsum)_", N,
           "graph_0_cpp_fused_gelu_native_layer_norm_0", fused=True)
op_pattern(_CPP_KERNEL + r"(?:_?(?:clone|to_copy|copy|cat|stack|index|gather|scatter|embedding|permute|transpose|"
           r"view|constant_pad_nd|zeros|full|fill|slice|select|expand)_?)+\d+$", M, "cpp_fused__to_copy_clone_1", fused=True)
op_pattern(_CPP_KERNEL, E, "graph_0_cpp_fused_add_mul_threshold_backward_2", fused=True)

# ---------------------------------------------------------------- tier 3: kernel-name patterns
# Collectives first: an NCCL kernel is never anything else.
kernel_pattern(r"(?i)nccl|rccl", X, "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)")
kernel_pattern(r"^Memcpy|^Memset|__amd_rocclr_(?:copy|fill)", M, "Memcpy HtoD (Pageable -> Device)")
# Fused attention: flash (Dao, PyTorch's copy), memory-efficient (xformers/cutlass), cuDNN, ROCm CK/Triton.
kernel_pattern(
    r"(?i)flash|fmha|_attn_|^attn_(?:fwd|bwd)|attention|mha_|cutlass[FB]|sdpa",
    C,
    "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, "
    "cutlass::bfloat16_t> >(pytorch_flash::Flash_fwd_params)",
    fused=True,
)
# GEMM libraries: cuBLAS/cuBLASLt (sm90_xmma_gemm, nvjet, ampere_sgemm, gemv), CUTLASS, Tensile (rocBLAS/
# hipBLASLt Cijk_*), Composable Kernel, MIOpen igemm, torch.compile mm templates.
kernel_pattern(r"^triton_tem_", C, "triton_tem_fused_addmm_0", fused=True)
kernel_pattern(r"(?i)epilogue|splitKreduce", C, "void epilogue::impl::globalKernel<float, float, float, true, true>(int)")
kernel_pattern(
    r"(?i)(?<!fb)gemm|gemv|^nvjet|^Cijk_|rocblas|hipblaslt|cublas|wgmma|xmma",
    C,
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
)
kernel_pattern(
    r"(?i)convolve|conv\d?d|_conv_|miopen\w*conv|fprop|dgrad|wgrad|winograd|scudnn|fft2d|cudnn_infer",
    C,
    "cudnn_ampere_scudnn_128x64_relu_xregs_large_nn_v1",
)
# torch.compile (Inductor) Triton kernels: per-row/reduction kernels normalize, pointwise kernels are element-wise.
kernel_pattern(r"^triton_(?:per|red)_", N, "triton_per_fused__softmax_0", fused=True)
kernel_pattern(r"^triton_(?:poi|for)_", E, "triton_poi_fused_add_mul_0", fused=True)
# Layout changes and copies before the generic element-wise rule (copy kernels are TensorIterator kernels too).
kernel_pattern(
    r"(?i)copy_kernel|CatArrayBatchedCopy|nchwToNhwc|nhwcToNchw|transpose|FillFunctor|"
    r"indexSelect|index_select|gather|scatter|index_elementwise|embedding|permute",
    M,
    "void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 3, 64, 64>(float*)",
)
kernel_pattern(
    r"(?i)softmax|layer_?norm|LayerNorm|rms_?norm|RowwiseMoments|GammaBetaBackward|batch_?norm|bn_(?:fw|bw)|"
    r"group_?norm|reduce_kernel|DeviceReduce|MeanOps|NormTwoOps",
    N,
    "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>(int, float, float const*)",
)
kernel_pattern(r"(?i)pool", N, "void at::native::(anonymous namespace)::max_pool_forward_nchw<float, float>(int)")
kernel_pattern(
    r"(?i)elementwise|multi_tensor_apply|dropout|Functor|_kernel_cuda|philox",
    E,
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
    "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)",
)
