"""`haha check --base`: only what changed is checked, and configs with results are frozen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from check_helpers import SMOL, check, errors, git, make_git_repo, only

RESULTS = "train/results/haha-smollm2-135m-lora-001.json"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A git repo where the SmolLM2 config has been trained (its results are committed)."""
    root = make_git_repo(tmp_path)
    (root / RESULTS).write_text('{"config": {"name": "haha-smollm2-135m-lora-001"}, "results": []}\n')
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "results")
    return root


def test_no_changes_checks_nothing(root: Path) -> None:
    report = check(root, base="HEAD")
    assert report.exit_code == 0
    assert report.configs_checked == 0
    assert report.costs == []


def test_editing_a_config_with_results_fails(root: Path) -> None:
    path = root / SMOL
    text = path.read_text()
    path.write_text(text.replace("lora_r: 16", "lora_r: 32"))
    finding = only(errors(check(root, base="main")), "trained configs are frozen")
    assert (finding.file, finding.field) == (SMOL, "lora_r")
    assert finding.line == text.splitlines().index("lora_r: 16") + 1
    assert "modified" in finding.message
    assert "next free number" in (finding.fix or "")


def test_comment_only_edit_of_a_trained_config_passes(root: Path) -> None:
    path = root / SMOL
    path.write_text("# trained on 2026-11-27\n" + path.read_text())
    assert errors(check(root, base="main")) == []


def test_deleting_a_config_with_results_fails(root: Path) -> None:
    (root / SMOL).unlink()
    finding = only(errors(check(root, base="main")), "trained configs are frozen")
    assert finding.file == SMOL
    assert "deleted" in finding.message


def test_a_new_config_is_checked_and_costed(root: Path) -> None:
    new = "train/config/haha-smollm2-135m-lora-002.yml"
    shutil.copy(root / SMOL, root / new)
    report = check(root, base="main")
    assert report.exit_code == 0
    assert report.configs_checked == 1
    assert [c.config for c in report.costs] == ["haha-smollm2-135m-lora-002"]


def test_a_new_config_with_a_gap_fails(root: Path) -> None:
    new = "train/config/haha-smollm2-135m-lora-004.yml"
    shutil.copy(root / SMOL, root / new)
    finding = only(errors(check(root, base="main")), "without gaps")
    assert finding.file == new


def test_unknown_base_ref_is_a_user_error(root: Path) -> None:
    from haha.errors import InputError

    with pytest.raises(InputError, match="unknown git ref"):
        check(root, base="no-such-branch")


def test_a_trained_config_made_huge_and_not_utf8_is_frozen_not_a_crash(root: Path) -> None:
    """The frozen checks read a PR's config bounded and leniently, like the rest of the gate."""
    (root / SMOL).write_bytes(b"\xff" + b"#" * (300 * 1024))  # neither UTF-8 nor within the YAML limit
    data = root / "train/data/haha-v1.jsonl"
    data.write_text(data.read_text() + "\n")  # asks which trained configs use the dataset
    finding = only(errors(check(root, base="main")), "trained configs are frozen")
    assert finding.file == SMOL and "modified" in finding.message
