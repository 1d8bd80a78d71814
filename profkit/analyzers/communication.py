"""Collective communication on the GPU: how much of it other GPU work hid, and how much was exposed.

A collective kernel (NCCL's, RCCL's: the ``communication`` class) runs on a stream of its own beside
the compute kernels. Where other device work of the same rank (kernels, copies, memsets, on any
stream) ran at the same time, the communication cost nothing extra: it was *overlapped*. The rest is
*exposed*: the GPU only communicated, and a faster network or better overlap would have shortened the
run by that much (Holistic Trace Analysis calls the overlapped share "comm-comp overlap").

Per rank: the union of the collective kernels' intervals (``communication_ns``), the part of it other
device work covered (``overlapped_ns``), the ``exposed_ns`` rest, and the rank's device span. Per
collective kernel name: kernels, their time and exposed time, each kernel's own (kernels of one name
that overlap each other count twice there, once in the union).

With several ranks, each rank's *waiting*: a collective finishes on every rank at about the same time,
so the rank that reaches it last runs its kernel shortest, and on every other rank the kernel's time
beyond that shortest one is time spent waiting for the late rank (a straggler's own kernels wait least;
with some of a job's ranks only, the fastest of those given). This reads durations only, so it needs no
clock common to the ranks' hosts. An instance is the k-th kernel of one collective call on each rank:
the same c10d:: call, from the same caller, on the same message size, of the same process group
where the trace names it, in the same training step (NCCL runs a communicator's collectives in the
same order on every rank, but kernel names do not tell collectives apart, and a trace may keep only a
sample of its events). A call some rank lacks, or ran a different number of times, is left out and
named.

Pure functions over arrays; loops over ranks (a job has a few), none over events but one over the
distinct texts of the launching ops that name a process group (to read the name from it).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from ..trace.kinds import Kind
from .classes import OpClass
from .columns import int_values, kind_mask, label_codes, label_startswith, label_table, positions, texts_at
from .intervals import merge_intervals, overlap_ns, subtract_intervals, union_ns
from .json_texts import extra_codes
from .phase_windows import assign_to_windows

#: Device work: what can run beside a collective and hide it.
DEVICE_WORK = (Kind.KERNEL.value, Kind.MEMCPY.value, Kind.MEMSET.value)


class DeviceRows(NamedTuple):
    """The classified rows' (classify.classify_table) device work as arrays: each row's rank, whether it
    is device work, whether a collective kernel, and its start and end."""

    rank: np.ndarray
    device_work: np.ndarray
    collective: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray


def device_rows(rows) -> DeviceRows:
    """``DeviceRows`` of classified rows: collectives are the device rows of the communication class."""
    codes, labels = label_codes(rows["category"])
    work = kind_mask(label_codes(rows["kind"]), *DEVICE_WORK)
    collective = work & np.append(labels == OpClass.COMMUNICATION.value, False)[codes]
    rank = rows["rank"].to_numpy(np.int64) if "rank" in rows else np.zeros(len(rows), dtype=np.int64)
    start = rows["start_ns"].to_numpy(np.int64)
    return DeviceRows(rank, work, collective, start, start + rows["duration_ns"].to_numpy(np.int64))


def exposed_intervals(rows: DeviceRows) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per rank with collective kernels: the disjoint intervals when one ran and no other device work
    of that rank did (what ``check`` sums per step)."""
    out = {}
    for r in np.unique(rows.rank[rows.collective]).tolist():
        mine = rows.rank == r
        comm = merge_intervals(rows.start_ns[rows.collective & mine], rows.end_ns[rows.collective & mine])
        other = rows.device_work & ~rows.collective & mine
        out[int(r)] = subtract_intervals(comm, merge_intervals(rows.start_ns[other], rows.end_ns[other]))
    return out


def _length(intervals: tuple[np.ndarray, np.ndarray]) -> int:
    return int((intervals[1] - intervals[0]).sum())


