"""The cost section's tables and sentences as plain values, for markdown and HTML alike."""

from __future__ import annotations

from haha.report.costs import ESTIMATED, Costs, RunCost
from haha.report.tables import Table

PHASE_WORDS = {
    "boot": "pod created → container started (image pull)",
    "setup": "container started → first training step (model download, set-up)",
    "train": "training",
    "eval": "eval",
    "publish": "uploading the adapter",
    "baseline": "the base model's eval in the same pod",
    "teardown": "published → pod terminated",
}


def money(dollars: float | None) -> str:
    if dollars is None:
        return "unknown"
    return "<$0.01" if 0 < dollars < 0.005 else f"${dollars:,.2f}"


def duration(seconds: float | None) -> str:
    """42 s, 12m 05s, 3h 07m: short enough for a table cell, exact enough to compare."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def signed(error: float | None) -> str:
    return "—" if error is None else f"{error:+.0%}"


def gpu(row: RunCost) -> str:
    name = row.gpu_type or "—"
    return f"{row.gpu_count}× {name}" if row.gpu_count > 1 else name


def headline(costs: Costs) -> str:
    """e.g. '31 runs cost $48.10 in all ($0.39 of it estimated). Predictions were off by …'."""
    runs = len(costs.runs)
    text = f"{runs} run{'s' if runs != 1 else ''} cost {money(costs.dollars)} in all"
    text += f" ({money(costs.estimated)} of it estimated from list prices)." if costs.estimated else "."
    unpriced = sum(m.unpriced for m in costs.months)
    if unpriced:
        many = unpriced != 1
        text += f" {unpriced} run{'s' if many else ''} without a price {'are' if many else 'is'}"
        text += " not in the totals."
    cost, time = costs.median_cost_error, costs.median_time_error
    if cost is None and time is None:
        return text + " No run carries a prediction yet, so there is no prediction error to show."
    scored = len(costs.cost_errors) or len(costs.time_errors)
    parts = [f"{cost:.0%} on cost" if cost is not None else ""]
    parts.append(f"{time:.0%} on time" if time is not None else "")
    return text + (
        f" The gate's predictions were off by a median {' and '.join(p for p in parts if p)} "
        f"(absolute error, {scored} predicted run{'s' if scored != 1 else ''})."
    )


def sources(costs: Costs) -> str:
    """Where the numbers come from, in one paragraph (both renderings)."""
    price = costs.list_price
    at = f"{price.gpu_type} at ${price.per_hour:g}/h" if price else "no GPU type configured: unpriced"
    return (
        "Actual time and cost are what each pod billed (`meta.cost`: pod created → terminated, at "
        "the price RunPod reported; `list price` where it reported none, and for a local run, "
        "haha.toml's price). Results written before runs recorded `meta.cost` are priced as "
        "`haha collect` estimates them: the stage seconds (`meta.stage_seconds`) at haha.toml's first "
        f"GPU type ({at}), marked `{ESTIMATED}`; both count as estimated from list prices. "
        "Predictions are the gate's (`meta.cost.predicted_*`; `predicted from` says whether from past "
        "runs or assumed); error = (predicted − actual) / actual. Baselines count only when billed in "
        "a pod of their own: one evaluated in an experiment's pod is that pod's `baseline` phase. "
        "Months are UTC, by `meta.created_at`."
    )


def month_table(costs: Costs) -> Table:
    headers = ("month", "runs", "time", "spend", "of which list price", "unpriced runs")
    rows = [
        (m.month, str(m.runs), duration(m.seconds), money(m.dollars), money(m.estimated), str(m.unpriced))
        for m in costs.months
    ]
    if len(costs.months) > 1:
        runs, seconds = sum(m.runs for m in costs.months), sum(m.seconds for m in costs.months)
        unpriced = sum(m.unpriced for m in costs.months)
        total = money(costs.dollars), money(costs.estimated)
        rows.append(("all", str(runs), duration(seconds), *total, str(unpriced)))
    return Table(headers, tuple(rows))


def run_table(costs: Costs) -> Table:
    """Per config: predicted against actual time and cost, and how far off the prediction was."""
    headers = ("config", "month", "GPU", "predicted time", "actual time", "time error",
               "predicted cost", "actual cost", "cost error", "priced", "predicted from")  # fmt: skip
    rows = []
    for r in costs.runs:
        predicted = r.predicted_seconds is not None or r.predicted_dollars is not None
        rows.append((
            r.name,
            r.month,
            gpu(r),
            duration(r.predicted_seconds),
            duration(r.seconds),
            signed(r.time_error),
            money(r.predicted_dollars) if r.predicted_dollars is not None else "—",
            money(r.dollars),
            signed(r.cost_error),
            r.priced,
            (r.predicted_from or "—") if predicted else "—",
        ))  # fmt: skip
    return Table(headers, tuple(rows))


def phase_table(costs: Costs) -> Table:
    """Per config: seconds in each phase (and its share of the run), so the overhead shows."""
    phases = costs.phases
    headers = ("config", *phases, "total")
    rows = []
    for run in costs.runs:
        total = sum(s for _, s in run.phases)
        cells = []
        for phase in phases:
            seconds = run.phase(phase)
            share = f" ({seconds / total:.0%})" if seconds is not None and total else ""
            cells.append("—" if seconds is None else duration(seconds) + share)
        rows.append((run.name, *cells, duration(total)))
    return Table(headers, tuple(rows))


def phase_words(costs: Costs) -> list[tuple[str, str]]:
    """What each phase shown measures."""
    return [(p, PHASE_WORDS.get(p, "recorded by the run")) for p in costs.phases]
