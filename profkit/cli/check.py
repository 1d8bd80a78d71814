"""`profkit check TRACE --baseline BASE`: a CI gate. Exit 0 within budget, 1 on a regression, 2 on bad input."""

from __future__ import annotations

import json

import click

from ..analyzers.check import Budget, Verdict, check, parse_limit, parse_scoped
from ..errors import RegressionFound, UsageError
from ..report.context import ReportContext
from ..report.format import fmt_bytes, fmt_ns, fmt_si
from .inputs import load_any

DEFAULT_TIME_LIMIT = "5%"


def _limit(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_limit(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _scoped(ctx, param, values):
    try:
        return [parse_scoped(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("check")
@click.argument("trace", type=click.Path())
@click.option("--baseline", required=True, type=click.Path(), help="The trace to compare against.")
@click.option("--max-time-regression", callback=_limit, default=None,
              help=f"Largest allowed growth of the run's time, e.g. 5% (default {DEFAULT_TIME_LIMIT} when no budget is given).")
@click.option("--max-energy-regression", callback=_limit, default=None, help="Largest allowed growth of energy, e.g. 10%.")
@click.option("--max-memory-regression", callback=_limit, default=None,
              help="Largest allowed growth of the peak memory of any one device, e.g. 5%.")
@click.option("--max-exposed-communication-regression", "exposed_limit", callback=_limit, default=None,
              help="Largest allowed growth of the collective kernels' time no other GPU work overlapped, e.g. 10%.")
@click.option("--max-class-regression", "class_budgets", multiple=True, callback=_scoped, metavar="CLASS=PCT",
              help="Time budget of one operator class, e.g. contraction=10% (repeatable).")
@click.option("--max-phase-regression", "phase_budgets", multiple=True, callback=_scoped, metavar="PHASE=PCT",
              help="Time budget of one phase (median per pass), e.g. decode=5% (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def command(trace, baseline, max_time_regression, max_energy_regression, max_memory_regression, exposed_limit,
            class_budgets, phase_budgets, fmt):
    """Compare TRACE with --baseline against budgets; exit 1 if one is exceeded.

    TRACE and BASELINE are profkit traces, folders of rank traces, or
    Chrome-trace JSON. Steps and passes compare by their median.
    """
    budgets = build_budgets(max_time_regression, max_energy_regression, class_budgets, phase_budgets,
                            memory_limit=max_memory_regression, exposed_limit=exposed_limit)
    base_traces, new_traces = load_any([baseline]), load_any([trace])
    verdicts = check(ReportContext(traces=base_traces).events, ReportContext(traces=new_traces).events, budgets,
                     base_devices=[(t.rank, t.metadata) for t in base_traces],
                     new_devices=[(t.rank, t.metadata) for t in new_traces])
    render = {"json": render_json, "markdown": render_markdown}.get(fmt, render_text)
    click.echo(render(verdicts), nl=False)
    failed = [v for v in verdicts if not v.ok]
    if failed:
        raise RegressionFound(f"{len(failed)} of {len(verdicts)} budgets exceeded: " + "; ".join(map(_failure, failed)))


def _failure(verdict: Verdict) -> str:
    """One exceeded budget, for the error line: by how much, or from nothing in the baseline."""
    if verdict.change is None:
        return f"{verdict.budget.label} {_value(verdict, verdict.new.value)} where the baseline has none"
    return f"{verdict.budget.label} {fmt_change(verdict.change)} > {100 * verdict.budget.limit:g} %"


def build_budgets(time_limit, energy_limit, class_budgets, phase_budgets, memory_limit=None,
                  exposed_limit=None) -> list[Budget]:
    budgets = []
    if time_limit is not None or not (energy_limit is not None or memory_limit is not None or class_budgets
                                      or phase_budgets or exposed_limit is not None):
        budgets.append(Budget("time", time_limit if time_limit is not None else parse_limit(DEFAULT_TIME_LIMIT)))
    if energy_limit is not None:
        budgets.append(Budget("energy", energy_limit))
    if memory_limit is not None:
        budgets.append(Budget("memory", memory_limit))
    if exposed_limit is not None:
        budgets.append(Budget("exposed_communication", exposed_limit))
    budgets += [Budget("time", limit, "class", name) for name, limit in class_budgets]
    budgets += [Budget("time", limit, "phase", name) for name, limit in phase_budgets]
    if not budgets:
        raise UsageError("no budget to check")
    return budgets


# ---------------------------------------------------------------- formatting (pure)


def fmt_change(change: float | None) -> str:
    return "new" if change is None else f"{100 * change:+.1f} %"  # (None: the baseline had none)


def _value(verdict: Verdict, value: float) -> str:
    metric = verdict.budget.metric
    if metric in ("time", "exposed_communication"):
        return fmt_ns(value)
    return fmt_bytes(value) if metric == "memory" else fmt_si(value, "J")


def rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [
        [v.budget.label, f"{_value(v, v.base.value)} ({v.base.basis})", f"{_value(v, v.new.value)} ({v.new.basis})",
         fmt_change(v.change), f"{100 * v.budget.limit:g} %", "ok" if v.ok else "FAIL"]
        for v in verdicts
    ]


_HEADER = ["budget", "baseline", "trace", "change", "limit", "result"]


def render_text(verdicts: list[Verdict]) -> str:
    table = [_HEADER] + rows(verdicts)
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    verdict = "within budget" if all(v.ok for v in verdicts) else "REGRESSION"
    return "\n".join(lines) + f"\nprofkit check: {verdict}\n"


def render_markdown(verdicts: list[Verdict]) -> str:
    lines = ["### profkit check", "", "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(verdicts)]
    verdict = "within budget" if all(v.ok for v in verdicts) else "**regression**"
    return "\n".join(lines) + f"\n\nResult: {verdict}\n"


def render_json(verdicts: list[Verdict]) -> str:
    document = {"ok": all(v.ok for v in verdicts), "budgets": [v.as_dict() for v in verdicts]}
    return json.dumps(document, indent=2) + "\n"
