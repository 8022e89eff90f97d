"""Optional LLM judge: which of two configs wrote the funnier punchline, per prompt/temperature/seed.

Talks to any OpenAI-compatible endpoint (HAHA_JUDGE_URL, HAHA_JUDGE_MODEL, HAHA_JUDGE_API_KEY).
Verdicts are cached beside the results, keyed by a hash of everything the judge saw, so re-runs
only ask about pairs that changed. They also become rating rows (rater `judge:<model>`) in
`train/results/ratings/judge--<model>.jsonl`, the same table people's `haha rate` votes go to;
that file is rewritten from the cache for the pair judged, so re-running never duplicates votes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haha import clock
from haha.atomic import write_json_atomic
from haha.errors import InputError, ServiceError
from haha.rate import ratings
from haha.repo import read_bounded
from haha.report.compare import Pair, pairs
from haha.report.load import Run
from haha.resultsindex import MAX_RECORD_BYTES
from haha.settings import Settings

MAX_CHARS = 2000  # a runaway loop is judged on its start; the rest only costs tokens
TIMEOUT_S = 60
SYSTEM = (
    "You judge jokes. Given a joke setup and two candidate punchlines, pick the funnier, more original "
    "punchline that fits the setup. An empty, repetitive or off-topic punchline loses. "
    "Answer with exactly one of: 1, 2, tie."
)
ANSWER = re.compile(r"\b(1|2|tie)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeConfig | None:
        """None when no endpoint is configured (the judge is optional)."""
        url = (settings.judge_url or "").strip()
        if not url:
            return None
        model = (settings.judge_model or "").strip()
        if not model:
            raise InputError(
                "HAHA_JUDGE_URL is set but HAHA_JUDGE_MODEL is not",
                field="HAHA_JUDGE_MODEL",
                fix="export HAHA_JUDGE_MODEL=<model name the endpoint serves>",
            )
        return cls(url.rstrip("/"), model, settings.secret("judge_api_key"))


@dataclass(frozen=True)
class Tally:
    a_wins: int
    b_wins: int
    ties: int
    unclear: int
    asked: int
    cached: int
    path: Path
    ratings_path: Path | None = None
    votes: int = 0


Ask = Callable[[list[dict[str, str]]], str]


def key(model: str, pair: Pair) -> str:
    """Hash of everything the verdict depends on: a changed completion or judge model re-asks."""
    seen = [model, pair.prompt, pair.temperature, pair.seed, pair.a, pair.b]
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()


def messages(pair: Pair, swapped: bool) -> list[dict[str, str]]:
    first, second = (pair.b, pair.a) if swapped else (pair.a, pair.b)
    user = (
        f"Setup: {pair.prompt}\n\nPunchline 1: {(first or '')[:MAX_CHARS]}\n\n"
        f"Punchline 2: {(second or '')[:MAX_CHARS]}\n\nWhich is funnier? Answer 1, 2 or tie."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def winner(reply: str, swapped: bool) -> str:
    """'a', 'b', 'tie' or 'unclear' from the judge's reply (undoing the order swap)."""
    match = ANSWER.search(reply)
    if not match:
        return "unclear"
    answer = match.group(1).lower()
    if answer == "tie":
        return "tie"
    return {"1": "b", "2": "a"}[answer] if swapped else {"1": "a", "2": "b"}[answer]


