"""The monthly spend limit applied to a plan: the edge that reads this month's results, prices runs
with the gate's own estimate, and says on the PR why a run is held (decisions: `haha.budget`).

It runs after `haha plan` reconciles (cli.plan): it needs collect's cost of a finished run and the
gate's prediction, which the reconcile step itself does without.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from haha import clock, runcomment
from haha.budget import MonthlyDecision, decide, spent_in
from haha.plan import Plan
from haha.repo import Repo
from haha.resultsindex import ResultsIndex
from haha.settings import Settings

Log = Callable[[str], None]


def estimated_dollars(settings: Settings) -> Callable[[Mapping[str, Any]], float | None]:
    """collect's cost of a run whose results carry no bill: stage seconds × the first GPU's list price."""
    from haha.collect import run_cost

    def estimate(document: Mapping[str, Any]) -> float | None:
        try:
            dollars = run_cost(document, None, settings)[1]
        except (TypeError, ValueError, AttributeError):  # malformed stage seconds: the gate names them
            return None
        return dollars if dollars is not None and math.isfinite(dollars) else None

    return estimate


def predictions(
    repo: Repo, settings: Settings, names: Iterable[str], results: ResultsIndex
) -> dict[str, float | None]:
    """The gate's predicted dollars per config (None where it cannot price one)."""
    from haha.check.gate import predict_costs

    wanted = list(dict.fromkeys(names))
    costs = predict_costs(repo, settings, wanted, results)
    return {name: costs[name].dollars if name in costs else None for name in wanted}


def monthly(
    repo: Repo,
    settings: Settings,
    planned: Sequence[str],
    flying: Iterable[str],
    now: datetime,
    override: str | None = None,
    results: ResultsIndex | None = None,
) -> MonthlyDecision:
    """This month's decision for `planned` runs, with `flying` (pods up, or published and not yet
    collected) counted at their predictions. `results`: the process's reader of train/results/ (the
    spend so far and the gate's history both come from it); unreadable files count as nothing spent,
    and plan lists them under its errors."""
    results = results or ResultsIndex(repo)
    in_flight = [name for name in dict.fromkeys(flying) if name not in planned]
    predicted = predictions(repo, settings, [*planned, *in_flight], results)
    month = clock.month(now)
    return decide(
        month,
        settings.budget.monthly_dollars,
        spent_in(results.documents(), month, estimated_dollars(settings)),
        [(name, predicted[name]) for name in in_flight],
        [(name, predicted[name]) for name in planned],
        override,
    )


def hold_over_limit(
    repo: Repo,
    settings: Settings,
    plan: Plan,
    now: datetime,
    override: str | None,
    comment: bool,
    log: Log,
    results: ResultsIndex | None = None,
) -> Plan:
    """The plan without the runs haha.toml's monthly limit holds (none without a limit or with
    `override`, a manual launch's reason); each held run is logged and, with `comment`, explained
    on the PR it came from."""
    if settings.budget.monthly_dollars <= 0 or not plan.runs:
        return plan
    flying = [*plan.in_flight, *plan.awaiting_collect]
    decision = monthly(repo, settings, [r.config for r in plan.runs], flying, now, override, results)
    if override:
        log(f"plan: monthly spend limit overridden by a manual launch: {override} ({decision.basis()})")
    for held in decision.held:
        log(f"plan: {held.config}: held: {decision.why(held)}")
        if comment:
            pr = runcomment.source_pr(settings, repo, [held.config], log)
            runcomment.post(settings, pr, held.config, runcomment.held_body(decision, held), log)
    keep = set(decision.launch)
    return replace(plan, runs=tuple(r for r in plan.runs if r.config in keep), budget=decision)
