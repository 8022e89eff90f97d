"""`haha check` as strict as the trainer and the pod, over every file a PR can touch (issue 17).

Each test names one rule; each fails on the gate as it was before the rule (no finding, or a crash).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import (
    DATA,
    ROOT,
    SMOL,
    append,
    check,
    edit_config,
    errors,
    git,
    make_git_repo,
    make_repo,
    only,
)

HAHA = Path(sys.executable).parent / "haha"
SMOL_RESULTS = "train/results/haha-smollm2-135m-lora-001.json"
BASELINE = "train/results/baseline/HuggingFaceTB--SmolLM2-135M-Instruct.json"
RATINGS = "train/results/ratings/alice.jsonl"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


# --- values -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["micro_batch_size", "gradient_accumulation_steps"])
def test_zero_batch_is_an_error_not_a_crash(root: Path, key: str) -> None:
    """The second config of a series is compared with the first: the global-batch check divided by it."""
    second = SMOL.replace("-001", "-002")
    shutil.copy(root / SMOL, root / second)
    edit_config(root, second, **{key: 0})
    finding = only(errors(check(root)), f"{key} is 0")
    assert (finding.file, finding.field) == (second, key)
    assert "at least" not in (finding.fix or "") and "≥ 1" in (finding.fix or "")


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("learning_rate", "fast", "not a number"),
        ("learning_rate", float("nan"), "must be finite"),
        ("num_epochs", float("inf"), "must be finite"),
        ("micro_batch_size", "0", "must be a whole number ≥ 1"),
        ("lora_dropout", 1.5, "< 1"),
        ("learning_rate", 3, "≤ 1"),
        ("num_epochs", 10**400, "not a usable number"),
        ("lora_alpha", "1e999", "not a usable number"),
    ],
)
def test_numbers_must_be_finite_and_in_range(root: Path, key: str, value: object, text: str) -> None:
    edit_config(root, SMOL, **{key: value})
    finding = only(errors(check(root)), text)
    assert (finding.file, finding.field) == (SMOL, key)
    assert finding.line is not None and finding.fix


def test_num_epochs_past_the_pod_deadline_is_an_error(root: Path) -> None:
    edit_config(root, SMOL, num_epochs=1e9)
    finding = only(errors(check(root)), "> deadline 6 h")
    assert finding.field == "num_epochs"
    assert "deadline_hours" in (finding.fix or "")


def test_max_steps_past_the_pod_deadline_is_an_error(root: Path) -> None:
    """max_steps overrides num_epochs in the HF Trainer: a huge one runs past the deadline too."""
    edit_config(root, SMOL, max_steps=10**12)
    finding = only(errors(check(root)), "> deadline 6 h")
    assert finding.field == "max_steps"


def test_val_set_size_holding_out_every_row_is_an_error(root: Path) -> None:
    edit_config(root, SMOL, val_set_size=100000)
    finding = only(errors(check(root)), "nothing is left to train on")
    assert finding.field == "val_set_size"


def test_sequence_len_far_above_the_context_is_an_error(root: Path) -> None:
    edit_config(root, SMOL, sequence_len=10**9)
    finding = only(errors(check(root)), "context of 8,192 tokens")
    assert (finding.file, finding.field) == (SMOL, "sequence_len")


def test_qlora_needs_load_in_4bit(root: Path) -> None:
    edit_config(root, SMOL, adapter="qlora", load_in_4bit=False)
    finding = only(errors(check(root)), "needs load_in_4bit")
    assert finding.field == "adapter"


def test_trust_remote_code_inside_a_dataset_entry_is_refused(root: Path) -> None:
    path = root / SMOL
    text = path.read_text().replace("    ds_type: json\n", "    ds_type: json\n    trust_remote_code: true\n")
    path.write_text(text)
    finding = only(errors(check(root)), "trust_remote_code")
    assert finding.field == "datasets.0.trust_remote_code"
    assert finding.line == text.splitlines().index("    trust_remote_code: true") + 1


# --- bounded YAML -------------------------------------------------------------------------------------
def test_duplicate_keys_name_both_lines(root: Path) -> None:
    first = (root / SMOL).read_text().splitlines().index("lora_r: 16") + 1
    again = append(root, SMOL, "lora_r: 64\n")
    finding = only(errors(check(root)), "duplicate key")
    assert (finding.file, finding.line, finding.field) == (SMOL, again, "lora_r")
    assert f"line {first}" in finding.message and f"line {again}" in finding.message


def test_alias_bomb_is_refused_before_expansion(root: Path) -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    pairs = zip("abcdefgh", "bcdefghi", strict=True)
    bomb += "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in pairs)
    (root / SMOL).write_text(bomb)
    finding = only(errors(check(root)), "alias")
    assert finding.file == SMOL and finding.line == 2
    assert "alias" in (finding.fix or "")


def test_a_huge_config_is_refused_unparsed(root: Path) -> None:
    append(root, SMOL, "default_system_message: " + "x" * (50 * 1024**2) + "\n")
    finding = only(errors(check(root)), "bytes")
    assert finding.file == SMOL


# --- files the gate did not look at ------------------------------------------------------------------
def test_configs_and_datasets_nobody_reads(root: Path, tmp_path: Path) -> None:
    (root / "train/config/old").mkdir()
    shutil.copy(root / SMOL, root / "train/config/old/haha-x-001.yml")
    (root / "train/config/haha-dir-001.yml").mkdir()
    (root / "train/config/haha-gone-001.yml").symlink_to(root / "nowhere.yml")
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"instruction": "i", "input": "", "output": "o"}\n')
    (root / "train/data/outside.jsonl").symlink_to(secret)
    found = {f.file: f.message for f in errors(check(root))}
    assert "configs are read only from train/config/" in found["train/config/old/haha-x-001.yml"]
    assert "subfolders" in found["train/config/old"]
    assert "directory named like a config" in found["train/config/haha-dir-001.yml"]
    assert "dangling symlink" in found["train/config/haha-gone-001.yml"]
    assert "leaves the repository" in found["train/data/outside.jsonl"]
    assert str(secret) not in {f.file for f in check(root).findings}  # never read


# --- results and ratings ------------------------------------------------------------------------------
def test_truncated_results_fail(root: Path) -> None:
    text = (ROOT / SMOL_RESULTS).read_text()
    (root / SMOL_RESULTS).write_text(text[: len(text) // 2])
    finding = only(errors(check(root)), "not valid JSON")
    assert finding.file == SMOL_RESULTS and finding.line


def test_results_for_a_missing_config_fail(root: Path) -> None:
    data = json.loads((ROOT / SMOL_RESULTS).read_text())
    data["config"]["name"] = "haha-ghost-001"
    (root / "train/results/haha-ghost-001.json").write_text(json.dumps(data, indent=1))
    finding = only(errors(check(root)), "does not exist")
    assert (finding.file, finding.field) == ("train/results/haha-ghost-001.json", "config.name")


def test_results_must_match_their_schema(root: Path) -> None:
    data = json.loads((ROOT / SMOL_RESULTS).read_text())
    del data["config"]["default_system_message"]
    (root / SMOL_RESULTS).write_text(json.dumps(data, indent=1))
    finding = only(errors(check(root)), "default_system_message")
    assert finding.file == SMOL_RESULTS


def _vote(**changes: object) -> str:
    row = {
        "a": "haha-smollm2-135m-lora-001",
        "b": "baseline:HuggingFaceTB/SmolLM2-135M-Instruct",
        "prompt": "Why did the cat sit on the keyboard?",
        "temperature": 0.7,
        "seed": 1,
        "winner": "a",
        "rater": "alice",
        "time": "2026-12-01T10:00:00Z",
    }
    return json.dumps(row | changes) + "\n"


def test_ratings_rows_are_validated(root: Path) -> None:
    (root / "train/results/baseline").mkdir()
    shutil.copy(ROOT / BASELINE, root / BASELINE)
    (root / "train/results/ratings").mkdir()
    (root / RATINGS).write_text(_vote() + _vote(winner="c") + _vote(a="haha-ghost-001") + "{oops\n")
    found = [(f.line, f.field) for f in errors(check(root)) if f.file == RATINGS]
    assert found == [(2, "winner"), (3, "a"), (4, None)]


# --- records compared with the base, or the default branch ---------------------------------------
@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A git repo on which the SmolLM2 config has real results and a baseline."""
    root = make_git_repo(tmp_path)
    shutil.copy(ROOT / SMOL_RESULTS, root / SMOL_RESULTS)
    (root / "train/results/baseline").mkdir()
    shutil.copy(ROOT / BASELINE, root / BASELINE)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "results")
    return root


