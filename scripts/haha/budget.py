"""Spend limits (haha.toml `[budget]`): a per-PR cap the gate enforces, a monthly cap `haha plan` keeps.

Both are pure decisions over dollars: the per-PR rule over the gate's predictions of a PR's new
configs, the monthly one over what this UTC month already cost (collected results: the billed cost
where the results file has one, `meta.cost.billed_dollars`, else `collect.run_cost`'s estimate from
the stage seconds), what runs still in flight are predicted to cost, and the planned runs'
predictions, taken in plan order. Predictions are the gate's own (`check.gate.predict_costs`), so a
PR comment and a held launch quote the same number. 0 is no limit. The edges: `check.gate` (per PR),
`spend` (per month, after `haha plan`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haha import clock
from haha.findings import Finding, Severity
from haha.settings import SETTINGS_FILE, Settings

OVERRIDE_FIX = (
    "raise monthly_dollars in haha.toml's [budget], or run the launch workflow by hand (Actions → launch → "
    "Run workflow) with this config and a reason, which launches it over the limit once"
)


def money(dollars: float | None) -> str:
    return "?" if dollars is None else f"${dollars:,.2f}"


# --- per PR ---------------------------------------------------------------------------------------
def per_pr_finding(
    costs: Sequence[tuple[str, float | None]], limit: float, line: int | None = None
) -> Finding | None:
    """An error when the PR's new configs together are predicted to cost more than `limit` (0: none)."""
    if limit <= 0:
        return None
    priced = [(name, dollars) for name, dollars in costs if dollars is not None]
    total = sum(dollars for _, dollars in priced)
    if total <= limit:
        return None
    parts = " + ".join(f"{name} {money(dollars)}" for name, dollars in priced)
    unpriced = len(costs) - len(priced)
    unknown = f" ({unpriced} more without a prediction)" if unpriced else ""
    return Finding(
        Severity.ERROR,
        f"the new configs are predicted to cost {money(total)} together, over the per-PR limit of "
        f"{money(limit)}: {parts}{unknown}",
        SETTINGS_FILE,
        line,
        "budget.per_pr_dollars",
        fix=f"raise per_pr_dollars in haha.toml's [budget] to at least {math.ceil(total)} in this PR, "
        "where its reviewer sees it (or make the configs cheaper, or split them over several PRs)",
    )


# --- per month ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spent:
    """One run collected this month and what it cost."""

    config: str
    dollars: float
    billed: bool  # RunPod's bill (meta.cost) rather than an estimate from the stage seconds


@dataclass(frozen=True)
class Held:
    """A planned run the monthly limit holds: its prediction and the month's total before it."""

    config: str
    predicted: float | None
    before: float  # spent + in flight + the runs this plan launches ahead of it


@dataclass(frozen=True)
class MonthlyDecision:
    month: str  # YYYY-MM, UTC
    limit: float
    spent: tuple[Spent, ...]
    in_flight: tuple[tuple[str, float | None], ...]
    launch: tuple[str, ...]
    held: tuple[Held, ...]
    override: str | None = None  # the reason a manual launch gave: nothing is held

    @property
    def spent_dollars(self) -> float:
        return sum(s.dollars for s in self.spent)

    @property
    def in_flight_dollars(self) -> float:
        return sum(d for _, d in self.in_flight if d is not None)

    def basis(self) -> str:
        """How the month's total so far is made up, in words."""
        estimated = sum(not s.billed for s in self.spent)
        est = f", {estimated} estimated from stage seconds" if estimated else ""
        return (
            f"{money(self.spent_dollars)} collected from {_runs(len(self.spent))}{est}, "
            f"{money(self.in_flight_dollars)} predicted for {_runs(len(self.in_flight))} in flight"
        )

    def why(self, held: Held) -> str:
        if held.predicted is None:
            return (
                f"{held.config} has no cost prediction (the gate cannot price it), so the monthly limit of "
                f"{money(self.limit)} cannot admit it"
            )
        return (
            f"{held.config} is predicted to cost {money(held.predicted)}, which would take {self.month}'s "
            f"spend to {money(held.before + held.predicted)}, over the monthly limit of {money(self.limit)} "
            f"({self.basis()})"
        )

    def to_dict(self) -> dict[str, Any]:
        held = self.held
        return {
            "month": self.month,
            "monthly_dollars": self.limit,
            "spent_dollars": round(self.spent_dollars, 4),
            "in_flight_dollars": round(self.in_flight_dollars, 4),
            "held": [{"config": h.config, "predicted": h.predicted, "reason": self.why(h)} for h in held],
            "override": self.override,
        }


def _runs(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def decide(
    month: str,
    limit: float,
    spent: Sequence[Spent],
    in_flight: Sequence[tuple[str, float | None]],
    planned: Sequence[tuple[str, float | None]],
    override: str | None = None,
) -> MonthlyDecision:
    """Which planned runs launch: in order, each that still fits under `limit` after the ones before
    it; the others are held. A run without a prediction is held (nothing bounds it). With
    `override` (a manual launch's reason) or no limit (0), every run launches."""
    total = sum(s.dollars for s in spent) + sum(d for _, d in in_flight if d is not None)
    launch, held = [], []
    for name, predicted in planned:
        fits = predicted is not None and total + predicted <= limit + 1e-9
        if limit <= 0 or override or fits:
            launch.append(name)
            total += predicted or 0.0
        else:
            held.append(Held(name, predicted, total))
    return MonthlyDecision(month, limit, tuple(spent), tuple(in_flight), tuple(launch), tuple(held), override)


def _stamp_month(value: object) -> str | None:
    when = clock.parse(value)
    return clock.month(when) if when else None


def billed_dollars(meta: Mapping[str, Any]) -> float | None:
    """meta.cost.billed_dollars (the shared cost contract), where the run recorded one."""
    cost = meta.get("cost")
    value = cost.get("billed_dollars") if isinstance(cost, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class ListPrice:
    """What a run without a bill is priced at (`list_price`: haha.toml's first GPU type), one
    GPU unless its pod said more. `collect.run_cost` (and with it the monthly budget) and the report's
    estimated rows both price this way; each validates the seconds it hands in its own way."""

    gpu_type: str
    per_hour: float  # one GPU's

    def dollars(self, seconds: float, gpus: int = 1) -> float:
        return seconds / 3600 * self.per_hour * gpus


def list_price(settings: Settings) -> ListPrice | None:
    """What a run without a bill is priced at: haha.toml's first GPU type; None when it lists none."""
    gpus = settings.compute.gpu_types
    return ListPrice(gpus[0].id, gpus[0].price_per_hour) if gpus else None


def spent_in(
    documents: Mapping[str, Mapping[str, Any]],
    month: str,
    estimate: Callable[[Mapping[str, Any]], float | None],
) -> list[Spent]:
    """Runs whose results were made in `month` (meta.created_at, UTC) and their cost: billed where the
    file records it, else `estimate(document)` (files written before the cost contract; unknown: 0)."""
    out = []
    for name, document in sorted(documents.items()):
        meta = document.get("meta")
        if not isinstance(meta, Mapping) or _stamp_month(meta.get("created_at")) != month:
            continue
        billed = billed_dollars(meta)
        if billed is not None:
            out.append(Spent(name, billed, True))
        else:
            out.append(Spent(name, estimate(document) or 0.0, False))
    return out
