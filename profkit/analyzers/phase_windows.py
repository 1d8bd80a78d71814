"""Phase windows: where prefill/decode passes, generate calls and training steps are in a trace.

One row per window (``phase_windows``), from the first source that has them:
profkit's phase marks, ProfilerStep#N annotations, serving-engine annotations
(sglang, vLLM; one parser registry), and lacking all of those, passes guessed
from the token dimension of the first embedding or projection GEMM in each
outermost ``nn.Module`` frame. profkit/analyzers/phases.py analyzes them.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..trace.kinds import TRAIN_STEP_PHASE
from ..trace.schema import Kind
from .columns import (
    float_values,
    int_values,
    is_kind,
    label_codes,
    label_startswith,
    label_table,
    per_label,
    ranks,
    texts_at,
)
from .columns import positions as _positions

PREFILL, DECODE, MIXED, GENERATE = "prefill", "decode", "mixed", "generate"
TRAIN_STEP, STEP = TRAIN_STEP_PHASE, "step"
PASS_PHASES = (PREFILL, DECODE, MIXED)

_HOST_RANGE_KINDS = (Kind.ANNOTATION.value, Kind.CPU_OP.value)
_PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
_BACKWARD = "autograd::engine::evaluate_function: "  # name prefixes (str.startswith: no regex needed)
_MODULE_FRAME = "nn.Module: "

WINDOW_COLUMNS = ("phase", "rank", "start_ns", "end_ns", "batch_size", "tokens", "generation", "step", "source")


def startup_steps(step: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Which training steps began when recording began: step 1 of profkit's optimizer hook opens at the
    start of recording, so it holds the start-up (imports, model build, data-loader and process-group
    set-up) as well as the first iteration. Figures per step leave it out when other steps exist."""
    return (np.asarray(step, dtype=np.float64) == 1) & (np.asarray(source, dtype=object) == "optimizer")


def startup_left_out(startup: np.ndarray) -> np.ndarray:
    """Of ``startup_steps``' mask, the steps per-step figures leave out: all of them, unless they are
    every step (a lone step is the only figure there is)."""
    startup = np.asarray(startup, dtype=bool)
    return startup if startup.any() and not startup.all() else np.zeros(len(startup), dtype=bool)


def step_positions(windows: Mapping[str, Any], names: Sequence[str], steady: bool = True) -> np.ndarray:
    """Positions of the windows (columns as ``window_columns`` gives them) of the first phase in ``names``
    that has any; ``steady``: without the step that began with the recording when other steps exist
    (``startup_left_out``: its start-up is no step's time)."""
    phase = np.asarray(windows["phase"], dtype=object)
    at = np.zeros(0, dtype=np.int64)
    for name in names:
        at = np.flatnonzero(phase == name)
        if len(at):
            break
    if steady:
        at = at[~startup_left_out(startup_steps(np.asarray(windows["step"])[at], np.asarray(windows["source"])[at]))]
    return at


def startup_marks(marks: pd.DataFrame) -> np.ndarray:
    """``startup_left_out`` of phase-mark rows (their ``extra`` JSON holds the step and its source)."""
    extras = _parse_extras(marks["extra"]) if "extra" in marks else [{}] * len(marks)
    return startup_left_out(startup_steps([e.get("step") for e in extras], [e.get("source") for e in extras]))


# ---------------------------------------------------------------- serving-engine annotations (one door)

EngineParser = Callable[[str], Optional[tuple]]
_ENGINE_PARSERS: dict[str, EngineParser] = {}


def engine_parser(engine: str) -> Callable[[EngineParser], EngineParser]:
    """Register ``fn(name) -> (phase, batch, tokens) | None`` for an engine's step annotations."""

    def register(fn: EngineParser) -> EngineParser:
        if engine in _ENGINE_PARSERS:
            raise ValueError(f"engine parser {engine!r} registered twice")
        _ENGINE_PARSERS[engine] = fn
        return fn

    return register


#: sglang forward modes -> phase (IDLE and unknown modes are not passes).
SGLANG_MODES = {"EXTEND": PREFILL, "PREFILL": PREFILL, "DRAFT_EXTEND": PREFILL, "MIXED": MIXED,
                "DECODE": DECODE, "TARGET_VERIFY": DECODE}
_SGLANG = re.compile(r"^step\[(?P<mode>[A-Z_]+)(?P<attrs>[^\]]*)\]$")
_VLLM = re.compile(r"^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)$")


