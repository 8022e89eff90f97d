"""Quality metrics of completions: pure functions of text, so flags and tables are easy to test."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from haha.report.load import Run, Sample

WORD = re.compile(r"[a-z0-9']+")
VISIBLE = re.compile(r"\S+")
LETTERS = re.compile(r"[^\W\d_]+")
ASCII_SPACES = bytes(c for c in range(128) if not VISIBLE.fullmatch(chr(c)))
ASCII_NON_LETTERS = bytes(c for c in range(128) if not LETTERS.fullmatch(chr(c)))
MAX_LOOP_UNIT = 50
MIN_LOOP_UNITS = 5
CHAR_LOOP = re.compile(rf"(.{{1,{MAX_LOOP_UNIT}}}?)\1{{{MIN_LOOP_UNITS - 1},}}", re.S)
MIN_CHAR_LOOP = 60  # "hahaha" is a joke; sixty characters of one repeated unit is a stuck sampler
# A CHAR_LOOP match of k >= MIN_LOOP_UNITS units of u characters, k * u >= MIN_CHAR_LOOP, holds a
# stretch of (k - 1) * u characters that recurs u characters later: at least this many (48).
LOOP_WINDOW = min(
    max(MIN_CHAR_LOOP - unit, (MIN_LOOP_UNITS - 1) * unit) for unit in range(1, MAX_LOOP_UNIT + 1)
)
MIN_LOOP_WORDS = 12
LOOP_REPEAT_SHARE = 0.5  # half of the word trigrams are repeats of earlier ones
ECHO_SHARE = 0.6  # of the prompt's word trigrams found again in the completion
COPY_SHARE = 0.8  # of a training punchline's word trigrams found in the completion
MIN_COPY_TRIGRAMS = 4  # shorter punchlines count only when copied verbatim
MIN_LETTER_SHARE = 0.5
SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>", "\ufffd")
SENTENCE_END = (".", "!", "?", '"', "”", "'", ")", "…")
TRUNCATED_SHARE = 0.9  # of max_tokens, measured with an approximate tokenizer
TOKEN_COUNTS_KEPT = 4096
LONG_FACTOR = 5  # times the median training punchline length
MIN_LONG_CHARS = 300
RUNAWAY_FACTOR = 20  # times the median training punchline: the model did not learn to stop
MIN_RUNAWAY_CHARS = 1000
DEFAULT_NORM_CHARS = 80


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[str, ...]:
    """Lower-case word tokens (cached: every metric of a completion starts from them)."""
    return tuple(WORD.findall(text.lower()))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive n-tuples, zipped from n shifted slices (one C loop, not a slice per n-gram)."""
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))


@lru_cache(maxsize=65536)
def trigrams(text: str) -> frozenset[tuple[str, ...]]:
    """Distinct word trigrams (cached: the loop, echo and copy checks all start from them)."""
    return frozenset(ngrams(words(text), 3))


def has_repeat(text: str, width: int) -> bool:
    """Whether some stretch of `width` characters occurs twice (overlaps count)."""
    windows = len(text) - width + 1
    return windows > 1 and len({text[i : i + width] for i in range(windows)}) < windows


def is_empty(text: str) -> bool:
    return not text.strip()


def is_loop(text: str) -> bool:
    """Repeated word trigrams (a phrase over and over) or one short unit repeated at length."""
    count = len(words(text))
    if count >= MIN_LOOP_WORDS and 1 - len(trigrams(text)) / (count - 2) >= LOOP_REPEAT_SHARE:
        return True
    if not has_repeat(text, LOOP_WINDOW):
        return False  # no long match possible: skip the regex, which tries 50 units at every character
    return any(len(m.group(0)) >= MIN_CHAR_LOOP for m in CHAR_LOOP.finditer(text))


def is_degenerate(text: str) -> bool:
    """Mostly symbols/digits, or chat-template tokens and broken bytes leaking into the text."""
    if any(token in text for token in SPECIAL_TOKENS):
        return True
    visible, letters = visible_and_letters(text)
    return visible > 0 and letters / visible < MIN_LETTER_SHARE


