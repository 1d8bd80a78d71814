"""The element type a GPU kernel's name spells out in its template arguments.

torch.profiler records a TensorList argument (``aten::cat``'s inputs, an optimizer's
``aten::_foreach_*`` lists) as nested shapes and the type "TensorList": the
elements' dtype is not recorded. The kernels such an op launches name it, as
their first type template argument:

    CatArrayBatchedCopy<float, unsigned int, 3, 64, 64>(...)                -> fp32, 4 bytes
    CatArrayBatchedCopy<...::OpaqueType<2u>, unsigned int, 4, 64, 64>(...)  -> 2 bytes (a copy: no float type)
    multi_tensor_apply_kernel<TensorListMetadata<2>, BinaryOpScalarFunctor<c10::BFloat16, 2, 1, 1>, ...> -> bf16

The spellings are a table (CUDA and ROCm builds spell them alike); the first one
in the name wins.
"""

from __future__ import annotations

import re

#: Template-argument spelling -> (short dtype name, bytes per element); the short names are cost.py's.
_SPELLINGS: dict[str, tuple[str, int]] = {
    "double": ("fp64", 8),
    "float": ("fp32", 4),
    "Half": ("fp16", 2),  # (c10::Half, at::Half: a namespace may come first)
    "__half": ("fp16", 2),
    "BFloat16": ("bf16", 2),
    "__nv_bfloat16": ("bf16", 2),
    "__hip_bfloat16": ("bf16", 2),
    "Float8_e4m3fn": ("fp8", 1),
    "Float8_e5m2": ("fp8", 1),
    "Float8_e4m3fnuz": ("fp8", 1),
    "Float8_e5m2fnuz": ("fp8", 1),
    "signed char": ("int8", 1),
    "unsigned char": ("uint8", 1),
    "bool": ("bool", 1),
    "short": ("int16", 2),
    "int": ("int32", 4),
    "long": ("int64", 8),
}

# A spelling as a whole template argument (after "<" or ", ", a namespace allowed), or OpaqueType<N>:
# torch's copy kernels move N-byte words whatever the dtype ("unsigned int" is an index type: "int" must
# not match inside it).
_ARGUMENT = re.compile(
    r"[<,]\s*(?:[^<>,]*::)?(?:(?P<opaque>OpaqueType<(?P<size>\d+)u?>)|(?P<spelling>"
    + "|".join(sorted(map(re.escape, _SPELLINGS), key=len, reverse=True))
    + r"))\s*[,>*]"
)


def kernel_element_type(name: str) -> tuple[str | None, int] | None:
    """(short dtype name, or None where the kernel moves opaque words; bytes per element) of the first
    element type in a kernel name's template arguments; None when it names none."""
    found = _ARGUMENT.search(name)
    if found is None:
        return None
    if found["opaque"]:
        return None, int(found["size"])
    return _SPELLINGS[found["spelling"]]
