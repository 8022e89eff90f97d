"""The report's tables as plain values, so markdown and HTML render the same columns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from haha.report.metrics import RunReport, Stats, Verdict
from haha.report.model import Report, format_value


@dataclass(frozen=True)
class Link:
    label: str
    url: str


CellValue = str | Link | tuple[Link, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[CellValue, ...], ...]


def percent(stats: Stats, count: int) -> str:
    rate = stats.rate(count)
    return "<1%" if 0 < rate < 0.005 else f"{rate:.0%}"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def links(run: RunReport) -> tuple[Link, ...]:
    found = [Link("model", run.run.adapter_url or ""), Link("W&B", run.run.wandb_url or "")]
    return tuple(link for link in found if link.url)


def marked_name(report: Report, run: RunReport) -> str:
    return f"{run.run.name} ⚠" if report.flag(run.run.name) else run.run.name


TOP_LINE: tuple[tuple[str, Callable[[Stats], str]], ...] = (
    ("clean", lambda s: f"{s.clean:.0%}"),
    ("empty", lambda s: percent(s, s.empty)),
    ("loops", lambda s: percent(s, s.loops)),
    ("echo", lambda s: percent(s, s.echoes)),
    ("copies", lambda s: percent(s, s.copies)),
    ("distinct-2", lambda s: ratio(s.distinct2)),
    ("mean chars", lambda s: f"{s.mean_chars:.0f}"),
)

METRICS: tuple[tuple[str, Callable[[Stats], str]], ...] = (
    ("completions", lambda s: str(s.total)),
    ("empty", lambda s: percent(s, s.empty)),
    ("mean chars", lambda s: f"{s.mean_chars:.0f}"),
    ("max chars", lambda s: f"{s.max_chars:,}"),
    ("loops", lambda s: percent(s, s.loops)),
    ("too long", lambda s: percent(s, s.long)),
    ("degenerate", lambda s: percent(s, s.degenerate)),
    ("echo", lambda s: percent(s, s.echoes)),
    ("copies", lambda s: percent(s, s.copies)),
    ("cut by max_tokens", lambda s: percent(s, s.truncated)),
    ("distinct-1", lambda s: ratio(s.distinct1)),
    ("distinct-2", lambda s: ratio(s.distinct2)),
)

DEFINITIONS = (
    ("clean", "share of completions that are not empty, looping, too long, degenerate or echoing"),
    ("loops", "the same word trigrams over and over, or one short unit repeated for 60+ characters"),
    ("too long", "far past the normal length ({long_chars:,}+ characters, 5× the median training punchline)"),
    ("degenerate", "mostly symbols or digits, or leaked chat-template tokens"),
    ("echo", "repeats most of the prompt back"),
    ("copies", "a training punchline copied verbatim or near-verbatim"),
    ("cut by max_tokens", "near the token limit (approximate tokenizer) and not ending a sentence"),
    ("distinct-n", "unique/total word n-grams across the seeds of one prompt and temperature, averaged"),
)


def leaderboard(report: Report) -> Table:
    """One row per config: differing hyperparameters, top-line metrics, links. Cleanest first."""
    headers = ("#", "config", *report.hyperparameters, *(h for h, _ in TOP_LINE), "links")
    rows = tuple(
        (
            str(i),
            marked_name(report, run),
            *(format_value(run.run.config.get(k)) for k in report.hyperparameters),
            *(cell(run.stats) for _, cell in TOP_LINE),
            links(run),
        )
        for i, run in enumerate(report.runs, 1)
    )
    return Table(headers, rows)


def metrics(report: Report) -> Table:
    headers = ("config", *(h for h, _ in METRICS))
    rows = tuple((marked_name(report, r), *(cell(r.stats) for _, cell in METRICS)) for r in report.runs)
    return Table(headers, rows)


def summary(report: Report) -> Table:
    """The top-line table for a bot PR body: status in words instead of hyperparameters."""
    headers = ("config", "status", *(h for h, _ in TOP_LINE), "links")
    rows = []
    for run in report.runs:
        flag = report.flag(run.run.name)
        status = "⚠ " + "; ".join(flag.reasons) if flag else "ok"
        rows.append((run.run.name, status, *(cell(run.stats) for _, cell in TOP_LINE), links(run)))
    return Table(headers, tuple(rows))


def badges(verdict: Verdict) -> tuple[str, ...]:
    """Short tags for what is notable about one completion (shared legend in both renderings)."""
    found = [
        ("loop", verdict.loop),
        ("too long", verdict.long and not verdict.loop),
        ("degenerate", verdict.degenerate),
        ("echo", verdict.echo),
        ("copy", verdict.copy),
        ("cut", verdict.truncated),
    ]
    return tuple(name for name, hit in found if hit)
