"""What to show a rater next: two configs' completions of one prompt at the same temperature and seed.

Pairs are every two configs that share completions, plus each config with its own base model's
baseline (two baselines are never paired). The next pair is one with the fewest votes so far (a
random one among those), and within it a prompt/temperature/seed this rater has not voted on or
skipped, whose two completions differ. Which side each config is shown on is random.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from haha.rate.ratings import Rating
from haha.report.load import Run

Key = tuple[str, float, int]  # prompt, temperature, seed


@dataclass(frozen=True)
class Item:
    """One blind comparison: `a`, `b` in stored (sorted) order; `swapped` puts b on the left."""

    a: str
    b: str
    prompt: str
    temperature: float
    seed: int
    text_a: str
    text_b: str
    swapped: bool

    @property
    def shown(self) -> tuple[str, str]:
        """(left, right) texts as the rater sees them."""
        return (self.text_b, self.text_a) if self.swapped else (self.text_a, self.text_b)

    def winner(self, choice: str) -> str:
        """'a', 'b' or 'tie' from the side picked ('left', 'right' or 'tie')."""
        if choice == "tie":
            return "tie"
        left = "b" if self.swapped else "a"
        return left if choice == "left" else {"a": "b", "b": "a"}[left]


def pairable(x: Run, y: Run) -> bool:
    if x.is_baseline and y.is_baseline:
        return False
    if x.is_baseline or y.is_baseline:
        return x.base_model == y.base_model
    return True


class Deck:
    """Picks comparisons for one rater; remembers what was voted on or skipped in this session."""

    def __init__(
        self, runs: Sequence[Run], ratings: Sequence[Rating], rater: str, rng: random.Random
    ) -> None:
        self.texts = {r.name: {(s.prompt, s.temperature, s.seed): s.text for s in r.samples} for r in runs}
        ordered = sorted(runs, key=lambda r: r.name)
        self.pairs = [(x.name, y.name) for x, y in combinations(ordered, 2) if pairable(x, y)]
        self.votes: Counter[tuple[str, str]] = Counter(tuple(sorted((r.a, r.b))) for r in ratings)
        self.seen = {
            self._seen_key(r.a, r.b, (r.prompt, r.temperature, r.seed)) for r in ratings if r.rater == rater
        }
        self.exhausted: set[tuple[str, str]] = set()
        self.rng = rng

    @staticmethod
    def _seen_key(x: str, y: str, key: Key) -> tuple[str, str, Key]:
        a, b = sorted((x, y))
        return a, b, key

    def _open_keys(self, a: str, b: str) -> list[Key]:
        ta, tb = self.texts[a], self.texts[b]
        return [
            k
            for k in sorted(ta.keys() & tb.keys())
            if (a, b, k) not in self.seen and ta[k].strip() != tb[k].strip()
        ]

    def next(self) -> Item | None:
        """A comparison, or None when this rater has seen every one."""
        while True:
            live = [p for p in self.pairs if p not in self.exhausted]
            if not live:
                return None
            fewest = min(self.votes[p] for p in live)
            a, b = self.rng.choice([p for p in live if self.votes[p] == fewest])
            keys = self._open_keys(a, b)
            if not keys:
                self.exhausted.add((a, b))
                continue
            prompt, temperature, seed = self.rng.choice(keys)
            key = (prompt, temperature, seed)
            swapped = self.rng.random() < 0.5
            return Item(a, b, prompt, temperature, seed, self.texts[a][key], self.texts[b][key], swapped)

    def done(self, item: Item, voted: bool) -> None:
        """Never show this comparison to this rater again; count it if it was a vote (not a skip)."""
        self.seen.add((item.a, item.b, (item.prompt, item.temperature, item.seed)))
        if voted:
            self.votes[(item.a, item.b)] += 1
