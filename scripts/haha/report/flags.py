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


def reasons(report: RunReport, long_chars: int) -> list[str]:
    """Why a run is broken (empty list: it is not)."""
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
    if s.rate(s.degenerate) >= DEGENERATE_SHARE:
        found.append(f"{s.degenerate} {of} are degenerate text (mostly symbols or leaked special tokens)")
    if s.rate(s.echoes) >= ECHO_SHARE:
        found.append(f"{s.echoes} {of} echo the prompt back")
    return found


def flags(reports: list[RunReport], long_chars: int) -> list[Flag]:
    """The broken runs, in the order given."""
    found = [Flag(r.run.name, tuple(reasons(r, long_chars))) for r in reports]
    return [f for f in found if f.reasons]
