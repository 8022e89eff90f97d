"""Which runs are broken, in plain words: only real breakage, never informational metrics."""

from __future__ import annotations

from dataclasses import dataclass

from haha.report.metrics import RunReport

EMPTY_SHARE = 0.2
LOOP_SHARE = 0.1
LONG_SHARE = 0.1
DEGENERATE_SHARE = 0.1
ECHO_SHARE = 0.25


@dataclass(frozen=True)
class Flag:
    """One broken run and every reason it counts as broken."""

    name: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}: {'; '.join(self.reasons)}"


def reasons(report: RunReport, long_chars: int, runaway_chars: int = 10**9) -> list[str]:
    """Why a run's completions are broken (empty list: they are not)."""
    s = report.stats
    if s.total == 0:
        return ["has no completions"]
    of = f"of {s.total} completions"
    found = []
    if s.rate(s.empty) >= EMPTY_SHARE:
        found.append(f"{s.empty} {of} are empty")
    looping = s.rate(s.loops) >= LOOP_SHARE
    if looping:
        found.append(
            f"{s.loops} {of} are repetition loops (the same words over and over; "
            f"the longest has {s.max_chars:,} characters)"
        )
    if s.rate(s.long) >= LONG_SHARE and not (looping and s.long <= s.loops):
        found.append(
            f"{s.long} {of} run far past the normal length "
            f"(over {long_chars:,} characters; the longest has {s.max_chars:,})"
        )
    if s.runaways and not any("the longest has" in r for r in found):  # one is enough: nothing capped it
        found.append(
            f"{s.runaways} {of} {'is a runaway' if s.runaways == 1 else 'are runaways'} "
            f"(over {runaway_chars:,} characters, many times the normal length; the longest has "
            f"{s.max_chars:,}): the model did not learn to stop"
        )
    if s.rate(s.degenerate) >= DEGENERATE_SHARE:
        found.append(f"{s.degenerate} {of} are degenerate text (mostly symbols or leaked special tokens)")
    if s.rate(s.echoes) >= ECHO_SHARE:
        found.append(f"{s.echoes} {of} echo the prompt back")
    return found


def flags(
    reports: list[RunReport],
    long_chars: int,
    runaway_chars: int = 10**9,
    more: dict[str, list[str]] | None = None,
) -> list[Flag]:
    """The broken runs, in the order given; `more` adds reasons found elsewhere (baseline, loss)."""
    more = more or {}
    found = [
        Flag(r.run.name, (*reasons(r, long_chars, runaway_chars), *more.get(r.run.name, ()))) for r in reports
    ]
    return [f for f in found if f.reasons]
