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

# Environments a user may have, each compared with what huggingface_hub itself resolves.
HF_CACHE_ENVS = [
    {},
    {"XDG_CACHE_HOME": "/x"},
    {"XDG_CACHE_HOME": "~/xdg"},
    {"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"},
    {"HF_HUB_CACHE": "/c", "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"},
    {"HF_HUB_CACHE": "~/c/"},
    {"HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HOME": "/h"},
    {"HF_HOME": "$XDG_CACHE_HOME/hf", "XDG_CACHE_HOME": "/x"},
    {"HF_HOME": "${NOT_SET}/hf"},
    {"HF_HOME": ""},
]


@pytest.mark.parametrize("env", HF_CACHE_ENVS, ids=lambda env: " ".join(f"{k}={v}" for k, v in env.items()))
@pytest.mark.parametrize("home", [True, False], ids=["HOME", "no HOME"])
def test_the_hf_cache_is_where_huggingface_hub_finds_it(
    tmp_path: Path, env: dict[str, str], home: bool
) -> None:
    env = {**env, "HOME": str(tmp_path / "home")} if home else env
    resolved = subprocess.run(  # a fresh import: huggingface_hub reads the environment at import
        [sys.executable, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.rstrip("\n")
    assert load_settings(tmp_path, env).hub_cache_dir == Path(resolved)


@pytest.mark.parametrize(
    ("value", "offline"), [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)]
)
def test_hf_hub_offline_reads_as_huggingface_hub_reads_it(tmp_path: Path, value: str, offline: bool) -> None:
    assert load_settings(tmp_path, {"HF_HUB_OFFLINE": value}).hf_offline is offline


def test_retry_backoff_comes_from_haha_toml_or_the_environment(tmp_path: Path) -> None:
    """Tests of failing terminates and publishes set it to 0 rather than wait seconds per try."""
    assert load_settings(tmp_path, {}).retry_backoff_s == 2.0
    (tmp_path / "haha.toml").write_text("retry_backoff_s = 0.5\n")
    assert load_settings(tmp_path, {}).retry_backoff_s == 0.5
    assert load_settings(tmp_path, {"HAHA_RETRY_BACKOFF_S": "0"}).retry_backoff_s == 0.0


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


# Offline, as in `make run`: the model must be where transformers and huggingface_hub look for it.
FIND_OFFLINE = """
import sys
from huggingface_hub import try_to_load_from_cache
from transformers import AutoConfig, AutoTokenizer

AutoConfig.from_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(sys.argv[1])
print(try_to_load_from_cache(sys.argv[1], "tokenizer.json"))  # the gate's tokenizer look-up
"""


@pytest.mark.slow  # dequantizes SmolLM2's GGUF file (~30 s)
def test_models_seed_writes_where_transformers_looks_under_xdg_cache_home(tmp_path: Path) -> None:
    from haha.models import SMOLLM2

    hf_vars = {"HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in hf_vars} | {
        "XDG_CACHE_HOME": str(tmp_path / "xdg")
    }
    haha = Path(sys.executable).with_name("haha")
    seeded = subprocess.run(
        [str(haha), "models", "seed"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    found = subprocess.run(
        [sys.executable, "-c", FIND_OFFLINE, SMOLLM2],
        env=env | {"HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    assert Path(found.stdout.splitlines()[-1]).is_relative_to(tmp_path / "xdg" / "huggingface" / "hub")
