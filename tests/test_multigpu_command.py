"""The train stage's side of multi-GPU: what Axolotl is given and how it is started (no training)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from haha.errors import RunFailed
from haha.experiment import Experiment
from haha.repo import Repo
from haha.settings import load_settings
from haha.train import (
    CPU_DDP_PLUGIN,
    Device,
    axolotl_config,
    eval_placement,
    launch_env,
    processes_for,
    train_command,
)
from run_fixtures import NAME, make_tiny_repo

CPU = Device("cpu", 1, "x86_64")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    make_tiny_repo(tmp_path)
    return Repo(tmp_path)


def with_block(repo: Repo, **config: object) -> Experiment:
    path = repo.config_path(NAME)
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, **config}, sort_keys=False))
    return Experiment.load(path)


def test_axolotl_never_gets_the_block_and_cpu_ranks_get_the_placement_plugin(repo: Repo) -> None:
    exp = with_block(repo, haha={"gpus": 2})
    config, overrides = axolotl_config(exp, repo, repo.root / "work", load_settings(repo.root, {}), CPU)
    assert "haha" not in config
    assert config["plugins"] == [CPU_DDP_PLUGIN]
    assert overrides["plugins"] == [None, [CPU_DDP_PLUGIN]]


def test_one_process_stays_as_it_was(repo: Repo, tmp_path: Path) -> None:
    exp = with_block(repo)
    settings = load_settings(repo.root, {})
    config, overrides = axolotl_config(exp, repo, tmp_path / "work", settings, CPU)
    assert "plugins" not in config and "plugins" not in overrides
    assert processes_for(exp, settings, CPU) == 1
    assert train_command(Path("c.yml"), 1, config) == [sys.executable, "-m", "axolotl.cli.train", "c.yml"]


def test_several_processes_go_through_axolotls_torchrun_launcher() -> None:
    argv = train_command(Path("c.yml"), 4, {})
    assert argv[0] == str(Path(sys.executable).parent / "axolotl")
    assert argv[1:] == [
        "train",
        "c.yml",
        "--launcher",
        "torchrun",
        "--",
        "--standalone",
        "--nproc_per_node",
        "4",
    ]


def test_launcher_finds_torchrun_and_cpu_ranks_use_gloo() -> None:
    env = launch_env({"PATH": "/usr/bin"}, CPU, 2)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["ACCELERATE_USE_CPU"] == "true"
    assert "ACCELERATE_USE_CPU" not in launch_env({"PATH": "/usr/bin"}, Device("cuda", 2, "H100", 80), 2)


def test_a_pod_with_fewer_gpus_than_asked_fails_before_training(repo: Repo) -> None:
    exp = with_block(repo, haha={"gpus": 4})
    with pytest.raises(RunFailed, match="asks for 4 GPUs"):
        processes_for(exp, load_settings(repo.root, {}), Device("cuda", 2, "H100", 80))


def test_deepspeed_files_resolve_against_the_checkout(repo: Repo, tmp_path: Path) -> None:
    exp = with_block(repo, deepspeed="deepspeed_configs/zero2.json")
    gpu = Device("cuda", 1, "H100", 80)
    config, _ = axolotl_config(exp, repo, tmp_path / "work", load_settings(repo.root, {}), gpu)
    assert config["deepspeed"] == str(repo.root.resolve() / "deepspeed_configs/zero2.json")


def test_eval_records_one_gpu_and_whether_the_model_fits(repo: Repo) -> None:
    small = with_block(repo)
    assert eval_placement(small, CPU) == {"gpus": 1, "weights_gib": 0.3, "fits_one_gpu": None}
    big = with_block(repo, base_model="meta-llama/Meta-Llama-3-70B")
    placed = eval_placement(big, Device("cuda", 8, "NVIDIA H100 80GB HBM3", 79.2))
    assert placed["gpus"] == 1 and placed["fits_one_gpu"] is False and placed["weights_gib"] > 79.2
