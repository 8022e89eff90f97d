"""Which config is funniest: pairwise votes by people and the judge, ranked with Bradley–Terry.

Rankings are computed three ways (people, judge, both together). A config with fewer than
MIN_VOTES votes in a ranking is listed as not rankable yet; a pair with fewer than MIN_PAIR_VOTES
votes shows its counts but no win rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from haha.rate.ratings import Rating
from haha.report.ranking import Score, Vote, scores

MIN_VOTES = 10  # per config, to be ranked
MIN_PAIR_VOTES = 5  # per pair (or config vs its baseline), to state a win rate
GROUPS = ("together", "people", "judge")


@dataclass(frozen=True)
class Ranking:
    """One group's ranking: ranked configs best first, and those with too few votes."""

    group: str
    votes: int
    ranked: tuple[Score, ...]
    too_few: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PairVotes:
    """Votes between two configs (names in sorted order) per group: (a wins, b wins, ties)."""

    a: str
    b: str
    counts: dict[str, tuple[int, int, int]]

    def total(self, group: str = "together") -> int:
        return sum(self.counts.get(group, (0, 0, 0)))

    def share(self, name: str, group: str = "together") -> float | None:
        """`name`'s win rate in this pair (ties half), or None below MIN_PAIR_VOTES."""
        a_wins, b_wins, ties = self.counts.get(group, (0, 0, 0))
        n = a_wins + b_wins + ties
        if n < MIN_PAIR_VOTES:
            return None
        return ((a_wins if name == self.a else b_wins) + ties / 2) / n


@dataclass(frozen=True)
class Funniest:
    rankings: tuple[Ranking, ...]
    pairs: tuple[PairVotes, ...]
    raters: tuple[str, ...]

    def ranking(self, group: str) -> Ranking:
        return next(r for r in self.rankings if r.group == group)

    def pair(self, x: str, y: str) -> PairVotes | None:
        a, b = sorted((x, y))
        return next((p for p in self.pairs if p.a == a and p.b == b), None)

    def top(self, n: int) -> list[str]:
        return [s.name for s in self.ranking("together").ranked[:n]]


def _group(rating: Rating) -> str:
    return "judge" if rating.by_judge else "people"


def tally(ratings: Sequence[Rating]) -> dict[tuple[str, str], dict[str, list[int]]]:
    """(a, b) in sorted order → group → [a wins, b wins, ties]."""
    found: dict[tuple[str, str], dict[str, list[int]]] = {}
    for r in ratings:
        a, b = sorted((r.a, r.b))
        winner = r.winner if (a, b) == (r.a, r.b) or r.winner == "tie" else {"a": "b", "b": "a"}[r.winner]
        slot = {"a": 0, "b": 1, "tie": 2}[winner]
        groups = found.setdefault((a, b), {})
        for group in (_group(r), "together"):
            groups.setdefault(group, [0, 0, 0])[slot] += 1
    return found


def _ranking(group: str, counted: dict[tuple[str, str], dict[str, list[int]]]) -> Ranking:
    votes = [Vote(a, b, *groups[group]) for (a, b), groups in sorted(counted.items()) if group in groups]
    fitted = scores(votes) if votes else []
    ranked = tuple(s for s in fitted if s.votes >= MIN_VOTES)
    too_few = tuple(sorted((s.name, s.votes) for s in fitted if s.votes < MIN_VOTES))
    return Ranking(group, sum(v.total for v in votes), ranked, too_few)


def build(ratings: Sequence[Rating]) -> Funniest | None:
    """None without any votes (the report then says how to add some)."""
    if not ratings:
        return None
    counted = tally(ratings)
    pairs = tuple(
        PairVotes(a, b, {g: (c[0], c[1], c[2]) for g, c in groups.items()})
        for (a, b), groups in sorted(counted.items())
    )
    rankings = tuple(_ranking(g, counted) for g in GROUPS)
    return Funniest(rankings, pairs, tuple(sorted({r.rater for r in ratings})))
