"""A `haha: {gpus: 2}` config through `haha plan` (the CLI, JSON) and `haha launch` to the RunPod fake.

The plan and the deploy request go through the real CLI and the real runpod SDK against the loopback
GraphQL fake; only the pod never starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import edit_config, git, make_git_repo
from fakes.runpod_graphql import RunPodFake
from haha.compute.runpod import RunPodCompute
from haha.launch import launch
from haha.repo import Repo
from haha.settings import load_settings
from haha.store import get_store
from pod_results import write_fake_results
from test_orchestrate import DIGEST, ENV, H100, H200, NOW

pytest_plugins = ["fakes.fixtures"]

SMOL = "haha-smollm2-135m-lora-001"
LLAMA = "haha-llama-3-8b-lora-001"
TWO = "haha-smollm2-135m-lora-002"
A100 = "NVIDIA A100-SXM4-80GB"


@pytest.fixture
def root(tmp_path: Path, runpod_api: RunPodFake) -> Path:
    """The repo with both starter configs done, the image pinned, and a new config on 2 H100s."""
    runpod_api.gpus = (*runpod_api.gpus, {"id": H200, "displayName": "H200", "memoryInGb": 141})
    root = make_git_repo(tmp_path)
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace('"ghcr.io/synagi/haha-pod:latest"', f'"{DIGEST}"'))
    for name in (SMOL, LLAMA):
        write_fake_results(root, name)
    (root / f"train/config/{TWO}.yml").write_text((root / f"train/config/{SMOL}.yml").read_text())
    edit_config(root, f"train/config/{TWO}.yml", haha={"gpus": 2, "gpu_types": [H100, A100]})
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a two-GPU config")
    return root


def plan_json(root: Path) -> dict:
    env = {**os.environ, **ENV, "HAHA_COMPUTE": "runpod"}
    done = subprocess.run(
        [sys.executable, "-m", "haha.cli", "plan", "--repo", str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_plan_json_and_the_deploy_request_carry_two_gpus(root: Path, runpod_api: RunPodFake) -> None:
    (run,) = plan_json(root)["include"]
    assert (run["config"], run["gpus"], run["gpu_types"]) == (TWO, 2, [H100, A100])

    settings = load_settings(root, ENV)
    store = get_store(settings, root)
    (launched,) = launch(Repo(root), settings, RunPodCompute(settings), store, (), NOW, lambda m: None)

    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert (deploy["gpuCount"], deploy["gpuTypeId"]) == (2, H100)
    assert launched.pod.gpu_type == H100


def test_the_pod_falls_back_within_the_configs_own_gpu_types(root: Path, runpod_api: RunPodFake) -> None:
    runpod_api.out_of_stock = {H100}
    settings = load_settings(root, ENV)
    launch(Repo(root), settings, RunPodCompute(settings), get_store(settings, root), (), NOW, print)
    deploys = runpod_api.calls("podFindAndDeployOnDemand")
    assert [(d["gpuTypeId"], d["gpuCount"]) for d in deploys] == [(H100, 2), (A100, 2)]  # never the H200


def test_a_config_without_the_block_gets_haha_toml_defaults(root: Path, runpod_api: RunPodFake) -> None:
    three = "haha-smollm2-135m-lora-003"
    (root / f"train/config/{three}.yml").write_text((root / f"train/config/{SMOL}.yml").read_text())
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace("gpu_count = 1", "gpu_count = 4"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "default four GPUs")
    runs = {r["config"]: r for r in plan_json(root)["include"]}
    assert (runs[three]["gpus"], runs[three]["gpu_types"][0]) == (4, H200)
    assert runs[TWO]["gpus"] == 2