def test_deleting_committed_results_fails(trained: Path) -> None:
    (trained / SMOL_RESULTS).unlink()
    finding = only(errors(check(trained, base="main")), "committed results deleted")
    assert finding.file == SMOL_RESULTS


def test_editing_committed_results_by_hand_fails(trained: Path) -> None:
    path = trained / SMOL_RESULTS
    path.write_text(path.read_text().replace('"temperature": 0.7', '"temperature": 0.8', 1))
    finding = only(errors(check(trained, base="main")), "changed by hand")
    assert finding.file == SMOL_RESULTS


def test_a_baseline_re_made_with_another_engine_passes(trained: Path) -> None:
    """`haha baseline --engine transformers` rewrites a vLLM baseline for the same eval.json."""
    data = json.loads((trained / BASELINE).read_text())
    data["meta"]["engine"] = "transformers" if data["meta"]["engine"] != "transformers" else "vllm"
    (trained / BASELINE).write_text(json.dumps(data, indent=2) + "\n")
    assert [f for f in errors(check(trained, base="main")) if "results" in f.message] == []


def test_a_re_evaluation_for_the_current_eval_json_passes(trained: Path) -> None:
    """What the bot PR brings after eval.json changed: results recording the new eval.json's hash."""
    import hashlib

    eval_path = trained / "train/eval/eval.json"
    spec = json.loads(eval_path.read_text())
    spec["seedVariants"] += 1
    eval_path.write_text(json.dumps(spec, indent=2) + "\n")
    new_hash = hashlib.sha256(eval_path.read_bytes()).hexdigest()
    for rel in (SMOL_RESULTS, BASELINE):
        data = json.loads((trained / rel).read_text())
        data["meta"]["eval_sha256"] = new_hash
        (trained / rel).write_text(json.dumps(data, indent=2) + "\n")
    assert [f for f in errors(check(trained, base="main")) if "results" in f.message] == []


def test_a_dataset_of_a_trained_config_is_frozen(trained: Path) -> None:
    append(trained, DATA, '{"instruction": "A new setup?", "input": "", "output": "A new punchline."}\n')
    finding = only(errors(check(trained, base="main")), "datasets of trained configs are frozen")
    assert finding.file == DATA
    assert "haha-smollm2-135m-lora-001" in finding.message
    assert "new file name" in (finding.fix or "")


def test_plain_check_compares_with_the_default_branch(trained: Path, tmp_path: Path) -> None:
    """A clone knows origin/main: `haha check` without --base still refuses a changed trained config."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(trained), str(clone)], check=True)
    config = clone / SMOL
    config.write_text(config.read_text().replace("lora_r: 16", "lora_r: 32"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "HAHA_"))}
    done = subprocess.run(
        [str(HAHA), "check"], cwd=clone, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{SMOL}:" in done.stdout and "trained configs are frozen" in done.stdout
    assert "records compared with origin/HEAD" in done.stdout
    assert "Traceback" not in done.stderr
