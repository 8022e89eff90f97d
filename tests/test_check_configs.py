"""`haha check` on configs: each broken input fails with a finding that names file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from check_helpers import LLAMA, ROOT, SMOL, append, check, edit_config, errors, make_repo, only, warnings
from haha.check import run_check
from haha.findings import Severity
from haha.repo import Repo
from haha.settings import load_settings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_the_real_repo_passes() -> None:
    report = run_check(Repo(ROOT), load_settings(ROOT, {}))
    assert errors(report) == []
    assert report.exit_code == 0
    stems = (Path(LLAMA).stem, Path(SMOL).stem)
    untrained = {s for s in stems if not (ROOT / "train/results" / f"{s}.json").exists()}
    assert {c.config for c in report.costs} == untrained  # costs are predicted for configs without results


def test_llama_starter_has_no_utilisation_warning(root: Path) -> None:
    assert not [f for f in check(root).findings if f.file == LLAMA and f.severity != Severity.NOTICE]


def test_broken_yaml_names_file_line_and_column(root: Path) -> None:
    line = append(root, SMOL, "lora_target_modules: [q_proj, v_proj\n")
    finding = only(errors(check(root)), "YAML syntax error")
    assert finding.file == SMOL
    assert finding.line == line + 1
    assert "column" in finding.message


def test_bad_file_name_suggests_the_right_one(root: Path) -> None:
    shutil.copy(root / SMOL, root / "train/config/Haha-SmolLM2-135m-lora-2.yaml")
    finding = only(errors(check(root)), "<series>-NNN.yml")
    assert finding.file == "train/config/Haha-SmolLM2-135m-lora-2.yaml"
    assert finding.field == "file name"
    assert finding.fix == "rename it to haha-smollm2-135m-lora-003.yml"


def test_numbering_gap_names_the_next_free_number(root: Path) -> None:
    shutil.copy(root / SMOL, root / "train/config/haha-smollm2-135m-lora-003.yml")
    finding = only(errors(check(root)), "without gaps")
    assert finding.file == "train/config/haha-smollm2-135m-lora-003.yml"
    assert "002 missing" in finding.message
    assert "haha-smollm2-135m-lora-002.yml" in (finding.fix or "")


def test_numbering_must_start_at_001(root: Path) -> None:
    (root / SMOL).rename(root / "train/config/haha-smollm2-135m-lora-002.yml")
    finding = only(errors(check(root)), "without gaps")
    assert "001 missing" in finding.message
    assert "haha-smollm2-135m-lora-001.yml" in (finding.fix or "")


def test_duplicate_number_names_the_next_free_number(root: Path) -> None:
    shutil.copy(root / SMOL, root / "train/config/haha-smollm2-135m-lora-001.yaml")
    finding = only(errors(check(root)), "already used by")
    assert finding.file == "train/config/haha-smollm2-135m-lora-001.yml"
    assert SMOL.replace(".yml", ".yaml") in finding.message
    assert "haha-smollm2-135m-lora-002.yml" in (finding.fix or "")


def test_results_count_as_used_numbers(root: Path) -> None:
    (root / "train/results/haha-smollm2-135m-lora-002.json").write_text("{}")
    shutil.copy(root / SMOL, root / "train/config/haha-smollm2-135m-lora-003.yml")
    assert not [f for f in errors(check(root)) if "without gaps" in f.message]


def test_missing_dataset(root: Path) -> None:
    text = (root / SMOL).read_text().replace("/workspace/data/haha-v1.jsonl", "/workspace/data/nope.jsonl")
    (root / SMOL).write_text(text)
    finding = only(errors(check(root)), "nope.jsonl does not exist")
    assert (finding.file, finding.field) == (SMOL, "datasets.0.path")
    assert finding.line == text.splitlines().index("  - path: /workspace/data/nope.jsonl") + 1


@pytest.mark.parametrize("path", ["/workspace/data/../../etc/passwd", "/etc/passwd", "data/haha-v1.jsonl"])
def test_dataset_path_may_not_escape_train_data(root: Path, path: str) -> None:
    text = (root / SMOL).read_text().replace("/workspace/data/haha-v1.jsonl", path)
    (root / SMOL).write_text(text)
    finding = only(errors(check(root)), f"dataset path {path!r}")
    assert (finding.file, finding.field) == (SMOL, "datasets.0.path")
    assert finding.line == text.splitlines().index(f"  - path: {path}") + 1


def test_trust_remote_code_is_refused(root: Path) -> None:
    line = append(root, SMOL, "trust_remote_code: true\n")
    finding = only(errors(check(root)), "trust_remote_code")
    assert (finding.file, finding.line, finding.field) == (SMOL, line, "trust_remote_code")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"wandb_project": "other"}, "wandb_project"),
        ({"wandb_name": "my-run"}, "wandb_name"),
        ({"chat_template": "llama3"}, "chat_template"),
        ({"default_system_message": " "}, "default_system_message"),
        ({"output_dir": "./outputs"}, "output_dir"),
        ({"output_dir": "/workspace/../root"}, "output_dir"),
    ],
)
def test_project_rules(root: Path, changes: dict, field: str) -> None:
    edit_config(root, SMOL, **changes)
    finding = only(errors(check(root)), f"[{field}]")
    assert finding.file == SMOL
    assert finding.line is not None


def test_vllm_incompatible_lora_is_a_warning(root: Path) -> None:
    edit_config(root, LLAMA, lora_modules_to_save=["embed_tokens", "lm_head"], lora_r=600)
    report = check(root)
    assert report.exit_code == 0
    assert "vLLM cannot load" in only(warnings(report), "[lora_modules_to_save]").message
    assert "maximum LoRA rank 512" in only(warnings(report), "[lora_r]").message


def test_odd_lora_rank_says_vllm_rounds_up(root: Path) -> None:
    edit_config(root, LLAMA, lora_r=48)
    assert "rounds max_lora_rank up to 64" in only(warnings(check(root)), "[lora_r]").message
