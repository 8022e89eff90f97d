"""What the runs cost: per run, predicted against billed, split by phase, totalled per month.

Pure: results files in, typed rows out (cost_tables and cost_plots render them). A results file
written by a pod carries `meta.cost` and `meta.phases` (issue 18's contract); older files carry only
`meta.stage_seconds`, priced with `budget.ListPrice` as `collect.run_cost` prices a run without a pod
status (the first GPU type's list price × 1 GPU) and marked "estimated"; the seconds are read here,
field by field, so a bad one names its field. A baseline file counts only when it carries
its own `meta.cost`: a baseline evaluated in an experiment's pod is that pod's `baseline` phase,
already in the experiment's bill, and one evaluated locally cost no pod.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haha import clock
from haha.budget import ListPrice
from haha.errors import InputError
from haha.report.load import Run

# Pod order (issue 18; the results schema's meta.phases): created → container started → first step →
# training → eval → the adapter's upload → the base model's eval in the same pod → terminated.
PHASES = ("boot", "setup", "train", "eval", "publish", "baseline", "teardown")
BILLED = "billed"
ESTIMATED = "estimated"
UNDATED = "undated"
FIX = "fix meta.cost / meta.phases to match schemas/results.schema.json, or collect the run again"


@dataclass(frozen=True)
class RunCost:
    """One run's time and money: what was predicted, what it took, and how the money was priced."""

    name: str
    month: str
    gpu_type: str | None
    gpu_count: int
    seconds: float
    dollars: float | None
    priced: str  # "billed", "list price" (from meta.cost) or "estimated" (from stage_seconds)

    @property
    def is_estimate(self) -> bool:
        """Priced from a list price, not from what the provider billed."""
        return self.priced != BILLED

    phases: tuple[tuple[str, float], ...] = ()
    predicted_seconds: float | None = None
    predicted_dollars: float | None = None
    predicted_from: str | None = None

    @property
    def time_error(self) -> float | None:
        return relative_error(self.predicted_seconds, self.seconds)

    @property
    def cost_error(self) -> float | None:
        return relative_error(self.predicted_dollars, self.dollars)

    def phase(self, name: str) -> float | None:
        return dict(self.phases).get(name)


@dataclass(frozen=True)
class Month:
    """Spend in one UTC month (by `meta.created_at`): priced dollars, and the part of them priced
    from list prices rather than billed."""

    month: str
    runs: int
    seconds: float
    dollars: float
    estimated: float
    unpriced: int


@dataclass(frozen=True)
class Costs:
    runs: tuple[RunCost, ...]
    months: tuple[Month, ...]
    list_price: ListPrice | None = None

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases any run recorded, in pod order (unknown names after, sorted)."""
        seen = {name for run in self.runs for name, _ in run.phases}
        return tuple(p for p in PHASES if p in seen) + tuple(sorted(seen - set(PHASES)))

    @property
    def dollars(self) -> float:
        return sum(m.dollars for m in self.months)

    @property
    def estimated(self) -> float:
        return sum(m.estimated for m in self.months)

    @property
    def time_errors(self) -> list[float]:
        return [e for e in (r.time_error for r in self.runs) if e is not None]

    @property
    def cost_errors(self) -> list[float]:
        return [e for e in (r.cost_error for r in self.runs) if e is not None]

    @property
    def median_time_error(self) -> float | None:
        return median_abs(self.time_errors)

    @property
    def median_cost_error(self) -> float | None:
        return median_abs(self.cost_errors)


def relative_error(predicted: float | None, actual: float | None) -> float | None:
    """(predicted − actual) / actual: +0.25 means the prediction was 25% too high."""
    if predicted is None or actual is None or actual <= 0:
        return None
    return (predicted - actual) / actual


def median_abs(errors: Sequence[float]) -> float | None:
    """The median absolute relative error (None without any prediction to score)."""
    return statistics.median(abs(e) for e in errors) if errors else None


def month_of(created_at: Any) -> str:
    """The UTC month (`2026-11`) of an ISO timestamp; naive times are UTC, unreadable ones undated."""
    when = clock.parse(created_at)
    return clock.month(when) if when else UNDATED


class _Fields:
    """Typed reads of one run's meta, failing with the file and the field."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def fail(self, message: str, where: str) -> InputError:
        return InputError(message, file=self.run.path, field=where, fix=FIX)

    def number(self, found: Mapping[str, Any], key: str, where: str) -> float | None:
        value = found.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(f"expected a number >= 0 or null, found {value!r}", f"{where}.{key}")
        return float(value)

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        value = self.run.meta.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"expected an object, found {type(value).__name__}", f"meta.{key}")
        return value

    def seconds_by_phase(self, key: str) -> tuple[tuple[str, float], ...]:
        """meta.phases (or meta.stage_seconds): name → seconds, in pod order."""
        found = self.mapping(key) or {}
        values = {name: self.number(found, name, f"meta.{key}") for name in found}
        order = [p for p in PHASES if p in values] + sorted(set(values) - set(PHASES))
        return tuple((p, values[p] or 0.0) for p in order)

    def text(self, found: Mapping[str, Any], key: str, where: str) -> str | None:
        value = found.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"expected a string, found {type(value).__name__}", f"{where}.{key}")
        return value or None


