"""Files under train/ that look like experiment inputs but that no stage reads, and links that leave.

The pipeline reads configs only directly from train/config/*.yml and datasets only directly from
train/data/*.jsonl. A config in a subfolder, a directory or dangling symlink named like one, or a
symlink that points outside the repo (to /etc/passwd, to a file on the CI runner) would otherwise pass
the gate unread, or be read from outside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from haha.findings import Finding, Severity
from haha.rate.ratings import RATINGS_DIR
from haha.repo import CONFIG_DIR, DATA_DIR, RESULTS_DIR, Repo

CONFIG_SUFFIXES = (".yml", ".yaml")
DATA_SUFFIX = ".jsonl"
RATINGS = RESULTS_DIR / RATINGS_DIR  # rater files are .jsonl too
TRAIN = Path("train")


def _error(rel: Path, message: str, fix: str) -> Finding:
    return Finding(Severity.ERROR, message, rel.as_posix(), fix=fix)


def _link_problem(repo: Repo, path: Path, rel: Path) -> Finding | None:
    target = Path(os.readlink(path))
    resolved = path.resolve()
    if not resolved.exists():
        return _error(
            rel, f"dangling symlink (to {target}): nothing is read", "delete it, or commit the file itself"
        )
    if not resolved.is_relative_to(repo.root.resolve()):
        return _error(
            rel,
            f"symlink leaves the repository (to {target}): the gate and the pod read only committed files",
            "replace the link with the file itself, committed under train/",
        )
    return None


def _unread(rel: Path, is_dir: bool) -> Finding | None:
    """A path named like a config or dataset in a place the pipeline does not read from."""
    parent, suffix = rel.parent, rel.suffix
    if suffix in CONFIG_SUFFIXES:
        if parent != CONFIG_DIR:
            return _error(
                rel,
                f"looks like a config, but configs are read only from {CONFIG_DIR}/ (not its subfolders)",
                f"move it to {CONFIG_DIR}/{rel.name}, or delete it",
            )
        if is_dir:
            return _error(rel, "a directory named like a config", "rename or delete the directory")
    if suffix == DATA_SUFFIX:
        if parent not in (DATA_DIR, RATINGS):
            return _error(
                rel,
                f"looks like a dataset, but datasets are read only from {DATA_DIR}/ (not its subfolders)",
                f"move it to {DATA_DIR}/{rel.name} and reference it as /workspace/data/{rel.name}",
            )
        if is_dir:
            return _error(rel, "a directory named like a dataset", "rename or delete the directory")
    if is_dir and parent in (CONFIG_DIR, DATA_DIR):
        return _error(rel, f"subfolders of {parent}/ are not read", f"move what it holds into {parent}/")
    return None


def check_tree(repo: Repo) -> list[Finding]:
    """Every path under train/ that is a dangling or escaping symlink, or named like an input the
    pipeline never reads (symlinks are not followed into)."""
    findings = []
    for folder, dirs, files in os.walk(repo.root / TRAIN):
        for name, is_dir in [*((d, True) for d in sorted(dirs)), *((f, False) for f in sorted(files))]:
            path = Path(folder) / name
            rel = path.relative_to(repo.root)
            if path.is_symlink() and (found := _link_problem(repo, path, rel)):
                findings.append(found)
                continue
            if found := _unread(rel, is_dir or path.is_dir()):
                findings.append(found)
    return findings
