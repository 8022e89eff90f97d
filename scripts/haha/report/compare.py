"""Two configs side by side on the same prompt, temperature and seed (terminal and markdown)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from haha.report.load import Run
from haha.report.markdown import escape

MAX_TERMINAL_CHARS = 400


@dataclass(frozen=True)
class Pair:
    """What each config wrote for one prompt/temperature/seed (None: that config lacks it)."""

    prompt: str
    temperature: float
    seed: int
    a: str | None
    b: str | None


def pairs(a: Run, b: Run) -> list[Pair]:
    """Every prompt/temperature/seed either run has, in A's order then B's extras."""
    texts_a = {(s.prompt, s.temperature, s.seed): s.text for s in a.samples}
    texts_b = {(s.prompt, s.temperature, s.seed): s.text for s in b.samples}
    keys = dict.fromkeys([*texts_a, *texts_b])
    return [Pair(p, t, s, texts_a.get((p, t, s)), texts_b.get((p, t, s))) for p, t, s in keys]


def _shown(text: str | None, limit: int) -> str:
    if text is None:
        return "—"
    text = text.strip()
    if not text:
        return "(empty)"
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit:,} chars)"


def markdown(a: Run, b: Run, found: list[Pair]) -> str:
    """One table per prompt: temperature, seed, A, B."""
    parts = [f"# {a.name} vs {b.name}"]
    for prompt in dict.fromkeys(p.prompt for p in found):
        rows = [
            f"| {p.temperature:g} | {p.seed} | {escape(_shown(p.a, 280))} | {escape(_shown(p.b, 280))} |"
            for p in found
            if p.prompt == prompt
        ]
        head = f"| T | seed | {escape(a.name)} | {escape(b.name)} |\n|---|---|---|---|"
        parts.append(f"## {escape(prompt, 1000)}\n\n{head}\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n"


def terminal(a: Run, b: Run, found: list[Pair]) -> list[Table]:
    """One rich table per prompt, for `haha compare` in a terminal."""
    tables = []
    for prompt in dict.fromkeys(p.prompt for p in found):
        table = Table(title=Text(prompt), title_justify="left", show_lines=True, expand=True)
        table.add_column("T", justify="right", no_wrap=True)
        table.add_column("seed", justify="right", no_wrap=True)
        table.add_column(a.name, ratio=1)
        table.add_column(b.name, ratio=1)
        for p in (p for p in found if p.prompt == prompt):
            shown = (Text(_shown(p.a, MAX_TERMINAL_CHARS)), Text(_shown(p.b, MAX_TERMINAL_CHARS)))
            table.add_row(f"{p.temperature:g}", str(p.seed), *shown)  # Text: completions are not markup
        tables.append(table)
    return tables
