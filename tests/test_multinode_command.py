"""A node of a multi-node run: what it reads from RunPod's variables and how it starts torchrun."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from haha.cluster import ClusterNode, cluster_from_env
from haha.errors import InputError, RunFailed
from haha.experiment import Experiment
from haha.repo import Repo
from haha.settings import load_settings
from haha.train import CPU_DDP_PLUGIN, Device, axolotl_config, cluster_for, launch_env, train_command
from run_fixtures import NAME, make_tiny_repo

CPU = Device("cpu", 1, "x86_64")
# What RunPod sets on node 1 of a 2-node cluster (docs.runpod.io/instant-clusters/configuration).
RUNPOD_NODE_1 = {
    "PRIMARY_ADDR": "10.65.0.2",
    "MASTER_ADDR": "10.65.0.2",
    "PRIMARY_PORT": "29400",
    "MASTER_PORT": "29400",
    "NODE_ADDR": "10.65.0.3",
    "NODE_RANK": "1",
    "NUM_NODES": "2",
    "NUM_TRAINERS": "8",
    "HOST_NODE_ADDR": "10.65.0.2:29400",
    "WORLD_SIZE": "16",
}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    make_tiny_repo(tmp_path)
    return Repo(tmp_path)


def with_block(repo: Repo, **config: object) -> Experiment:
    path = repo.config_path(NAME)
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, **config}, sort_keys=False))
    return Experiment.load(path)


def test_runpods_variables_make_the_node() -> None:
    assert cluster_from_env(RUNPOD_NODE_1) == ClusterNode(2, 1, "10.65.0.2", 29400, gpus_per_node=8)
    assert cluster_from_env(RUNPOD_NODE_1).whole_run(None) == 16  # type: ignore[union-attr]  # the bill
    legacy = {"NUM_NODES": "2", "NODE_RANK": "0", "MASTER_ADDR": "h0"}
    assert cluster_from_env(legacy) == ClusterNode(2, 0, "h0", 29500)  # torchrun's default port
    assert cluster_from_env({}) is None and cluster_from_env({"NUM_NODES": "1"}) is None


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"NUM_NODES": "two", "NODE_RANK": "0", "PRIMARY_ADDR": "h"}, "NUM_NODES"),
        ({"NUM_NODES": "2", "NODE_RANK": "2", "PRIMARY_ADDR": "h"}, "NODE_RANK"),
        ({"NUM_NODES": "2", "PRIMARY_ADDR": "h"}, "NODE_RANK"),
        ({"NUM_NODES": "2", "NODE_RANK": "1"}, "PRIMARY_ADDR"),
        ({"NUM_NODES": "2", "NODE_RANK": "1", "PRIMARY_ADDR": "h", "PRIMARY_PORT": "0"}, "PRIMARY_PORT"),
        ({"NUM_NODES": "2", "NODE_RANK": "1", "PRIMARY_ADDR": "h", "NUM_TRAINERS": "0"}, "NUM_TRAINERS"),
    ],
)
def test_bad_cluster_variables_are_refused_by_name(tmp_path: Path, env: dict, field: str) -> None:
    with pytest.raises(InputError) as caught:
        load_settings(tmp_path, env)
    assert caught.value.location.field == field and "NUM_NODES" in caught.value.fix


def test_a_node_runs_torchrun_with_a_static_rendezvous_at_the_primary() -> None:
    node = cluster_from_env(RUNPOD_NODE_1)
    argv = train_command(Path("c.yml"), 8, {}, node)
    assert argv == [
        str(Path(sys.executable).parent / "axolotl"),
        "train",
        "c.yml",
        "--launcher",
        "torchrun",
        "--",
        *("--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "8"),
        *("--master_addr", "10.65.0.2", "--master_port", "29400"),
    ]
    assert not any(a.startswith("--rdzv") for a in argv)  # Axolotl would add a random rdzv_id per node


def test_one_process_per_node_on_cpu_is_still_distributed(repo: Repo) -> None:
    """Two nodes of one process: world 2, so gloo, the CPU placement plugin and one thread each."""
    exp = with_block(repo, haha={"nodes": 2})
    settings = load_settings(repo.root, {**RUNPOD_NODE_1, "NUM_TRAINERS": "1"})
    config, overrides = axolotl_config(exp, repo, repo.root / "work", settings, CPU)
    assert config["plugins"] == [CPU_DDP_PLUGIN] and "plugins" in overrides
    assert launch_env({"PATH": "/usr/bin"}, CPU, 1, 2)["ACCELERATE_USE_CPU"] == "true"
    assert "ACCELERATE_USE_CPU" not in launch_env({"PATH": "/usr/bin"}, CPU, 1)


def test_nodes_must_match_the_cluster(repo: Repo) -> None:
    exp = with_block(repo, haha={"nodes": 3})
    with pytest.raises(RunFailed, match=r"asks for 3 nodes.*NUM_NODES is 2"):
        cluster_for(exp, load_settings(repo.root, RUNPOD_NODE_1))
    with pytest.raises(RunFailed, match="NUM_NODES is unset"):
        cluster_for(exp, load_settings(repo.root, {}))
    one = with_block(repo, haha={"nodes": 1})
    assert cluster_for(one, load_settings(repo.root, RUNPOD_NODE_1)) is None
