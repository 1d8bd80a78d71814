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
beyond that shortest one is time spent waiting for the late rank (a straggler's own kernels wait least).
This reads durations only, so it needs no clock common to the ranks' hosts. The instances of a
collective are matched by order: the k-th kernel of one name on each rank (NCCL runs a communicator's
collectives in the same order on every rank); a name whose count differs between ranks (a profiling
window that cut one off) is left out and named.

Pure functions over arrays; loops over ranks and collective names only (a job has a few), none over
events.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..trace.kinds import Kind
from .classes import OpClass
from .columns import kind_mask, label_codes
from .intervals import merge_intervals, overlap_ns, subtract_intervals, union_ns

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


class Waiting(NamedTuple):
    """What ``waiting_by_rank`` finds: per rank, ``matched_ns`` (the time of its collective kernels
    matched on every rank) and ``waiting_ns`` (their time beyond the fastest rank's, instance by
    instance); ``instances`` matched, and the collective names left out (``skipped``)."""

    matched_ns: dict[int, int]
    waiting_ns: dict[int, int]
    instances: int
    skipped: list[str]


def waiting_by_rank(rows: DeviceRows, name_codes: np.ndarray, name_labels: np.ndarray) -> Waiting | None:
    """Each rank's time in collectives spent waiting for the other ranks (see the module's words); None
    with fewer than two ranks that ran collectives."""
    ranks = np.unique(rows.rank[rows.collective]).tolist()
    if len(ranks) < 2:
        return None
    matched = dict.fromkeys(ranks, 0)
    waiting = dict.fromkeys(ranks, 0)
    instances, skipped = 0, []
    collective = np.flatnonzero(rows.collective)
    order = collective[np.lexsort((rows.start_ns[collective], rows.rank[collective], name_codes[collective]))]
    duration = rows.end_ns - rows.start_ns
    for code in np.unique(name_codes[order]).tolist():
        mine = order[name_codes[order] == code]
        per_rank = [duration[mine[rows.rank[mine] == r]] for r in ranks]  # (each in start order)
        if len({len(d) for d in per_rank}) != 1:
            skipped.append(str(name_labels[code]) if code >= 0 else "(no name)")
            continue
        table = np.stack(per_rank)  # rank x instance
        beyond = table - table.min(axis=0)
        for i, r in enumerate(ranks):
            matched[r] += int(table[i].sum())
            waiting[r] += int(beyond[i].sum())
        instances += table.shape[1]
    return Waiting(matched, waiting, instances, skipped)
