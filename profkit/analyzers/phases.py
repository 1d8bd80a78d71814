"""Phases: prefill and decode passes, generate calls, training steps, user marks.

Splitwise (REFERENCE.md §2) in numbers from a trace: per phase its passes,
time, tokens, tokens/s, arithmetic intensity, class breakdown, roofline bound
and energy; per generate call TTFT and the times between tokens; per training
step its forward/backward/optimizer split, host gaps and MFU.

**Windows.** Everything is computed over time windows, one row each
(``phase_windows``), from the first source that has them:

1. profkit's phase marks (``prefill``/``decode``/``generate`` from the
   forward hook, ``train_step`` from the optimizer hook, user marks, and the
   importer's ``step`` marks for ProfilerStep#N);
2. ProfilerStep#N annotations (when no ``step`` marks stand for them);
3. serving-engine annotations of imported traces, when no pass marks exist:
   sglang's ``step[EXTEND bs=… toks=…]``/``step[DECODE bs=…]`` and vLLM's
   ``execute_context_N(T)_generation_M(U)``;
4. lacking all of those, passes guessed from the token dimension of the first
   embedding or projection GEMM inside each outermost ``nn.Module`` frame (or
   ProfilerStep): ``[batch, seq]`` ids or ``[batch, seq, hidden]`` input,
   seq > 1 a prefill, seq == 1 a decode. Not tried on training traces.

**Attribution.** A row of ``classify_events`` belongs to a window when its
anchor lies inside it: a CPU op's start, a kernel's launching op's start (the
kernel may run later: a window's *effective end* is stretched to the end of
the last kernel it launched, which TTFT, TBT and phase time use). Phase time
is the union of its effective windows; flop, bytes, intensity and bound come
from ``roofline.aggregate_classes`` over the rows inside.

**Generations.** TTFT = start of the generate call to the effective end of
the pass that produced the first token (the last prefill before the first
decode: a chunked prefill's last chunk). Tokens are emitted at the end of
that pass and of each decode; TBT samples are the gaps between consecutive
emissions of one call (N tokens give N−1 samples).

**Training.** Rows under an ``autograd::engine::evaluate_function: …`` range
are backward, under ``Optimizer.step#…``/``Optimizer.zero_grad#…`` optimizer,
the rest forward. Host gap = step time − device busy time inside the step.
MFU = counted flop / step time ÷ the peak for the dominant contraction dtype
(datasheet, and calibrated when measured); not given for a what-if device.

Where the windows come from is profkit/analyzers/phase_windows.py; the step table and the training
summary are profkit/analyzers/training.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .columns import is_kind, label_codes, label_startswith
from .hardware import Ceilings
from .intervals import merge_intervals
from .percentiles import PERCENTILES, percentiles  # noqa: F401  (re-exported: the report's sections use them)
from .phase_windows import (  # noqa: F401  (engine_parser, parse_engine_step, WINDOW_COLUMNS: re-exported)
    _BACKWARD,
    DECODE,
    GENERATE,
    MIXED,
    PASS_PHASES,
    PREFILL,
    STEP,
    TRAIN_STEP,
    WINDOW_COLUMNS,
    _ancestor_value,
    _positions,
    _ranks,
    assign_to_windows,
    engine_parser,
    parse_engine_step,
    phase_windows,
    startup_left_out,
    startup_steps,
    window_columns,
)
from .roofline import aggregate_labelled
from .training import PARTS, step_columns, training_summary  # noqa: F401  (PARTS: re-exported)

_OPTIMIZER = ("Optimizer.step#", "Optimizer.zero_grad#")  # name prefixes
DEVICE_KINDS = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)





# ---------------------------------------------------------------- attribution helpers




@dataclass
class _Anchors:
    """Per classified row: the time that places it in a window, its rank, its training part, its end."""

    t_ns: np.ndarray
    rank: np.ndarray
    part: np.ndarray  # 0 forward, 1 backward, 2 optimizer
    end_ns: np.ndarray
    device: np.ndarray  # kernel/memcpy/memset rows


_NO_ANCHORS = _Anchors(*(np.zeros(0, dtype=dtype) for dtype in (np.int64, np.int64, np.int64, np.int64, bool)))


def _anchors(events: pd.DataFrame, rows: pd.DataFrame) -> _Anchors:
    index = events["event_id"].to_numpy(np.int64)
    names = label_codes(events["name"])
    own_part = np.where(label_startswith(names, _BACKWARD), 1, np.where(label_startswith(names, _OPTIMIZER), 2, 0))
    op_pos = _positions(index, events["op_id"]) if "op_id" in events else np.full(len(events), -1)
    row_pos = _positions(index, rows["event_id"])
    launched_by = op_pos[row_pos]
    start = events["start_ns"].to_numpy(np.int64)
    anchor_pos = np.where(launched_by >= 0, launched_by, row_pos)
    if own_part.any():  # the part of each anchor: its own, else its nearest ancestor's
        part = _ancestor_value(_positions(index, events["parent_id"]), own_part, rows=anchor_pos)
    else:
        part = np.zeros(len(anchor_pos), dtype=own_part.dtype)
    return _Anchors(
        t_ns=start[anchor_pos],
        rank=_ranks(rows),
        part=part,
        end_ns=rows["start_ns"].to_numpy(np.int64) + rows["duration_ns"].to_numpy(np.int64),
        device=is_kind(rows, *DEVICE_KINDS),
    )


Windows = dict  # window columns (phase_windows.WINDOW_COLUMNS + effective_end_ns) -> numpy arrays


def _col(windows: Windows | pd.DataFrame, name: str, dtype: Any = None) -> np.ndarray:
    """One column of the windows (a dict of arrays, or the public DataFrame) as numpy."""
    return np.asarray(windows[name], dtype=dtype)


def _window_dict(windows: pd.DataFrame | Windows) -> Windows:
    """Window columns as numpy arrays, text with NaN for null (as the DataFrame's to_numpy gives them)."""
    if isinstance(windows, pd.DataFrame):
        return {name: windows[name].to_numpy() for name in windows.columns}
    out = dict(windows)
    for name in ("phase", "source"):
        if name in out:
            values = np.asarray(out[name], dtype=object)
            missing = pd.isna(values)
            if missing.any():
                values = values.copy()
                values[missing] = np.nan
            out[name] = values
    return out


def _per_label(windows: pd.DataFrame) -> list[tuple[Any, np.ndarray, dict[str, np.ndarray]]]:
    """Each phase label in order of appearance, the positions of its windows and their rank, start and end."""
    phase = _col(windows, "phase")
    columns = {c: _col(windows, c, np.int64) for c in ("rank", "start_ns", "end_ns")}
    out = []
    for label in pd.unique(phase):
        mine = np.flatnonzero(phase == label)
        out.append((label, mine, {c: values[mine] for c, values in columns.items()}))
    return out


def _effective_ends(windows: pd.DataFrame, anchors: _Anchors) -> np.ndarray:
    """Each window's end, stretched to the end of the last device work launched inside it."""
    end = _col(windows, "end_ns", np.int64).copy()
    if not anchors.device.any():
        return end
    t_ns, rank, work_end = anchors.t_ns[anchors.device], anchors.rank[anchors.device], anchors.end_ns[anchors.device]
    for _, mine, sub in _per_label(windows):
        pos = assign_to_windows(t_ns, rank, sub)
        hit = pos >= 0
        if hit.any():
            np.maximum.at(end, mine[pos[hit]], work_end[hit])
    return end


def _union_of(rank: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """Length of the union of [start, end) per rank, summed over ranks (ranks with a null rank left out)."""
    total = 0
    for r in pd.unique(rank):
        if pd.isna(r):
            continue
        mine = rank == r
        starts, ends = merge_intervals(start[mine], end[mine])
        total += int((ends - starts).sum())
    return total


# ---------------------------------------------------------------- the analysis


@dataclass
class PhaseAnalysis:
    """The phase tables; ``windows``, ``phases`` and ``classes`` are DataFrames of the ``*_columns``
    dicts of arrays (built on access: the report lists rows from the dicts)."""

    window_columns: Windows  # phase_windows + effective_end_ns
    phase_columns: dict[str, Any]  # one row per phase label
    class_columns: dict[str, Any] | None  # phase x class (aggregate_classes columns); None: no rows
    generation_columns: dict[str, Any] | None  # one row per generate call; None: no calls
    inference: dict | None
    step_columns: dict[str, np.ndarray] | None  # one row per training step; None: no steps (``steps``: the DataFrame)
    training: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def windows(self) -> pd.DataFrame:
        """phase_windows + effective_end_ns."""
        return pd.DataFrame(self.window_columns)

    @property
    def phases(self) -> pd.DataFrame:
        """One row per phase label (the bound and energy columns hold objects)."""
        columns = self.phase_columns
        objects = {name: pd.Series(columns[name], dtype=object) for name in _OBJECT_COLUMNS if name in columns}
        return pd.DataFrame({**columns, **objects})

    @property
    def generations(self) -> pd.DataFrame:
        """One row per generate call (``generation_table``)."""
        columns = self.generation_columns
        return pd.DataFrame(columns, columns=_GENERATION_COLUMNS)  # None: no rows

    @property
    def steps(self) -> pd.DataFrame:
        """One row per training step."""
        return pd.DataFrame() if self.step_columns is None else pd.DataFrame(self.step_columns)

    @property
    def classes(self) -> pd.DataFrame:
        """Phase x class (aggregate_classes columns)."""
        return pd.DataFrame() if self.class_columns is None else pd.DataFrame(self.class_columns)


def analyze_phases(events: pd.DataFrame, rows: pd.DataFrame, ceilings: Ceilings, tracks: list | None = None,
                   windows: pd.DataFrame | None = None) -> PhaseAnalysis:
    """All phase figures of a trace. ``rows`` is ``classify_events(events, ...)``; ``tracks`` energy tracks."""
    windows, anchors = _counted_windows(events, rows, windows)
    notes: list[str] = []
    steady = _without_startup_step(windows)  # the phase tables' windows; the steps table lists every step
    labelled = _label_rows(anchors, steady)
    phases, classes = _phase_table(steady, rows, labelled, ceilings, tracks)
    generations = generation_columns(windows)
    inference = inference_summary(windows, generations)
    steps, dtype = step_columns(windows, rows, anchors, events)
    training = training_summary(steps, dtype, ceilings, events, notes)
    if ceilings.primary is None:
        notes.append("no roofline for this device: phase bounds are unknown (pass --hardware NAME)")
    return PhaseAnalysis(windows, phases, classes, generations, inference, steps, training, notes)


def counted_windows(events: pd.DataFrame, rows: pd.DataFrame, windows: pd.DataFrame | None = None) -> Windows:
    """The phase windows as the phase analysis counts them (the start-up step still in): phase marks,
    ProfilerStep#N, serving-engine steps and detected passes (``window_columns``), each with its
    ``effective_end_ns``, and ProfilerStep windows that ran a backward pass labelled ``train_step``.
    ``rows`` is ``classify_events(events, ...)``; what ``profkit check`` budgets a phase by."""
    return _counted_windows(events, rows, windows)[0]


def _counted_windows(events: pd.DataFrame, rows: pd.DataFrame, windows: pd.DataFrame | None) -> tuple[Windows, _Anchors]:
    windows = _window_dict(window_columns(events) if windows is None else windows)
    # Without windows (most imported traces) no row is placed anywhere: skip reading every row's anchor.
    anchors = _anchors(events, rows) if len(windows["start_ns"]) else _NO_ANCHORS
    windows["effective_end_ns"] = _effective_ends(windows, anchors)
    return _label_training_steps(windows, anchors), anchors


def _without_startup_step(windows: Windows) -> Windows:
    """The windows without a training step that began with the recording (``startup_steps``), when
    other training steps exist: its start-up is no step's time (training_summary leaves it out too)."""
    steps = np.flatnonzero(_col(windows, "phase", dtype=object) == TRAIN_STEP)
    startup = np.zeros(len(_col(windows, "phase")), dtype=bool)
    startup[steps] = startup_left_out(startup_steps(_col(windows, "step")[steps],
                                                    _col(windows, "source", dtype=object)[steps]))
    if not startup.any():
        return windows
    return {name: np.asarray(values)[~startup] for name, values in windows.items()}


@dataclass
class _Labelled:
    """Classified rows repeated once per phase label whose window holds them, as positions and labels."""

    at: np.ndarray  # row positions in the classified table
    phase: pd.Categorical  # each one's phase label (categories sorted, as a groupby numbers them)

    def __len__(self) -> int:
        return len(self.at)


def _label_rows(anchors: _Anchors, windows: pd.DataFrame) -> _Labelled:
    """Which classified rows each phase label's windows hold (a row's anchor inside a window)."""
    hits, codes = [], []
    per_label = [(phase, sub) for phase, _, sub in _per_label(windows) if isinstance(phase, str)]  # (null: no rows)
    order = {phase: i for i, phase in enumerate(sorted(phase for phase, _ in per_label))}
    for phase, sub in per_label:
        pos = assign_to_windows(anchors.t_ns, anchors.rank, sub)
        hit = np.flatnonzero(pos >= 0)
        if len(hit):
            hits.append(hit)
            codes.append(np.full(len(hit), order[phase], dtype=np.int64))
    at = np.concatenate(hits) if hits else np.zeros(0, np.int64)
    code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    return _Labelled(at, pd.Categorical.from_codes(code, categories=pd.Index(sorted(order), dtype=object)))


_AGG_COLUMNS = ("flops", "bytes", "arithmetic_intensity", "achieved_flops_per_s", "achieved_bytes_per_s",
                "flop_fraction", "bandwidth_fraction", "bound")


def _phase_table(windows: Windows, rows: pd.DataFrame, labelled: _Labelled, ceilings: Ceilings,
                 tracks) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The phase table and the phase x class table, as dicts of columns."""
    records = []
    phase = _col(windows, "phase", dtype=object)
    rank = _col(windows, "rank")
    start, end = _col(windows, "start_ns", np.int64), _col(windows, "end_ns", np.int64)
    effective_end = _col(windows, "effective_end_ns", np.int64)
    tokens_of, batch_of = _col(windows, "tokens", np.float64), _col(windows, "batch_size", np.float64)
    source_of = _col(windows, "source", dtype=object)
    for label in pd.unique(phase[~pd.isna(phase)]):  # in order of appearance, as groupby(sort=False)
        at = np.flatnonzero(phase == label)
        time_ns = _union_of(rank[at], start[at], effective_end[at])
        tokens = _nansum(tokens_of[at]) if not np.isnan(tokens_of[at]).all() else np.nan
        records.append({
            "phase": label,
            "count": len(at),
            "time_ns": time_ns,
            "host_time_ns": int((end[at] - start[at]).sum()),
            "tokens": tokens,
            "tokens_per_s": tokens / (time_ns / 1e9) if time_ns and np.isfinite(tokens) else np.nan,
            "batch_size": _nanmean(batch_of[at]) if not np.isnan(batch_of[at]).all() else np.nan,
            "mean_pass_ns": float((effective_end[at] - start[at]).sum(dtype=np.float64) / np.float64(len(at))),
            "source": ",".join(sorted({str(s) for s in source_of[at] if not pd.isna(s)})) or None,
        })
    names = ["phase", "count", "time_ns", "host_time_ns", "tokens", "tokens_per_s", "batch_size", "mean_pass_ns",
             "source"]
    if not records:  # (a DataFrame of no records has object columns)
        base = {name: np.zeros(0, dtype=object) for name in names}
    else:  # the columns a DataFrame of the records would have, without building it
        base = {name: np.array([r[name] for r in records], dtype=dtype) for name, dtype in zip(names, _TABLE_TYPES)}
    n = len(records)
    phases = base["phase"]
    classes = None
    more: dict[str, Any] = {}
    if len(labelled) and n:
        per_phase, classes = aggregate_labelled(rows, ceilings, labelled.at, {"phase": labelled.phase},
                                                [(["phase"], []), (["phase", "category"], None)])
        at = {phase: i for i, phase in enumerate(np.asarray(per_phase["phase"]).tolist())}
        pos = np.array([at.get(phase, -1) for phase in phases.tolist()], dtype=np.int64)
        for column in _AGG_COLUMNS:
            more[column] = _reindexed(per_phase[column], pos) if column in per_phase else np.full(n, np.nan)
        more["device_time_ns"] = _reindexed(per_phase["time_ns"], pos)
    for column in _AGG_COLUMNS + ("device_time_ns",):
        more.setdefault(column, np.full(n, np.nan))
    bound = np.asarray(more["bound"], dtype=object)
    more["bound"] = np.where(pd.isna(bound), "unknown", bound).astype(object)
    more.update(_energy_columns(phases, windows, tracks))
    return {**base, **more}, classes


#: Types of the phase table's first columns, as a DataFrame of the records infers them.
_TABLE_TYPES = (object, np.int64, np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, object)


def _reindexed(column: pd.Series | np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``column`` at positions ``pos`` as a reindex gives it: -1 is NaN, and then integers become floats."""
    values = pd.Series(column).to_numpy() if not isinstance(column, np.ndarray) else column
    if (pos >= 0).all():
        return values[pos]
    if values.dtype.kind in "iu":
        values = values.astype(np.float64)
    elif values.dtype.kind != "f":  # bool, text: object
        values = values.astype(object)
    return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan) if len(values) else np.full(len(pos), np.nan)


def _nansum(values: np.ndarray) -> float:
    """Series.sum of a float column: NaN read as 0, numpy's sum of the rest (pandas' nansum)."""
    return np.where(np.isnan(values), 0.0, values).sum()


def _nanmean(values: np.ndarray) -> float:
    """Series.mean of a float column: the sum with NaN read as 0 over the count of the others (pandas' nanmean)."""
    missing = np.isnan(values)
    return np.where(missing, 0.0, values).sum(dtype=np.float64) / np.float64(len(values) - missing.sum())


_ENERGY_COLUMNS = ("energy_j", "avg_power_w", "j_per_token", "uncertainty_j", "uncertain")
_OBJECT_COLUMNS = ("bound", *_ENERGY_COLUMNS)  # object columns of the phase table (no str inference)


def _energy_columns(phases: np.ndarray, windows: Windows, tracks) -> dict[str, Any]:
    """The energy columns of the phase table, one row per label of ``phases`` (object arrays; None
    without telemetry)."""
    columns = {column: np.full(len(phases), None, dtype=object) for column in _ENERGY_COLUMNS}
    if not tracks or not len(phases):
        return columns
    from .energy import attribute_windows

    energy = attribute_windows(tracks, pd.DataFrame({
        "label": _col(windows, "phase"), "rank": _col(windows, "rank"),
        "start_ns": _col(windows, "start_ns"), "end_ns": _col(windows, "effective_end_ns"),
        "tokens": _col(windows, "tokens"),
    })).set_index("label")
    for column in _ENERGY_COLUMNS:
        if column in energy:
            columns[column] = pd.Series(phases, dtype=object).map(energy[column]).astype(object).to_numpy()
    return columns


# ---------------------------------------------------------------- generations: TTFT and TBT


def generation_table(windows: pd.DataFrame) -> pd.DataFrame:
    """One row per generate window: duration, passes, tokens, TTFT; ``tbt_ns`` holds its TBT samples.

    Calls and passes meet on their (rank, generation) key; arrays per key, not joins (a few
    dozen windows made pandas' groupby/join machinery most of the phase analysis' time).
    """
    columns = generation_columns(windows)
    return pd.DataFrame(columns, columns=_GENERATION_COLUMNS)  # None: no rows


_GENERATION_COLUMNS = ["generation", "rank", "start_ns", "end_ns", "duration_ns", "batch_size", "prefill_passes",
                       "decode_passes", "new_tokens", "ttft_ns", "tbt_ns", "source"]


def generation_columns(windows: Windows | pd.DataFrame) -> dict[str, Any] | None:
    """``generation_table`` as a dict of its columns (None: no generate calls)."""
    if not (_col(windows, "phase", object) == GENERATE).any():  # no generate calls: nothing to link or list
        return None
    windows = _link_generations(windows)
    phase = _col(windows, "phase", dtype=object)
    generation = _col(windows, "generation", np.float64)
    linked = ~np.isnan(generation)
    calls = np.flatnonzero((phase == GENERATE) & linked)
    if not len(calls):
        return None
    rank = _col(windows, "rank", np.int64)
    key = np.full(len(phase), -1, np.int64)  # one number per (rank, generation), in that sorted order
    _, inverse = np.unique(np.stack([rank[linked].astype(np.float64), generation[linked]]), axis=1,
                           return_inverse=True)
    key[linked] = inverse.reshape(-1)
    keys = int(key.max()) + 1
    # Offsets from the first window: epoch ns as float64 would lose ~256 ns.
    origin = int(_col(windows, "start_ns").min())
    start = _col(windows, "start_ns", np.int64) - origin
    effective_end = _col(windows, "effective_end_ns", np.int64) - origin
    prefill, decode = np.flatnonzero((phase == PREFILL) & linked), np.flatnonzero((phase == DECODE) & linked)
    first_decode = np.full(keys, np.inf)  # no decode: every prefill counts
    np.minimum.at(first_decode, key[decode], start[decode])
    before = prefill[~(start[prefill] >= first_decode[key[prefill]])]
    first_token = np.full(keys, -1, np.int64)  # the end of the last prefill chunk before the first decode
    np.maximum.at(first_token, key[before], effective_end[before])
    has_token = np.zeros(keys, bool)
    has_token[key[before]] = True
    # Emissions: the first token, then each decode; TBT samples are the gaps within one call.
    emission_key = np.concatenate([np.flatnonzero(has_token), key[decode]])
    emission_t = np.concatenate([first_token[has_token], effective_end[decode]])
    order = np.lexsort((emission_t, emission_key))
    emission_key, emission_t = emission_key[order], emission_t[order]
    same_call = emission_key[1:] == emission_key[:-1]
    gap_key, gap = emission_key[1:][same_call], np.diff(emission_t)[same_call].astype(np.float64)
    cuts = np.flatnonzero(np.diff(gap_key)) + 1
    tbt_of = {int(k[0]): g.tolist() for k, g in zip(np.split(gap_key, cuts), np.split(gap, cuts)) if len(k)}
    n_prefill = np.bincount(key[prefill], minlength=keys).astype(np.int64)[key[calls]]
    n_decode = np.bincount(key[decode], minlength=keys).astype(np.int64)[key[calls]]
    call_start = _col(windows, "start_ns", np.int64)[calls]
    end = np.maximum(_col(windows, "end_ns", np.int64)[calls], _col(windows, "effective_end_ns", np.int64)[calls])
    ttft = np.where(has_token[key[calls]], first_token[key[calls]], np.nan) - (call_start - origin)
    tbt = np.empty(len(calls), dtype=object)  # one list per call (element by element: never a 2-D array)
    for i, k in enumerate(key[calls].tolist()):
        tbt[i] = list(tbt_of.get(k, []))
    return {
        "generation": generation[calls].astype(np.int64),
        "rank": rank[calls],
        "start_ns": call_start,
        "end_ns": end,
        "duration_ns": end - call_start,
        "batch_size": _col(windows, "batch_size", np.float64)[calls],
        "prefill_passes": n_prefill,
        "decode_passes": n_decode,
        "new_tokens": n_decode + (n_prefill > 0),
        "ttft_ns": ttft,
        "tbt_ns": tbt,
        "source": _col(windows, "source")[calls],
    }


def _link_generations(windows: pd.DataFrame | Windows) -> pd.DataFrame | Windows:
    """Generate windows without an id (user marks) get one, and the passes inside them take it."""
    loose = (_col(windows, "phase", object) == GENERATE) & np.isnan(_col(windows, "generation", np.float64))
    if not loose.any():
        return windows
    windows = pd.DataFrame(windows, copy=True)  # user-marked calls are rare: the table's way, on a copy
    windows.loc[loose, "generation"] = -1.0 - np.flatnonzero(loose)  # never a hook's id
    holders = windows[loose]
    passes = windows[windows["phase"].isin((PREFILL, DECODE))]
    pos = assign_to_windows(passes["start_ns"].to_numpy(np.int64), passes["rank"].to_numpy(np.int64), holders)
    windows.loc[passes.index[pos >= 0], "generation"] = holders["generation"].to_numpy()[pos[pos >= 0]]
    return windows


def inference_summary(windows: pd.DataFrame | Windows, generations: pd.DataFrame | dict | None) -> dict | None:
    """Splitwise's metrics over the whole trace; None without prefill/decode passes. ``generations``:
    ``generation_table`` (or ``generation_columns``)."""
    phase = _col(windows, "phase", dtype=object)
    passes = np.flatnonzero(np.isin(phase, PASS_PHASES))
    if not len(passes):
        return None
    rank, start = _col(windows, "rank"), _col(windows, "start_ns", np.int64)
    effective_end, tokens_of = _col(windows, "effective_end_ns", np.int64), _col(windows, "tokens", np.float64)

    def rate(label: str) -> tuple[float | None, float | None, int]:
        group = passes[phase[passes] == label]
        if not len(group):
            return None, None, 0
        time_ns = _union_of(rank[group], start[group], effective_end[group])
        tokens = float(_nansum(tokens_of[group])) if not np.isnan(tokens_of[group]).all() else None
        return tokens, (tokens / (time_ns / 1e9) if tokens is not None and time_ns else None), len(group)

    prefill_tokens, prefill_rate, prefill_passes = rate(PREFILL)
    decode_tokens, decode_rate, decode_passes = rate(DECODE)
    calls = 0 if generations is None else len(generations["rank"])
    ttft = np.asarray(generations["ttft_ns"], float) if calls else np.zeros(0)
    tbt = [g for samples in generations["tbt_ns"] for g in samples] if calls else []
    finite_ttft = ttft[np.isfinite(ttft)]
    durations = np.asarray(generations["duration_ns"], float) if calls else np.zeros(0)
    batch = np.asarray(generations["batch_size"], float) if calls else np.zeros(0)
    new_tokens = np.asarray(generations["new_tokens"], float) * np.where(np.isnan(batch), 1.0, batch) \
        if calls else np.zeros(0)
    return {
        "generate_calls": int(calls),
        "ttft_ns": float(np.median(finite_ttft)) if len(finite_ttft) else None,
        "ttft_percentiles_ns": percentiles(finite_ttft),
        "tbt_ns": percentiles(tbt),
        "tbt_samples": len(tbt),
        "e2e_latency_ns": percentiles(durations),
        "generated_tokens": float(new_tokens.sum()) if len(new_tokens) else None,
        "generate_tokens_per_s": float(new_tokens.sum() / (durations.sum() / 1e9)) if durations.sum() else None,
        "prefill_passes": prefill_passes,
        "decode_passes": decode_passes,
        "prefill_tokens": prefill_tokens,
        "decode_tokens": decode_tokens,
        "prefill_tokens_per_s": prefill_rate,
        "decode_tokens_per_s": decode_rate,
        "sources": sorted({str(s) for s in _col(windows, "source", dtype=object)[passes] if not pd.isna(s)}),
    }


# ---------------------------------------------------------------- training steps


def _label_training_steps(windows: Windows, anchors: _Anchors) -> Windows:
    """Without ``train_step`` marks, ProfilerStep windows that ran a backward pass become ``train_step``."""
    backward = anchors.part == 1
    if not backward.any():  # no backward pass ran: no step is a training step
        return windows
    phase = windows["phase"]
    steps = np.flatnonzero(phase == STEP)
    if not len(steps) or (phase == TRAIN_STEP).any():
        return windows
    pos = assign_to_windows(anchors.t_ns[backward], anchors.rank[backward],
                            {c: _col(windows, c)[steps] for c in ("rank", "start_ns", "end_ns")})
    trained = steps[np.unique(pos[pos >= 0])]
    if len(trained) == 0:
        return windows
    phase = phase.copy()
    phase[trained] = TRAIN_STEP
    return {**windows, "phase": phase}
