"""Key metrics against temperature, one line per config, and training curves (matplotlib PNGs).

Up to MAX_COLOURED runs each get a colour of their own. Beyond that colours would repeat, so only
baselines, flagged runs and the top-ranked ones are coloured (and named in the legend); the rest are
thin grey lines. No timestamps or version strings: equal data gives equal bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

from haha.report.metrics import RunReport, Stats
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
MAX_COLOURED = 10  # matplotlib's colour cycle
GREY = "#b8bec4"
GREY_WIDTH = 0.8
# Line2D's caps and joins, so the collection draws the same pixels as one Line2D per run did
GREY_LINES = {
    "colors": GREY,
    "linewidths": GREY_WIDTH,
    "zorder": 1,
    "capstyle": "projecting",
    "joinstyle": "round",
}
LOSS_COLUMNS = 5


def _style(report: Report, names: list[str]) -> dict[str, dict[str, object]]:
    """Line style per run: all coloured when few, else highlighted ones coloured and the rest grey."""
    coloured = names if len(names) <= MAX_COLOURED else [n for n in names if n in report.highlight]
    flagged = {f.name for f in report.flags}
    styles: dict[str, dict[str, object]] = {}
    for i, name in enumerate(coloured):
        styles[name] = {
            "color": "black" if name.startswith("baseline:") else f"C{i % 10}",
            "linestyle": STYLES[i // 10 % len(STYLES)],
            "marker": "x" if name in flagged else "o",
            "markersize": 4 if name in flagged else 3,
            "linewidth": 1.6,
            "label": name + (" ⚠" if name in flagged else ""),
            "zorder": 3,
        }
    for name in names:
        styles.setdefault(name, {"color": GREY, "linewidth": GREY_WIDTH, "marker": None, "zorder": 1})
    return styles


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (written by the caller with the other report files, all or none)."""
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def render(report: Report) -> bytes:
    """Draw the panels as a PNG; no timestamps or version strings, so equal data gives equal bytes."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure  # lazy: matplotlib costs ~0.5 s to import
    from matplotlib.lines import Line2D

    runs = sorted(report.runs, key=lambda r: r.run.name)
    styles = _style(report, [r.run.name for r in runs])
    coloured = [r for r in runs if "label" in styles[r.run.name]]
    grey = [r for r in runs if "label" not in styles[r.run.name]]
    legend_rows = -(-(len(coloured) + bool(grey)) // 4)
    fig = Figure(figsize=(13, 7 + 0.25 * legend_rows), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (title, metric, is_rate) in zip(axes.flat, PANELS, strict=True):
        if grey:  # one artist for every grey line (not one each: fifty runs took ~0.1 s more), underneath
            lines = [list(zip(*_series(r, metric), strict=True)) for r in grey]
            ax.add_collection(LineCollection(lines, **GREY_LINES))
        for run in coloured:
            ax.plot(*_series(run, metric), **styles[run.run.name])
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("temperature")
        ax.grid(alpha=0.3)
        if is_rate:
            ax.set_ylim(-0.03, 1.03)
            ax.yaxis.set_major_formatter("{x:.0%}")
    if runs:
        handles = [Line2D([], [], **styles[r.run.name]) for r in coloured]
        labels = [str(styles[r.run.name]["label"]) for r in coloured]
        if grey:
            handles.append(Line2D([], [], color=GREY, linewidth=GREY_WIDTH))
            labels.append(f"{len(grey)} other configs (neither flagged nor top-ranked)")
        fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
    return png(fig)


def _series(run: RunReport, metric: Callable[[Stats], float | None]) -> tuple[list[float], list[float]]:
    """Temperatures and the metric at each; NaN (a gap in the line) where it is undefined."""
    temps = sorted(run.by_temperature)
    values = [metric(run.by_temperature[t]) for t in temps]
    return temps, [float("nan") if v is None else v for v in values]


def _loss_scale(runs: list[RunReport]) -> float:
    """One y range for every panel (0 to this), so a run far above its series shows; outliers clip."""
    values = sorted(
        v
        for r in runs
        for p in r.run.train_loss
        for v in (p.loss, p.eval_loss)
        if v is not None and math.isfinite(v)
    )
    return 1.05 * values[int(0.98 * (len(values) - 1))] if values and values[-1] > 0 else 1.0


def loss_grid(count: int) -> tuple[int, int, float, float]:
    """Columns, rows and the cell's width and height in inches for `count` panels.

    Up to LOSS_COLUMNS panels a row; few panels get larger cells (a single run fills a readable
    6-inch panel instead of a fifth of a wide, empty figure), many keep 2.6 x 1.6 in.
    """
    columns = max(1, min(LOSS_COLUMNS, count))
    width = max(2.6, min(6.0, 8.0 / columns))
    return columns, -(-count // columns), width, width * 1.6 / 2.6


def render_loss(report: Report) -> bytes:
    """Small multiples: training (blue) and eval (orange) loss per step, one panel per config.

    Drawn as cells of one canvas rather than one matplotlib Axes each (fifty Axes take seconds to
    lay out); every panel shares the y range 0..top, written in the caption.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    runs = [r for r in sorted(report.runs, key=lambda r: r.run.name) if r.run.train_loss]
    flagged = {f.name for f in report.flags}
    top = _loss_scale(runs)
    columns, rows, cell_w, cell_h = loss_grid(len(runs))
    font = 7 if cell_w < 3.5 else 9
    # In cell units: panels at y0..y0+0.7, a two-line label above; no blank row below the last.
    label_top = min(1.0, 0.78 + 2.6 * font / 72 / cell_h)
    span = rows - 1 + label_top + 0.06
    title_h = 0.45 if columns > 2 else 0.6
    height = title_h + cell_h * span
    fig = Figure(figsize=(0.1 + cell_w * columns, height), dpi=80)
    ax = fig.add_axes((0.01, 0.0, 0.98, cell_h * span / height))
    ax.set_axis_off()
    ax.set_xlim(-0.02, columns)
    ax.set_ylim(-(rows - 1) - 0.06, label_top)
    frames, train, evals, points = [], [], [], []
    for i, run in enumerate(runs):
        x0, y0 = i % columns, -(i // columns)
        steps = [p.step for p in run.run.train_loss]
        first, span = min(steps), (max(steps) - min(steps)) or 1

        def at(step: int, loss: float, x0: float = x0, y0: float = y0, first: int = first, span: int = span):
            return (x0 + 0.92 * (step - first) / span, y0 + 0.7 * min(max(loss, 0.0), top) / top)

        frames.append([(x0, y0), (x0 + 0.92, y0), (x0 + 0.92, y0 + 0.7), (x0, y0 + 0.7), (x0, y0)])
        train.append(
            [at(p.step, p.loss) for p in run.run.train_loss if p.loss is not None and math.isfinite(p.loss)]
        )
        evals.append([at(p.step, p.eval_loss) for p in run.run.train_loss if p.eval_loss is not None])
        points += evals[-1]
        final = next((p.loss for p in reversed(run.run.train_loss) if p.loss is not None), None)
        bad = run.run.name in flagged
        label = (
            run.run.name
            + (" ⚠" if bad else "")
            + (f"\nfinal {final:.3g}, {len(steps)} steps" if final else "")
        )
        ax.text(x0, y0 + 0.74, label, fontsize=font, va="bottom", color="#cf222e" if bad else "black")
    ax.add_collection(LineCollection(frames, colors="#d0d7de", linewidths=0.6))
    ax.add_collection(LineCollection(train, colors="C0", linewidths=1.0))
    ax.add_collection(LineCollection([e for e in evals if len(e) > 1], colors="C1", linewidths=1.0))
    if points:
        ax.scatter(*zip(*points, strict=True), s=6, color="C1", zorder=3)
    between = "\n" if columns <= 2 else "; "
    fig.suptitle(
        f"Loss per step (blue: training, orange: eval){between}every panel from 0 to {top:.3g}, "
        "steps left to right",
        fontsize=9,
        y=1 - 0.1 / height,
        va="top",
    )
    return png(fig)
