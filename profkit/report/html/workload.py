"""Per-kernel figures for the roofline and the per-step bars, from the analyzers' classified rows.

``profkit.analyzers.classify.classify_events`` gives every kernel (every CPU
op on a CPU trace) a class, flop, ideal bytes and bound; here they are grouped
into roofline points (kernel or op name × the shapes of the op that carries the
cost) and into per-window class times. When the analyzers are not available
(or fail on an odd trace) the panels that need them are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...analyzers.phase_windows import startup_marks
from .series import MAX_POINTS, MAX_WINDOWS, phase_labels

@dataclass(frozen=True)
class Point:
    name: str
    op: str  # the op whose cost the point carries ("" when it is the point itself)
    shapes: str
    category: str
    bound: str
    count: int
    time_ns: float
    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes > 0 else math.inf

    @property
    def flops_per_s(self) -> float:
        return self.flops / (self.time_ns / 1e9) if self.time_ns > 0 else 0.0


@dataclass(frozen=True)
class Roof:
    """One ceiling set: bandwidth and the flop/s roofs (label, value), drawn solid or dashed."""

    label: str
    bytes_per_s: float
    peaks: tuple[tuple[str, float], ...]
    measured: bool


@dataclass
class Roofline:
    points: list[Point]
    roofs: list[Roof]
    device: str
    hidden: int  # groups not drawn (beyond MAX_POINTS or without flop)
    notes: list[str]


@dataclass
class Window:
    label: str
    duration_ns: int
    by_class: dict[str, float]  # class -> time_ns inside the window


def classified(ctx) -> pd.DataFrame | None:
    """The report's classified events (its sections' ``classified``, once per report) as a DataFrame."""
    from ..sections.categories import classified as report_classified

    return report_classified(ctx).frame


def roofline(ctx) -> Roofline | None:
    rows = classified(ctx)
    if rows is None or rows.empty:
        return None
    events = ctx.events
    costed = rows[rows["device_work"].to_numpy(bool) & (rows["span_ns"].to_numpy() > 0)
                  & ((rows["flops"].to_numpy() > 0) | (rows["bytes"].to_numpy() > 0))]
    if costed.empty:
        return None
    ids = pd.Index(events["event_id"].to_numpy(np.int64))
    unit = costed["unit_id"].astype("Float64").fillna(-1).to_numpy(np.int64)
    pos = ids.get_indexer(unit)
    names = events["name"].astype(str).to_numpy()
    shapes = events["input_shapes"].astype(object).fillna("").astype(str).to_numpy()
    op = np.where(pos >= 0, names[np.maximum(pos, 0)], "")
    frame = pd.DataFrame({
        "name": costed["name"].astype(str).to_numpy(),
        "op": np.where(op == costed["name"].astype(str).to_numpy(), "", op),
        "shapes": np.where(pos >= 0, shapes[np.maximum(pos, 0)], ""),
        "category": costed["category"].astype(str).to_numpy(),
        "bound": costed["bound"].astype(str).to_numpy(),
        "time_ns": costed["span_ns"].to_numpy(float),
        "flops": costed["flops"].to_numpy(float),
        "bytes": costed["bytes"].to_numpy(float),
    })
    # A group's bound is that of its longest row: sort first, then take the first.
    grouped = (frame.sort_values("time_ns", ascending=False, kind="stable")
               .groupby(["name", "op", "shapes", "category"], sort=False)
               .agg(bound=("bound", "first"), count=("time_ns", "size"), time_ns=("time_ns", "sum"),
                    flops=("flops", "sum"), bytes=("bytes", "sum"))
               .reset_index().sort_values("time_ns", ascending=False))
    drawable = grouped[(grouped["flops"] > 0) & (grouped["bytes"] > 0)]
    shown = drawable.head(MAX_POINTS)
    points = [Point(**record) for record in shown.to_dict("records")]
    device, roofs, notes = _roofs(ctx, shown)
    return Roofline(points=points, roofs=roofs, device=device, hidden=len(grouped) - len(shown), notes=notes)


def _roofs(ctx, points: pd.DataFrame) -> tuple[str, list[Roof], list[str]]:
    from ..sections.categories import ceilings as report_ceilings

    try:
        ceilings = report_ceilings(ctx)  # (the report's own: a CPU guess the fastest op outran is raised)
    except Exception as exc:  # noqa: BLE001 - an unknown --hardware already failed the report's own sections
        return "", [], [str(exc)]
    dtype = _dominant_dtype(ctx, points)
    roofs = []
    for spec in (ceilings.datasheet or (None if ceilings.measured else ceilings.primary), ceilings.measured):
        if spec is None:
            continue
        peaks = {}
        matrix = spec.peak_for(dtype, matrix=True)
        vector = spec.peak_for(dtype, matrix=False)
        if matrix:
            peaks[f"{dtype or 'fp32'} matrix" if matrix != vector else (dtype or "fp32")] = matrix
        if vector and vector != matrix:
            peaks["fp32 vector" if dtype != "fp64" else "fp64"] = vector
        roofs.append(Roof(label=spec.name, bytes_per_s=spec.memory_bytes_per_s,
                          peaks=tuple(sorted(peaks.items(), key=lambda kv: -kv[1])), measured=spec.measured))
    return ceilings.device_name or "", roofs, list(ceilings.notes)


def _dominant_dtype(ctx, points: pd.DataFrame) -> str | None:
    rows = classified(ctx)
    if rows is None or "dtype" not in rows:
        return None
    work = rows[rows["flops"].to_numpy() > 0]
    if work.empty:
        return None
    by_dtype = work.groupby(work["dtype"].astype(str))["flops"].sum()
    by_dtype = by_dtype[by_dtype.index != "None"]
    return str(by_dtype.idxmax()) if len(by_dtype) else None


def windows(ctx, names: tuple[str, ...]) -> list[Window]:
    """Class time inside each phase window named in ``names`` (first rank), oldest first.

    A row counts towards the window its start falls in. Beyond MAX_WINDOWS,
    consecutive windows are summed into bins.
    """
    events = ctx.events
    marks = events[(events["kind"] == "phase") & events["name"].astype(str).isin(names) & (events["duration_ns"] > 0)]
    if "rank" in marks and len(marks):
        marks = marks[marks["rank"] == marks["rank"].min()]
    if marks.empty:
        return []
    marks = marks[~startup_marks(marks)]  # the step that began with the recording: its start-up dwarfs them
    marks = marks.sort_values("start_ns", kind="stable")
    start = marks["start_ns"].to_numpy(np.int64)
    end = start + marks["duration_ns"].to_numpy(np.int64)
    names_ = marks["name"].astype(str)
    labels = pd.Series("", index=marks.index, dtype=object)
    for name, group in marks.groupby(names_, sort=False):
        labels.loc[group.index] = [text.split(" · ")[0] for text in phase_labels(name, group)]
    numbered = labels.to_numpy() == names_.to_numpy()  # no step number recorded: count each name's windows
    counts = marks.groupby(names_, sort=False).cumcount().to_numpy() + 1
    labels = [f"{n} {c}" if plain else text for n, c, text, plain in zip(names_, counts, labels.tolist(), numbered)]
    rows = classified(ctx)
    by_class: list[dict[str, float]] = [{} for _ in range(len(start))]
    if rows is not None and not rows.empty:
        work = rows[rows["device_work"].to_numpy(bool)]
        if "rank" in work and "rank" in marks:
            work = work[work["rank"] == marks["rank"].iloc[0]]
        t = work["start_ns"].to_numpy(np.int64)
        slot = np.searchsorted(start, t, side="right") - 1
        inside = (slot >= 0) & (t < end[np.maximum(slot, 0)])
        table = (pd.DataFrame({"slot": slot[inside], "category": work["category"].astype(str).to_numpy()[inside],
                               "time_ns": work["time_ns"].to_numpy(float)[inside]})
                 .groupby(["slot", "category"])["time_ns"].sum())
        for (s, category), value in table.items():
            by_class[int(s)][category] = float(value)
    result = [Window(label, int(e - s), c) for label, s, e, c in zip(labels, start, end, by_class)]
    if len(result) <= MAX_WINDOWS:
        return result
    size = math.ceil(len(result) / MAX_WINDOWS)
    binned = []
    for i in range(0, len(result), size):
        chunk = result[i:i + size]
        merged: dict[str, float] = {}
        for w in chunk:
            for k, v in w.by_class.items():
                merged[k] = merged.get(k, 0.0) + v
        binned.append(Window(f"{chunk[0].label} – {chunk[-1].label}", sum(w.duration_ns for w in chunk), merged))
    return binned


def roofline_from_document(section: dict) -> Roofline | None:
    """Points and ceilings from the report's ``roofline`` section alone (its top kernels), without the traces."""
    rows = [r for r in section.get("top") or [] if isinstance(r, dict)]
    points = [Point(name=str(r.get("name")), op="", shapes="", category=str(r.get("category") or "other"),
                    bound=str(r.get("bound") or "unknown"), count=int(r.get("count") or 0),
                    time_ns=float(r.get("time_ns") or 0), flops=float(r.get("flops") or 0),
                    bytes=float(r.get("bytes") or 0))
              for r in rows]
    points = [p for p in points if p.flops > 0 and p.bytes > 0 and p.time_ns > 0]
    if not points:
        return None
    hardware = section.get("hardware") if isinstance(section.get("hardware"), dict) else {}
    roofs = []
    for spec in (hardware.get("datasheet"), hardware.get("measured")):
        if not isinstance(spec, dict) or not spec.get("memory_bytes_per_s"):
            continue
        peaks = spec.get("peak_flops_per_s") or {}
        chosen = [(d, peaks[d]) for d in ("bf16", "fp16", "tf32") if peaks.get(d)][:1]
        chosen += [("fp32", peaks["fp32"])] if peaks.get("fp32") else []
        roofs.append(Roof(label=str(spec.get("name") or spec.get("key")), bytes_per_s=float(spec["memory_bytes_per_s"]),
                          peaks=tuple(sorted(((k, float(v)) for k, v in dict(chosen).items()), key=lambda kv: -kv[1])),
                          measured=bool(spec.get("measured"))))
    return Roofline(points=points, roofs=roofs, device=str(hardware.get("device_name") or ""), hidden=0,
                    notes=[str(n) for n in hardware.get("notes") or []])
