"""Settings: the one reader of the environment. What each variable becomes, and what bad values say."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from haha.errors import InputError
from haha.settings import ENV_ONLY, load_settings


def test_the_hf_cache_is_found_as_huggingface_hub_finds_it(tmp_path: Path) -> None:
    assert load_settings(tmp_path, {"HF_HUB_CACHE": "/c", "HF_HOME": "/h"}).hub_cache_dir == Path("/c")
    assert load_settings(tmp_path, {"HF_HOME": "/h"}).hub_cache_dir == Path("/h/hub")
    assert load_settings(tmp_path, {}).hub_cache_dir == Path.home() / ".cache/huggingface/hub"


@pytest.mark.parametrize(
    ("value", "offline"), [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)]
)
def test_hf_hub_offline_reads_as_huggingface_hub_reads_it(tmp_path: Path, value: str, offline: bool) -> None:
    assert load_settings(tmp_path, {"HF_HUB_OFFLINE": value}).hf_offline is offline


def test_child_processes_inherit_the_mapping_with_changes(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {"PATH": "/bin", "HAHA_EVAL_PYTHON": "/py", "KEEP": "1"})
    assert settings.child_env({"HAHA_EVAL_PYTHON": None, "NEW": "2"}) == {
        "PATH": "/bin",
        "KEEP": "1",
        "NEW": "2",
    }
    offline = settings.model_copy(update={"hf_offline": True})  # a base model in a local folder
    assert offline.child_env()["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in settings.child_env()


def test_pod_variables_become_typed_values(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        {"RUNPOD_POD_ID": "abc", "HAHA_BOOT_EPOCH": "1700000000.5", "HAHA_RUN_ARGV": '["false", "x"]'},
    )
    assert settings.inside_pod and settings.boot_epoch == 1700000000.5
    assert settings.run_argv == ("false", "x")
    pod = settings.pod_env("haha-x-001", datetime(2026, 11, 28, tzinfo=UTC))  # read once, here
    assert (pod.pod_id, pod.boot_epoch) == ("abc", 1700000000.5)
    assert not load_settings(tmp_path, {}).inside_pod


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {"HF_TOKEN": "hf_secret", "HAHA_JUDGE_API_KEY": "sk-secret"})
    assert "hf_secret" not in repr(settings) and "sk-secret" not in repr(settings)
    assert settings.secret("hf_token") == "hf_secret"


@pytest.mark.parametrize("field", ["eval_python", "workdir", "hf_token"])
def test_environment_only_settings_are_refused_in_haha_toml(tmp_path: Path, field: str) -> None:
    (tmp_path / "haha.toml").write_text(f'{field} = "x"\n')
    with pytest.raises(InputError) as caught:
        load_settings(tmp_path, {})
    assert caught.value.location.field == field
    assert ENV_ONLY[field] in caught.value.fix


def test_a_bad_variable_is_named_by_the_haha_command(tmp_path: Path) -> None:
    """The process a user runs: exit 2, and the message names the variable, not haha.toml."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "haha.cli", "check", "--repo", str(root)],
        env={**os.environ, "HAHA_BOOT_EPOCH": "yesterday"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "HAHA_BOOT_EPOCH" in done.stderr and "haha.toml" not in done.stderr