def visible_and_letters(text: str) -> tuple[int, int]:
    """Non-space and letter counts; ASCII text in one C pass (a match per character made loops slow)."""
    if text.isascii():
        raw = text.encode()
        return len(raw.translate(None, ASCII_SPACES)), len(raw.translate(None, ASCII_NON_LETTERS))
    return sum(map(len, VISIBLE.findall(text))), sum(map(len, LETTERS.findall(text)))


def is_echo(prompt: str, text: str) -> bool:
    """The completion repeats most of the prompt back instead of answering it."""
    prompt_grams = trigrams(prompt)
    if not prompt_grams:
        return bool(words(prompt)) and words(prompt) == words(text)
    found = prompt_grams & trigrams(text)
    return len(found) / len(prompt_grams) >= ECHO_SHARE


def is_truncated(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> bool:
    """Sampling stopped at max_tokens: near the limit and not ending a sentence."""
    limit = TRUNCATED_SHARE * max_tokens
    if len(text.encode()) < limit or text.rstrip().endswith(SENTENCE_END):
        return False  # a token is at least one byte: short texts cannot have hit the limit
    return count_tokens(text) >= limit


def distinct_n(texts: Iterable[str], n: int) -> tuple[int, int]:
    """(unique, total) word n-grams across texts: the seeds of one prompt and temperature."""
    unique: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:  # counted as they come: no list of every n-gram of every seed
        grams = ngrams(words(text), n)
        unique.update(grams)
        total += len(grams)
    return len(unique), total


class Punchlines:
    """Training punchlines indexed by word trigram, to find verbatim or near-verbatim copies fast."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.exact = {" ".join(words(o)) for o in outputs} - {""}
        self.grams: list[set[tuple[str, ...]]] = []
        self.index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for output in outputs:
            grams = set(ngrams(words(output), 3))
            if len(grams) < MIN_COPY_TRIGRAMS:
                continue
            for gram in grams:
                self.index[gram].append(len(self.grams))
            self.grams.append(grams)

    def is_copy(self, text: str) -> bool:
        tokens = words(text)
        if " ".join(tokens) in self.exact:
            return True
        hits = Counter(i for gram in trigrams(text) for i in self.index.get(gram, ()))
        return any(count / len(self.grams[i]) >= COPY_SHARE for i, count in hits.items())


@dataclass(frozen=True)
class Norms:
    """What 'normal' means for this repo: the training punchlines and the sampling limit."""

    punchlines: Punchlines
    long_chars: int
    default_max_tokens: int
    count_tokens: Callable[[str], int]
    runaway_chars: int = MIN_RUNAWAY_CHARS

    @classmethod
    def build(
        cls, outputs: Sequence[str], default_max_tokens: int, count_tokens: Callable[[str], int]
    ) -> Norms:
        median = statistics.median(len(o) for o in outputs) if outputs else DEFAULT_NORM_CHARS
        long_chars = max(MIN_LONG_CHARS, round(LONG_FACTOR * median))
        runaway_chars = max(MIN_RUNAWAY_CHARS, round(RUNAWAY_FACTOR * median))
        # A stuck sampler writes the same loop at many seeds and temperatures: tokenize it once.
        counted = lru_cache(maxsize=TOKEN_COUNTS_KEPT)(count_tokens)
        return cls(Punchlines(outputs), long_chars, default_max_tokens, counted, runaway_chars)


@dataclass(frozen=True)
class Verdict:
    """What is wrong (or notable) about one completion."""

    chars: int
    empty: bool
    loop: bool
    long: bool
    degenerate: bool
    echo: bool
    copy: bool
    truncated: bool
    runaway: bool = False

    @property
    def broken(self) -> bool:
        return self.empty or self.loop or self.long or self.degenerate or self.echo


def judge_sample(sample: Sample, norms: Norms) -> Verdict:
    text = sample.text
    empty = is_empty(text)
    return Verdict(
        chars=len(text),
        empty=empty,
        loop=not empty and is_loop(text),
        long=len(text) > norms.long_chars,
        degenerate=not empty and is_degenerate(text),
        echo=not empty and is_echo(sample.prompt, text),
        copy=not empty and norms.punchlines.is_copy(text),
        truncated=is_truncated(text, sample.max_tokens or norms.default_max_tokens, norms.count_tokens),
        runaway=len(text) > norms.runaway_chars,
    )


@dataclass(frozen=True)
class Stats:
    """Counts and rates over a set of completions (one run, or one run at one temperature)."""

    total: int
    empty: int
    loops: int
    long: int
    degenerate: int
    echoes: int
    copies: int
    truncated: int
    mean_chars: float
    max_chars: int
    distinct1: float | None
    distinct2: float | None
    broken: int
    runaways: int = 0

    def rate(self, count: int) -> float:
        return count / self.total if self.total else 0.0

    @property
    def clean(self) -> float:
        """Share of completions with nothing broken: the leaderboard's sort key."""
        return self.rate(self.total - self.broken)


Group = tuple[str, float]  # a prompt and temperature: the seeds whose variety distinct-n measures
Diversity = tuple[float | None, float | None]  # distinct-1 and distinct-2 (None: no n-grams)


def diversity(samples: Sequence[Sample]) -> dict[Group, Diversity]:
    """Distinct-1/-2 of each group, worked out once for a run's overall and per-temperature stats."""
    groups: dict[Group, list[str]] = defaultdict(list)
    for sample in samples:
        groups[(sample.prompt, sample.temperature)].append(sample.text)
    return {group: (_distinct_ratio(texts, 1), _distinct_ratio(texts, 2)) for group, texts in groups.items()}


def _distinct_ratio(texts: list[str], n: int) -> float | None:
    unique, total = distinct_n(texts, n)
    return unique / total if total else None


def aggregate(
    samples: Sequence[Sample], verdicts: Sequence[Verdict], by_group: Mapping[Group, Diversity]
) -> Stats:
    """Stats of these completions; `by_group` holds (at least) the diversity of their groups."""
    lengths = [v.chars for v in verdicts if not v.empty]
    groups = [by_group[group] for group in dict.fromkeys((s.prompt, s.temperature) for s in samples)]
    return Stats(
        total=len(verdicts),
        empty=sum(v.empty for v in verdicts),
        loops=sum(v.loop for v in verdicts),
        long=sum(v.long for v in verdicts),
        degenerate=sum(v.degenerate for v in verdicts),
        echoes=sum(v.echo for v in verdicts),
        copies=sum(v.copy for v in verdicts),
        truncated=sum(v.truncated for v in verdicts),
        mean_chars=statistics.fmean(lengths) if lengths else 0.0,
        max_chars=max((v.chars for v in verdicts), default=0),
        distinct1=_mean(d1 for d1, _ in groups),
        distinct2=_mean(d2 for _, d2 in groups),
        broken=sum(v.broken for v in verdicts),
        runaways=sum(v.runaway for v in verdicts),
    )


def _mean(ratios: Iterable[float | None]) -> float | None:
    """Mean over groups (1.0 = every seed different), leaving out groups without n-grams."""
    found = [r for r in ratios if r is not None]
    return statistics.fmean(found) if found else None


@dataclass(frozen=True)
class RunReport:
    """A run with a verdict per completion and its stats overall and per temperature."""

    run: Run
    verdicts: tuple[Verdict, ...]
    stats: Stats
    by_temperature: dict[float, Stats]


def analyse(run: Run, norms: Norms) -> RunReport:
    verdicts = tuple(judge_sample(s, norms) for s in run.samples)
    groups = diversity(run.samples)
    by_temperature = {}
    for temperature in run.temperatures:
        picked = [(s, v) for s, v in zip(run.samples, verdicts, strict=True) if s.temperature == temperature]
        by_temperature[temperature] = aggregate([s for s, _ in picked], [v for _, v in picked], groups)
    return RunReport(run, verdicts, aggregate(run.samples, verdicts, groups), by_temperature)
