"""Shared helpers for the `haha check` tests: a throwaway copy of the repo, optionally under git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from haha.check import CheckReport, run_check
from haha.findings import Finding, Severity
from haha.repo import Repo
from haha.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
LLAMA = "train/config/haha-llama-3-8b-lora-001.yml"
SMOL = "train/config/haha-smollm2-135m-lora-001.yml"
DATA = "train/data/haha-v1.jsonl"
EVAL = "train/eval/eval.json"


def make_repo(tmp_path: Path) -> Path:
    """A copy of train/ and haha.toml: the real configs, dataset and eval spec, before any results."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "train", root / "train", ignore=shutil.ignore_patterns("results"))
    (root / "train/results").mkdir()
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    return root


def git(root: Path, *args: str) -> str:
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *env_args, *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout


def make_git_repo(tmp_path: Path) -> Path:
    """make_repo, committed as the first commit of a fresh git repository."""
    root = make_repo(tmp_path)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def edit_config(root: Path, rel: str, **changes: object) -> None:
    """Set (or with None, delete) top-level keys of a config, rewriting it as plain YAML."""
    path = root / rel
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def check(root: Path, base: str | None = None) -> CheckReport:
    return run_check(Repo(root), load_settings(root, {}), base)


def errors(report: CheckReport) -> list[Finding]:
    return [f for f in report.findings if f.severity == Severity.ERROR]


def warnings(report: CheckReport) -> list[Finding]:
    return [f for f in report.findings if f.severity == Severity.WARNING]


def only(findings: list[Finding], text: str) -> Finding:
    """The single finding whose rendered text contains `text`."""
    hits = [f for f in findings if text in f.text()]
    assert len(hits) == 1, f"expected one finding with {text!r}, got: {[f.text() for f in findings]}"
    return hits[0]


def append(root: Path, rel: str, text: str) -> int:
    """Append `text` to a file; return the line it starts on."""
    path = root / rel
    before = path.read_text()
    path.write_text(before + text)
    return before.count("\n") + 1
