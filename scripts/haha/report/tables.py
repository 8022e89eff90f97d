"""The report's tables as plain values, so markdown and HTML render the same columns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from haha.report.baseline import NO_EFFECT_SHARE
from haha.report.funniest import GROUPS, MIN_PAIR_VOTES, MIN_VOTES, PairVotes, Ranking
from haha.report.metrics import RunReport, Stats, Verdict
from haha.report.model import Report, format_value
from haha.report.training import LOSS_FACTOR


@dataclass(frozen=True)
class Link:
    label: str
    url: str


CellValue = str | Link | tuple[Link, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[CellValue, ...], ...]


def cell_text(value: CellValue, link: Callable[[Link], str], text: Callable[[str], str]) -> str:
    """A cell in either rendering: links joined ('—' when none) or text, each in that format."""
    if isinstance(value, Link):
        return link(value)
    if isinstance(value, tuple):
        return " · ".join(map(link, value)) or "—"
    return text(value)


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
    ("runaway", "a run is flagged for one completion over {runaway_chars:,} characters (20× normal)"),
    (
        "no effect",
        "flagged when {no_effect:.0%}+ of a config's completions equal its baseline's at the same seed",
    ),
    ("loss", "flagged when the final training loss is over {loss_factor:g}× its series' median"),
    ("distinct-n", "unique/total word n-grams across the seeds of one prompt and temperature, averaged"),
)


def headline(report: Report) -> str:
    """What the report covers, e.g. '12 configs and 1 baseline, 1,980 completions.'"""
    total = sum(r.stats.total for r in report.runs)
    bases = sum(r.run.is_baseline for r in report.runs)
    baselines = f" and {bases} baseline{'s' if bases > 1 else ''}" if bases else ""
    return f"{len(report.runs) - bases} configs{baselines}, {total:,} completions."


def definitions(report: Report) -> list[tuple[str, str]]:
    """The metric definitions with this report's thresholds filled in."""
    limits = {"long_chars": report.long_chars, "runaway_chars": report.runaway_chars,
              "no_effect": NO_EFFECT_SHARE, "loss_factor": LOSS_FACTOR}  # fmt: skip
    return [(name, text.format(**limits)) for name, text in DEFINITIONS]


def leaderboard(report: Report) -> Table:
    """One row per config: differing hyperparameters, top-line metrics, links. Cleanest first."""
    funny = ("funny score",) if report.funniest else ()
    headers = ("#", "config", *report.hyperparameters, *(h for h, _ in TOP_LINE), *funny, "links")
    rows = tuple(
        (
            str(i),
            marked_name(report, run),
            *(format_value(run.run.config.get(k)) for k in report.hyperparameters),
            *(cell(run.stats) for _, cell in TOP_LINE),
            *((funny_score(report, run.run.name),) if funny else ()),
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


FUNNIEST_INTRO = (
    "Bradley–Terry scores on the Elo scale (1000 = the average config; 100 points more ≈ wins 64% "
    "of the time) with 95% bootstrap intervals; ties count half a win. Configs with fewer than "
    f"{MIN_VOTES} votes are not ranked; pairs with fewer than {MIN_PAIR_VOTES} votes show no win rate."
)
NO_VOTES = (
    "No votes yet. Rate completions blind with `haha rate` (votes go to train/results/ratings/), "
    "or let an LLM judge with `haha judge A B`."
)
AGAINST_BASELINE = "Win rate of each config against its own base model without adapter."
GROUP_TITLES = {"together": "People and judge together", "people": "People", "judge": "LLM judge"}


def vote_summary(report: Report) -> str:
    assert report.funniest is not None
    f = report.funniest
    counts = {r.group: r.votes for r in f.rankings}
    raters = len(f.raters)
    return (
        f"{counts['together']:,} votes from {raters} rater{'s' if raters != 1 else ''} "
        f"(people {counts['people']:,}, judge {counts['judge']:,})."
    )


def funny_score(report: Report, name: str) -> str:
    """The together-ranking score of a config for the leaderboard ('—' unranked)."""
    ranked = report.funniest.ranking("together").ranked if report.funniest else ()
    found = next((s for s in ranked if s.name == name), None)
    return "—" if found is None else f"{found.score:.0f}"


def ranking_table(ranking: Ranking) -> Table:
    headers = ("#", "config", "score", "95% interval", "votes", "win rate")
    rows = tuple(
        (
            str(i),
            s.name,
            f"{s.score:.0f}",
            f"{s.low:.0f}–{s.high:.0f}",
            str(s.votes),
            f"{s.wins / s.votes:.0%}",
        )
        for i, s in enumerate(ranking.ranked, 1)
    )
    return Table(headers, rows)


def too_few(ranking: Ranking) -> str:
    """The configs a ranking leaves out, in words ('' when none)."""
    if not ranking.too_few:
        return ""
    names = ", ".join(f"{n} ({v})" for n, v in ranking.too_few)
    return f"Too few votes to rank (fewer than {MIN_VOTES} each): {names}."


def _record(pair: PairVotes, group: str) -> str:
    counts = pair.counts.get(group)
    return "—" if counts is None else "–".join(str(c) for c in counts)


def _rate(pair: PairVotes | None, name: str, group: str) -> str:
    if pair is None or not pair.total(group):
        return "—"
    share = pair.share(name, group)
    n = pair.total(group)
    return f"too few votes ({n} of {MIN_PAIR_VOTES})" if share is None else f"{share:.0%} of {n}"


def versus_baseline(report: Report) -> Table:
    """Each config's win rate against its own base model's baseline, per group."""
    headers = ("config", "baseline", *GROUPS)
    rows = []
    for run in sorted(report.runs, key=lambda r: r.run.name):
        base = (report.baselines or {}).get(run.run.base_model or "")
        if run.run.is_baseline or base is None or report.funniest is None:
            continue
        pair = report.funniest.pair(run.run.name, base)
        rows.append((run.run.name, base, *(_rate(pair, run.run.name, g) for g in GROUPS)))
    return Table(headers, tuple(rows))


def pair_votes(report: Report) -> Table:
    """Votes per pair, most-voted first: wins of the first, of the second, ties; then the first's rate."""
    headers = ("first", "second", *(f"{g} (1st–2nd–tie)" for g in GROUPS), "first wins")
    found = report.funniest.pairs if report.funniest else ()
    ordered = sorted(found, key=lambda p: (-p.total(), p.a, p.b))
    rows = tuple((p.a, p.b, *(_record(p, g) for g in GROUPS), _rate(p, p.a, "together")) for p in ordered)
    return Table(headers, rows)
