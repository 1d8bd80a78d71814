"""Per-row classes and costs: the table every class, roofline and phase analysis reads.

``classify_events(events)`` returns one row per CPU op and per device work
item (kernel, memcpy, memset) with its class, flop, ideal bytes and roofline
bound. The rules that tie the pieces together:

- **Units of work.** An op is costed once, at the *outermost* op that has a
  cost formula: aten::linear is costed, the aten::addmm inside it (and the
  bias copy_ inside that) are not. Leaf-most costing would lose work here:
  on the CPU, addmm calls copy_ for its bias, so the leaf would be a copy.
  Such an op and everything under it is one unit; its class applies to all of
  its time (the bias copy inside a linear is contraction time).
- **Kernels** take the class of the unit their launching op belongs to, else
  of the launching op when it is classified, else of their own name (imported
  traces, Triton, library kernels). They inherit the unit's flop and bytes,
  split among the unit's kernels by duration. Memcpy/memset are always
  ``memory`` and carry the bytes they recorded.
- **Time.** On a GPU trace the class time is device time (kernels, copies).
  On a CPU-only trace it is each op's self time (its duration minus its child
  ops'), credited to its unit's class; the sum is the time inside top-level ops.

Costs are parsed once per unique (name, shapes, dtypes); classes once per
unique name; the tree walks are vectorized, one step per nesting level.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .classes import CLASS_ORDER, OpClass, classify_name, fused_flags
from .columns import (check_nesting, float_values, id_values, int_values, is_kind, label_codes, label_endswith,
                      label_table, labels_in, text_column, texts_at, used_labels)
from .columns import positions as _positions
from .cost import cost_codes, has_cost_formula, list_type_codes, reads_lists, reads_values, value_codes
from .kernel_types import kernel_element_type
from .hardware import Ceilings, is_guess, raised_guess, resolve_ceilings
from .phase_windows import _ancestor_value
from .roofline import BOUND_DTYPE, CLASS_DTYPE, bound_arrays
from .table import Coded, Deferred, EventTable, Masked

DEVICE_KINDS = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)


def is_gpu_trace(events: pd.DataFrame | EventTable) -> bool:
    return bool(is_kind(events, *DEVICE_KINDS).any())


def classify_events(
    events: pd.DataFrame | EventTable,
    metadata: Mapping[str, Any] | None = None,
    *,
    hardware: str | None = None,
    ceilings: Ceilings | None = None,
) -> pd.DataFrame:
    """Class, cost and bound of every CPU op and device work row of ``events``.

    Columns: event_id, kind, name, start_ns, duration_ns (and rank when present);
    category (contraction/normalization/elementwise/memory/communication/other),
    fused, rule, unit_id (event_id of the op whose cost this row carries or
    shares), flops, bytes, dtype, self_ns, device_work (the row's ``time_ns``
    counts towards its class on the device timeline), time_ns, and the roofline
    columns from ``roofline.bounds``: arithmetic_intensity, achieved_flops_per_s,
    achieved_bytes_per_s, peak_flops_per_s, flop_fraction, bandwidth_fraction,
    roofline_ns, bound.

    ``hardware`` names a device for a what-if analysis; ``ceilings`` overrides
    the device resolution entirely (tests, callers that resolved it already).
    """
    return classify_table(events, metadata, hardware=hardware, ceilings=ceilings).frame


def classify_table(
    events: pd.DataFrame | EventTable,
    metadata: Mapping[str, Any] | None = None,
    *,
    hardware: str | None = None,
    ceilings: Ceilings | None = None,
) -> EventTable:
    """``classify_events`` as an ``EventTable`` of numpy columns (``.frame`` is that DataFrame, built
    on first use): what the report's sections read, text columns as codes and labels. Its ``ceilings``
    are those the bounds were drawn against: the generic CPU guess is raised to the rate of the
    fastest op where that op outran it (``hardware.raised_guess``)."""
    gpu = is_gpu_trace(events)
    if ceilings is None:
        ceilings = resolve_ceilings(metadata, gpu_trace=gpu, requested=hardware)
    columns = _attribute(events, gpu)
    matrix = columns["category"].codes == _CONTRACTION
    host_copy = columns.pop("host_copy")

    def bounds(limits: Ceilings) -> dict[str, Any]:
        return bound_arrays(columns["flops"], columns["bytes"], columns["span_ns"], matrix, columns["dtype"], limits,
                            host_copy=host_copy)

    found = bounds(ceilings)
    if is_guess(ceilings):
        factor, rate_text = _outran(found, columns)
        if factor > 1:
            ceilings = raised_guess(ceilings, factor, rate_text)
            found = bounds(ceilings)
    columns.update(found)
    table = EventTable(columns, len(columns["event_id"]), lambda: pd.DataFrame(_pandas_columns(columns)))
    table.ceilings = ceilings
    return table


#: Ops shorter than this do not set a peak: a microsecond of timer error is a large share of them.
_MIN_PEAK_SPAN_NS = 20_000


def _outran(bounds: dict[str, Any], columns: dict[str, Any]) -> tuple[float, str]:
    """How many times the guessed peak the fastest op (of at least ``_MIN_PEAK_SPAN_NS``) ran, and its
    rate and name in words; (0, "") where none has a rate."""
    fraction = np.where(columns["span_ns"] >= _MIN_PEAK_SPAN_NS, bounds["flop_fraction"], np.nan)
    if not np.isfinite(fraction).any():
        return 0.0, ""
    fastest = int(np.nanargmax(fraction))
    name = columns["name"].labels[columns["name"].codes[fastest]]
    return float(fraction[fastest]), f"{bounds['achieved_flops_per_s'][fastest] / 1e9:.3g} Gflop/s, {name}"


def _pandas_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """The columns as classify_events types them: text as categoricals (rule: pandas' str), unit_id nullable."""
    out: dict[str, Any] = {}
    for name, values in columns.items():
        if isinstance(values, Deferred):
            values = values.read()
        if name == "category":
            values = pd.Categorical.from_codes(values.codes, dtype=CLASS_DTYPE)
        elif name == "bound":
            values = pd.Categorical.from_codes(values.codes, dtype=BOUND_DTYPE)
        elif name == "dtype":  # objects, None for no dtype
            values = np.append(values.labels, None)[values.codes]
        elif name == "rule":
            values = text_column(list(values.labels), values.codes)
        elif isinstance(values, Coded):
            values = pd.Categorical.from_codes(values.codes, categories=pd.Index(values.labels, dtype=object))
        elif isinstance(values, Masked):
            values = pd.arrays.IntegerArray(values.values, ~values.known)
        out[name] = values
    return out


def _labels(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, unique labels as str) of a string or categorical column, without a per-row str conversion."""
    codes, uniques = label_codes(series)
    if (codes < 0).any():  # nulls read as the label ""
        empty = np.flatnonzero(uniques == "")
        if not len(empty):
            uniques = np.append(uniques, "")
            empty = [len(uniques) - 1]
        codes = np.where(codes < 0, empty[0], codes)
    return codes, uniques  # labels are unique


_OTHER = CLASS_ORDER.index(OpClass.OTHER.value)
_MEMORY = CLASS_ORDER.index(OpClass.MEMORY.value)
_CONTRACTION = CLASS_ORDER.index(OpClass.CONTRACTION.value)
_COMPILE = CLASS_ORDER.index(OpClass.COMPILE.value)
_COMPILE_SUFFIX = " (dynamo_timed)"
_CLASS_LABELS = np.array(CLASS_ORDER, dtype=object)
_CLASS_CODE = {OpClass(c): i for i, c in enumerate(CLASS_ORDER)}  # (enum members: no .value per name)


def _attribute(events: pd.DataFrame, gpu: bool) -> dict[str, Any]:
    n = len(events)
    kind_codes, kind_labels = _labels(events["kind"])
    event_ids = events["event_id"].to_numpy(np.int64)
    index = event_ids  # positions() reads ids in order as an index
    parent_pos = _positions(index, events["parent_id"])
    # Per label, then per row through the codes (no null codes here: a lookup, not np.isin's sort or table).
    is_op = (kind_labels == Kind.CPU_OP.value)[kind_codes]
    is_device = labels_in(kind_labels, DEVICE_KINDS)[kind_codes]
    is_kernel = (kind_labels == Kind.KERNEL.value)[kind_codes]
    wanted = is_op | is_device

    # Classes: once per unique name, as codes into CLASS_ORDER; the ops' names now, the device rows' names
    # once it is known which of them need their own class (kernel names are long: their rules are the cost).
    name_codes, name_labels = _labels(events["name"])
    names = _NameClasses(name_labels)
    names.classify(used_labels((name_codes, name_labels), is_op))

    # torch.compile's own work: its ops trace fake tensors (no real flop), so none is a unit.
    compiling = _compile_rows(name_codes, name_labels, parent_pos)

    dev = np.flatnonzero(is_device)
    op_pos = _positions(index, events["op_id"])[dev] if "op_id" in events else np.full(len(dev), -1)

    # Costs: once per unique (name, shapes, dtypes), of the ops that can be units only (see _costed_units).
    level = np.where(*id_values(events["depth"])[::-1], -1) if "depth" in events else None
    flops, nbytes, dtype, dtype_labels, unit_pos, op_parent_pos = _costed_units(
        events, is_op, (name_codes, name_labels), parent_pos, level, compiling, (dev, op_pos))
    is_unit = unit_pos == np.arange(n)  # (a unit is its own outermost costed op)
    flops = np.where(is_unit, flops, 0.0)  # costs below a unit belong to the unit
    nbytes = np.where(is_unit, nbytes, 0.0)
    inside = is_op & (unit_pos >= 0) & ~is_unit  # ops within a unit compute in its dtype
    dtype[inside] = dtype[unit_pos[inside]]

    launched_unit = np.where(op_pos >= 0, unit_pos[np.maximum(op_pos, 0)], -1)  # (each device row's)
    if len(dev):
        op_class, own = _classify_device_names(dev, op_pos, launched_unit, wanted, is_kernel, name_codes, names)
    name_class = np.where(wanted, names.op_class[name_codes], _OTHER).astype(np.int8)
    name_fused = names.fused[name_codes] & wanted

    category = name_class.copy()
    fused = name_fused.copy()
    op_rows = is_op & (unit_pos >= 0)
    category[op_rows] = name_class[unit_pos[op_rows]]
    fused[op_rows] = name_fused[unit_pos[op_rows]]

    duration = int_values(events["duration_ns"], fill=0)
    self_ns = np.zeros(n, dtype=np.int64)
    nested = is_op & (op_parent_pos >= 0)
    if is_op.any():
        child_time = np.bincount(op_parent_pos[nested], weights=duration[nested], minlength=n)
        self_ns[is_op] = np.maximum(duration[is_op] - child_time[is_op].astype(np.int64), 0)

    unit_id = np.full(n, -1, dtype=np.int64)
    unit_id[op_rows] = event_ids[unit_pos[op_rows]]
    if len(dev):
        _attribute_device_rows(events, dev, op_class, own, launched_unit, is_kernel, unit_pos, name_class, name_fused,
                               category, fused, flops, nbytes, dtype, unit_id, duration)

    if compiling is not None:  # (device rows: autotuning's benchmark kernels, launched while compiling)
        launched_while_compiling = np.zeros(n, dtype=bool)
        launched_while_compiling[dev] = (op_pos >= 0) & compiling[np.maximum(op_pos, 0)]
        category[(compiling & wanted) | launched_while_compiling] = _COMPILE

    device_work = is_device if gpu else is_op
    time_ns = np.where(device_work, np.where(is_device, duration, self_ns), 0)
    # The roofline point of a row: a kernel over its duration, a CPU unit over its whole span.
    span_ns = np.where(is_device | is_unit, duration, 0)

    keep = np.flatnonzero(wanted)
    ranks = {"rank": events["rank"].to_numpy()[keep]} if "rank" in events else {}
    return {
        "event_id": event_ids[keep],
        **ranks,
        "kind": Coded(kind_codes[keep], kind_labels),
        "name": Coded(name_codes[keep], name_labels),
        "start_ns": events["start_ns"].to_numpy(np.int64)[keep],
        "duration_ns": duration[keep],
        "category": Coded(category[keep].astype(np.int64), _CLASS_LABELS),
        "fused": fused[keep],
        "rule": Deferred(partial(names.rule_column, name_codes[keep])),
        "unit_id": Masked(unit_id[keep], unit_id[keep] >= 0),
        "flops": flops[keep],
        "bytes": nbytes[keep],
        "dtype": Coded(dtype[keep], dtype_labels),
        "self_ns": self_ns[keep],
        "device_work": device_work[keep],
        "time_ns": time_ns[keep],
        "span_ns": span_ns[keep],
        "host_copy": _host_copies(kind_codes, kind_labels, name_codes, name_labels)[keep],
    }


#: A copy between host and device memory: it runs at the host link's speed (PCIe), not the GPU memory's.
_HOST_COPY = re.compile(r"HtoD|DtoH|HostToDevice|DeviceToHost", re.IGNORECASE)


def _host_copies(kind_codes: np.ndarray, kind_labels: np.ndarray, name_codes: np.ndarray,
                 name_labels: np.ndarray) -> np.ndarray:
    """Rows that copy between host and device ("Memcpy HtoD (Pageable -> Device)", "Memcpy DtoH ...";
    ROCm's "CopyHostToDevice"): one test per memcpy name."""
    memcpy = (kind_labels == Kind.MEMCPY.value)[kind_codes]
    if not memcpy.any():
        return memcpy
    host = label_table((name_codes, name_labels), lambda name: bool(_HOST_COPY.search(str(name))), rows=memcpy)
    return memcpy & host


def _compile_rows(name_codes: np.ndarray, name_labels: np.ndarray, parent_pos: np.ndarray) -> np.ndarray | None:
    """Rows inside a torch.compile range (``<step> (dynamo_timed)``, what Dynamo and Inductor record
    around each compile step), the range included; None when the trace has none (the common case:
    one ``str.endswith`` per name)."""
    marks = label_endswith((name_codes, name_labels), _COMPILE_SUFFIX)
    if not marks.any():
        return None
    return _ancestor_value(parent_pos, marks.astype(np.int8)) > 0


def _costed_units(events, is_op: np.ndarray, names, parent_pos: np.ndarray, level: np.ndarray | None,
                  compiling: np.ndarray | None = None, launches: tuple[np.ndarray, np.ndarray] | None = None):
    """Flop, bytes and dtype (codes, labels) of the ops that can be units, and ``_Walk``'s result over
    the costed ones: (flops, bytes, dtype codes, dtype labels, unit_pos, op_parent_pos).

    A unit is the outermost op with a nonzero cost, so an op below one is never costed: the ops with
    a formula and no such op above them are costed first, then, where one of them costs nothing
    (shapes a formula cannot use), the ops with a formula just below it, until none is left (one
    round on most traces). On a traced training step a third of the costed signatures (addmm in
    linear, copy_ in to) sit below a unit. ``launches``: (device rows, the op position of each), where
    the ops that cost TensorLists find their elements' type."""
    n = len(is_op)
    flops, nbytes = np.zeros(n), np.zeros(n)
    dtype = np.full(n, -1, dtype=np.int64)
    dtype_labels: list[str] = []
    walk = _Walk(parent_pos, is_op, level)
    if not is_op.any():
        return flops, nbytes, dtype, np.zeros(0, dtype=object), walk.units(is_op), walk.op_parent
    shapes, dtypes = label_codes(events["input_shapes"]), label_codes(events["input_dtypes"])
    # Every formula reads a tensor's shape: an op without recorded shapes costs nothing.
    has_formula = np.zeros(n, dtype=bool)
    has_formula[is_op] = label_table(names, has_cost_formula, rows=is_op)[is_op] & (shapes[0][is_op] >= 0)
    if compiling is not None:
        has_formula &= ~compiling
    has_formula &= ~_redispatched(walk.op_parent, names[0])
    costed = np.zeros(n, dtype=bool)
    tried = np.zeros(n, dtype=bool)
    candidate = has_formula
    while True:
        unit_pos = walk.units(candidate)
        todo = np.flatnonzero(candidate & ~tried & (unit_pos == np.arange(n)))
        if not len(todo):
            return flops, nbytes, dtype, np.array(dtype_labels, dtype=object), unit_pos, walk.op_parent
        name_codes, name_labels = names
        flops[todo], nbytes[todo], codes, labels = cost_codes(
            (name_codes[todo], name_labels), (shapes[0][todo], shapes[1]), (dtypes[0][todo], dtypes[1]),
            _argument_values(events, names, todo), _list_types(events, names, todo, launches))
        recode = np.array([_code_of(dtype_labels, label) for label in labels.tolist()] + [-1], dtype=np.int64)
        dtype[todo] = recode[codes]  # code -1 reads the trailing -1
        tried[todo] = True
        costed[todo] = (flops[todo] > 0) | (nbytes[todo] > 0)
        if costed[todo].all():  # the candidates stand: the walk over them is the walk over the units
            return flops, nbytes, dtype, np.array(dtype_labels, dtype=object), unit_pos, walk.op_parent
        candidate = costed | (has_formula & ~tried)


def _redispatched(op_parent: np.ndarray, name_codes: np.ndarray) -> np.ndarray:
    """The ops that call themselves: an op with an op of its own name just below it is a dispatch
    wrapper, autocast's above all (``aten::linear`` on fp32 inputs: ``aten::to`` casts, then
    ``aten::linear`` on bf16 ones). The inner call computes, in the dtype it was given: it is the
    unit, and the casts around it count as the copies they are."""
    inner = np.flatnonzero(op_parent >= 0)
    inner = inner[name_codes[inner] == name_codes[op_parent[inner]]]
    wrapper = np.zeros(len(op_parent), dtype=bool)
    wrapper[op_parent[inner]] = True
    return wrapper


def _todo_where(names, todo: np.ndarray, test) -> np.ndarray:
    """``test(name)`` of each of the ``todo`` rows' names (a formula property: ``reads_values``...), once
    per name those rows use."""
    wanted = np.zeros(len(names[0]), dtype=bool)
    wanted[todo] = True
    return label_table(names, test, rows=wanted)[todo]


def _argument_values(events, names, todo: np.ndarray) -> tuple[np.ndarray, list] | None:
    """``cost.value_codes`` of the ``todo`` rows whose formula reads argument values (their ``extra``
    texts only: a trace's extras are mostly distinct, never factorized whole); None when there are none."""
    if "extra" not in events:
        return None
    reads = _todo_where(names, todo, reads_values)
    if not reads.any():
        return None
    codes = np.full(len(todo), -1, dtype=np.int64)
    codes[reads], lists = value_codes(texts_at(events["extra"], todo[reads]))
    return codes, lists


def _list_types(events, names, todo: np.ndarray, launches: tuple[np.ndarray, np.ndarray] | None
                ) -> tuple[np.ndarray, list] | None:
    """``cost_codes``' list types of the ``todo`` rows whose formula costs TensorLists: the elements'
    dtype profkit record kept (``extra``'s ``tensor_list_dtype``), else the element type of the first
    kernel the op launched that names one (kernel_types.py: imported and older traces); None when
    there are none."""
    reads = _todo_where(names, todo, reads_lists)
    if not reads.any():
        return None
    codes = np.full(len(todo), -1, dtype=np.int64)
    kinds: list = []
    if "extra" in events:
        codes[reads], kinds = list_type_codes(texts_at(events["extra"], todo[reads]))
    left = reads & (codes < 0)
    if left.any() and launches is not None and len(launches[0]):
        launched_codes, launched_kinds = _launched_types(names, todo[left], launches)
        fresh = launched_codes >= 0
        recode = np.array([_code_of(kinds, kind) for kind in launched_kinds], dtype=np.int64)
        codes[np.flatnonzero(left)[fresh]] = recode[launched_codes[fresh]]
    return (codes, kinds) if (codes >= 0).any() else None


def _launched_types(names, rows: np.ndarray, launches: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, list]:
    """(code per row of ``rows``, -1 for none; the kinds): the element type of the first kernel each of
    these ops launched that names one."""
    name_codes = names[0]
    list_ops = np.zeros(len(name_codes), dtype=bool)
    list_ops[rows] = True
    device_rows, op_pos = launches
    launched = op_pos >= 0
    launched[launched] = list_ops[op_pos[launched]]
    if not launched.any():
        return np.full(len(rows), -1, dtype=np.int64), []
    kernels, ops = device_rows[launched], op_pos[launched]
    kernel_rows = np.zeros(len(name_codes), dtype=bool)
    kernel_rows[kernels] = True
    types = label_table(names, kernel_element_type, null=None, dtype=object, rows=kernel_rows)[kernels]
    typed = np.flatnonzero(types != None)  # noqa: E711  (an object array: elementwise test for None)
    ops, first = np.unique(ops[typed], return_index=True)  # (rows are in start order: the first kernel)
    kinds = sorted(set(types[typed].tolist()), key=repr)
    code = {kind: i for i, kind in enumerate(kinds)}
    row_codes = np.full(len(name_codes), -1, dtype=np.int64)
    row_codes[ops] = [code[kind] for kind in types[typed][first].tolist()]
    return row_codes[rows], kinds


def _code_of(labels: list[str], label: str) -> int:
    """The code of ``label`` in ``labels``, appended when new."""
    if label not in labels:
        labels.append(label)
    return labels.index(label)


class _NameClasses:
    """Class, fused flag and rule per name label, found as the rows need them: ``classify`` finds a
    label's rule; ``fused_only`` settles only whether it is fused (``classes.fused_flags``), its class
    left ``other`` (unread) and its rule found when the rule column is read."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        self.op_class = np.full(len(labels), _OTHER, dtype=np.int8)  # unused names: other, not fused, no rule
        self.fused = np.zeros(len(labels), dtype=bool)
        self.rules: list = [None] * len(labels)
        self.done = np.zeros(len(labels), dtype=bool)  # rule found
        self.pending = np.zeros(len(labels), dtype=bool)  # fused settled, rule not found yet

    def classify(self, at: np.ndarray) -> None:
        for i in at[~self.done[at]].tolist():
            match = classify_name(self.labels[i])
            self.op_class[i], self.fused[i], self.rules[i] = _CLASS_CODE[match.op_class], match.fused, match.rule_id
        self.done[at] = True
        self.pending[at] = False

    def fused_only(self, at: np.ndarray) -> None:
        at = at[~self.done[at]]
        maybe = np.array(fused_flags(self.labels[at].tolist()), dtype=bool)
        self.classify(at[maybe])
        self.pending[at[~maybe]] = True

    def rule_column(self, codes: np.ndarray) -> Coded:
        """The rule of each row's name (the pending ones found now)."""
        self.classify(np.flatnonzero(self.pending))
        return Coded(codes, np.array(self.rules + [None], dtype=object)[:-1])


def _classify_device_names(dev: np.ndarray, op_pos: np.ndarray, launched_unit: np.ndarray, wanted: np.ndarray,
                           is_kernel: np.ndarray, name_codes: np.ndarray,
                           names: _NameClasses) -> tuple[np.ndarray, np.ndarray]:
    """The names of the device rows ``dev``: a kernel whose class comes neither from its unit nor from
    its launching op takes its own name's class (found); every other name needs only its fused flag.

    Returns each device row's launching op's class (other: none) and whether it takes its own
    name's class: the class rule, decided here once (``_attribute_device_rows`` applies it)."""
    launcher = np.where((op_pos >= 0) & wanted[np.maximum(op_pos, 0)], op_pos, -1)  # (other rows: no class)
    names.classify(np.unique(name_codes[launcher[launcher >= 0]]))  # (ops' names: found already)
    op_class = np.where(launcher >= 0, names.op_class[name_codes[np.maximum(launcher, 0)]], _OTHER)
    own = is_kernel[dev] & (launched_unit < 0) & (op_class == _OTHER)
    names.classify(np.unique(name_codes[dev[own]]))
    names.fused_only(np.unique(name_codes[dev[~own]]))
    return op_class, own


def _attribute_device_rows(events, dev, op_class, own, launched_unit, is_kernel, unit_pos, name_class, name_fused,
                           category, fused, flops, nbytes, dtype, unit_id, duration) -> None:
    """Classes and cost shares of the device rows ``dev`` (kernels, memcpys, memsets), in place;
    ``op_class`` and ``own`` from ``_classify_device_names``."""
    copies = ~is_kernel[dev]

    # Class: the unit's, else the launching op's when it has one, else the kernel name's (``own``).
    chosen = np.where(launched_unit >= 0, name_class[np.maximum(launched_unit, 0)],
                      np.where(own, name_class[dev], op_class))
    category[dev] = np.where(copies, _MEMORY, chosen)
    fused[dev] = name_fused[dev] | ((launched_unit >= 0) & name_fused[np.maximum(launched_unit, 0)])

    # Cost: each unit's flop and bytes split among its kernels by duration.
    share_rows = (~copies) & (launched_unit >= 0)
    if share_rows.any():
        units = launched_unit[share_rows]
        dur = duration[dev][share_rows].astype(float)
        total = np.bincount(units, weights=dur, minlength=len(unit_pos))[units]
        count = np.bincount(units, minlength=len(unit_pos))[units]
        share = np.where(total > 0, dur / np.where(total > 0, total, 1), 1.0 / count)
        rows = dev[share_rows]
        flops[rows] = flops[units] * share
        nbytes[rows] = nbytes[units] * share
        dtype[rows] = dtype[units]
    unit_id[dev] = np.where(launched_unit >= 0, events["event_id"].to_numpy(np.int64)[np.maximum(launched_unit, 0)], -1)
    if "bytes" in events:
        recorded = np.nan_to_num(float_values(events["bytes"]), nan=0.0, posinf=np.inf, neginf=-np.inf)[dev]
        flops[dev[copies]] = 0.0
        nbytes[dev[copies]] = recorded[copies]


class _Walk:
    """The walks over one table's op tree, one nesting level at a time from the outermost down when
    ``level`` (the depth column, -1 unknown) puts every parent above its children: each step reads the
    parents' final values, and every row is stepped once (the walk up steps each open chain once per
    level above it: ~29 steps over ~4k rows on the H100 Qwen trace). The levels are sorted once and
    each op's nearest op ancestor found once; ``units`` walks again for each set of costed ops."""

    def __init__(self, parent_pos: np.ndarray, is_op: np.ndarray, level: np.ndarray | None):
        self.parent_pos, self.is_op = parent_pos, is_op
        rows = np.flatnonzero(parent_pos >= 0)
        self.steps: list[tuple[np.ndarray, np.ndarray]] | None = None  # (rows, their parents) per level
        if level is None or not (level[rows] > level[parent_pos[rows]]).all():
            self.op_parent = _walk_up(parent_pos, np.zeros(len(parent_pos), dtype=bool), is_op)[1]
            return
        levels = level[rows]
        if len(rows) and levels.max() < np.iinfo(np.int16).max:  # (a stable sort of 16-bit ints is a radix sort)
            levels = levels.astype(np.int16)
        order = rows[np.argsort(levels, kind="stable")]
        splits = np.split(order, np.flatnonzero(np.diff(level[order])) + 1) if len(order) else ()
        self.steps = [(step, parent_pos[step]) for step in splits]
        op_parent = np.full(len(parent_pos), -1, dtype=np.int64)  # of every row: a chain may pass other kinds
        for step, parent in self.steps:
            op_parent[step] = np.where(is_op[parent], parent, op_parent[parent])
        self.op_parent = np.where(is_op, op_parent, -1)

    def units(self, costed: np.ndarray) -> np.ndarray:
        """Each op's outermost costed ancestor-or-self (-1: none; other rows -1)."""
        if self.steps is None:
            return _walk_up(self.parent_pos, costed, self.is_op)[0]
        unit = np.where(costed, np.arange(len(costed)), -1)
        for step, parent in self.steps:
            above = unit[parent]
            unit[step] = np.where(above >= 0, above, unit[step])
        return np.where(self.is_op, unit, -1)  # (costed rows are ops)


def _walk_up(parent_pos: np.ndarray, costed: np.ndarray, is_op: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every CPU op: its outermost costed ancestor-or-self, and its nearest CPU-op ancestor (-1: none).

    One vectorized step per nesting level over the rows whose chain is still
    open; host events nest on one thread, so chains end within the stack depth.
    """
    n = len(parent_pos)
    unit = np.where(costed, np.arange(n), -1)
    op_parent = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(is_op & (parent_pos >= 0))
    current = parent_pos[rows]
    levels = 0
    while len(rows):
        levels += 1
        check_nesting(levels)
        hit = costed[current]
        unit[rows[hit]] = current[hit]  # keeps climbing: the last costed ancestor is the outermost
        first_op = is_op[current] & (op_parent[rows] < 0)
        op_parent[rows[first_op]] = current[first_op]
        current = parent_pos[current]
        live = current >= 0
        rows, current = rows[live], current[live]
    return unit, op_parent
