"""Training steps: one row per ``train_step`` window, and their summary (median step, forward/backward/
optimizer split, host gaps, MFU, what the device waited on).

A classified row belongs to the step whose window holds its anchor (phases.py: a CPU op's start, a
kernel's launching op's start); its training part (0 forward, 1 backward, 2 optimizer) is the anchor's.
The per-step sums are numpy over the classified table's columns, equal to what pandas' groupby gives
(group_sums.py); the step table is a dict of numpy columns (``PhaseAnalysis.steps``: its DataFrame).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..trace.schema import Kind
from .classes import OpClass
from .columns import int_values, is_kind, label_codes
from .group_sums import float_sums, int_sums
from .hardware import Ceilings
from .intervals import merge_intervals, overlap_ns
from .percentiles import percentiles
from .phase_windows import TRAIN_STEP, _ranks, _token_shape, assign_to_windows, startup_left_out, startup_steps

PARTS = ("forward", "backward", "optimizer")
_STEP_WINDOW_COLUMNS = ("step", "rank", "start_ns", "end_ns", "effective_end_ns")


def step_columns(windows: dict[str, Any], rows, anchors, events) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """The step table, one row per training step, as a dict of columns (None: no steps), and the dtype
    of most of its contraction flop.

    ``windows``: the phase windows as a dict of columns (with ``effective_end_ns``); ``rows``: the
    classified table (``EventTable`` or DataFrame); ``anchors``: per classified row its ``t_ns``,
    ``rank`` and ``part``; ``events``: the trace's events.
    """
    at = np.flatnonzero(np.asarray(windows["phase"], dtype=object) == TRAIN_STEP)
    if not len(at):
        return None, None
    steps = {name: np.asarray(windows[name])[at] for name in _STEP_WINDOW_COLUMNS}
    n = len(at)
    pos = assign_to_windows(anchors.t_ns, anchors.rank, steps)
    work = np.flatnonzero((pos >= 0) & rows["device_work"].to_numpy(bool))
    window = pos[work]
    part_ns = _part_times(window, anchors.part[work], int_values(rows["time_ns"])[work], n)
    flops = np.zeros(n)
    if len(work):
        present, ids = np.unique(window, return_inverse=True)
        flops[present] = float_sums(np.asarray(rows["flops"].to_numpy(np.float64))[work][None, :],
                                    ids.reshape(-1), len(present))[0][0]
    start = steps["start_ns"].astype(np.int64)
    duration = steps["effective_end_ns"].astype(np.int64) - start
    busy = _busy_in_windows(rows, steps)
    samples, tokens = _step_batches(events, steps)
    batch = np.asarray(windows["batch_size"], dtype=np.float64)[at]
    recorded_tokens = np.asarray(windows["tokens"], dtype=np.float64)[at]
    with np.errstate(divide="ignore", invalid="ignore"):
        achieved = flops / (duration / 1e9)
    source = np.asarray(windows["source"], dtype=object)[at] if "source" in windows else np.full(n, None)
    table = {
        "step": steps["step"],
        "rank": steps["rank"],
        "startup": startup_steps(steps["step"], source),
        "start_ns": steps["start_ns"],
        "time_ns": duration,
        **{f"{part}_ns": part_ns[k] for k, part in enumerate(PARTS)},
        "device_busy_ns": busy,
        "host_gap_ns": np.maximum(duration - busy, 0),
        "flops": flops,
        "samples": np.where(np.isnan(batch), samples, batch),
        "tokens": np.where(np.isnan(recorded_tokens), tokens, recorded_tokens),
        "achieved_flops_per_s": achieved,
    }
    return table, _dominant_dtype(rows, work)


def _part_times(window: np.ndarray, part: np.ndarray, time_ns: np.ndarray, steps: int) -> list[np.ndarray]:
    """Device time per step of each part (0 forward, 1 backward, 2 optimizer), typed as the pandas
    table of step x part sums (unstacked, missing cells 0) types them: int64 when every step has
    work and every step has every part that ran, else float64 (a part that never ran: float zeros)."""
    key = window * len(PARTS) + part
    sums = int_sums(time_ns, key, steps * len(PARTS)).reshape(steps, len(PARTS))
    counts = np.bincount(key, minlength=steps * len(PARTS)).reshape(steps, len(PARTS))
    ran = counts.sum(axis=0) > 0
    complete = bool((counts.sum(axis=1) > 0).all() and (counts[:, ran] > 0).all())
    return [sums[:, k] if complete and ran[k] else sums[:, k].astype(np.float64) for k in range(len(PARTS))]


def _busy_in_windows(rows, steps: dict[str, np.ndarray]) -> np.ndarray:
    """Device busy time (union of device-work rows) inside each step window."""
    busy = np.zeros(len(steps["start_ns"]), np.int64)
    work = rows["device_work"].to_numpy(bool)
    start = int_values(rows["start_ns"])
    end = start + int_values(rows["duration_ns"])
    ranks = _ranks(rows)
    step_rank = steps["rank"].astype(np.int64)
    for r in np.unique(step_rank):
        mine = work & (ranks == r)
        s, e = merge_intervals(start[mine], end[mine])
        sel = step_rank == r
        busy[sel] = overlap_ns(s, e, steps["start_ns"].astype(np.int64)[sel],
                               steps["effective_end_ns"].astype(np.int64)[sel])
    return busy


def _step_batches(events, steps: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Samples and tokens per step from its token-embedding lookups ([batch, seq] ids): every lookup
    in the step of the table its first lookup reads, summed (gradient accumulation looks up once per
    micro-batch; a position embedding reads another table and is not counted again)."""
    samples = np.full(len(steps["start_ns"]), np.nan)
    tokens = np.full(len(steps["start_ns"]), np.nan)
    name_codes, name_labels = label_codes(events["name"])
    embedding = np.append(name_labels == "aten::embedding", False)[name_codes]  # code -1 (null) reads False
    ops = np.flatnonzero(is_kind(events, Kind.CPU_OP.value) & embedding)
    if not len(ops):
        return samples, tokens
    start = events["start_ns"].to_numpy(np.int64)[ops]
    pos = assign_to_windows(start, _ranks(events)[ops], steps)
    inside = pos >= 0
    ops, start, pos = ops[inside], start[inside], pos[inside]
    order = np.lexsort((start, pos))  # per window by start, ties in row order (lexsort is stable)
    ops, pos = ops[order], pos[order]
    shape_codes, shape_labels = label_codes(events["input_shapes"])
    codes = shape_codes[ops]
    # Each distinct shapes text read once: (table id, batch, tokens); table -1: no [batch, seq] lookup.
    table, batch, count = np.full(len(ops), -1), np.zeros(len(ops)), np.zeros(len(ops))
    tables: dict[tuple, int] = {}
    for code in np.unique(codes[codes >= 0]).tolist():
        text = shape_labels[code]
        shape, weight = _token_shape("aten::embedding", text), _table_shape(text)
        if shape and weight:
            at = codes == code
            table[at] = tables.setdefault(weight, len(tables))
            batch[at], count[at] = shape[0], shape[0] * shape[1]
    read = table >= 0
    ops_pos, table, batch, count = pos[read], table[read], batch[read], count[read]
    if not len(ops_pos):
        return samples, tokens
    windows, first = np.unique(ops_pos, return_index=True)
    first_table = np.full(len(samples), -1)
    first_table[windows] = table[first]
    same = table == first_table[ops_pos]
    samples[windows] = np.bincount(ops_pos[same], weights=batch[same], minlength=len(samples))[windows]
    tokens[windows] = np.bincount(ops_pos[same], weights=count[same], minlength=len(samples))[windows]
    return samples, tokens