def http_asker(config: JudgeConfig) -> Ask:
    """POST /chat/completions and return the reply text; failures become ServiceErrors."""
    import requests

    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    fix = "check HAHA_JUDGE_URL (base URL ending in /v1), HAHA_JUDGE_MODEL and HAHA_JUDGE_API_KEY"

    def ask(chat: list[dict[str, str]]) -> str:
        body = {"model": config.model, "messages": chat, "temperature": 0, "max_tokens": 5}
        try:
            reply = requests.post(
                f"{config.url}/chat/completions", json=body, headers=headers, timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise ServiceError(f"judge endpoint {config.url} failed: {exc}", fix=fix) from exc
        if reply.status_code != 200:
            raise ServiceError(f"judge endpoint answered {reply.status_code}: {reply.text[:200]}", fix=fix)
        try:
            return str(reply.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ServiceError("judge reply is not an OpenAI chat completion", fix=fix) from exc

    return ask


def cache_path(results_dir: Path, a: Run, b: Run) -> Path:
    """`judge/<a>__vs__<b>.json`, one file whatever the names hold (`baseline:org/model` has `:` and `/`)."""
    return results_dir / "judge" / f"{ratings.slug(a.name)}__vs__{ratings.slug(b.name)}.json"


def _old_cache_path(results_dir: Path, a: Run, b: Run) -> Path:
    """Where versions before the slug kept the cache: the raw names, so a `/` made a sub-folder."""
    return results_dir / "judge" / f"{a.name}__vs__{b.name}.json"


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        scores = json.loads(read_bounded(path, MAX_RECORD_BYTES))["scores"]
        if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
            raise TypeError("scores is not an object of verdicts")
        return scores
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        fix = "delete it to re-judge"
        raise InputError("unreadable judge cache", file=path, field="scores", fix=fix) from exc


def _save(path: Path, a: Run, b: Run, scores: dict[str, Any]) -> None:
    write_json_atomic(path, {"a": a.name, "b": b.name, "scores": scores}, sort_keys=True)


def _migrate(results_dir: Path, a: Run, b: Run) -> Path:
    """The cache path, with an entry kept under the old name moved there (nothing is re-asked)."""
    path, old = cache_path(results_dir, a, b), _old_cache_path(results_dir, a, b)
    if old == path or not old.is_file():
        return path
    scores = {**_load(old), **_load(path)}
    _save(path, a, b, scores)
    old.unlink()
    judge_dir = results_dir / "judge"
    for folder in old.parents:  # the empty sub-folders a `/` in a name made
        if folder == judge_dir or judge_dir not in folder.parents or any(folder.iterdir()):
            break
        folder.rmdir()
    return path


def judge(a: Run, b: Run, results_dir: Path, model: str, ask: Ask) -> Tally:
    """Ask about every pair not yet cached (saving after each answer, so an interrupt loses nothing).

    A reply with no verdict is not cached (a re-run asks again). When no reply had one, nothing is
    written to the ratings file and the endpoint is reported as failing.
    """
    path = _migrate(results_dir, a, b)
    scores = _load(path)
    asked = cached = 0
    unclear: list[str] = []
    for pair in pairs(a, b):
        if pair.a is None or pair.b is None:
            continue
        k = key(model, pair)
        if k in scores:
            cached += 1
            continue
        if pair.a.strip() == pair.b.strip():
            verdict = "tie"
        else:
            swapped = int(k[0], 16) % 2 == 1  # half the pairs show B first, against position bias
            reply = ask(messages(pair, swapped))
            verdict = winner(reply, swapped)
            asked += 1
            if verdict == "unclear":
                unclear.append(reply)
                continue
        scores[k] = {"prompt": pair.prompt, "temperature": pair.temperature, "seed": pair.seed,
                     "model": model, "winner": verdict, "time": clock.stamp()}  # fmt: skip
        _save(path, a, b, scores)
    if asked and len(unclear) == asked:
        raise ServiceError(
            f"the judge gave no verdict in {asked} replies (e.g. {unclear[0][:80]!r}); nothing was written",
            field="HAHA_JUDGE_MODEL",
            fix="use a model that follows the instruction to answer 1, 2 or tie, then run `haha judge` again",
        )
    live = {key(model, p) for p in pairs(a, b)}
    counts = Counter(v["winner"] for k, v in scores.items() if k in live)
    votes_path, votes = write_votes(results_dir, a, b, model, [v for k, v in scores.items() if k in live])
    return Tally(
        counts["a"], counts["b"], counts["tie"], len(unclear), asked, cached, path, votes_path, votes
    )


def write_votes(
    results_dir: Path, a: Run, b: Run, model: str, verdicts: list[dict[str, Any]]
) -> tuple[Path | None, int]:
    """Put the current verdicts into the judge's ratings file, one row per pair and sample.

    A verdict replaces the row for the same pair, prompt, temperature and seed; every other row stays
    (a verdict the judge could not give this time never deletes the one it gave before). No rows and
    no file: no file is made.
    """
    rater = f"{ratings.JUDGE_PREFIX}{model}"
    path = ratings.rater_path(results_dir, rater)
    now = clock.stamp()
    fresh = [
        ratings.Rating(
            a.name,
            b.name,
            v["prompt"],
            float(v["temperature"]),
            int(v["seed"]),
            v["winner"],
            rater,
            v.get("time") or now,
        )
        for v in verdicts
        if v["winner"] in ratings.WINNERS
    ]

    def sample(r: ratings.Rating) -> tuple[frozenset[str], str, float, int]:
        return frozenset((r.a, r.b)), r.prompt, r.temperature, r.seed

    replaced = {sample(r) for r in fresh}
    kept = [r for r in ratings.load_file(path) if sample(r) not in replaced] if path.exists() else []
    if not kept and not fresh and not path.exists():
        return None, 0
    rows = sorted([*kept, *fresh], key=lambda r: (r.a, r.b, r.prompt, r.temperature, r.seed))
    ratings.replace(path, rows)
    return path, len(fresh)
