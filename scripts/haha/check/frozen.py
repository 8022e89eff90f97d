"""A config with results is a record of what was trained: it, the datasets it trained on and its
results may not change or disappear afterwards.

Results are written by the pipeline only. The one change a PR may bring to committed results is the
pipeline's own re-evaluation after eval.json changed (`haha collect`'s bot PR, `haha baseline`, which
also re-runs for another engine): the new file then records the current eval.json's hash
(`meta.eval_sha256`) and differs from the old one in that hash or in `meta.engine`. Anything else (an
edit that keeps both, a deletion) is a hand edit and fails. This
needs no knowledge of who opened the PR, which a fork could fake, and no access to the model store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from haha.baseline import BASELINE_DIR
from haha.errors import HahaError
from haha.experiment import Experiment
from haha.findings import Finding, Severity
from haha.repo import CONFIG_DIR, DATA_DIR, RESULTS_DIR, Change, Repo
from haha.resultsindex import ResultsIndex, parse_record
from haha.yamlfile import MAX_YAML_BYTES, line_index, load_bounded


def _load(text: str | None) -> Any:
    try:
        return load_bounded(text) if text is not None else None
    except (yaml.YAMLError, ValueError, RecursionError):
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
    """A config's text, never more than load_bounded accepts (+1 byte, so what is over stays unequal)."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_YAML_BYTES + 1).decode("utf-8", errors="replace")
    except OSError:
        return None


RESULTS_DIRS = (RESULTS_DIR, RESULTS_DIR / BASELINE_DIR)


def _parsed(text: str | None) -> Any:
    """A results file's text at the base ref, parsed as the gate parses any results file; None if not."""
    try:
        return parse_record(text) if text is not None else None
    except (ValueError, RecursionError):
        return None


def _provenance(data: Any) -> tuple[str | None, str | None]:
    """(meta.eval_sha256, meta.engine) of a results file: what a pipeline re-evaluation changes."""
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None, None
    eval_sha, engine = meta.get("eval_sha256"), meta.get("engine")
    return (eval_sha if isinstance(eval_sha, str) else None, engine if isinstance(engine, str) else None)


def check_results_frozen(
    repo: Repo, base: str, changes: list[Change], eval_sha256: str | None, index: ResultsIndex | None = None
) -> list[Finding]:
    """Committed results deleted, or modified other than by a re-evaluation for the current eval.json.
    The PR's files are read through `index` (the gate's own reader, bounded; once per process)."""
    index = index or ResultsIndex(repo)
    findings = []
    for change in changes:
        if change.path.parent not in RESULTS_DIRS or change.path.suffix != ".json" or change.status == "A":
            continue
        rel = change.path.as_posix()
        restore = f"restore it: git checkout {base} -- {rel}"
        if change.status == "D":
            findings.append(
                Finding(
                    Severity.ERROR,
                    "committed results deleted: results are the experiment log",
                    rel,
                    fix=restore,
                )
            )
            continue
        old = _provenance(_parsed(repo.read_at(base, change.path)))
        new = _provenance(index.file(repo.root / change.path).data)
        if new[0] is not None and new != old and new[0] == eval_sha256:
            continue  # the pipeline re-evaluated it for the current eval.json (or another engine)
        findings.append(
            Finding(
                Severity.ERROR,
                "committed results changed by hand (not a re-evaluation for the current eval.json): "
                "results are written by the pipeline only",
                rel,
                field="meta.eval_sha256",
                fix=f"{restore}; to change results, change the config (a new number) or eval.json",
            )
        )
    return findings


def _trained_users(repo: Repo, base: str, file_name: str) -> list[str]:
    """Configs with results (now or at base) that name train/data/<file_name>."""
    users = []
    for path in repo.config_paths():
        if path.suffix != ".yml" or not _has_results(repo, base, path.stem):
            continue
        try:
            exp = Experiment.load(path, _read(path))  # bounded: the PR's config may be anything
        except HahaError:
            continue
        if any(ref.file_name == file_name and not ref.problem() for ref in exp.datasets):
            users.append(path.stem)
    return users


def check_datasets_frozen(repo: Repo, base: str, changes: list[Change]) -> list[Finding]:
    """A dataset a trained config used, modified or deleted since `base`: the record no longer matches."""
    findings = []
    for change in changes:
        if change.path.parent != DATA_DIR or change.status not in ("M", "D"):
            continue
        users = _trained_users(repo, base, change.path.name)
        if not users:
            continue
        stem, suffix = change.path.stem, change.path.suffix
        findings.append(
            Finding(
                Severity.ERROR,
                f"dataset {'deleted' if change.status == 'D' else 'modified'}, but {', '.join(users)} "
                "trained on it: datasets of trained configs are frozen",
                change.path.as_posix(),
                fix=f"restore it (git checkout {base} -- {change.path.as_posix()}) and commit your version "
                f"under a new file name (e.g. {stem}-v2{suffix}), used by a new config",
            )
        )
    return findings
