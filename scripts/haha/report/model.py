"""One Report value built from every run: what markdown, HTML and plots all render."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from haha.budget import ListPrice
from haha.rate.ratings import Rating
from haha.report import baseline, funniest, training
from haha.report.costs import Costs, build_costs
from haha.report.flags import Flag, flags
from haha.report.funniest import Funniest
from haha.report.load import Run
from haha.report.metrics import Norms, RunReport, Verdict, analyse
from haha.results import STANDARD_KEYS

# The seed project's key order (shared with the results writer), then the system message.
COLUMN_ORDER = (*STANDARD_KEYS, "default_system_message")
MAX_VALUE_CHARS = 40
HIGHLIGHT_TOP = 5  # top-ranked configs drawn in colour when there are too many to colour them all


@dataclass(frozen=True)
class Cell:
    """One completion as shown side by side."""

    seed: int
    text: str
    verdict: Verdict


@dataclass(frozen=True)
class Report:
    """Runs in leaderboard order, their flags and the axes of the side-by-side view."""

    runs: tuple[RunReport, ...]
    flags: tuple[Flag, ...]
    hyperparameters: tuple[str, ...]
    prompts: tuple[str, ...]
    temperatures: tuple[float, ...]
    long_chars: int
    cells: dict[tuple[str, str, float], tuple[Cell, ...]]
    rows: tuple[RunReport, ...] = ()
    baselines: dict[str, str] | None = None
    funniest: Funniest | None = None
    highlight: tuple[str, ...] = ()
    runaway_chars: int = 0
    costs: Costs | None = None

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)

    def completions(self, name: str, prompt: str, temperature: float) -> tuple[Cell, ...]:
        return self.cells.get((name, prompt, temperature), ())


def format_value(value: Any) -> str:
    """A hyperparameter as a short, stable string ('—' when the config lacks it)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def differing_keys(configs: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Config keys whose values are not the same in every run (standard keys first)."""
    keys = {k for c in configs for k in c} - {"name"}
    ordered = [k for k in COLUMN_ORDER if k in keys] + sorted(keys - set(COLUMN_ORDER))
    return tuple(k for k in ordered if len({format_value(c.get(k)) for c in configs}) > 1)


def side_by_side(reports: Sequence[RunReport]) -> tuple[RunReport, ...]:
    """Rows grouped by base model (groups in leaderboard order), each baseline above its configs."""
    groups: dict[str | None, list[RunReport]] = {}
    for report in reports:
        groups.setdefault(report.run.base_model, []).append(report)
    return tuple(r for group in groups.values() for r in sorted(group, key=lambda r: not r.run.is_baseline))


def highlighted(
    reports: Sequence[RunReport], found: Sequence[Flag], ranked: Funniest | None
) -> tuple[str, ...]:
    """What the plots colour when there are too many runs to colour all: baselines, flagged, funniest."""
    names = [r.run.name for r in reports if r.run.is_baseline] + [f.name for f in found]
    names += ranked.top(HIGHLIGHT_TOP) if ranked else [r.run.name for r in reports[:HIGHLIGHT_TOP]]
    known = {r.run.name for r in reports}
    return tuple(sorted(n for n in dict.fromkeys(names) if n in known))


def build(
    runs: Sequence[Run], norms: Norms, ratings: Sequence[Rating] = (), price: ListPrice | None = None
) -> Report:
    """Analyse every run and order them for the leaderboard: cleanest first, then by name.

    `price` prices runs that carry no bill (issue 18's `meta.cost`): haha.toml's first GPU type.
    """
    reports = sorted((analyse(r, norms) for r in runs), key=lambda r: (-r.stats.clean, r.run.name))
    more = baseline.reasons(runs)
    for name, found in training.reasons(runs).items():
        more.setdefault(name, []).extend(found)
    configs = sorted((r for r in reports if not r.run.is_baseline), key=lambda r: r.run.name)
    found_flags = flags(configs, norms.long_chars, norms.runaway_chars, more)
    ranked = funniest.build(ratings)
    cells: dict[tuple[str, str, float], list[Cell]] = {}
    for report in reports:
        for sample, verdict in zip(report.run.samples, report.verdicts, strict=True):
            key = (report.run.name, sample.prompt, sample.temperature)
            cells.setdefault(key, []).append(Cell(sample.seed, sample.text, verdict))
    return Report(
        runs=tuple(reports),
        flags=tuple(found_flags),
        hyperparameters=differing_keys([r.run.config for r in configs]),
        prompts=tuple(dict.fromkeys(p for r in sorted(runs, key=lambda r: r.name) for p in r.prompts)),
        temperatures=tuple(sorted({t for r in runs for t in r.temperatures})),
        long_chars=norms.long_chars,
        cells={k: tuple(v) for k, v in cells.items()},
        rows=side_by_side(reports),
        baselines={m: r.name for m, r in baseline.baselines(runs).items()},
        funniest=ranked,
        highlight=highlighted(reports, found_flags, ranked),
        runaway_chars=norms.runaway_chars,
        costs=build_costs(runs, price),
    )
