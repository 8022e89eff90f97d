"""A config with results is a record of what was trained: it may not change or disappear afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from haha.findings import Finding, Severity
from haha.repo import CONFIG_DIR, RESULTS_DIR, Change, Repo
from haha.yamlfile import line_index


def _load(text: str | None) -> Any:
    try:
        return yaml.safe_load(text) if text is not None else None
    except yaml.YAMLError:
        return text


def _first_changed_key(old: Any, new: Any) -> str | None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    return next((k for k in [*new, *old] if old.get(k) != new.get(k)), None)


def _has_results(repo: Repo, base: str, basename: str) -> bool:
    results = RESULTS_DIR / f"{basename}.json"
    return (repo.root / results).exists() or repo.read_at(base, results) is not None


def check_frozen(repo: Repo, base: str, changes: list[Change]) -> list[Finding]:
    """Configs changed since `base` whose results exist: any edit beyond comments and layout fails."""
    findings = []
    for change in changes:
        if change.path.parent != CONFIG_DIR or not _has_results(repo, base, change.path.stem):
            continue
        new_text = None if change.status == "D" else _read(repo.root / change.path)
        old, new = _load(repo.read_at(base, change.path)), _load(new_text)
        if old == new and old is not None:
            continue
        key = _first_changed_key(old, new)
        verb = "deleted" if new_text is None else "modified" if old is not None else "re-added"
        findings.append(
            Finding(
                Severity.ERROR,
                f"config {verb}, but train/results/{change.path.stem}.json exists: "
                "trained configs are frozen",
                change.path.as_posix(),
                line_index(new_text).get(key) if new_text and key else None,
                key,
                fix="restore it and put your change in a new config with the next free number",
            )
        )
    return findings


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
