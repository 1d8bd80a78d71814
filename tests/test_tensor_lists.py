"""TensorList ops (aten::cat, aten::stack, an optimizer's aten::_foreach_*): their elements' size comes from
the kernel they launched, as torch.profiler records no dtype for a TensorList."""

from __future__ import annotations

import math

import pytest
import torch

import profkit
from profkit.analyzers import cost
from profkit.analyzers.classify import classify_events
from profkit.analyzers.hardware import Ceilings, spec_by_name
from profkit.analyzers.kernel_types import kernel_element_type
from profkit.collectors.kineto_json import import_paths

from conftest import shared_trace
from test_cost import _events

# Kernel names as CUDA builds of torch write them (the first two from ../shared/traces' H100 Qwen trace).
CAT_OPAQUE_2 = ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::"
                "OpaqueType<2u>, unsigned int, 4, 64, 64>(at::native::(anonymous namespace)::OpaqueType<2u>*, "
                "at::native::(anonymous namespace)::CatArrInputTensorMetadata<at::native::(anonymous namespace)::"
                "OpaqueType<2u>, unsigned int, 64, 64>, at::native::(anonymous namespace)::TensorSizeStride<unsigned "
                "int, 4u>, int, unsigned int)")
CAT_FLOAT = ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 2, 128, 1>(float*, "
             "at::native::(anonymous namespace)::CatArrInputTensorMetadata<float, unsigned int, 128, 1>, "
             "at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, unsigned int)")
FOREACH_BF16 = ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
                "TensorListMetadata<2>, at::native::(anonymous namespace)::BinaryOpListAlphaFunctor<c10::BFloat16, 2, "
                "2, 0>, std::plus<float>, float>(at::native::(anonymous namespace)::TensorListMetadata<2>, "
                "at::native::(anonymous namespace)::BinaryOpListAlphaFunctor<c10::BFloat16, 2, 2, 0>, "
                "std::plus<float>, float)")


@pytest.mark.parametrize("name, expected", [
    (CAT_OPAQUE_2, (None, 2)),  # a copy moves 2-byte words: the size is known, the float type is not
    (CAT_FLOAT, ("fp32", 4)),
    (FOREACH_BF16, ("bf16", 2)),  # the first type argument, not the float the functor computes in
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<long, unsigned int, 2, 128, 1>(long*)", ("int64", 8)),
    ("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)", None),
    ("triton_poi_fused_add_0", None),
    ("void kernel<unsigned int, 4>(unsigned int*)", None),  # "int" inside "unsigned int" is no element type
])
def test_kernel_names_spell_their_element_type(name, expected):
    assert kernel_element_type(name) == expected


def _cpu_ceilings():
    return Ceilings(spec_by_name("cpu-generic").scaled_to_cores(1))


def test_cat_and_foreach_bytes_equal_what_the_real_tensors_move():
    # Real tensors: cat reads every input and writes their concatenation; _foreach_add_(a, b) reads a and b
    # and writes a; _foreach_zero_ only writes. The formulas, from shapes and the kernel's element size,
    # must give the tensors' own byte counts.
    parts = [torch.zeros(16, 8, 559, 32, dtype=torch.bfloat16), torch.zeros(16, 8, 1, 32, dtype=torch.bfloat16)]
    joined = torch.cat(parts, dim=2)
    shapes = [[list(p.shape) for p in parts], []]
    inputs = cost.inputs_of(shapes, [None, None], None, kernel_element_type(CAT_OPAQUE_2))
    moved = sum(p.nbytes for p in parts) + joined.nbytes
    assert cost.op_cost("aten::cat", inputs) == cost.Cost(0.0, float(moved))

    params = [torch.zeros(64, 32, dtype=torch.bfloat16), torch.zeros(32, dtype=torch.bfloat16)]
    grads = [torch.zeros_like(p) for p in params]
    lists = [[list(p.shape) for p in params], [list(g.shape) for g in grads], []]
    inputs = cost.inputs_of(lists, [None, None, None], None, kernel_element_type(FOREACH_BF16))
    elements = sum(p.numel() for p in params)
    add = cost.op_cost("aten::_foreach_add_", inputs)
    assert add.flops == elements  # one add per element
    assert add.bytes == 2 * sum(p.nbytes for p in params) + sum(g.nbytes for g in grads)
    assert inputs.dtype == "bf16"
    zero = cost.op_cost("aten::_foreach_zero_", cost.inputs_of([lists[0]], [None], None, ("bf16", 2)))
    assert zero == cost.Cost(0.0, float(sum(p.nbytes for p in params)))


