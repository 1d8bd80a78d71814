"""Flop and ideal bytes of an op from its recorded input shapes and dtypes.

Counting rules of "Data Movement Is All You Need" (and its spcl/substation
code): a matrix product is 2·M·N·K (times the batch); every other arithmetic
operation is one flop per element (min/max count 0); ideal bytes are every
input read once plus every output written once, times the dtype's size. The
matmul, convolution and attention formulas follow the semantics of
``torch.utils.flop_counter`` (bias adds of addmm/baddbmm are not counted,
causal masking is not discounted, attention backward recomputes the scores),
written here as pure functions of shapes so no torch is needed.

Only input shapes are recorded, so outputs are inferred: a matmul's from its
operands, a pointwise op's by broadcasting its tensor inputs, an in-place op's
is its first input. Convolutions and pooling also read their arguments' values
(strides, paddings, kernel sizes: torch.profiler's "Concrete Inputs", in the
trace's ``extra``) to size their outputs. What cannot be known is documented at
each formula (a reduction's output is taken as negligible; a convolution
recorded without its stride has its input's spatial size, i.e. stride 1 and
"same" padding).

Parse, then compute: ``parse_inputs`` turns the JSON text into an ``OpInputs``
of ``Tensor``s once per unique (name, shapes, dtypes); each formula is a small
pure function registered for its op names through ``formula`` (one door,
refusing duplicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .columns import Labels, label_codes, label_table
from .json_texts import extra_codes, value_of, values_of

#: Recorded dtype spelling -> (short name, bytes per element). Short names are
#: the keys of the hardware peaks table (fp32, bf16, ...).
_DTYPES: dict[str, tuple[str, int]] = {}


def _dtype(short: str, size: int, *spellings: str) -> None:
    for spelling in spellings:
        if spelling in _DTYPES:
            raise ValueError(f"dtype spelling {spelling!r} registered twice")
        _DTYPES[spelling] = (short, size)


_dtype("fp64", 8, "double", "torch.float64", "float64")
_dtype("fp32", 4, "float", "torch.float32", "float32")
_dtype("fp16", 2, "c10::Half", "torch.float16", "float16", "half")
_dtype("bf16", 2, "c10::BFloat16", "torch.bfloat16", "bfloat16")
_dtype(
    "fp8", 1,
    "c10::Float8_e4m3fn", "c10::Float8_e5m2", "c10::Float8_e4m3fnuz", "c10::Float8_e5m2fnuz",
    "torch.float8_e4m3fn", "torch.float8_e5m2", "float8_e4m3fn", "float8_e5m2",
)
_dtype("int8", 1, "signed char", "torch.int8", "int8", "c10::qint8", "torch.qint8")  # (quantized: int8 storage)
_dtype("uint8", 1, "unsigned char", "torch.uint8", "uint8", "c10::quint8", "torch.quint8")
_dtype("bool", 1, "bool", "torch.bool")
_dtype("int16", 2, "short int", "short", "torch.int16", "int16")
_dtype("int32", 4, "int", "torch.int32", "int32", "c10::qint32", "torch.qint32")
_dtype("int64", 8, "long int", "long", "torch.int64", "int64")
_dtype("complex64", 8, "c10::complex<float>", "torch.complex64", "complex64")
_dtype("complex128", 16, "c10::complex<double>", "torch.complex128", "complex128")

#: Short dtype names that are floating point (the ones a flop peak exists for).
FLOAT_DTYPES = ("fp64", "fp32", "fp16", "bf16", "fp8")


def dtype_info(spelling: str) -> tuple[str, int] | None:
    """(short name, bytes per element) of a recorded dtype, or None if not a tensor dtype."""
    return _DTYPES.get(spelling)


class Tensor(NamedTuple):
    """One recorded tensor input (a named tuple: a trace holds thousands of them, built in a loop)."""

    shape: tuple[int, ...]
    dtype: str  # short name (fp32, bf16, ...)
    itemsize: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


class OpInputs:
    """An op's positional inputs: a Tensor, or None for scalars, lists and absent args (read-only).

    A plain class with slots, not a frozen dataclass: one is built per unique signature, and the
    tensors are listed once here rather than by every formula that reads them."""

    __slots__ = ("args", "tensors", "shapes", "concrete", "list_dtype")

    def __init__(self, args: tuple[Tensor | None, ...], shapes: list | None = None, concrete: list | None = None,
                 list_dtype: tuple[str | None, int] | None = None):
        self.args = args
        self.tensors: list[Tensor] = [a for a in args if a is not None]
        self.shapes = shapes  # the parsed Input Dims as recorded: a TensorList argument's shapes are here
        # The values of the non-tensor arguments (stride, padding, kernel size...) where torch.profiler
        # recorded them ("Concrete Inputs"), parsed: None for a tensor or an argument it left out.
        self.concrete = concrete
        # (short dtype or None, bytes per element) of the TensorList arguments' elements, which
        # torch.profiler does not record: read from the kernels the op launched (kernel_types.py).
        self.list_dtype = list_dtype

    def value(self, index: int):
        """The recorded value of argument ``index`` (None: not recorded)."""
        concrete = self.concrete
        if concrete is None or index is None or not -len(concrete) <= index < len(concrete):
            return None
        return concrete[index]

    def __getitem__(self, index: int) -> Tensor | None:
        return self.args[index] if -len(self.args) <= index < len(self.args) else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpInputs) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)

    def __repr__(self) -> str:
        return f"OpInputs(args={self.args!r})"

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def tensor_lists(self) -> list[list[tuple[int, ...]]]:
        """The shapes of each TensorList argument (recorded as a list of shapes), in argument order."""
        return [[tuple(shape) for shape in arg] for arg in self.shapes or ()
                if isinstance(arg, list) and arg and all(isinstance(shape, list) for shape in arg)
                and all(isinstance(d, int) for shape in arg for d in shape)]

    @property
    def dtype(self) -> str | None:
        """The compute dtype: the TensorList elements' where known, else the first floating-point
        tensor's, else the first tensor's."""
        if self.list_dtype is not None and self.list_dtype[0] is not None:
            return self.list_dtype[0]
        tensors = self.tensors
        for t in tensors:
            if t.dtype in FLOAT_DTYPES:
                return t.dtype
        return tensors[0].dtype if tensors else None


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float


ZERO = Cost(0.0, 0.0)


def parse_inputs(shapes_json: str | None, dtypes_json: str | None) -> OpInputs:
    """Parse the trace's JSON text columns; anything unparsable becomes no tensors."""
    return inputs_of(value_of(shapes_json), dtype_infos(value_of(dtypes_json)))


def dtype_infos(dtypes) -> list[tuple[str, int] | None] | None:
    """(short name, bytes per element) of each recorded dtype, None where it is no tensor dtype;
    None when ``dtypes`` (a parsed Input type list) is no list. Shared by the signatures that
    record the same dtypes."""
    if not isinstance(dtypes, list):
        return None
    return [_DTYPES.get(spelling) if isinstance(spelling, str) else None for spelling in dtypes]


