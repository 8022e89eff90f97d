"""One Report value built from every run: what markdown, HTML and plots all render."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from haha.report.flags import Flag, flags
from haha.report.load import Run
from haha.report.metrics import Norms, RunReport, Verdict, analyse
from haha.results import STANDARD_KEYS

# The seed project's key order (shared with the results writer), then the system message.
COLUMN_ORDER = (*STANDARD_KEYS, "default_system_message")
MAX_VALUE_CHARS = 40


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


def build(runs: Sequence[Run], norms: Norms) -> Report:
    """Analyse every run and order them for the leaderboard: cleanest first, then by name."""
    reports = sorted((analyse(r, norms) for r in runs), key=lambda r: (-r.stats.clean, r.run.name))
    cells: dict[tuple[str, str, float], list[Cell]] = {}
    for report in reports:
        for sample, verdict in zip(report.run.samples, report.verdicts, strict=True):
            key = (report.run.name, sample.prompt, sample.temperature)
            cells.setdefault(key, []).append(Cell(sample.seed, sample.text, verdict))
    return Report(
        runs=tuple(reports),
        flags=tuple(flags(sorted(reports, key=lambda r: r.run.name), norms.long_chars)),
        hyperparameters=differing_keys([r.run.config for r in reports]),
        prompts=tuple(dict.fromkeys(p for r in sorted(runs, key=lambda r: r.name) for p in r.prompts)),
        temperatures=tuple(sorted({t for r in runs for t in r.temperatures})),
        long_chars=norms.long_chars,
        cells={k: tuple(v) for k, v in cells.items()},
    )