def _table_shape(shapes_text) -> tuple[int, int] | None:
    """The embedding table's [rows, dim] of an aten::embedding call's recorded shapes."""
    try:
        weight = json.loads(shapes_text)[0]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return tuple(weight) if isinstance(weight, list) and len(weight) == 2 else None


def _dominant_dtype(rows, work: np.ndarray) -> str | None:
    """The dtype with the most contraction flop among the ``work`` rows (None: no contraction with a dtype)."""
    category_codes, category_labels = label_codes(rows["category"])
    contraction = work[np.append(category_labels == OpClass.CONTRACTION.value, False)[category_codes[work]]]
    dtype_codes, dtype_labels = label_codes(rows["dtype"])
    codes = dtype_codes[contraction]
    if not (codes >= 0).any():
        return None
    used = np.unique(codes[codes >= 0])
    names = dtype_labels[used].astype(str)
    order = np.argsort(names, kind="stable")  # groups numbered in sorted dtype order, as groupby does
    group_of_code = np.full(len(dtype_labels) + 1, -1, np.int64)  # code -1 (no dtype): no group
    group_of_code[used[order]] = np.arange(len(used))
    flops = rows["flops"].to_numpy(np.float64)[contraction]
    sums = float_sums(flops[None, :], group_of_code[codes].astype(np.intp), len(used))[0][0]
    return str(names[order][int(np.argmax(sums))])