def test_without_a_kernel_a_tensor_list_costs_nothing():
    # A CPU trace: no kernel names the elements' type; a guessed size would be a wrong number.
    inputs = cost.inputs_of([[[4, 8], [4, 8]], []], [None, None])
    assert cost.op_cost("aten::cat", inputs) == cost.ZERO


def test_a_cat_takes_its_element_size_from_the_kernel_it_launched():
    shapes = "[[[4,8],[4,8]],[]]"
    types = '["TensorList","Scalar"]'
    events = _events([
        ("cpu_op", "aten::cat", 0, 100, shapes, types, 1, None),
        ("runtime", "cudaLaunchKernel", 10, 20, None, None, 2, None),
        ("kernel", CAT_FLOAT, 200, 50, None, None, 2, 2),
        ("cpu_op", "aten::cat", 1000, 100, shapes, types, 4, None),  # on the CPU: no kernel
    ])
    rows = classify_events(events, ceilings=_cpu_ceilings())
    ops = rows[rows["kind"] == "cpu_op"]
    kernel = rows[rows["kind"] == "kernel"].iloc[0]
    assert ops["bytes"].tolist() == [2 * 2 * 4 * 8 * 4, 0]  # read and write 2 fp32 [4, 8] tensors; unknown
    assert kernel["bytes"] == 2 * 2 * 4 * 8 * 4 and kernel["category"] == "memory"
    assert ops["dtype"].tolist()[0] == "fp32"


def test_imported_cats_move_bytes_below_the_gpus_bandwidth(tmp_path):
    # The H100 Qwen trace: aten::cat's CatArrayBatchedCopy<OpaqueType<2u>> kernels (bf16 KV-cache and
    # rotary concatenations) were "unknown" bound. They now carry bytes, at a bandwidth the H100 can give.
    source = shared_trace("h100_Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
    target = tmp_path / "h100.parquet"
    import_paths([source], target, progress=False)
    trace = profkit.load(target)
    rows = classify_events(trace.events, trace.metadata)
    cats = rows[(rows["kind"] == "kernel") & rows["name"].astype(str).str.contains("CatArrayBatchedCopy")
                & rows["unit_id"].notna()]
    assert len(cats) > 40
    assert (cats["bytes"] > 0).all() and (cats["bound"] != "unknown").all()
    assert (cats.loc[cats["bytes"] > 2**20, "bound"] == "memory").all()  # (a 0.3 MB one is latency-bound)
    peak_bytes_per_s = cats["achieved_bytes_per_s"] / cats["bandwidth_fraction"]
    assert math.isclose(peak_bytes_per_s.iloc[0], 3.35e12, rel_tol=0.01)
    assert 0.05 < cats["bandwidth_fraction"].median() < 1.0


def test_a_recorded_cpu_trace_costs_tensor_lists_in_their_recorded_dtype(tmp_path):
    # A CPU op launches no kernel to name its TensorList's element type: profkit record reads it from
    # the profiler's event tree (extra's tensor_list_dtype), so cat and _foreach_* are costed there too.
    first, second = torch.randn(4, 8, dtype=torch.bfloat16), torch.randn(2, 8, dtype=torch.bfloat16)
    params = [torch.randn(16, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)]
    with profkit.record(tmp_path / "t.parquet", telemetry=False) as session:
        torch.cat([first, second])
        torch._foreach_mul_(params, 2.0)
    trace = profkit.load(session.path)
    ops = trace.ops.set_index("name")
    assert '"tensor_list_dtype":"torch.bfloat16"' in ops.loc["aten::cat", "extra"]
    rows = classify_events(trace.events, trace.metadata).set_index("name")
    cat, mul = rows.loc["aten::cat"], rows.loc["aten::_foreach_mul_"]
    assert (cat["bytes"], cat["dtype"]) == (2 * (first.nbytes + second.nbytes), "bf16")  # read, then written
    assert (mul["bytes"], mul["dtype"]) == (2 * sum(p.nbytes for p in params), "fp64")  # read and written in place
    assert mul["flops"] == sum(p.numel() for p in params)
