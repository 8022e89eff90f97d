"""Results and ratings under train/results/: checked like configs, since a PR can touch them too.

A truncated results JSON or a vote with `"winner": "c"` would pass unseen and break `haha report`
later; a results or ratings file naming a config that does not exist misleads the leaderboard.
Results follow `schemas/results.schema.json`, ratings rows `schemas/rating.schema.json` (the same
rules `haha rate`, `haha judge` and `haha report` read them with, haha.rate.ratings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from haha.baseline import BASELINE_DIR
from haha.baseline import PREFIX as BASELINE_PREFIX
from haha.findings import Finding, Severity
from haha.rate.ratings import RATINGS_DIR
from haha.repo import Repo, read_bounded
from haha.resultsindex import MAX_RECORD_BYTES, ResultsFile, ResultsIndex
from haha.schemas import explain, iter_errors, refuse_constant
from haha.yamlfile import line_index

MAX_RATING_CHARS = 256 * 1024
MAX_FINDINGS_PER_FILE = 20
RESULTS_FIX = "results are written by the pipeline only: restore the file from the pipeline's output"
RATINGS_FIX = "fix or delete that line (each line is one vote; see schemas/rating.schema.json)"


def results_paths(repo: Repo) -> list[Path]:
    """train/results/*.json and train/results/baseline/*.json (links that leave the repo excluded)."""
    folders = (repo.results_dir, repo.results_dir / BASELINE_DIR)
    return sorted(p for d in folders if d.is_dir() for p in d.glob("*.json") if repo.inside(p))


def ratings_paths(repo: Repo) -> list[Path]:
    folder = repo.results_dir / RATINGS_DIR
    return sorted(p for p in folder.glob("*.jsonl") if repo.inside(p)) if folder.is_dir() else []


def known_names(repo: Repo) -> set[str]:
    """What a results or ratings file may name: config basenames, and `baseline:<model>` for every
    baseline file (`<org>--<model>.json`, haha.baseline.baseline_path)."""
    configs = {p.stem for p in repo.config_paths() if p.suffix == ".yml"}
    folder = repo.results_dir / BASELINE_DIR
    baselines = {f"{BASELINE_PREFIX}{p.stem.replace('--', '/', 1)}" for p in folder.glob("*.json")}
    return configs | (baselines if folder.is_dir() else set())


def _parse(rel: str, found: ResultsFile) -> tuple[Any, str] | Finding:
    if found.error is None:
        return found.data, found.text
    message = found.error if found.line is not None else f"cannot read results: {found.error}"
    return Finding(Severity.ERROR, message, rel, found.line, fix=RESULTS_FIX)


def _expected_name(path: Path) -> str | None:
    """The config name a results file must carry; None for a baseline (checked by prefix)."""
    return None if path.parent.name == BASELINE_DIR else path.stem


def check_results_file(repo: Repo, found: ResultsFile, names: set[str]) -> list[Finding]:
    """One results file: readable JSON, the results schema, and a name matching its file and a config."""
    path = found.path
    rel = repo.rel(path)
    parsed = _parse(rel, found)
    if isinstance(parsed, Finding):
        return [parsed]
    data, text = parsed
    errors = list(iter_errors("results", data))[:MAX_FINDINGS_PER_FILE]
    if errors:
        lines = line_index(text)
        found = []
        for field, message in map(explain, errors):
            found.append(Finding(Severity.ERROR, message, rel, lines.get(field), field or None, RESULTS_FIX))
        return found
    name = data["config"]["name"]
    line = line_index(text).get("config.name") if len(text) < 1024**2 else None
    expected = _expected_name(path)
    if expected is None:
        wanted = f"{BASELINE_PREFIX}{path.stem.replace('--', '/', 1)}"
        if name != wanted:
            return [
                Finding(
                    Severity.ERROR,
                    f"a baseline file named {path.name} must carry config.name {wanted!r}, not {name!r}",
                    rel,
                    line,
                    "config.name",
                    "rename the file after its base model (org--model.json), or regenerate it: haha baseline",
                )
            ]
        return []
    if name != expected:
        return [
            Finding(
                Severity.ERROR,
                f"config.name {name!r} does not match the file name {path.name}",
                rel,
                line,
                "config.name",
                f"name the file {name}.json, as the pipeline does",
            )
        ]
    if expected not in names:
        return [
            Finding(
                Severity.ERROR,
                f"results for a config that does not exist (no train/config/{expected}.yml)",
                rel,
                line,
                "config.name",
                "delete these results, or restore the config they were made from",
            )
        ]
    return []


def _rating_problems(row: Any, names: set[str]) -> list[tuple[str | None, str]]:
    problems = [(field or None, message) for field, message in map(explain, iter_errors("rating", row))]
    if problems or not isinstance(row, dict):
        return problems
    if row["a"] == row["b"]:
        return [("b", "a and b name the same config")]
    return [
        (
            side,
            f"{row[side]!r} is neither a config in train/config/ nor a baseline in train/results/baseline/",
        )
        for side in ("a", "b")
        if row[side] not in names
    ]


def check_ratings_file(repo: Repo, path: Path, names: set[str]) -> list[Finding]:
    """Every vote line: JSON, the rating schema, a ≠ b, and a and b naming configs or baselines."""
    rel = repo.rel(path)
    try:
        text = read_bounded(path, MAX_RECORD_BYTES)
    except (OSError, ValueError) as exc:
        return [Finding(Severity.ERROR, f"cannot read ratings: {str(exc)[:160]}", rel, fix=RATINGS_FIX)]
    findings = []
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        if len(raw) > MAX_RATING_CHARS:
            problems: list[tuple[str | None, str]] = [(None, f"line is {len(raw):,} characters long")]
        else:
            try:
                problems = _rating_problems(json.loads(raw, parse_constant=refuse_constant), names)
            except json.JSONDecodeError as exc:
                problems = [(None, f"not valid JSON (column {exc.colno}): {exc.msg}")]
            except (ValueError, RecursionError) as exc:
                problems = [(None, f"not readable JSON: {str(exc)[:120]}")]
        findings += [Finding(Severity.ERROR, m, rel, number, f, RATINGS_FIX) for f, m in problems]
        if len(findings) >= MAX_FINDINGS_PER_FILE:
            break
    return findings


def check_records(
    repo: Repo, results: list[Path], ratings: list[Path], index: ResultsIndex | None = None
) -> list[Finding]:
    """The given results and ratings files, each against its schema and the repo's configs; results
    are read through `index` (the gate's own, so its cost history reads no file twice)."""
    if not results and not ratings:
        return []
    index = index or ResultsIndex(repo)
    names = known_names(repo)
    findings = []
    for path in results:
        findings += check_results_file(repo, index.file(path), names)
    for path in ratings:
        findings += check_ratings_file(repo, path, names)
    return findings
