"""The cost section's pictures: predicted against actual dollars, spend per month, time per phase.

Readable for one run and for fifty: names label the scatter only while there are few points, and the
phase bars' figure grows a fixed height per run. No timestamps or version strings (plots.png).
"""

from __future__ import annotations

from typing import Any

from haha.report.costs import ESTIMATED, PHASES, Costs
from haha.report.plots import png

LABEL_POINTS = 12  # beyond this many points, names would overlap: the table names them
MAX_MONTHS = 6  # months coloured one each in the scatter; beyond, only the latest RECENT_MONTHS
RECENT_MONTHS = 3
GREY = "#b8bec4"
COLOURS = ("#8c959f", "#bf8700", "#0969da", "#1a7f37", "#54aeff", "#8250df", "#cf222e")
PHASE_COLOURS = dict(zip(PHASES, COLOURS, strict=True))


def _scatter(ax: Any, costs: Costs) -> None:
    """Each predicted run at (predicted, actual) dollars, coloured by month, with the y = x line."""
    points = [r for r in costs.runs if r.predicted_dollars is not None and r.dollars is not None]
    ax.set_title("predicted against actual cost per run", fontsize=11)
    ax.set_xlabel("predicted $")
    ax.set_ylabel("actual $")
    ax.grid(alpha=0.3)
    top = 1.08 * max(max(r.predicted_dollars or 0.0, r.dollars or 0.0) for r in points) or 1.0
    ax.plot([0, top], [0, top], color="#8c959f", linestyle="--", linewidth=1, label="prediction = actual")
    months = sorted({r.month for r in points})
    recent = months[-RECENT_MONTHS:] if len(months) > MAX_MONTHS else months
    older = [r for r in points if r.month not in recent]
    if older:  # many months: a colour each would repeat; is the prediction getting better lately?
        ax.scatter([r.predicted_dollars for r in older], [r.dollars for r in older], s=16, color=GREY,
                   label=f"{len(months) - len(recent)} earlier months", zorder=2)  # fmt: skip
    for i, month in enumerate(recent):
        found = [r for r in points if r.month == month]
        ax.scatter([r.predicted_dollars for r in found], [r.dollars for r in found], s=22, color=f"C{i}",
                   label=month, zorder=3)  # fmt: skip
    if len(points) <= LABEL_POINTS:
        for r in points:
            at = (r.predicted_dollars, r.dollars)
            ax.annotate(r.name, at, fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(fontsize=8, loc="upper left")


def _months(ax: Any, costs: Costs) -> None:
    """Spend per month: billed (solid) under estimated (hatched), the run count above each bar."""
    labels = [m.month for m in costs.months]
    estimated = [m.estimated for m in costs.months]
    billed = [m.dollars - m.estimated for m in costs.months]
    xs = range(len(labels))
    ax.bar(xs, billed, color="C0", label="billed")
    ax.bar(xs, estimated, bottom=billed, color="white", edgecolor="C0", hatch="//", label="list price")
    font = 7 if len(labels) > 6 else 9
    for x, m in zip(xs, costs.months, strict=True):
        text = f"${m.dollars:,.2f}\n{m.runs} run{'s' if m.runs != 1 else ''}"
        ax.annotate(text, (x, m.dollars), ha="center", va="bottom", fontsize=font, xytext=(0, 2),
                    textcoords="offset points")  # fmt: skip
    ax.set_xticks(list(xs), labels, rotation=45 if len(labels) > 6 else 0, fontsize=8)
    pad = max(0, 3 - len(labels)) * 0.5  # a lone month is a bar, not a wall
    ax.set_xlim(-0.6 - pad, len(labels) - 0.4 + pad)
    ax.set_ylim(0, 1.2 * max([m.dollars for m in costs.months] + [0.01]))
    ax.set_title("spend per month (UTC)", fontsize=11, loc="left")
    ax.set_ylabel("$")
    ax.grid(alpha=0.3, axis="y")
    if any(estimated) and any(billed):  # above the bars, where no label sits
        ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)


def render_cost(costs: Costs) -> bytes:
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import

    predicted = any(r.predicted_dollars is not None and r.dollars is not None for r in costs.runs)
    fig = Figure(figsize=(12 if predicted else 6.5, 4.6), dpi=100, layout="constrained")
    if predicted:
        left, right = fig.subplots(1, 2)
        _scatter(left, costs)
    else:  # nothing to compare yet: an empty scatter would only take room
        right = fig.subplots()
    _months(right, costs)
    return png(fig)


def render_phases(costs: Costs) -> bytes:
    """One stacked horizontal bar per run (minutes per phase), first run at the top."""
    from matplotlib.figure import Figure

    runs = costs.runs
    fig = Figure(figsize=(11, max(2.8, 1.4 + 0.24 * len(runs))), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    ys = [-i for i in range(len(runs))]
    left = [0.0] * len(runs)
    for phase in costs.phases:
        minutes = [(r.phase(phase) or 0.0) / 60 for r in runs]
        ax.barh(ys, minutes, left=left, height=0.7, color=PHASE_COLOURS.get(phase, "#d0d7de"), label=phase)
        left = [a + b for a, b in zip(left, minutes, strict=True)]
    names = [r.name + (f" ({ESTIMATED})" if r.priced == ESTIMATED else "") for r in runs]
    ax.set_yticks(ys, names, fontsize=8 if len(runs) > 20 else 9)
    ax.set_ylim(-len(runs) + 0.4, 0.6)
    ax.set_xlabel("minutes")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("time per phase, per run", fontsize=11)
    fig.legend(ncol=len(costs.phases), fontsize=8, loc="outside lower center", frameon=False)
    return png(fig)
