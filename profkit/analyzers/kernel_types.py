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

from .cost import dtype_info

#: Template-argument spelling -> the spelling torch.profiler records for that dtype ("Input type"), whose
#: (short name, bytes per element) cost.py's dtype table holds. c10's types may come with a namespace.
_RECORDED = {
    "double": "double", "float": "float",
    "Half": "c10::Half", "__half": "c10::Half",
    "BFloat16": "c10::BFloat16", "__nv_bfloat16": "c10::BFloat16", "__hip_bfloat16": "c10::BFloat16",
    "Float8_e4m3fn": "c10::Float8_e4m3fn", "Float8_e5m2": "c10::Float8_e5m2",
    "Float8_e4m3fnuz": "c10::Float8_e4m3fnuz", "Float8_e5m2fnuz": "c10::Float8_e5m2fnuz",
    "signed char": "signed char", "unsigned char": "unsigned char", "bool": "bool",
    "short": "short", "int": "int", "long": "long",
}
_SPELLINGS: dict[str, tuple[str, int]] = {spelling: dtype_info(recorded) for spelling, recorded in _RECORDED.items()}

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