@engine_parser("sglang")
def _sglang(name: str) -> tuple | None:
    found = _SGLANG.match(name)
    phase = SGLANG_MODES.get(found.group("mode")) if found else None
    if phase is None:
        return None
    attrs = dict(re.findall(r"(\w+)=(\d+)", found.group("attrs")))
    batch = int(attrs["bs"]) if "bs" in attrs else None
    tokens = int(attrs["toks"]) if "toks" in attrs else (batch if phase == DECODE else None)
    return phase, batch, tokens


@engine_parser("vllm")
def _vllm(name: str) -> tuple | None:
    found = _VLLM.match(name)
    if found is None:
        return None
    ctx_reqs, ctx_tokens, gen_reqs, gen_tokens = (int(g) for g in found.groups())
    if ctx_reqs + gen_reqs == 0:
        return None
    phase = MIXED if ctx_reqs and gen_reqs else (PREFILL if ctx_reqs else DECODE)
    return phase, ctx_reqs + gen_reqs, ctx_tokens + gen_tokens


def parse_engine_step(name: str) -> tuple[str, str, int | None, int | None] | None:
    """(engine, phase, batch, tokens) of a serving engine's step annotation, else None."""
    for engine, parse in _ENGINE_PARSERS.items():
        parsed = parse(name)
        if parsed is not None:
            return (engine, *parsed)
    return None


# ---------------------------------------------------------------- windows


#: A table of windows while it is being assembled: column name -> array (one DataFrame at the end).
Columns = dict[str, np.ndarray]


def phase_windows(events: pd.DataFrame) -> pd.DataFrame:
    """One row per phase window (see the module docstring for the sources, in order)."""
    return pd.DataFrame(window_columns(events))


def window_columns(events: pd.DataFrame) -> Columns:
    """``phase_windows`` as a dict of its columns (numpy arrays)."""
    marks = _prefer_user_marks(_mark_windows(events))
    parts = [marks]
    if not (marks["phase"] == STEP).any():
        parts.append(_profiler_step_windows(events))
    if not np.isin(marks["phase"], PASS_PHASES).any():
        engine = _engine_windows(events)
        parts.append(engine if _size(engine) else _guessed_passes(events, _concat(parts)))
    windows = _concat(parts)
    order = np.lexsort((windows["start_ns"], windows["rank"]))  # by rank, then start; stable
    return {name: values[order] for name, values in windows.items()}


def _size(columns: Columns) -> int:
    return len(columns["start_ns"])


def _concat(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in WINDOW_COLUMNS}


def _take(columns: Columns, rows: np.ndarray) -> Columns:
    return {name: values[rows] for name, values in columns.items()}


def _frame(**columns) -> Columns:
    """Window columns in their types: numbers as float64 (NaN for null), times and ranks int64, text as objects."""
    n = len(columns["start_ns"])
    data = {}
    for name in WINDOW_COLUMNS:
        value = columns.get(name)
        if name in ("batch_size", "tokens", "generation", "step"):
            value = np.full(n, np.nan) if value is None else _floats(value)
        elif name in ("rank", "start_ns", "end_ns"):
            value = np.zeros(n, np.int64) if value is None else np.asarray(value).astype(np.int64)
        elif value is None:
            value = np.full(n, None, dtype=object)
        else:
            value = _objects(value)
        data[name] = value
    return data


def _objects(values) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(object)
    out = np.empty(len(values), dtype=object)  # element by element: a list of tuples stays one column
    out[:] = list(values)
    return out


