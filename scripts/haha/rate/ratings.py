"""The ratings files: one JSON row per pairwise vote, by people (`haha rate`) and the judge alike.

`train/results/ratings/<rater>.jsonl` holds one rater's votes; `judge--<model>.jsonl` the LLM judge's
(rater `judge:<model>`). Every row matches `schemas/rating.schema.json`; `a` and `b` are in the
stored order and `winner` refers to them, whatever order the rater saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from haha.atomic import append_line, write_atomic
from haha.errors import InputError
from haha.schemas import refuse_constant

RATINGS_DIR = "ratings"
JUDGE_PREFIX = "judge:"
WINNERS = ("a", "b", "tie")
FIX = "fix or delete that line (each line is one vote; see schemas/rating.schema.json)"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Rating:
    """One vote: which of two configs' completions of the same prompt/temperature/seed is funnier."""

    a: str
    b: str
    prompt: str
    temperature: float
    seed: int
    winner: str
    rater: str
    time: str

    @property
    def by_judge(self) -> bool:
        return self.rater.startswith(JUDGE_PREFIX)

    def row(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        return json.dumps(self.row(), ensure_ascii=False) + "\n"


def slug(name: str) -> str:
    """A file-name-safe form of a rater or model name (`org/model` → `org--model`)."""
    cleaned = UNSAFE.sub("-", name.replace("/", "--")).strip(".-")
    return cleaned or "anonymous"


def ratings_dir(results_dir: Path) -> Path:
    return results_dir / RATINGS_DIR


def rater_path(results_dir: Path, rater: str) -> Path:
    """Where a rater's votes go: `<rater>.jsonl`, or `judge--<model>.jsonl` for `judge:<model>`."""
    if rater.startswith(JUDGE_PREFIX):
        return ratings_dir(results_dir) / f"judge--{slug(rater[len(JUDGE_PREFIX) :])}.jsonl"
    return ratings_dir(results_dir) / f"{slug(rater)}.jsonl"


def _check(row: object, path: Path, line: int) -> Rating:
    from haha.schemas import iter_errors, short_message  # lazy: jsonschema

    if not (isinstance(row, dict) and _fast_ok(row)):
        for error in iter_errors("rating", row):
            field = ".".join(str(p) for p in error.absolute_path) or None
            raise InputError(short_message(error), file=path, line=line, field=field, fix=FIX)
    assert isinstance(row, dict)
    if row["a"] == row["b"]:
        raise InputError("a and b name the same config", file=path, line=line, field="b", fix=FIX)
    return Rating(**{**row, "temperature": float(row["temperature"])})


KEYS = frozenset(Rating.__dataclass_fields__)
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _fast_ok(row: dict[str, object]) -> bool:
    """The schema's rules in plain Python (5,000 rows in milliseconds); anything odd goes to jsonschema."""
    t, s = row.get("temperature"), row.get("seed")
    return (
        row.keys() == KEYS
        and all(isinstance(row[k], str) for k in ("a", "b", "prompt", "rater", "time"))
        and bool(row["a"] and row["b"] and row["rater"])
        and isinstance(t, int | float) and not isinstance(t, bool) and t >= 0
        and isinstance(s, int) and not isinstance(s, bool) and s >= 1
        and row["winner"] in WINNERS
        and STAMP.fullmatch(str(row["time"])) is not None
    )  # fmt: skip


def load_file(path: Path) -> list[Rating]:
    """Every vote in one file; a line that is not a valid rating raises an error naming file and line."""
    found = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=path, fix=FIX) from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=refuse_constant)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", file=path, line=number, fix=FIX) from exc
        except ValueError as exc:
            raise InputError(str(exc), file=path, line=number, fix=FIX) from exc
        found.append(_check(row, path, number))
    return found


def load_ratings(results_dir: Path) -> list[Rating]:
    """Every vote under train/results/ratings/, files in name order, rows in file order."""
    folder = ratings_dir(results_dir)
    if not folder.is_dir():
        return []
    files = [p for p in sorted(folder.glob("*.jsonl")) if not p.name.startswith(".") and p.is_file()]
    return [r for p in files for r in load_file(p)]


def append(path: Path, rating: Rating) -> None:
    """Add one vote at the end of a rater's file (one write of one whole line, on a line of its own)."""
    append_line(path, rating.line())


def replace(path: Path, ratings: Iterable[Rating]) -> Path:
    """Write a whole file of votes at once (the judge regenerates its own)."""
    return write_atomic(path, "".join(r.line() for r in ratings))