def overlap_by_rank(rows: DeviceRows, exposed_by_rank: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """One record per rank with collective kernels: ``rank``, ``communication_ns`` (their union),
    ``overlapped_ns``, ``exposed_ns`` (``exposed_by_rank``: ``exposed_intervals(rows)``),
    ``overlapped_share`` (of ``communication_ns``), ``span_ns`` (the rank's first device start to its
    last device end) and ``exposed_share`` (of ``span_ns``)."""
    out = []
    for r, exposed in exposed_by_rank.items():
        mine = rows.rank == r
        total = union_ns(rows.start_ns[rows.collective & mine], rows.end_ns[rows.collective & mine])
        hidden = total - _length(exposed)
        work = rows.device_work & mine
        span = int(rows.end_ns[work].max() - rows.start_ns[work].min())
        out.append({
            "rank": int(r),
            "communication_ns": total,
            "overlapped_ns": hidden,
            "exposed_ns": total - hidden,
            "overlapped_share": hidden / total if total else None,
            "span_ns": span,
            "exposed_share": (total - hidden) / span if span else None,
        })
    return out


def exposed_by_kernel(rows: DeviceRows, exposed_by_rank: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per row, the ns of a collective kernel inside its rank's exposed intervals (``exposed_by_rank``:
    ``exposed_intervals(rows)``; 0 for the other rows): its duration less what other device work of its
    rank overlapped."""
    exposed = np.zeros(len(rows.start_ns), dtype=np.int64)
    for r, (exposed_start, exposed_end) in exposed_by_rank.items():
        at = np.flatnonzero(rows.collective & (rows.rank == r))
        exposed[at] = overlap_ns(exposed_start, exposed_end, rows.start_ns[at], rows.end_ns[at])
    return exposed


def by_name(name_codes: np.ndarray, name_labels: np.ndarray, collective: np.ndarray, duration_ns: np.ndarray,
            exposed_ns: np.ndarray, top: int) -> list[dict[str, Any]]:
    """The collective kernel names with the most exposed time (``top``, most first): ``name``,
    ``count``, ``time_ns``, ``exposed_ns``, ``exposed_share`` (of its own time)."""
    rows = np.flatnonzero(collective & (name_codes >= 0))
    if not len(rows):
        return []
    codes = name_codes[rows]
    count = np.bincount(codes, minlength=len(name_labels))
    time = np.bincount(codes, weights=duration_ns[rows], minlength=len(name_labels))
    exposed = np.bincount(codes, weights=exposed_ns[rows], minlength=len(name_labels))
    used = np.flatnonzero(count)
    order = used[np.lexsort((-time[used], -exposed[used]))][:top]
    return [{"name": str(name_labels[i]), "count": int(count[i]), "time_ns": int(time[i]),
             "exposed_ns": int(exposed[i]), "exposed_share": float(exposed[i] / time[i]) if time[i] else None}
            for i in order.tolist()]


#: Names of the process group's collective calls (c10d::allreduce_, c10d::alltoall_base_...): the op a
#: collective kernel's launching op (torch's record_param_comms) sits in, or launched it itself.
CALL_PREFIX = "c10d::"
#: torch's annotation of a collective inside record_param_comms: its input dims are the message's.
MESSAGE_PREFIX = "nccl:"
#: Calls whose message differs from rank to rank (each rank's own splits): their size names no instance.
PER_RANK_MESSAGES = ("alltoall", "all_to_all")
#: The key in a launching op's ``extra`` naming its communicator (recent torch, 2.13 among them, writes
#: it on record_param_comms): NCCL orders collectives per communicator, so two groups' calls differ.
GROUP_KEY = "Process Group Name"
_CALL_LEVELS = 4  # launching op, record_param_comms, the c10d:: call: a few levels up at most


class Calls(NamedTuple):
    """Which collective call each collective kernel ran (``collective_calls``): ``key``, one integer per
    distinct (call, caller, message, step, process group), the same on every rank of one events table;
    ``name``, the call's."""

    key: np.ndarray
    name: np.ndarray


def collective_calls(events, kernel_pos: np.ndarray, steps: Mapping[str, Any]) -> Calls:
    """The collective call of each kernel at ``kernel_pos`` (rows of ``events``, the table of every rank):
    the nearest op at or above the op that launched it whose name starts with ``CALL_PREFIX`` (else that
    op; else the kernel's own name); the op or annotation it was called from (its parent: the same code
    on every rank); its message (the input dims of the launching op's ``MESSAGE_PREFIX`` annotation, else
    of the launching op; none for ``PER_RANK_MESSAGES`` calls); its process group where the launching op
    names one (``GROUP_KEY``); and the training step it was launched in
    (``steps``: step windows, columns as ``phase_windows.window_columns`` gives them; the window holding
    the launching op's start, else the kernel's, on its rank; none outside them). Kernel names cannot
    tell collectives apart: NCCL names a kernel by algorithm and type (every all-to-all, and on some
    versions every collective, is one SendRecv kernel)."""
    ids = int_values(events["event_id"])
    parent = positions(ids, events["parent_id"])
    launched_by = positions(ids, events["op_id"])[kernel_pos] if "op_id" in events else np.full(len(kernel_pos), -1)
    names, shapes = label_codes(events["name"]), label_codes(events["input_shapes"])
    is_call = label_startswith(names, CALL_PREFIX)
    call = np.full(len(kernel_pos), -1, dtype=np.int64)
    at = launched_by.copy()
    for _ in range(_CALL_LEVELS):
        found = (at >= 0) & (call < 0)
        found[found] = is_call[at[found]]
        call[found] = at[found]
        at = np.where(at >= 0, parent[np.maximum(at, 0)], -1)
    call = np.where(call >= 0, call, launched_by)
    name_code = np.where(call >= 0, names[0][np.maximum(call, 0)], names[0][kernel_pos])
    message_of = np.full(len(ids) + 1, -1, dtype=np.int64)  # (position -1 reads the trailing -1)
    annotation = np.flatnonzero(label_startswith(names, MESSAGE_PREFIX) & (parent >= 0))
    message_of[parent[annotation]] = shapes[0][annotation]
    message = message_of[launched_by]
    own = np.where(launched_by >= 0, shapes[0][np.maximum(launched_by, 0)], -1)
    message = np.where(message >= 0, message, own)
    message[label_table((name_code, names[1]), lambda text: any(part in text for part in PER_RANK_MESSAGES))] = -1
    caller = np.where(call >= 0, parent[np.maximum(call, 0)], -1)
    caller_code = np.where(caller >= 0, names[0][np.maximum(caller, 0)], -1)
    group = _group_codes(events, launched_by)
    start = int_values(events["start_ns"])
    when = np.where(launched_by >= 0, start[np.maximum(launched_by, 0)], start[kernel_pos])
    window = assign_to_windows(when, int_values(events["rank"])[kernel_pos], steps)
    step = np.append(np.asarray(steps["step"], dtype=np.float64), np.nan)[window]  # (window -1: none)
    step_code = np.where(np.isfinite(step), np.nan_to_num(step, nan=-1.0), -1.0).astype(np.int64)
    parts = np.stack([name_code, caller_code, message, step_code, group])
    key = np.unique(parts, axis=1, return_inverse=True)[1].reshape(-1)
    label_of = np.append(np.asarray(names[1], dtype=object), "(no name)")
    return Calls(key.astype(np.int64), label_of[name_code])


def _group_codes(events, launched_by: np.ndarray) -> np.ndarray:
    """Per kernel, a code for the process group its launching op's ``extra`` names (``GROUP_KEY``); -1 where
    none does (older traces). Equal names get equal codes."""
    codes = np.full(len(launched_by), -1, dtype=np.int64)
    linked = np.flatnonzero(launched_by >= 0)
    if len(linked) and "extra" in events:
        def group(document: dict):
            name = document.get(GROUP_KEY)
            return None if name is None else str(name)

        codes[linked] = extra_codes(texts_at(events["extra"], launched_by[linked]), group, GROUP_KEY)[0]
    return codes


class Waiting(NamedTuple):
    """What ``waiting_by_rank`` finds: per rank, ``matched_ns`` (the time of its collective kernels
    matched on every rank), ``waiting_ns`` (their time beyond the fastest rank's, instance by
    instance) and ``last_arrivals`` (the instances where its kernel was the shortest: it reached the
    collective last, the others waited for it; a tie counts for each); ``instances`` matched, and the
    collective calls some of whose kernels were left out (``skipped``, by name)."""

    matched_ns: dict[int, int]
    waiting_ns: dict[int, int]
    last_arrivals: dict[int, int]
    instances: int
    skipped: list[str]


def waiting_by_rank(rank: np.ndarray, duration_ns: np.ndarray, start_ns: np.ndarray, calls: Calls) -> Waiting | None:
    """Each rank's time in collectives spent waiting for the other ranks (see the module's words), over
    collective kernels (one entry each: ``rank``, ``duration_ns``, ``start_ns`` and their ``calls``);
    None with fewer than two ranks. The k-th kernel of one call (key) on each rank is one instance; a call
    some rank lacks, or ran a different number of times, is left out (a profiling window, or a trace that
    keeps a sample of its events, cut it)."""
    ranks, rank_index = np.unique(rank, return_inverse=True)
    rank_index = rank_index.reshape(-1)
    if len(ranks) < 2:
        return None
    width = len(ranks)
    keys = int(calls.key.max()) + 1
    counts = np.bincount(calls.key * width + rank_index, minlength=keys * width).reshape(keys, width)
    whole = (counts == counts[:, :1]).all(axis=1) & (counts[:, 0] > 0)
    kept = np.flatnonzero(whole[calls.key])
    kept = kept[np.lexsort((start_ns[kept], rank_index[kept], calls.key[kept]))]
    # The k-th of each (call, rank) in start order: its instance number.
    run = calls.key[kept] * width + rank_index[kept]
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    instance = np.arange(len(kept)) - np.repeat(starts, np.diff(np.r_[starts, len(kept)]))
    group = np.unique(calls.key[kept] * (int(instance.max(initial=0)) + 1) + instance, return_inverse=True)[1]
    group = group.reshape(-1)
    fastest = np.full(int(group.max(initial=-1)) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(fastest, group, duration_ns[kept])
    beyond = duration_ns[kept] - fastest[group]
    matched = np.bincount(rank_index[kept], weights=duration_ns[kept], minlength=width)
    waited = np.bincount(rank_index[kept], weights=beyond, minlength=width)
    last = np.bincount(rank_index[kept][beyond == 0], minlength=width)
    skipped = sorted({str(name) for name in calls.name[~whole[calls.key]].tolist()})
    per_rank = ranks.tolist()
    return Waiting({int(r): int(matched[i]) for i, r in enumerate(per_rank)},
                   {int(r): int(waited[i]) for i, r in enumerate(per_rank)},
                   {int(r): int(last[i]) for i, r in enumerate(per_rank)}, len(fastest), skipped)