def _floats(values) -> np.ndarray:
    """Numbers as float64 with NaN for null (nullable ints, None, pd.NA)."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, (pd.arrays.IntegerArray, pd.arrays.FloatingArray)):
        return values.to_numpy(dtype=float, na_value=np.nan)
    if isinstance(values, (np.ndarray, pd.arrays.NumpyExtensionArray)) and np.asarray(values).dtype.kind in "iuf":
        return np.asarray(values).astype(np.float64)
    if isinstance(values, list) and all(v is None or type(v) in (int, float) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    series = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _ranks(rows: pd.DataFrame) -> np.ndarray:
    return rows["rank"].to_numpy(np.int64) if "rank" in rows else np.zeros(len(rows), np.int64)


def _mark_windows(events: pd.DataFrame) -> Columns:
    at = np.flatnonzero(is_kind(events, Kind.PHASE.value))
    if not len(at):  # (most imported traces: no column need be read)
        return _frame(start_ns=[])
    parsed = _parse_extras(texts_at(events["extra"], at))
    start = events["start_ns"].to_numpy(np.int64)[at]
    name_codes, name_labels = label_codes(events["name"])
    return _frame(
        phase=np.append(name_labels, np.nan)[name_codes[at]], rank=ranks(events)[at], start_ns=start,
        end_ns=start + int_values(events["duration_ns"])[at],
        batch_size=float_values(events["batch_size"])[at], tokens=float_values(events["token_count"])[at],
        generation=[p.get("generation") for p in parsed], step=[p.get("step") for p in parsed],
        source=[p.get("source", "mark") for p in parsed],
    )


#: Mark sources written by phase detection (not by the user).
_DETECTED_SOURCES = ("forward_hook", "inferred", "transformers")


def _prefer_user_marks(marks: Columns) -> Columns:
    """A label the user marked with ``profkit.phase`` drops the forward hook's marks of that label.

    ``with profkit.phase("prefill"): model(prompt)`` under no_grad would otherwise count each pass twice.
    """
    source = marks["source"]
    user = set(marks["phase"][source == "user"])
    if not user:
        return marks
    detected = np.array([s in _DETECTED_SOURCES for s in source], dtype=bool)
    user_label = np.array([p in user for p in marks["phase"]], dtype=bool)
    return _take(marks, np.flatnonzero(~(user_label & detected)))


def _parse_extras(extra) -> list[dict]:
    cache: dict[Any, dict] = {}
    out = []
    for text in np.asarray(extra, dtype=object).tolist():  # phase marks only: a small table
        if text not in cache:
            try:
                value = json.loads(text) if isinstance(text, str) and text else {}
            except ValueError:
                value = {}
            cache[text] = value if isinstance(value, dict) else {}
        out.append(cache[text])
    return out


def _named(events: pd.DataFrame, kinds: tuple[str, ...], test: Callable[[str], Any]) -> tuple[np.ndarray, list]:
    """Positions of the rows of ``kinds`` whose name passes ``test`` (once per unique name), with the results."""
    rows = is_kind(events, *kinds)
    results = per_label(events["name"], test, null=None, dtype=object, rows=rows)
    at = np.flatnonzero(rows & (results != None))  # element-wise: a test's None is a miss
    return at, list(results[at])


def _window_times(events: pd.DataFrame, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start_ns, end_ns) of the rows at ``at`` (a null duration ends where it starts)."""
    start = events["start_ns"].to_numpy(np.int64)[at]
    return start, start + int_values(events["duration_ns"])[at]


def _profiler_step_windows(events: pd.DataFrame) -> Columns:
    at, found = _named(events, (Kind.ANNOTATION.value,), _PROFILER_STEP.match)
    start, end = _window_times(events, at)
    return _frame(phase=np.full(len(at), STEP, dtype=object), rank=ranks(events)[at], start_ns=start, end_ns=end,
                  step=[int(m.group(1)) for m in found], source=np.full(len(at), "ProfilerStep", dtype=object))


def _engine_windows(events: pd.DataFrame) -> Columns:
    at, found = _named(events, _HOST_RANGE_KINDS, parse_engine_step)
    start, end = _window_times(events, at)
    return _frame(phase=[f[1] for f in found], rank=ranks(events)[at], start_ns=start, end_ns=end,
                  batch_size=[f[2] for f in found], tokens=[f[3] for f in found], source=[f[0] for f in found])


#: ops whose input tells a pass's token shape -> index of that input; the first kind present in a
#: window wins (an embedding's ids are unambiguous; a matmul may be a rotary or attention product).
TOKEN_OPS = {"aten::embedding": 1, "aten::linear": 0, "aten::matmul": 0}


