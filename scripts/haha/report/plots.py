"""Key metrics against temperature, one line per config (matplotlib PNG, byte-reproducible)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from haha.report.metrics import Stats
from haha.report.model import Report

PANELS: tuple[tuple[str, Callable[[Stats], float | None], bool], ...] = (
    ("empty", lambda s: s.rate(s.empty), True),
    ("repetition loops", lambda s: s.rate(s.loops), True),
    ("echo", lambda s: s.rate(s.echoes), True),
    ("cut by max_tokens", lambda s: s.rate(s.truncated), True),
    ("mean characters", lambda s: s.mean_chars, False),
    ("distinct-2 across seeds", lambda s: s.distinct2, False),
)
STYLES = ("-", "--", ":", "-.")


def render(report: Report, path: Path) -> Path:
    """Draw the panels into `path`; no timestamps or version strings, so equal data gives equal bytes."""
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import

    legend_rows = -(-len(report.runs) // 4)
    fig = Figure(figsize=(13, 7 + 0.25 * legend_rows), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (title, metric, is_rate) in zip(axes.flat, PANELS, strict=True):
        for i, run in enumerate(sorted(report.runs, key=lambda r: r.run.name)):
            temps = sorted(run.by_temperature)
            values = [metric(run.by_temperature[t]) for t in temps]
            ax.plot(
                temps,
                [float("nan") if v is None else v for v in values],
                marker="o",
                markersize=3,
                linestyle=STYLES[i // 10 % len(STYLES)],
                color=f"C{i % 10}",
                label=run.run.name,
            )
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("temperature")
        ax.grid(alpha=0.3)
        if is_rate:
            ax.set_ylim(-0.03, 1.03)
            ax.yaxis.set_major_formatter("{x:.0%}")
    if report.runs:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path