def run_cost(run: Run, price: ListPrice | None) -> RunCost | None:
    """The run's cost row; None for a run that recorded no time, or a baseline nobody billed."""
    read = _Fields(run)
    cost = read.mapping("cost")
    month = month_of(run.meta.get("created_at"))
    if cost is None:
        if run.is_baseline:
            return None
        phases = read.seconds_by_phase("stage_seconds")
        seconds = sum(s for _, s in phases)
        if not seconds:
            return None
        dollars, gpu = (price.dollars(seconds), price.gpu_type) if price else (None, None)
        return RunCost(run.name, month, gpu, 1, seconds, dollars, ESTIMATED, phases)
    phases = read.seconds_by_phase("phases")
    count = cost.get("gpu_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise read.fail(f"expected a whole number >= 1, found {count!r}", "meta.cost.gpu_count")
    billed = read.number(cost, "billed_seconds", "meta.cost")
    return RunCost(
        name=run.name,
        month=month,
        gpu_type=read.text(cost, "gpu_type", "meta.cost"),
        gpu_count=count or 1,
        seconds=billed if billed is not None else sum(s for _, s in phases),
        dollars=read.number(cost, "billed_dollars", "meta.cost"),
        priced=read.text(cost, "priced", "meta.cost") or BILLED,
        phases=phases,
        predicted_seconds=read.number(cost, "predicted_seconds", "meta.cost"),
        predicted_dollars=read.number(cost, "predicted_dollars", "meta.cost"),
        predicted_from=read.text(cost, "predicted_from", "meta.cost"),
    )


def months(rows: Sequence[RunCost]) -> tuple[Month, ...]:
    """Spend per UTC month, oldest first (undated runs last)."""
    by_month: dict[str, list[RunCost]] = {}
    for row in rows:
        by_month.setdefault(row.month, []).append(row)
    return tuple(
        Month(
            month=month,
            runs=len(found),
            seconds=sum(r.seconds for r in found),
            dollars=sum(r.dollars for r in found if r.dollars is not None),
            estimated=sum(r.dollars for r in found if r.dollars is not None and r.is_estimate),
            unpriced=sum(r.dollars is None for r in found),
        )
        for month, found in sorted(by_month.items(), key=lambda item: (item[0] == UNDATED, item[0]))
    )


def build_costs(runs: Sequence[Run], price: ListPrice | None) -> Costs:
    """Every run that cost something, by name, and the months they were spent in."""
    rows = sorted((c for c in (run_cost(r, price) for r in runs) if c is not None), key=lambda c: c.name)
    return Costs(runs=tuple(rows), months=months(rows), list_price=price)