def _guessed_passes(events: pd.DataFrame, known: Columns) -> Columns:
    """Passes from the token dimension of each candidate window's first embedding/projection op."""
    names = label_codes(events["name"])
    if label_startswith(names, _BACKWARD).any():
        return _frame(start_ns=[])  # a training trace: its forwards are not generation passes
    module_frame = label_startswith(names, _MODULE_FRAME)
    frames = np.flatnonzero(is_kind(events, Kind.PYTHON_FUNCTION.value) & module_frame)
    if len(frames):
        frames = _outermost(frames, events)
        start, end = _window_times(events, frames)
        candidates = _frame(rank=ranks(events)[frames], start_ns=start, end_ns=end)
    else:
        candidates = _take(known, np.flatnonzero(known["phase"] == STEP))
    if not _size(candidates):
        return _frame(start_ns=[])
    priority = label_table(names, {name: i for i, name in enumerate(TOKEN_OPS)}.get, null=None, dtype=object)
    ops = np.flatnonzero(is_kind(events, Kind.CPU_OP.value) & (priority != None))
    pos = assign_to_windows(events["start_ns"].to_numpy(np.int64)[ops], ranks(events)[ops], candidates)
    ops, pos = ops[pos >= 0], pos[pos >= 0]
    # The first op of each window by (priority, start), ties in row order.
    order = np.lexsort((events["start_ns"].to_numpy(np.int64)[ops], priority[ops].astype(np.int64)))
    _, first_at = np.unique(pos[order], return_index=True)
    first = order[np.sort(first_at)]
    shape_codes, shape_labels = label_codes(events["input_shapes"])
    shape = [_token_shape(names[1][names[0][row]], shape_labels[shape_codes[row]] if shape_codes[row] >= 0 else None)
             for row in ops[first]]
    batch = np.array([s[0] if s else np.nan for s in shape], dtype=float)
    seq = np.array([s[1] if s else np.nan for s in shape], dtype=float)
    win = _take(candidates, pos[first])
    ok = np.isfinite(seq)
    return _frame(phase=np.where(seq > 1, PREFILL, DECODE)[ok], rank=win["rank"][ok],
                  start_ns=win["start_ns"][ok], end_ns=win["end_ns"][ok],
                  batch_size=batch[ok], tokens=(batch * seq)[ok],
                  source=np.full(int(ok.sum()), "token_shape", dtype=object))


def _outermost(frames: np.ndarray, events: pd.DataFrame) -> np.ndarray:
    """The module frames (row positions) with no module frame above them (ancestor walk over parent ids)."""
    parent = _positions(events["event_id"].to_numpy(np.int64), events["parent_id"])
    is_frame = np.zeros(len(events), np.int64)
    is_frame[frames] = 1
    covered = _ancestor_value(parent, is_frame, include_self=False, rows=frames)
    return frames[covered == 0]


def _token_shape(name: str, shapes_json) -> tuple[int, int] | None:
    try:
        shapes = json.loads(shapes_json) if isinstance(shapes_json, str) else None
        shape = shapes[TOKEN_OPS[name]]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        return None
    if name == "aten::embedding" and len(shape) == 2:
        return shape[0], shape[1]
    if name != "aten::embedding" and len(shape) == 3:
        return shape[0], shape[1]
    return None


def assign_to_windows(t_ns: np.ndarray, rank: np.ndarray, windows: pd.DataFrame | Columns) -> np.ndarray:
    """Position (in ``windows``) of the window holding each time, per rank; -1 when none.

    Windows of one rank are taken in start order; where they overlap, the later one wins.
    """
    t_ns = np.asarray(t_ns, np.int64)
    rank = np.asarray(rank, np.int64)
    out = np.full(len(t_ns), -1, np.int64)
    w_start = np.asarray(windows["start_ns"], np.int64)
    if len(w_start) == 0 or len(t_ns) == 0:
        return out
    w_rank, w_end = np.asarray(windows["rank"], np.int64), np.asarray(windows["end_ns"], np.int64)
    for r in np.unique(w_rank):
        mine = np.flatnonzero(w_rank == r)
        order = mine[np.argsort(w_start[mine], kind="stable")]
        starts = w_start[order]
        ends = w_end[order]
        sel = rank == r
        i = np.searchsorted(starts, t_ns[sel], side="right") - 1
        at = np.maximum(i, 0)
        out[sel] = np.where((i >= 0) & (t_ns[sel] < ends[at]), order[at], -1)
    return out


def _ancestor_value(parent_pos: np.ndarray, own: np.ndarray, *, include_self: bool = True,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Each row's own nonzero value, else its nearest ancestor's (one vectorized step per level).

    With ``rows`` (positions), only those rows' values, in that order.
    """
    rows = np.arange(len(own)) if rows is None else np.asarray(rows, np.int64)
    value = own[rows].copy() if include_self else np.zeros(len(rows), dtype=own.dtype)
    at = np.flatnonzero(value == 0)  # rows still looking, and the ancestor they look at
    current = parent_pos[rows[at]]
    for _ in range(1024):
        live = current >= 0
        at, current = at[live], current[live]
        if not len(at):
            break
        found = own[current]
        value[at] = found
        open_ = found == 0
        at, current = at[open_], parent_pos[current[open_]]
    return value