def inputs_of(shapes, infos: list[tuple[str, int] | None] | None, concrete: list | None = None,
              list_dtype: tuple[str | None, int] | None = None) -> OpInputs:
    """The ``OpInputs`` of a parsed Input Dims list and ``dtype_infos``: a Tensor where the dtype is a
    tensor dtype and the shape a list of ints; ``concrete``: the arguments' parsed values;
    ``list_dtype``: the TensorList elements' type, where known."""
    if not isinstance(shapes, list) or infos is None:
        return OpInputs((), concrete=concrete, list_dtype=list_dtype)
    if len(shapes) < len(infos):  # (an arg without a shape is no tensor)
        shapes = shapes + [None] * (len(infos) - len(shapes))
    return OpInputs(tuple([
        Tensor(tuple(shape), *info)
        if info is not None and isinstance(shape, list) and all(map(isinstance, shape, _INT)) else None
        for shape, info in zip(shapes, infos)
    ]), shapes, concrete, list_dtype)


def argument_values(recorded) -> list | None:
    """torch.profiler's "Concrete Inputs" (one text per argument: "" for a tensor or a value it did not
    record, "[2, 2]", "1", "False") parsed: lists of numbers and booleans, numbers, booleans, else the
    text; None for "" (None when ``recorded`` is no list)."""
    if not isinstance(recorded, list):
        return None
    return [_argument_value(text) for text in recorded]


_WORDS = {"True": True, "False": False, "None": None, "": None}


def _argument_value(text):
    if not isinstance(text, str):
        return text
    if text in _WORDS:
        return _WORDS[text]
    if text[:1] == "[" and text[-1:] == "]":
        items = [item.strip() for item in text[1:-1].split(",") if item.strip()]
        values = [_argument_value(item) for item in items]
        return values if all(isinstance(v, (int, float)) for v in values) else text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def value_codes(extras: np.ndarray) -> tuple[np.ndarray, list[list | None]]:
    """(code per row, -1 for none; the parsed argument values of each code) from rows' ``extra`` JSON
    texts, whose ``concrete_inputs`` list holds them (``kineto_events.ARG_KEYS``; profkit record writes
    it for the ops that ``reads_values``). Each distinct text is parsed once, each distinct list kept once."""
    return extra_codes(extras, lambda document: argument_values(document.get("concrete_inputs")), "concrete_inputs")


def list_type_codes(extras: np.ndarray) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """(code per row, -1 for none; the (short dtype, bytes per element) of each code) from rows' ``extra``
    JSON texts, whose ``tensor_list_dtype`` profkit record writes for the ops that take a TensorList
    (``kinds.TENSOR_LIST_OPS``). Each distinct text is parsed once."""

    def kind(document: dict):
        spelling = document.get("tensor_list_dtype")
        return _DTYPES.get(spelling) if isinstance(spelling, str) else None

    return extra_codes(extras, kind, "tensor_list_dtype")


_INT = repeat(int)  # (the second argument of isinstance, for every dimension of a shape)


# ---------------------------------------------------------------- the registry

Formula = Callable[[str, OpInputs], Cost]
_FORMULAS: dict[str, Formula] = {}
_READS_VALUES: set[str] = set()  # ops whose formula reads argument values (OpInputs.concrete)
_READS_LISTS: set[str] = set()  # ops whose formula reads TensorList elements (OpInputs.list_dtype)


def formula(*names: str, reads_values: bool = False, reads_lists: bool = False) -> Callable[[Formula], Formula]:
    """Register ``fn(name, inputs) -> Cost`` for these op names (refuses duplicates). ``reads_values``:
    the formula also reads the recorded values of non-tensor arguments (strides, kernel sizes), so
    calls with equal shapes but other values are costed apart. ``reads_lists``: it costs TensorList
    arguments, whose element type comes from the kernels the op launched (``OpInputs.list_dtype``)."""

    def register(fn: Formula) -> Formula:
        for name in names:
            if name in _FORMULAS:
                raise ValueError(f"cost formula for {name!r} registered twice")
            _FORMULAS[name] = fn
            if reads_values:
                _READS_VALUES.add(name)
            if reads_lists:
                _READS_LISTS.add(name)
        return fn

    return register


def has_cost_formula(name: str) -> bool:
    return name in _FORMULAS


def reads_values(name: str) -> bool:
    """Whether the cost formula of op ``name`` reads its arguments' recorded values."""
    return name in _READS_VALUES


def reads_lists(name: str) -> bool:
    """Whether the cost formula of op ``name`` costs TensorList arguments (needs ``list_dtype``)."""
    return name in _READS_LISTS


def list_op_names() -> frozenset[str]:
    """The ops whose formula costs TensorLists (all of them matched by ``kinds.TENSOR_LIST_OPS``, the
    ops whose element dtype profkit record keeps)."""
    return frozenset(_READS_LISTS)


def value_op_names() -> frozenset[str]:
    """The ops whose formula reads argument values (all of them matched by ``kinds.ARGUMENT_VALUE_OPS``,
    the ops whose values profkit record keeps)."""
    return frozenset(_READS_VALUES)


def costed_names() -> list[str]:
    return sorted(_FORMULAS)


def op_cost(name: str, inputs: OpInputs) -> Cost:
    """Cost of one op; ZERO for ops without a formula or with shapes the formula cannot use."""
    fn = _FORMULAS.get(name)
    if fn is None:
        return ZERO
    try:
        return fn(name, inputs)
    except (TypeError, ValueError, IndexError, AttributeError):
        return ZERO  # missing or inconsistent shapes: no cost rather than a wrong one


