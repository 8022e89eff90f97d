"""The pinned DeepSpeed under the pinned Axolotl, with this repo's ZeRO-1 JSON, on two CPU processes.

`haha run` drops `deepspeed` on a machine without a GPU (meta.cpu_overrides): ZeRO-3 does not run on
CPU here (Axolotl 0.19.0 + DeepSpeed 0.18.9 fail in the first forward with "Padding_idx must be within
num_embeddings"). This test puts `deepspeed_configs/zero1.json` back into the config `haha run` would
hand Axolotl and starts it the way `haha run` starts several processes (train_command, launch_env):
DeepSpeed's CPU accelerator with gloo. It shows that the set installs and imports together, that the
committed JSON is one this Axolotl accepts, and that DeepSpeed wraps the training.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from haha.experiment import Experiment
from haha.repo import Repo
from haha.settings import load_settings
from haha.train import Device, axolotl_config, launch_env, train_command
from run_fixtures import NAME, make_tiny_repo
from test_multigpu_train import steps_in

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_zero1_trains_two_cpu_processes(tmp_path: Path) -> None:
    make_tiny_repo(tmp_path)
    path = tmp_path / f"train/config/{NAME}.yml"
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "num_epochs": 1, "logging_steps": 1, "haha": {"gpus": 2}}))
    env = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "HOME", "XDG_"))}
    settings = load_settings(tmp_path, {**env, "PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled"})
    cpu = Device("cpu", 1, "x86_64")
    work = tmp_path / "work"
    axolotl, _ = axolotl_config(Experiment.load(path), Repo(tmp_path), work, settings, cpu)
    assert "deepspeed" not in axolotl
    axolotl["deepspeed"] = str(ROOT / "deepspeed_configs/zero1.json")
    work.mkdir()
    (work / "axolotl.yml").write_text(yaml.safe_dump(axolotl, sort_keys=False))
    child = {**launch_env(settings.child_env(), cpu, 2), "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        train_command(work / "axolotl.yml", 2, axolotl),
        cwd=work,
        env=child,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = done.stdout + done.stderr
    (work / "train.log").write_text(log)
    assert done.returncode == 0, log[-4000:]
    assert "The DeepSpeed config has been saved" in log  # Axolotl's callback: DeepSpeed wraps the Trainer
    assert steps_in(work / "train.log") == 1  # two data-parallel ranks: 8 rows at micro_batch 4, 1 step
    assert (Path(axolotl["output_dir"]) / "adapter_model.safetensors").is_file()
