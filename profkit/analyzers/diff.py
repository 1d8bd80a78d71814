"""What changed between two traces: per class, per op and per kernel.

Two sources, both optional per section:

- tables computed here from the events: kernels by name (count, time), ops by
  name *and input shapes* (count, CPU self time, GPU time of the kernels they
  launched, flop), classes (GPU time per operator class of the launching op);
- the report documents (``profkit.report.build_report``): every section that
  is a list of records (``categories``, ``phases``, ``top_ops``...) or a flat
  record (``totals``, ``energy``...) is compared field by field on its
  numeric fields, so figures other sections add (flop, energy) show up here
  without changes to this module. A section missing on either side is skipped.

Ops match by (name, shapes), which also holds across devices: the H100 and
MI300X runs of one model run the same aten ops on the same shapes, while their
kernel names have nothing in common (``cross_device`` says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..trace.schema import Kind
from .intervals import self_time_ns
from .summary import DEVICE_WORK_KINDS

#: Fields that name a record in a report section, most specific first.
KEY_FIELDS = ("class", "op_class", "category", "phase", "name", "metric", "key", "device", "rank")
#: Record fields treated as identity, never compared.
_IDENTITY_FIELDS = frozenset({"rank", "index", "device_index", "order", "rule"})


# ---------------------------------------------------------------- tables from events


def kernel_table(events: pd.DataFrame) -> pd.DataFrame:
    """GPU work (kernels, copies, memsets) per name: ``name, kind, count, time_ns``."""
    work = events[events["kind"].isin(DEVICE_WORK_KINDS)]
    if work.empty:
        return pd.DataFrame({"name": [], "kind": [], "count": [], "time_ns": []})
    return (
        work.assign(name=work["name"].astype(str), kind=work["kind"].astype(str))
        .groupby(["name", "kind"], observed=True, sort=False)
        .agg(count=("duration_ns", "size"), time_ns=("duration_ns", "sum"))
        .reset_index()
    )


def op_table(events: pd.DataFrame) -> pd.DataFrame:
    """CPU ops per (name, shapes): ``count, cpu_self_time_ns, gpu_time_ns, flop``.

    GPU time is the time of the device work each op launched itself (a GPU
    event's ``op_id`` is its innermost launching op), so ops do not double count.
    """
    columns = ["name", "input_shapes", "count", "cpu_self_time_ns", "gpu_time_ns", "flop"]
    host = events[events["kind"].isin([Kind.CPU_OP.value, Kind.ANNOTATION.value, Kind.RUNTIME.value,
                                       Kind.PYTHON_FUNCTION.value])]
    ops = host[host["kind"] == Kind.CPU_OP.value]
    if ops.empty:
        return pd.DataFrame({c: [] for c in columns})
    self_ns = self_time_ns(host).loc[ops.index]
    work = events[events["kind"].isin(DEVICE_WORK_KINDS) & events["op_id"].notna()]
    gpu_ns = work.groupby("op_id", observed=True)["duration_ns"].sum()
    table = pd.DataFrame(
        {
            "name": ops["name"].astype(str),
            "input_shapes": ops["input_shapes"].astype(object).fillna("").astype(str),
            "cpu_self_time_ns": self_ns.to_numpy(),
            "gpu_time_ns": ops["event_id"].map(gpu_ns).fillna(0).astype("int64").to_numpy(),
            "flop": _op_flop(ops),
        }
    )
    return (
        table.groupby(["name", "input_shapes"], sort=False)
        .agg(count=("flop", "size"), cpu_self_time_ns=("cpu_self_time_ns", "sum"),
             gpu_time_ns=("gpu_time_ns", "sum"), flop=("flop", "sum"))
        .reset_index()[columns]
    )


def class_table(events: pd.DataFrame) -> pd.DataFrame:
    """Time per operator class, as the report's ``categories`` counts it (``classify.classify_table``):
    on a GPU trace the device work, each row in the class of the unit of work that launched it (else
    of its launching op, else of its own name); on a CPU-only trace each op's self time in the class
    of its unit. ``count``: the rows of work. One rule for the report, ``diff`` and ``check``'s class
    budgets: a diff's class table once took a kernel's launching op's class, not its unit's, and
    disagreed with the report's on the same traces."""
    from .classify import classify_table

    if not len(events):
        return pd.DataFrame({"class": [], "count": [], "time_ns": []})
    return classified_class_table(classify_table(events))


def classified_class_table(rows) -> pd.DataFrame:
    """``class_table`` of a trace classified already (``classify.classify_table``)."""
    from .columns import label_codes

    work = rows["device_work"].to_numpy(bool)
    codes, labels = label_codes(rows["category"])
    codes = codes[work]
    time_ns = rows["time_ns"].to_numpy(np.int64)[work]
    present = np.unique(codes)  # in CLASS_ORDER, the codes' order
    return pd.DataFrame({
        "class": labels[present].astype(object),
        "count": np.bincount(codes, minlength=len(labels))[present].astype(np.int64),
        "time_ns": np.bincount(codes, weights=time_ns, minlength=len(labels))[present].astype(np.int64),
    })


def _op_flop(ops: pd.DataFrame) -> np.ndarray:
    """Flop per op row from the cost analyzer when it is there (0 otherwise)."""
    try:
        from .cost import costs_table

        return costs_table(ops)["flops"].to_numpy(dtype=np.float64)
    except (ImportError, AttributeError, KeyError):  # pragma: no cover - analyzer absent or changed
        return np.zeros(len(ops))


# ---------------------------------------------------------------- comparing tables


def compare(base: pd.DataFrame, new: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Outer-join two tables on ``keys``; per metric ``base_m, new_m, delta_m, change_m``; a ``status``.

    ``change`` is relative (0.2 = 20 % more); null when the base is 0. Status:
    appeared / vanished (a side lacks the row), changed, or same.
    """
    metrics = [m for m in metrics if m in base.columns and m in new.columns]
    left = base[keys + metrics].rename(columns={m: f"base_{m}" for m in metrics})
    right = new[keys + metrics].rename(columns={m: f"new_{m}" for m in metrics})
    merged = left.merge(right, on=keys, how="outer", indicator=True)
    status = np.select(
        [merged["_merge"] == "right_only", merged["_merge"] == "left_only"], ["appeared", "vanished"], "same"
    ).astype(object)
    for m in metrics:
        b = pd.to_numeric(merged[f"base_{m}"], errors="coerce").fillna(0).astype(float)
        n = pd.to_numeric(merged[f"new_{m}"], errors="coerce").fillna(0).astype(float)
        merged[f"base_{m}"], merged[f"new_{m}"] = b, n
        merged[f"delta_{m}"] = n - b
        merged[f"change_{m}"] = np.where(b != 0, (n - b) / np.where(b != 0, b, 1), np.nan)
        status = np.where((status == "same") & (n != b), "changed", status)
    merged["status"] = status
    return merged.drop(columns="_merge")


def _sorted(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    column = f"delta_{metric}"
    if column not in table:
        return table
    return table.iloc[np.argsort(-np.abs(table[column].to_numpy()), kind="stable")].reset_index(drop=True)


# ---------------------------------------------------------------- report documents


def section_frame(value: Any) -> tuple[pd.DataFrame, str] | None:
    """A tabular report section as (records, key field), or None.

    Accepts a list of records, a dict holding one such list (``rows``...) or a
    dict of records keyed by name. The key is the first of KEY_FIELDS whose
    values are unique (two sections keyed differently are not compared).
    """
    if isinstance(value, dict):
        lists = [v for v in value.values() if v and _is_records(v)]  # (an empty list holds no table)
        if len(lists) == 1:
            value = lists[0]
        elif value and all(isinstance(v, dict) for v in value.values()):
            value = [{"key": k, **v} for k, v in value.items()]
    if not _is_records(value) or not value:
        return None
    frame = pd.DataFrame(value)
    key = next((k for k in KEY_FIELDS if k in frame.columns and frame[k].astype(str).is_unique), None)
    if key is None:  # no field names each row once: not comparable row by row
        return None
    frame[key] = frame[key].astype(str)
    return frame, key


def flat_numbers(value: Any) -> dict[str, float]:
    """The numeric fields of a flat section (``totals``, an ``energy`` summary...)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if _is_number(v) and k not in _IDENTITY_FIELDS}


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def diff_sections(base_doc: dict, new_doc: dict) -> dict[str, dict]:
    """Compare every section both documents have.

    Tabular sections -> ``{"type": "table", "key", "metrics", "rows"}`` (rows as
    from ``compare``); flat ones -> ``{"type": "flat", "rows": [{metric, base,
    new, delta, change}]}``. ``top_*`` sections are left out: the full op and
    kernel tables cover them.
    """
    out: dict[str, dict] = {}
    for name, base_value, new_value in _parts(base_doc, new_doc):
        base, new = section_frame(base_value), section_frame(new_value)
        if base is not None and new is not None and base[1] == new[1]:
            key = base[1]
            metrics = [c for c in base[0].columns
                       if c != key and c not in _IDENTITY_FIELDS and c in new[0].columns
                       and pd.api.types.is_numeric_dtype(base[0][c]) and not pd.api.types.is_bool_dtype(base[0][c])]
            if metrics:
                table = _sorted(compare(base[0], new[0], [key], metrics), _main_metric(metrics))
                out[name] = {"type": "table", "key": key, "metrics": metrics, "rows": _records(table)}
            continue
        b, n = flat_numbers(base_value), flat_numbers(new_value)
        rows = [
            {"metric": m, "base": b[m], "new": n[m], "delta": n[m] - b[m],
             "change": (n[m] - b[m]) / b[m] if b[m] else None}
            for m in b if m in n
        ]
        if rows:
            out[name] = {"type": "flat", "rows": rows}
    return out


#: Sections that hold several tables, each compared on its own as ``section.table``.
MULTI_TABLE_SECTIONS = {"memory": ("devices", "phases", "top_allocations"), "communication": ("ranks", "collectives")}


def _parts(base_doc: dict, new_doc: dict):
    """(name, base value, new value) of each section both documents have, a ``MULTI_TABLE_SECTIONS``
    section as one part per table."""
    for name in base_doc:
        if name in ("report_version", "run") or name.startswith("top_") or name not in new_doc:
            continue
        base, new = base_doc[name], new_doc[name]
        if name not in MULTI_TABLE_SECTIONS or not isinstance(base, dict) or not isinstance(new, dict):
            yield name, base, new
            continue
        for table in MULTI_TABLE_SECTIONS[name]:
            yield f"{name}.{table}", base.get(table), new.get(table)


def _main_metric(metrics: list[str]) -> str:
    for preferred in ("time_ns", "gpu_time_ns", "self_time_ns", "total_time_ns", "device_busy_ns", "energy_j"):
        if preferred in metrics:
            return preferred
    timed = [m for m in metrics if m.endswith("_ns")]
    return timed[0] if timed else metrics[0]


# ---------------------------------------------------------------- the whole diff


def diff_traces(
    base_events: pd.DataFrame,
    new_events: pd.DataFrame,
    base_doc: dict | None = None,
    new_doc: dict | None = None,
    *,
    labels: tuple[str, str] = ("base", "new"),
    top: int | None = None,
) -> dict[str, Any]:
    """The diff document (plain JSON types): run facts, section diffs, classes, ops, kernels."""
    base_doc, new_doc = base_doc or {}, new_doc or {}
    base_device, new_device = _device(base_doc), _device(new_doc)
    kernels = compare(kernel_table(base_events), kernel_table(new_events), ["name", "kind"], ["count", "time_ns"])
    ops = compare(op_table(base_events), op_table(new_events), ["name", "input_shapes"],
                  ["count", "cpu_self_time_ns", "gpu_time_ns", "flop"])
    sections = diff_sections(base_doc, new_doc)
    classes = compare(class_table(base_events), class_table(new_events), ["class"], ["count", "time_ns"])
    op_metric = "gpu_time_ns" if ops["base_gpu_time_ns"].any() or ops["new_gpu_time_ns"].any() else "cpu_self_time_ns"
    kernels, ops, classes = _sorted(kernels, "time_ns"), _sorted(ops, op_metric), _sorted(classes, "time_ns")
    appeared = kernels[kernels["status"] == "appeared"]
    vanished = kernels[kernels["status"] == "vanished"]
    matched_ops = ops[~ops["status"].isin(["appeared", "vanished"])]
    return {
        "diff_version": 1,
        "base": {"label": labels[0], "device": base_device, "producer": _run(base_doc).get("producer")},
        "new": {"label": labels[1], "device": new_device, "producer": _run(new_doc).get("producer")},
        "cross_device": bool(base_device and new_device and base_device != new_device),
        "sections": sections,
        "classes": _records(classes),
        "ops": _records(ops.head(top) if top else ops),
        "op_metric": op_metric,
        "ops_matched": int(len(matched_ops)),
        "ops_total": int(len(ops)),
        "kernels": _records(kernels.head(top) if top else kernels),
        "kernels_appeared": _records(appeared.head(top) if top else appeared),
        "kernels_vanished": _records(vanished.head(top) if top else vanished),
        "kernel_counts": {
            "matched": int((~kernels["status"].isin(["appeared", "vanished"])).sum()),
            "appeared": int(len(appeared)),
            "vanished": int(len(vanished)),
        },
    }


def _run(doc: dict) -> dict:
    return doc.get("run") if isinstance(doc.get("run"), dict) else {}


def _device(doc: dict) -> str | None:
    return _run(doc).get("device")


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN -> None, numpy scalars -> Python, integral floats of *_ns/count -> int."""
    rows = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float):
                if not np.isfinite(value):
                    value = None
                elif (key.endswith(("_ns", "_count", "count")) or key.endswith("_bytes")) and value.is_integer():
                    value = int(value)
            clean[key] = value
        rows.append(clean)
    return rows