def training_summary(steps: dict[str, np.ndarray] | None, dtype: str | None, ceilings: Ceilings, events,
                     notes: list[str]) -> dict | None:
    """Median step, its split, host gaps, MFU against the datasheet (and calibrated) peak (None: no steps).
    ``steps``: ``step_columns``."""
    if steps is None or not len(steps["time_ns"]):
        return None
    listed = len(steps["time_ns"])
    startup = startup_left_out(steps.get("startup", np.zeros(listed, dtype=bool)))
    if startup.any():  # figures of the steady steps: without the start-up
        steps = {name: np.asarray(values)[~startup] for name, values in steps.items()}
        notes.append("step 1 ran from the start of recording (start-up and the first iteration): "
                     "left out of the median, split, MFU and rates")
    time_ns = steps["time_ns"]
    time_s = time_ns.sum() / 1e9
    achieved = steps["flops"].sum() / time_s if time_s else None

    def mfu(spec) -> float | None:
        if spec is None or achieved is None or ceilings.what_if:
            return None
        peak = spec.peak_for(dtype, matrix=True)
        return achieved / peak if peak else None

    if ceilings.what_if:
        notes.append("MFU not computed: the steps ran on another device than the one analyzed against")
    spec = ceilings.primary
    total_ns = float(time_ns.sum())
    samples = np.nansum(steps["samples"]) if not np.isnan(steps["samples"]).all() else None
    tokens = np.nansum(steps["tokens"]) if not np.isnan(steps["tokens"]).all() else None
    return {
        "steps": listed,
        "steps_summarized": len(time_ns),
        # Steps are counted per rank; the rates below are per rank (a step's time is one rank's).
        "ranks": int(len(np.unique(np.asarray(steps["rank"], dtype=np.int64)))),
        "step_time_ns": float(np.median(time_ns)),
        "step_time_percentiles_ns": percentiles(time_ns),
        **{f"{part}_ns": float(np.median(steps[f"{part}_ns"])) for part in PARTS},
        **{f"{part}_share": (float(steps[f"{part}_ns"].sum()) / total_ns if total_ns else None) for part in PARTS},
        "host_gap_ns": float(np.median(steps["host_gap_ns"])),
        "host_gap_share": float(steps["host_gap_ns"].sum()) / total_ns if total_ns else None,
        "flops_per_step": float(np.median(steps["flops"])),
        "achieved_flops_per_s": achieved,
        "dtype": dtype,
        "peak_flops_per_s": spec.peak_for(dtype, matrix=True) if spec is not None else None,
        "peak_source": _peak_source(spec, ceilings),
        "mfu": mfu(spec),
        "mfu_measured": mfu(ceilings.measured) if ceilings.measured is not None and ceilings.measured is not spec else None,
        "samples_per_s": float(samples) / (total_ns / 1e9) if samples and total_ns else None,
        "tokens_per_s": float(tokens) / (total_ns / 1e9) if tokens and total_ns else None,
        "idle": _training_idle(events, time_ns, np.asarray(steps["start_ns"], np.int64)),
    }


def _peak_source(spec, ceilings: Ceilings) -> str | None:
    if spec is None:
        return None
    kind = "datasheet" if spec is ceilings.datasheet else "measured" if spec.measured else None
    return f"{spec.name} ({kind})" if kind else spec.name


def _training_idle(events, time_ns: np.ndarray, start_ns: np.ndarray) -> dict | None:
    """Device idle time over the steps' span, by host cause (idle.idle_attribution)."""
    from .idle import idle_attribution

    start = int(start_ns.min())
    end = int((start_ns + time_ns).max())
    t_ns = events["start_ns"].to_numpy(np.int64)
    if not ((t_ns >= start) & (t_ns < end)).any():
        return None
    return idle_attribution(events, within=(start, end))