def costs_table(ops: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``ops`` (name, input_shapes, input_dtypes): flops, bytes, dtype.

    Each unique (name, shapes, dtypes) is parsed and costed once, then mapped back.
    """
    flops, nbytes, dtype = cost_arrays(
        label_codes(ops["name"]), label_codes(ops["input_shapes"]), label_codes(ops["input_dtypes"])
    )
    return pd.DataFrame({"flops": flops, "bytes": nbytes, "dtype": dtype}, index=ops.index)


def cost_arrays(names: Labels, shapes: Labels, dtypes: Labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """flops, bytes and dtype per row from ``label_codes`` of the name, shapes and dtypes columns.

    Rows whose name has no formula cost nothing; each unique (name, shapes, dtypes)
    among the others is parsed and costed once.
    """
    flops, nbytes, codes, labels = cost_codes(names, shapes, dtypes)
    return flops, nbytes, np.append(labels, None)[codes]  # code -1: no dtype (None)


def cost_codes(names: Labels, shapes: Labels, dtypes: Labels,
               values: tuple[np.ndarray, list] | None = None,
               list_types: tuple[np.ndarray, list] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``cost_arrays`` with the compute dtype as codes (-1: none) into its labels (an object array).

    ``values``: ``value_codes`` of the rows (their arguments' recorded values), read by the formulas
    that ``reads_values``; a signature is then (name, shapes, dtypes, values). ``list_types``: (code per
    row, -1 for none; the (short dtype, bytes per element) of each code), the TensorList elements' type
    the formulas that ``reads_lists`` read; it is part of the signature too."""
    (name_codes, name_labels), (shape_codes, shape_labels), (dtype_codes, dtype_labels) = names, shapes, dtypes
    n = len(name_codes)
    flops, nbytes = np.zeros(n), np.zeros(n)
    dtype = np.full(n, -1, dtype=np.int64)
    # Tested once per name in use; a null name has no formula.
    rows = np.flatnonzero(label_table(names, has_cost_formula, rows=np.ones(n, dtype=bool)))
    if not len(rows):
        return flops, nbytes, dtype, np.zeros(0, dtype=object)
    # One integer key per (name, shapes, dtypes); a null text (code -1) reads as no text.
    key = name_codes[rows] * (len(shape_labels) + 1) + (shape_codes[rows] + 1)
    key = key * (len(dtype_labels) + 1) + (dtype_codes[rows] + 1)
    row_values, value_lists = values if values is not None else (np.full(n, -1, dtype=np.int64), [])
    row_lists, list_kinds = list_types if list_types is not None else (np.full(n, -1, dtype=np.int64), [])
    key = _fold_codes(_fold_codes(key, row_values[rows], len(value_lists)), row_lists[rows], len(list_kinds))
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    unique_flops, unique_bytes = np.zeros(len(unique)), np.zeros(len(unique))
    unique_dtype = np.full(len(unique), -1, dtype=np.int64)
    code_of: dict[str, int] = {}
    # One parse per shapes text and per dtypes text, one OpInputs per (shapes, dtypes) the keys share.
    firsts = rows[first]
    shape_list, dtype_list = shape_codes[firsts].tolist(), dtype_codes[firsts].tolist()
    parsed_shapes = _parse_texts(shape_labels, shape_list)
    infos = {code: dtype_infos(value) for code, value in _parse_texts(dtype_labels, dtype_list).items()}
    shared: dict[tuple[int, int, int, int], OpInputs] = {}
    for i, (name_code, shape_code, dtype_code, value_code, list_code) in enumerate(zip(
            name_codes[firsts].tolist(), shape_list, dtype_list, row_values[firsts].tolist(),
            row_lists[firsts].tolist())):
        inputs = shared.get((shape_code, dtype_code, value_code, list_code))
        if inputs is None:
            inputs = shared[shape_code, dtype_code, value_code, list_code] = inputs_of(
                parsed_shapes[shape_code], infos[dtype_code], value_lists[value_code] if value_code >= 0 else None,
                list_kinds[list_code] if list_code >= 0 else None)
        cost = op_cost(name_labels[name_code], inputs)
        found = inputs.dtype
        unique_flops[i], unique_bytes[i] = cost.flops, cost.bytes
        unique_dtype[i] = -1 if found is None else code_of.setdefault(found, len(code_of))
    flops[rows], nbytes[rows], dtype[rows] = unique_flops[inverse], unique_bytes[inverse], unique_dtype[inverse]
    labels = np.empty(len(code_of), dtype=object)
    labels[:] = list(code_of)
    return flops, nbytes, dtype, labels


def _fold_codes(key: np.ndarray, codes: np.ndarray, count: int) -> np.ndarray:
    """``key`` made to tell rows apart by ``codes`` too (0..count-1; -1: none): the keys as dense ids first,
    so the product stays small. Unchanged where every code is -1."""
    if not (codes >= 0).any():
        return key
    dense = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return dense * (count + 1) + (codes + 1)


def _parse_texts(labels: np.ndarray, codes: list[int]) -> dict[int, object]:
    """The JSON value of each label ``codes`` name (code -1, and unparsable texts: None), each text
    parsed once (``json_texts.values_of``: all in one parse where it can)."""
    used = sorted(set(codes) - {-1})
    return {-1: None, **dict(zip(used, values_of([labels[code] for code in used])))}


# ---------------------------------------------------------------- shape helpers


def _need(t: Tensor | None) -> Tensor:
    if t is None:
        raise ValueError("missing tensor input")
    return t


def broadcast(shapes: Iterable[Sequence[int]]) -> tuple[int, ...]:
    """NumPy broadcasting of shapes (1-sized dims stretch)."""
    shapes = [tuple(s) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError(f"shapes do not broadcast: {shapes}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _io(inputs: Sequence[Tensor], outputs: Sequence[tuple[tuple[int, ...], int]]) -> float:
    """Ideal bytes: each input read once + each (shape, itemsize) output written once."""
    read = sum([math.prod(t.shape) * t.itemsize for t in inputs])
    return float(read + sum([math.prod(shape) * size for shape, size in outputs]))


# ---------------------------------------------------------------- contractions


def mm_flops(m: int, k: int, n: int, batch: int = 1) -> float:
    """2·M·N·K per product (one multiply and one add per term), times the batch."""
    return 2.0 * batch * m * n * k


def _inner(k: int, k2: int) -> None:
    """Shapes whose inner dimensions differ are mis-recorded: better no cost than a wrong one."""
    if k != k2:
        raise ValueError("inner dimensions differ")


@formula("aten::mm", "aten::_scaled_mm", "aten::_int_mm")
def _mm(name: str, x: OpInputs) -> Cost:
    a, b = _need(x[0]), _need(x[1])
    (m, k), (k2, n) = a.shape, b.shape
    _inner(k, k2)
    return Cost(mm_flops(m, k, n), _io([a, b], [((m, n), a.itemsize)]))


@formula("aten::addmm", "aten::_addmm_activation")
def _addmm(name: str, x: OpInputs) -> Cost:
    bias, a, b = _need(x[0]), _need(x[1]), _need(x[2])
    (m, k), (k2, n) = a.shape, b.shape
    _inner(k, k2)
    return Cost(mm_flops(m, k, n), _io([bias, a, b], [((m, n), a.itemsize)]))


@formula("aten::bmm")
def _bmm(name: str, x: OpInputs) -> Cost:
    a, b = _need(x[0]), _need(x[1])
    (batch, m, k), (_, k2, n) = a.shape, b.shape
    _inner(k, k2)
    return Cost(mm_flops(m, k, n, batch), _io([a, b], [((batch, m, n), a.itemsize)]))


@formula("aten::baddbmm")
def _baddbmm(name: str, x: OpInputs) -> Cost:
    c, a, b = _need(x[0]), _need(x[1]), _need(x[2])
    (batch, m, k), (_, k2, n) = a.shape, b.shape
    _inner(k, k2)
    return Cost(mm_flops(m, k, n, batch), _io([c, a, b], [((batch, m, n), a.itemsize)]))


@formula("aten::matmul")
def _matmul(name: str, x: OpInputs) -> Cost:
    a, b = _need(x[0]), _need(x[1])
    sa, sb = a.shape, b.shape
    m, k = (1, sa[0]) if len(sa) == 1 else sa[-2:]
    k2, n = (sb[0], 1) if len(sb) == 1 else sb[-2:]
    _inner(k, k2)
    batch_shape = broadcast([sa[:-2], sb[:-2]])
    out = batch_shape + ((m,) if len(sa) > 1 else ()) + ((n,) if len(sb) > 1 else ())
    return Cost(mm_flops(m, k, n, math.prod(batch_shape)), _io([a, b], [(out, a.itemsize)]))


@formula("aten::linear", "aten::mkldnn_linear")
def _linear(name: str, x: OpInputs) -> Cost:
    inp, weight = _need(x[0]), _need(x[1])
    n, k = weight.shape
    _inner(inp.shape[-1], k)
    rows = math.prod(inp.shape[:-1])
    out = inp.shape[:-1] + (n,)
    return Cost(mm_flops(rows, k, n), _io(x.tensors, [(out, inp.itemsize)]))


@formula("aten::mv", "aten::addmv")
def _mv(name: str, x: OpInputs) -> Cost:
    mat, vec = (_need(x[0]), _need(x[1])) if name == "aten::mv" else (_need(x[1]), _need(x[2]))
    m, k = mat.shape
    return Cost(mm_flops(m, k, 1), _io(x.tensors, [((m,), mat.itemsize)]))


@formula("aten::dot", "aten::vdot")
def _dot(name: str, x: OpInputs) -> Cost:
    a = _need(x[0])
    return Cost(2.0 * a.numel, _io(x.tensors, [((), a.itemsize)]))


def conv_flops(x_shape: Sequence[int], w_shape: Sequence[int], out_spatial: Sequence[int]) -> float:
    """2 · N · C_out · prod(out spatial) · (C_in / groups) · prod(kernel); the weight is [C_out, C_in/g, k...]."""
    batch = x_shape[0]
    c_out, c_in_per_group = w_shape[0], w_shape[1]
    return 2.0 * batch * c_out * math.prod(out_spatial) * c_in_per_group * math.prod(w_shape[2:])


class ConvArgs(NamedTuple):
    """Where an op's convolution arguments sit among its positional arguments (None: the op has none)."""

    stride: int | None
    padding: int | None
    dilation: int | None
    transposed: int | bool  # an argument's position, or the op's own kind (True: always transposed)
    output_padding: int | None
    groups: int | None


#: Positions of the convolution arguments of each op (the aten schemas; cudnn's has no bias).
_CONV_ARGS = {
    **dict.fromkeys(("aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_convolution_mode"),
                    ConvArgs(3, 4, 5, False, None, 6)),
    **dict.fromkeys(("aten::convolution", "aten::_convolution"), ConvArgs(3, 4, 5, 6, 7, 8)),
    **dict.fromkeys(("aten::mkldnn_convolution", "aten::miopen_convolution"), ConvArgs(4, 3, 5, False, None, 6)),
    "aten::cudnn_convolution": ConvArgs(3, 2, 4, False, None, 5),
    **dict.fromkeys(("aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d"),
                    ConvArgs(3, 4, 7, True, 5, 6)),
}


def _per_dim(value, dims: int, default: int) -> list[int]:
    """A recorded int list (one value stands for every spatial dim) as ``dims`` ints; ``default``
    where it was not recorded (or is a padding mode such as "same")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(type(v) is int for v in value):
        return [default] * dims
    return value * dims if len(value) == 1 else list(value[:dims]) + [value[-1]] * (dims - len(value))


def conv_output_spatial(inp: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                        dilation: Sequence[int], transposed: bool = False,
                        output_padding: Sequence[int] | None = None) -> tuple[int, ...]:
    """The output's spatial size, as torch computes it for a direct or a transposed convolution."""
    output_padding = output_padding or [0] * len(inp)
    if transposed:
        return tuple((i - 1) * s - 2 * p + d * (k - 1) + o + 1
                     for i, k, s, p, d, o in zip(inp, kernel, stride, padding, dilation, output_padding))
    return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in zip(inp, kernel, stride, padding, dilation))


@formula(*_CONV_ARGS, reads_values=True)
def _conv(name: str, x: OpInputs) -> Cost:
    # The output's size comes from the recorded stride, padding and dilation ("Concrete Inputs");
    # where they were not recorded (older traces, or a padding mode such as "same"), it is taken to be
    # the input's (stride 1, "same" padding). A transposed convolution's flop are those of the direct
    # one whose gradient it is (torch.utils.flop_counter's count: they do not depend on its output).
    inp, weight = _need(x[0]), _need(x[1])
    where = _CONV_ARGS[name]
    spatial, kernel = inp.shape[2:], weight.shape[2:]
    transposed = where.transposed if isinstance(where.transposed, bool) else bool(x.value(where.transposed))
    groups = x.value(where.groups) if where.groups is not None else None
    groups = groups if type(groups) is int and groups > 0 else 1
    # (a padding mode, "same" or "valid", is recorded as nothing: as if unrecorded)
    if isinstance(x.value(where.stride), list) and isinstance(x.value(where.padding), list):
        dims = len(spatial)
        out_spatial = conv_output_spatial(
            spatial, kernel, _per_dim(x.value(where.stride), dims, 1), _per_dim(x.value(where.padding), dims, 0),
            _per_dim(x.value(where.dilation), dims, 1), transposed,
            _per_dim(x.value(where.output_padding), dims, 0) if where.output_padding is not None else None)
    else:
        out_spatial = tuple(spatial)
    channels = weight.shape[1] * groups if transposed else weight.shape[0]
    out = (inp.shape[0], channels, *out_spatial)
    flops = conv_flops(inp.shape, weight.shape, spatial if transposed else out_spatial)
    return Cost(flops, _io(x.tensors, [(out, inp.itemsize)]))


@formula("aten::convolution_backward", reads_values=True)
def _conv_backward(name: str, x: OpInputs) -> Cost:
    # (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding,
    # groups, output_mask): grad_output gives the real output size. Grad input and grad weight each cost
    # a forward (a transposed convolution's: over its input's size); output_mask, where recorded, says
    # which of them were computed (the first layer's input needs no gradient).
    grad_out, inp, weight = _need(x[0]), _need(x[1]), _need(x[2])
    transposed = x.value(7) is True
    forward = conv_flops(inp.shape, weight.shape, (inp if transposed else grad_out).shape[2:])
    mask = x.value(10)
    grad_input, grad_weight = (mask[0], mask[1]) if isinstance(mask, list) and len(mask) >= 2 else (True, True)
    written = [(inp.shape, inp.itemsize)] * bool(grad_input) + [(weight.shape, weight.itemsize)] * bool(grad_weight)
    return Cost(forward * (bool(grad_input) + bool(grad_weight)), _io([grad_out, inp, weight], written))


# ---------------------------------------------------------------- pooling


class PoolArgs(NamedTuple):
    """Where a pooling op's window arguments sit (the aten schemas), and what it computes."""

    kernel: int
    stride: int
    padding: int
    dilation: int | None
    ceil_mode: int
    average: bool  # average (a sum and a divide per window) or max (comparisons: no flop)
    indices: bool  # also writes the argmax of each window (int64)
    dims: int  # spatial dims (1d, 2d, 3d)


_POOL_ARGS = {
    **{f"aten::max_pool{d}d": PoolArgs(1, 2, 3, 4, 5, False, False, d) for d in (1, 2, 3)},
    **{f"aten::max_pool{d}d_with_indices": PoolArgs(1, 2, 3, 4, 5, False, True, d) for d in (1, 2, 3)},
    **{f"aten::avg_pool{d}d": PoolArgs(1, 2, 3, None, 4, True, False, d) for d in (1, 2, 3)},
}


def pool_output_spatial(inp: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                        dilation: Sequence[int], ceil_mode: bool) -> tuple[int, ...]:
    """The output's spatial size, as torch's pooling_output_shape computes it (with ceil_mode, a last
    window must start inside the input or its left padding)."""
    out = []
    for i, k, s, p, d in zip(inp, kernel, stride, padding, dilation):
        span = i + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
        size = span // s + 1
        if ceil_mode and (size - 1) * s >= i + p:
            size -= 1
        out.append(size)
    return tuple(out)


@formula(*_POOL_ARGS, reads_values=True)
def _pool(name: str, x: OpInputs) -> Cost:
    # A max compares (0 flop, as min/max in the paper's count); an average adds the window and divides:
    # kernel-size flop per output element. The output's size needs the recorded kernel, stride and
    # padding: without them the op is not costed (its window is unknown).
    inp = _need(x[0])
    where = _POOL_ARGS[name]
    kernel, dims = x.value(where.kernel), where.dims
    if not isinstance(kernel, list) or len(inp.shape) < dims:
        raise ValueError("kernel size not recorded")
    spatial = inp.shape[-dims:]
    kernel = _per_dim(kernel, dims, 1)
    stride = _per_dim(x.value(where.stride), dims, 0)
    stride = kernel if not all(stride) else stride  # (an empty stride is the kernel's)
    out_spatial = pool_output_spatial(spatial, kernel, stride, _per_dim(x.value(where.padding), dims, 0),
                                      _per_dim(x.value(where.dilation), dims, 1), bool(x.value(where.ceil_mode)))
    out = (*inp.shape[:-dims], *out_spatial)
    outputs = [(out, inp.itemsize)] + ([(out, 8)] if where.indices else [])
    flops = float(math.prod(out) * math.prod(kernel)) if where.average else 0.0
    return Cost(flops, _io([inp], outputs))


_ADAPTIVE_POOLS = {
    **{f"aten::adaptive_avg_pool{d}d": (True, False) for d in (1, 2, 3)},
    **{f"aten::_adaptive_avg_pool{d}d": (True, False) for d in (2, 3)},
    **{f"aten::adaptive_max_pool{d}d": (False, True) for d in (1, 2, 3)},
}


@formula(*_ADAPTIVE_POOLS, reads_values=True)
def _adaptive_pool(name: str, x: OpInputs) -> Cost:
    # (self, output_size): the windows tile the input, so an average reads and adds every input element
    # once and divides once per output (input + output flop); a max compares only.
    inp, size = _need(x[0]), x.value(1)
    if not isinstance(size, list) or not all(type(v) is int for v in size):
        raise ValueError("output size not recorded")
    out = (*inp.shape[: len(inp.shape) - len(size)], *size)
    average, indices = _ADAPTIVE_POOLS[name]
    outputs = [(out, inp.itemsize)] + ([(out, 8)] if indices else [])
    flops = float(inp.numel + math.prod(out)) if average else 0.0
    return Cost(flops, _io([inp], outputs))


@formula("aten::max_pool2d_with_indices_backward", "aten::max_pool3d_with_indices_backward",
         "aten::adaptive_max_pool2d_backward", "aten::adaptive_max_pool3d_backward")
def _max_pool_backward(name: str, x: OpInputs) -> Cost:
    # (grad_output, self, ..., indices): each output gradient is routed to its argmax (no flop);
    # grad input has the input's shape.
    grad_out, inp = _need(x[0]), _need(x[1])
    return Cost(0.0, _io(x.tensors, [(inp.shape, grad_out.itemsize)]))


@formula("aten::avg_pool2d_backward", "aten::avg_pool3d_backward", "aten::_adaptive_avg_pool2d_backward",
         "aten::_adaptive_avg_pool3d_backward")
def _avg_pool_backward(name: str, x: OpInputs) -> Cost:
    # (grad_output, self, ...): each output gradient is divided and spread over its window; the windows
    # are taken to tile the input (one add per input element, one divide per output element).
    grad_out, inp = _need(x[0]), _need(x[1])
    return Cost(float(inp.numel + grad_out.numel), _io(x.tensors, [(inp.shape, grad_out.itemsize)]))


def sdpa_flops(b: int, h_q: int, s_q: int, s_k: int, d_q: int, d_v: int) -> float:
    """Q·Kᵀ plus scores·V: 2·b·h·s_q·s_k·(d_q + d_v) (no causal discount, as torch counts)."""
    return mm_flops(s_q, d_q, s_k, b * h_q) + mm_flops(s_q, s_k, d_v, b * h_q)


def sdpa_backward_flops(b: int, h_q: int, s_q: int, s_k: int, d_q: int, d_v: int) -> float:
    """Recomputed scores, grad scores, grad V, grad Q, grad K: five products (torch's count)."""
    return (
        mm_flops(s_q, d_q, s_k, b * h_q)
        + mm_flops(s_q, d_v, s_k, b * h_q)
        + mm_flops(s_k, s_q, d_v, b * h_q)
        + mm_flops(s_q, s_k, d_q, b * h_q)
        + mm_flops(d_q, s_q, s_k, b * h_q)
    )


def _bhsd(t: Tensor, heads_second: bool) -> tuple[int, int, int, int]:
    """(batch, heads, seq, dim) from [B, H, S, D] (sdpa ops) or [B, S, H, D] (flash/efficient kernels)."""
    b, p, q, d = t.shape
    return (b, p, q, d) if heads_second else (b, q, p, d)


def _attention_dims(q: Tensor, k: Tensor, v: Tensor, *, heads_second: bool) -> tuple[int, int, int, int, int, int]:
    """(batch, heads, query length, key length, query dim, value dim) of an attention op's q, k, v."""
    b, h, s_q, d_q = _bhsd(q, heads_second)
    s_k = _bhsd(k, heads_second)[2]
    return b, h, s_q, s_k, d_q, v.shape[-1]


_SDPA_FWD_BHSD = (
    "aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_efficient_attention", "aten::_scaled_dot_product_cudnn_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math",
)
_SDPA_FWD_BSHD = ("aten::_flash_attention_forward", "aten::_efficient_attention_forward")


@formula(*_SDPA_FWD_BHSD, *_SDPA_FWD_BSHD)
def _sdpa(name: str, x: OpInputs) -> Cost:
    q, k, v = _need(x[0]), _need(x[1]), _need(x[2])
    b, h, s_q, s_k, d_q, d_v = _attention_dims(q, k, v, heads_second=name in _SDPA_FWD_BHSD)
    out = (b, h, s_q, d_v)
    return Cost(sdpa_flops(b, h, s_q, s_k, d_q, d_v), _io([q, k, v], [(out, q.itemsize)]))


_SDPA_BWD_BHSD = (
    "aten::_scaled_dot_product_flash_attention_backward", "aten::_scaled_dot_product_efficient_attention_backward",
    "aten::_scaled_dot_product_cudnn_attention_backward", "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
)
_SDPA_BWD_BSHD = ("aten::_flash_attention_backward", "aten::_efficient_attention_backward")


@formula(*_SDPA_BWD_BHSD, *_SDPA_BWD_BSHD)
def _sdpa_backward(name: str, x: OpInputs) -> Cost:
    # (grad_out, q, k, v, out, logsumexp, ...): every tensor input read, dq dk dv written.
    q, k, v = _need(x[1]), _need(x[2]), _need(x[3])
    b, h, s_q, s_k, d_q, d_v = _attention_dims(q, k, v, heads_second=name in _SDPA_BWD_BHSD)
    outputs = [(t.shape, t.itemsize) for t in (q, k, v)]
    return Cost(sdpa_backward_flops(b, h, s_q, s_k, d_q, d_v), _io(x.tensors, outputs))


# ---------------------------------------------------------------- recurrent layers


def rnn_flops(tokens: int, weights: Iterable[Sequence[int]]) -> float:
    """Every 2-D weight of an RNN/LSTM/GRU (W_ih and W_hh of each layer and direction, its gates stacked
    in its rows) multiplies one vector per token: 2 · tokens · Σ rows·cols. The gates' element-wise
    math is left out, as torch.utils.flop_counter leaves it out of attention."""
    return 2.0 * tokens * sum(math.prod(w) for w in weights if len(w) == 2)


def _weight_list(x: OpInputs) -> list[tuple[int, ...]]:
    """The recorded shapes of the op's weights argument: the TensorList whose shapes are all 1-D or 2-D
    (weights and biases), at least one 2-D (hx is a list of 3-D states for an LSTM)."""
    for arg in x.shapes or ():
        if (isinstance(arg, list) and arg and all(isinstance(w, list) and 1 <= len(w) <= 2 for w in arg)
                and any(len(w) == 2 for w in arg) and all(isinstance(d, int) for w in arg for d in w)):
            return [tuple(w) for w in arg]
    raise ValueError("no weight list")


def _weight_bytes(weights: Iterable[Sequence[int]], itemsize: int) -> int:
    """Bytes of the weight list's tensors, in the data's dtype (a TensorList records no dtype)."""
    return sum(math.prod(w) for w in weights) * itemsize


def _tokens(data: Tensor) -> int:
    """Vectors the layer reads: [T, B, I], [B, T, I] or packed [ΣT, I] all hold numel / I of them."""
    return math.prod(data.shape[:-1])


@formula("aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu", "aten::_cudnn_rnn", "aten::miopen_rnn")
def _rnn(name: str, x: OpInputs) -> Cost:
    data, weights = _need(x[0]), _weight_list(x)
    hidden = weights[-1][-1] if len(weights[-1]) == 2 else weights[-2][-1]  # (the last W_hh: [gates·H, H])
    read = data.nbytes + _weight_bytes(weights, data.itemsize)
    return Cost(rnn_flops(_tokens(data), weights), float(read + _tokens(data) * hidden * data.itemsize))


@formula("aten::mkldnn_rnn_layer")
def _rnn_layer(name: str, x: OpInputs) -> Cost:
    # (input, w_ih, w_hh, b_ih, b_hh, hx, cx, ...): one layer in one direction (inside aten::lstm on CPU)
    data, w_ih, w_hh = _need(x[0]), _need(x[1]), _need(x[2])
    return Cost(rnn_flops(_tokens(data), (w_ih.shape, w_hh.shape)),
                _io([data, w_ih, w_hh], [((_tokens(data), w_hh.shape[-1]), data.itemsize)]))


@formula("aten::_cudnn_rnn_backward", "aten::miopen_rnn_backward", "aten::mkldnn_rnn_layer_backward")
def _rnn_backward(name: str, x: OpInputs) -> Cost:
    # grad input and grad weights: two products per forward one; the inputs (activations, weights,
    # gradients) read once, grad input and grad weights written
    data = _need(x[0])
    weights = [t.shape for t in (x[1], x[2]) if t is not None] if name == "aten::mkldnn_rnn_layer_backward" \
        else _weight_list(x)
    flops = 2 * rnn_flops(_tokens(data), weights)
    written = data.nbytes + _weight_bytes(weights, data.itemsize)
    return Cost(flops, float(sum(t.nbytes for t in x.tensors) + written))

# ---------------------------------------------------------------- normalizations and reductions

#: Flop per element of the normalized tensor, counted by hand (max/min count 0).
#:   softmax: x - max, exp, sum, divide                                         = 4
#:   log_softmax: x - max, exp, sum, subtract log-sum                           = 4
#:   softmax backward: g·y, sum, g - s, y·(.)                                   = 4
#:   layer/batch/group norm: mean, x - mean, square, sum, ·rstd, ·gamma, +beta   = 7
#:     (the paper's LayerNorm: 29 M flop on 8·512·1024 = 4.19 M elements)
#:   layer/batch/group norm backward: x̂ (2), g·gamma (1), dgamma (2), dbeta (1),
#:     two row sums (3), dx = rstd·(g·gamma - a - x̂·b) (4)                       = 13
#:   rms norm: square, sum, ·rrms, ·gamma                                        = 4
#:   rms norm backward: x̂, g·gamma, dgamma (2), row sum (2), dx (3)             = 9
_NORM_FLOPS_PER_ELEMENT = {
    "aten::softmax": 4, "aten::_softmax": 4, "aten::log_softmax": 4, "aten::_log_softmax": 4,
    "aten::_softmax_backward_data": 4, "aten::_log_softmax_backward_data": 4,
    "aten::layer_norm": 7, "aten::native_layer_norm": 7, "aten::native_layer_norm_backward": 13,
    "aten::rms_norm": 4, "aten::_fused_rms_norm": 4, "aten::_fused_rms_norm_backward": 9,
    "aten::group_norm": 7, "aten::native_group_norm": 7, "aten::native_group_norm_backward": 13,
    "aten::batch_norm": 7, "aten::_batch_norm_impl_index": 7, "aten::native_batch_norm": 7,
    "aten::_native_batch_norm_legit": 7, "aten::_native_batch_norm_legit_no_training": 7,
    "aten::cudnn_batch_norm": 7, "aten::miopen_batch_norm": 7, "aten::instance_norm": 7,
    "aten::native_batch_norm_backward": 13, "aten::cudnn_batch_norm_backward": 13,
}
#: Backward normalizations also write grads of their affine parameters.
_NORM_BACKWARD_PARAM_ARG = {
    "aten::native_layer_norm_backward": 5, "aten::_fused_rms_norm_backward": 3,
    "aten::native_group_norm_backward": 4, "aten::native_batch_norm_backward": 2,
    "aten::cudnn_batch_norm_backward": 2,
}


@formula(*_NORM_FLOPS_PER_ELEMENT)
def _normalization(name: str, x: OpInputs) -> Cost:
    # The first tensor is the normalized input (or the incoming gradient, same shape);
    # the output has its shape. Per-row statistics (mean, rstd) are negligible.
    first = _need(x[0])
    outputs = [(first.shape, first.itemsize)]
    param = x[_NORM_BACKWARD_PARAM_ARG[name]] if name in _NORM_BACKWARD_PARAM_ARG else None
    if param is not None:
        outputs += [(param.shape, param.itemsize)] * 2  # grad weight, grad bias
    return Cost(_NORM_FLOPS_PER_ELEMENT[name] * float(first.numel), _io(x.tensors, outputs))


#: Reductions: flop per input element (the paper counts min/max as 0 flop).
_REDUCTION_FLOPS_PER_ELEMENT = {
    "aten::sum": 1, "aten::mean": 1, "aten::prod": 1, "aten::norm": 2, "aten::linalg_vector_norm": 2,
    "aten::var": 3, "aten::std": 3, "aten::var_mean": 3, "aten::std_mean": 3, "aten::logsumexp": 3,
    "aten::amax": 0, "aten::amin": 0, "aten::max": 0, "aten::min": 0, "aten::all": 0, "aten::any": 0,
    "aten::aminmax": 0, "aten::_aminmax": 0,
    "aten::cumsum": 1,
}


@formula(*_REDUCTION_FLOPS_PER_ELEMENT)
def _reduction(name: str, x: OpInputs) -> Cost:
    # The reduced dims are not recorded: the output is taken as negligible next to
    # the input (cumsum, which keeps the shape, writes its input's size).
    first = _need(x[0])
    outputs = [(first.shape, first.itemsize)] if name == "aten::cumsum" else []
    return Cost(_REDUCTION_FLOPS_PER_ELEMENT[name] * float(first.numel), _io([first], outputs))


@formula("aten::cross_entropy_loss")
def _cross_entropy(name: str, x: OpInputs) -> Cost:
    logits = _need(x[0])  # log_softmax (4 per element) then a gather of one value per row
    return Cost(4.0 * logits.numel, _io(x.tensors, []))


@formula("aten::nll_loss", "aten::nll_loss_nd", "aten::nll_loss_forward")
def _nll_loss(name: str, x: OpInputs) -> Cost:
    logp, target = _need(x[0]), _need(x[1])  # reads one value per target, sums them
    return Cost(float(target.numel), float(target.nbytes + target.numel * logp.itemsize))


@formula("aten::nll_loss_backward")
def _nll_loss_backward(name: str, x: OpInputs) -> Cost:
    # (grad_output, self [N, C], target [N], ...): the gradient [N, C] written whole (zeros), one value
    # per target set from the incoming gradient (one flop each).
    logp, target = _need(x[1]), _need(x[2])
    return Cost(float(target.numel), float(target.nbytes + logp.nbytes))


# ---------------------------------------------------------------- element-wise

#: Flop per output element for element-wise ops that do more than one operation.
_POINTWISE_FLOPS_PER_ELEMENT = {
    "aten::addcmul": 3, "aten::addcmul_": 3, "aten::addcdiv": 3, "aten::addcdiv_": 3,
    "aten::lerp": 3, "aten::lerp_": 3, "aten::mse_loss_backward": 2,
}
_POINTWISE = (
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::neg", "aten::exp", "aten::exp_", "aten::log", "aten::log2", "aten::sqrt", "aten::rsqrt",
    "aten::pow", "aten::pow_", "aten::abs", "aten::reciprocal", "aten::square", "aten::sin", "aten::cos",
    "aten::erf", "aten::relu", "aten::relu_", "aten::gelu", "aten::gelu_", "aten::silu", "aten::silu_",
    "aten::sigmoid", "aten::tanh", "aten::hardtanh", "aten::leaky_relu", "aten::elu", "aten::softplus",
    "aten::mish", "aten::threshold", "aten::threshold_backward", "aten::gelu_backward", "aten::silu_backward",
    "aten::sigmoid_backward", "aten::tanh_backward", "aten::where", "aten::masked_fill", "aten::masked_fill_",
    "aten::clamp", "aten::clamp_", "aten::clamp_min", "aten::clamp_max", "aten::maximum", "aten::minimum",
    "aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge", "aten::logical_and",
    "aten::logical_or", "aten::logical_not", "aten::logit", "aten::logit_backward", "aten::nan_to_num",
    "aten::native_dropout_backward", "aten::_masked_scale",
    *_POINTWISE_FLOPS_PER_ELEMENT,
)
_BOOL_RESULT = ("aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge", "aten::logical_and",
                "aten::logical_or", "aten::logical_not")


@formula(*_POINTWISE)
def _pointwise(name: str, x: OpInputs) -> Cost:
    # One flop per output element (the paper's rule); the output broadcasts the
    # tensor inputs, in place it is the first input. 0-d tensors (wrapped Python
    # scalars) count as one element.
    tensors = x.tensors
    if not tensors:
        raise ValueError("no tensor input")
    if name.endswith("_"):
        shape = _need(x[0]).shape
    else:  # (most operands share one shape, or add a 0-d scalar to it: no axis-by-axis broadcast)
        distinct = {t.shape for t in tensors}
        if len(distinct) > 1:
            distinct.discard(())
        shape = distinct.pop() if len(distinct) == 1 else broadcast(distinct)
    floating = [t.itemsize for t in tensors if t.dtype in FLOAT_DTYPES]
    itemsize = 1 if name in _BOOL_RESULT else (floating or [tensors[0].itemsize])[0]
    flops = _POINTWISE_FLOPS_PER_ELEMENT.get(name, 1) * float(math.prod(shape))
    return Cost(flops, _io(tensors, [(shape, itemsize)]))


@formula("aten::_transform_bias_rescale_qkv")
def _bias_rescale_qkv(name: str, x: OpInputs) -> Cost:
    # (qkv [B, T, 3E], qkv_bias [3E], num_heads): the bias added to all three, q also scaled (4/3 flop per
    # element); written back as q, k, v of [B, heads, T, E/heads] (the same elements).
    qkv, bias = _need(x[0]), _need(x[1])
    return Cost(qkv.numel * 4 / 3, _io([qkv, bias], [(qkv.shape, qkv.itemsize)]))


@formula("aten::quantize_per_tensor", "aten::quantize_per_tensor_dynamic", "aten::quantize_per_channel")
def _quantize(name: str, x: OpInputs) -> Cost:
    # Scale and shift each element (2 flop; rounding and clamping are no arithmetic), written as 1-byte
    # integers: qint8/quint8, what dynamic and static quantization use (a qint32 target is not told apart).
    src = _need(x[0])
    return Cost(2.0 * src.numel, _io([src], [(src.shape, 1)]))


@formula("aten::dequantize")
def _dequantize(name: str, x: OpInputs) -> Cost:
    src = _need(x[0])  # (q - zero point) · scale per element, written as fp32
    return Cost(2.0 * src.numel, _io([src], [(src.shape, 4)]))


@formula("aten::mse_loss")
def _mse_loss(name: str, x: OpInputs) -> Cost:
    a = _need(x[0])  # subtract, square, sum: 3 per element; the (mean) output is one value
    return Cost(3.0 * a.numel, _io(x.tensors, []))


@formula("aten::dropout", "aten::native_dropout", "aten::feature_dropout", "aten::_fused_dropout")
def _dropout(name: str, x: OpInputs) -> Cost:
    # Paper: 1 flop per element, and three elements of I/O (read x, write y, write the mask).
    inp = _need(x[0])
    return Cost(float(inp.numel), _io([inp], [(inp.shape, inp.itemsize), (inp.shape, inp.itemsize)]))


@formula("aten::bernoulli_", "aten::uniform_", "aten::normal_", "aten::rand_like", "aten::randn_like")
def _random_fill(name: str, x: OpInputs) -> Cost:
    out = _need(x[0])  # one random number per element, written once
    return Cost(float(out.numel), _io([], [(out.shape, out.itemsize)]))


# ---------------------------------------------------------------- memory


@formula("aten::copy_")
def _copy(name: str, x: OpInputs) -> Cost:
    dst, src = _need(x[0]), _need(x[1])  # reads src, writes dst
    return Cost(0.0, _io([src], [(dst.shape, dst.itemsize)]))


@formula("aten::clone", "aten::_to_copy")
def _clone(name: str, x: OpInputs) -> Cost:
    src = _need(x[0])  # the output dtype of _to_copy is not recorded: taken as the input's
    return Cost(0.0, _io([src], [(src.shape, src.itemsize)]))


@formula("aten::fill_", "aten::zero_", "aten::zeros_like", "aten::ones_like", "aten::full_like")
def _fill(name: str, x: OpInputs) -> Cost:
    out = _need(x[0])  # writes only
    return Cost(0.0, _io([], [(out.shape, out.itemsize)]))


@formula("aten::embedding")
def _embedding(name: str, x: OpInputs) -> Cost:
    weight, indices = _need(x[0]), _need(x[1])  # gathers one row per index, writes it out
    row_bytes = math.prod(weight.shape[1:]) * weight.itemsize
    return Cost(0.0, float(indices.nbytes + 2 * indices.numel * row_bytes))


@formula("aten::gather")
def _gather(name: str, x: OpInputs) -> Cost:
    src, index = _need(x[0]), _need(x[2])  # (self, dim, index): one element read and written per index entry
    return Cost(0.0, float(index.nbytes + 2 * index.numel * src.itemsize))


# ---------------------------------------------------------------- TensorList ops
# torch.profiler records a TensorList as its shapes and the type "TensorList": the elements' size comes
# from the kernel the op launched (OpInputs.list_dtype); without one (a CPU trace) these cost nothing.


def _list_elements(x: OpInputs) -> tuple[list[list[tuple[int, ...]]], int, int]:
    """(the TensorList arguments' shapes, elements in the first list, bytes per element)."""
    lists = x.tensor_lists()
    if not lists or x.list_dtype is None:
        raise ValueError("no TensorList with a known element type")
    return lists, sum(math.prod(shape) for shape in lists[0]), x.list_dtype[1]


@formula("aten::cat", "aten::stack", reads_lists=True)
def _concatenate(name: str, x: OpInputs) -> Cost:
    lists, elements, itemsize = _list_elements(x)  # every input read once, written once into the result
    return Cost(0.0, 2.0 * elements * itemsize)


#: The aten::_foreach_<op> ops costed (and their in-place _foreach_<op>_). Each counts, per element of
#: each list, the flop of its single-tensor form aten::<op> (the element-wise and reduction tables: 1
#: unless listed there); zero and copy do no arithmetic. Each TensorList argument is read, one list
#: written; _foreach_norm writes one value per tensor, _foreach_zero_ reads nothing, _foreach_copy_ reads
#: only its source.
_FOREACH_OPS = ("add", "sub", "mul", "div", "neg", "abs", "sqrt", "rsqrt", "reciprocal", "exp", "log", "sigmoid",
                "tanh", "sign", "pow", "maximum", "minimum", "clamp_min", "clamp_max", "addcmul", "addcdiv", "lerp",
                "norm", "zero", "copy")
_FOREACH_NO_ARITHMETIC, _FOREACH_NO_WRITE, _FOREACH_WRITE_ONLY, _FOREACH_READ_SOURCE = (
    {"zero", "copy"}, {"norm"}, {"zero"}, {"copy"})


def _foreach_flops_per_element(op: str) -> int:
    if op in _FOREACH_NO_ARITHMETIC:
        return 0
    single = f"aten::{op}"
    return _REDUCTION_FLOPS_PER_ELEMENT.get(single, _POINTWISE_FLOPS_PER_ELEMENT.get(single, 1))


@formula(*(f"aten::_foreach_{op}{suffix}" for op in _FOREACH_OPS for suffix in ("", "_")), reads_lists=True)
def _foreach(name: str, x: OpInputs) -> Cost:
    lists, elements, itemsize = _list_elements(x)
    op = name.removeprefix("aten::_foreach_").removesuffix("_")
    reads = 0 if op in _FOREACH_WRITE_ONLY else 1 if op in _FOREACH_READ_SOURCE else len(lists)
    writes = 0 if op in _FOREACH_NO_WRITE else 1
    return Cost(_foreach_flops_per_element(op) * float(elements), float((reads + writes) * elements * itemsize))
