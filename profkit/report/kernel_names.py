"""Display forms of GPU kernel names (terminal and HTML tables; display only).

C++ kernel names run to hundreds of characters: their return type, ATen's namespaces and template
arguments hide what tells two kernels apart. ``tidy_kernel_name`` drops the noise and keeps the rest;
``short_kernel_name`` keeps the function and the functor it runs; ``short_kernel_names`` tells apart
short names that coincide in one table.
"""

from __future__ import annotations

import os
import re

from ..analyzers.kernel_types import kernel_element_type
from .format import clip

#: Report sections whose rows are named by kernel on a GPU trace (their diffs show the short names too;
#: on a CPU trace they hold op names, which have no template to cut).
KERNEL_SECTIONS = ("roofline", "top_kernels")

_GENERIC_PARTS = {"gpu_kernel_impl", "gpu_kernel_impl_nocast", "elementwise_kernel", "vectorized_elementwise_kernel",
                  "unrolled_elementwise_kernel", "BinaryFunctor", "AUnaryFunctor", "BUnaryFunctor"}
_PART = re.compile(r"\w*(?:Functor\w*|Ops|_kernel_cuda|_kernel_impl|_kernel)\b")


#: A SFINAE return type before the function (cuBLAS's gemv kernels): "std::enable_if<!(false), void>::type ".
_ENABLE_IF_RETURN = re.compile(r"^std::enable_if<[^>]*>::type ")


def tidy_kernel_name(name: str) -> str:
    """A C++ kernel name without its return type and ATen's namespaces: what is left tells kernels
    apart (template arguments name the tile shape, the functor, the dtype)."""
    text = name[5:] if name.startswith("void ") else _ENABLE_IF_RETURN.sub("", name, count=1)
    return text.replace("at::native::", "").replace("(anonymous namespace)::", "")


def short_kernel_name(name: str) -> str:
    """Display form of a C++ kernel name: the function without namespaces, templates and
    arguments, plus the functor it runs when that is what tells kernels apart (uncut: see _fit)."""
    text = tidy_kernel_name(name)
    head = re.split(r"[<(]", text, maxsplit=1)[0].strip()
    inner = text[len(head):]
    hint = next((p for p in _PART.findall(inner) if p and p not in _GENERIC_PARTS and p != head), None)
    return f"{hint} in {head}" if hint else head


def short_kernel_names(names: list[str], width: int = 34) -> list[str]:
    """``short_kernel_name`` of each name, told apart where two come out the same (a kernel template
    run for two dtypes, ``cutlass::Kernel`` of two tile configurations): by the first dtype in the
    template arguments when that differs, else by the template arguments that differ, else by a number."""
    shorts = [short_kernel_name(name) for name in names]
    texts = [_fit(short, None, width) for short in shorts]
    groups: dict[str, list[int]] = {}
    for i, short in enumerate(shorts):
        groups.setdefault(short, []).append(i)
    for members in groups.values():
        distinct = list(dict.fromkeys(names[i] for i in members))  # (one name twice: rows of two classes)
        if len(distinct) < 2:
            continue
        numbered = [f"#{k}" for k in range(1, len(distinct) + 1)]
        differing = _differing_template_arguments([tidy_kernel_name(name) for name in distinct])
        for tag_of in (_first_dtype, differing.get, None):
            tags = numbered if tag_of is None else [tag_of(tidy_kernel_name(name)) for name in distinct]
            fitted = [_fit(shorts[members[0]], tag, width) for tag in tags if tag is not None]
            if len(set(fitted)) == len(distinct):  # every name tagged, and still apart once cut to width
                break
        text_of = dict(zip(distinct, fitted))
        for i in members:
            texts[i] = text_of[names[i]]
    return _apart_once_cut(shorts, texts, width)


def _apart_once_cut(shorts: list[str], texts: list[str], width: int) -> list[str]:
    """Texts that came out the same only because the cut took what tells the names apart (two
    hipBLASLt ``Cijk_…`` GEMMs whose names differ in their middle): those cut around where they differ."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(text, []).append(i)
    for members in groups.values():
        distinct = list(dict.fromkeys(shorts[i] for i in members))
        if len(distinct) < 2:
            continue
        differ = len(os.path.commonprefix(distinct))
        fitted = {short: _fit_around(short, differ, width) for short in distinct}
        if len(set(fitted.values())) == len(distinct):
            for i in members:
                texts[i] = fitted[shorts[i]]
    return texts


def _fit_around(short: str, at: int, width: int) -> str:
    """``short`` within ``width``: its start, then the part from a little before ``at`` (elided parts: …)."""
    if len(short) <= width:
        return short
    head = width // 3
    start = max(head, at - 6)  # (a few characters of context before the difference)
    if start <= head:
        return _fit(short, None, width)
    middle = short[start:start + width - head - 2]
    return short[:head] + "…" + middle + ("…" if start + len(middle) < len(short) else "")


def _first_dtype(text: str) -> str | None:
    """The short dtype of the kernel's first element-type template argument (an opaque word size: none)."""
    found = kernel_element_type(text)
    return found[0] if found else None


def _differing_template_arguments(texts: list[str]) -> dict[str, str]:
    """Per tidy name, the arguments of its outermost template where the names differ, joined:
    ``cutlass::Kernel<cutlass_80_..._128x64_...>`` -> that argument; ``fft2d_r2c_32x32<float, false, 0u,
    false>`` beside ``<float, false, 5u, true>`` -> "0u, false". Names with different argument counts,
    or none: absent."""
    arguments = [_template_arguments(text) for text in texts]
    if not arguments[0] or any(len(a) != len(arguments[0]) for a in arguments):
        return {}
    differ = [i for i in range(len(arguments[0])) if len({a[i] for a in arguments}) > 1]
    return {text: ", ".join(a[i] for i in differ) for text, a in zip(texts, arguments)} if differ else {}


def _template_arguments(text: str) -> list[str]:
    """The top-level arguments of the outermost template (none: [])."""
    start = text.find("<")
    if start < 0:
        return []
    depth, arguments, begin = 0, [], start + 1
    for end in range(start + 1, len(text)):
        char = text[end]
        if char in "<(":
            depth += 1
        elif char in ">)" and depth:
            depth -= 1
        elif char in ",>" and not depth:
            arguments.append(text[begin:end].strip())
            if char == ">":
                return arguments
            begin = end + 1
    return []  # (unclosed)


def _fit(short: str, tag: str | None, width: int) -> str:
    """``short`` and `` [tag]`` within ``width`` characters: the name is cut first (in its middle, when
    it has no tag), then the tag's start (a template argument's end tells configurations apart: tile
    shapes, alignment)."""
    text = short if tag is None else f"{short} [{tag}]"
    if len(text) <= width:
        return text
    if tag is None:  # cut in the middle: a kernel's variant is often its name's end (…_cta_per_row_1)
        tail = (width - 1) * 2 // 5
        return text[: width - 1 - tail] + "…" + text[len(text) - tail:]
    room = width - len(tag) - 3  # " [" and "]"
    if room >= min(len(short), width // 2):
        return clip(short, room) + f" [{tag}]"
    head = clip(short, width // 2)
    tail = width - len(head) - 4  # " […" and "]"
    return f"{head} […{tag[-tail:]}]" if tail > 0 else clip(text, width)
