"""The three output formats and the exit codes of `check_command`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from check_helpers import SMOL, check, make_repo
from haha.check.command import check_command
from haha.check.render import MARKER, render_github, render_markdown, render_text
from haha.cli import context


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def broken(root: Path) -> Path:
    shutil.copy(root / SMOL, root / "train/config/haha-smollm2-135m-lora-003.yml")
    return root


def test_text_shows_costs_datasets_findings_and_verdict(root: Path) -> None:
    text = render_text(check(root))
    assert "New configs" in text and "haha-llama-3-8b-lora-001" in text
    assert "train/data/haha-v1.jsonl" in text
    assert "warning: train/config/haha-smollm2-135m-lora-001.yml:" in text
    assert text.rstrip().splitlines()[-1].startswith("haha check passed (whole repo, 2 configs): 0 errors")


def test_github_annotations_then_summary(broken: Path) -> None:
    out = render_github(check(broken))
    first = out.splitlines()[0]
    assert first.startswith("::error file=train/config/haha-smollm2-135m-lora-003.yml,title=file name::")
    assert "::warning file=train/config/haha-smollm2-135m-lora-001.yml,line=" in out
    assert out.rstrip().splitlines()[-1].startswith("haha check failed")


def test_markdown_is_a_sticky_pr_comment(broken: Path) -> None:
    out = render_markdown(check(broken))
    lines = out.splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("## ❌ haha check failed")
    assert "| config | base model | rows |" in out
    assert "| haha-llama-3-8b-lora-001 | meta-llama/Meta-Llama-3-8B | 357 |" in out
    assert "### Datasets" in out and "| train/data/haha-v1.jsonl | 357 | 0 |" in out
    assert "- ❌ **error** `train/config/haha-smollm2-135m-lora-003.yml [file name]`" in out


def test_markdown_escapes_table_pipes(root: Path) -> None:
    report = check(root)
    report.costs[0] = type(report.costs[0])(**{**report.costs[0].__dict__, "base_model": "a|b"})
    assert "| a\\|b |" in render_markdown(report)


@pytest.mark.parametrize("fmt", ["text", "github", "markdown"])
def test_exit_code_is_0_with_warnings_only(root: Path, fmt: str, capsys: pytest.CaptureFixture) -> None:
    assert check_command(*context(root), None, fmt) == 0
    assert "haha check passed" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["text", "github", "markdown"])
def test_exit_code_is_1_on_errors(broken: Path, fmt: str, capsys: pytest.CaptureFixture) -> None:
    assert check_command(*context(broken), None, fmt) == 1
    assert "haha check failed" in capsys.readouterr().out


def test_github_format_writes_the_job_summary(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    check_command(*context(root), None, "github")
    assert summary.read_text().startswith(MARKER)


def test_unknown_format_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        check_command(*context(root), None, "xml")


@pytest.mark.parametrize("per_pod", [1, 2])
def test_the_gate_shows_what_a_shared_pod_saves_when_the_option_is_on(root: Path, per_pod: int) -> None:
    second = "haha-smollm2-135m-lora-002"
    shutil.copy(root / SMOL, root / f"train/config/{second}.yml")  # the same base model and GPUs
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace("\nconfigs_per_pod = 1", f"\nconfigs_per_pod = {per_pod}"))
    report = check(root)
    smol = next(c for c in report.costs if c.config == second)
    hourly = smol.dollars / smol.total_hours  # type: ignore[operator]

    out = render_markdown(report)

    line = f"{SMOL.rsplit('/', 1)[-1].removesuffix('.yml')} + {second} run one after another in one pod"
    saved = f"the pod overhead paid once saves 20 min (${20 / 60 * hourly:.2f})"
    if per_pod == 1:
        assert "Shared pods" not in out and "Shared pods" not in render_text(report)
    else:
        assert f"Shared pods (configs_per_pod = 2): {line}; {saved}" in out
        assert "haha-llama-3-8b-lora-001 +" not in out  # another base model: a pod of its own
        assert "Shared pods" in render_text(report, width=400)
