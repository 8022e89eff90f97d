"""Two "nodes" on loopback, each started as a RunPod Instant Cluster node starts its run.

Each node is its own checkout and work folder and its own `haha run` process, with the variables
RunPod sets on every cluster node (docs.runpod.io/instant-clusters/configuration): NUM_NODES=2, its
NODE_RANK, and the primary's PRIMARY_ADDR/PRIMARY_PORT. Each runs torchrun (static rendezvous at the
primary) through Axolotl's launcher, one process per node, gloo on CPU: real Axolotl, real DDP
across the two process trees. Node 0 evaluates, writes the results and publishes; node 1 only trains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from haha.compute.local import free_port
from haha.train import CPU_DDP_PLUGIN
from run_fixtures import NAME, make_tiny_repo
from test_multigpu_train import steps_in

pytestmark = pytest.mark.slow

TWO_NODES = "haha-tiny-002"
HAHA = str(Path(sys.executable).parent / "haha")


def node_checkout(root: Path) -> Path:
    """The tiny repo with haha-tiny-002 = the tiny config on `haha: {nodes: 2}` (one GPU each)."""
    make_tiny_repo(root)
    config = yaml.safe_load((root / f"train/config/{NAME}.yml").read_text())
    config.update({"num_epochs": 1, "logging_steps": 1})  # 8 rows, micro_batch 4: 2 steps on 1 process
    (root / f"train/config/{TWO_NODES}.yml").write_text(
        yaml.safe_dump({**config, "haha": {"nodes": 2}}, sort_keys=False)
    )
    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec.update({"prompts": spec["prompts"][:2], "seedVariants": 1})
    spec["settings"] = [{"temperature": 0.8, "max_tokens": 4}]
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))
    return root


def node_env(root: Path, rank: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "HOME", "XDG_"))}
    env.update(
        {
            "PATH": "/usr/bin:/bin",
            "HAHA_WORKDIR": str(root / "work"),
            "HAHA_STORE_PATH": str(root / "store"),
            "NUM_NODES": "2",
            "NODE_RANK": str(rank),
            "PRIMARY_ADDR": "127.0.0.1",
            "PRIMARY_PORT": str(port),
        }
    )
    return env


def test_two_nodes_train_one_model_and_node_zero_writes_it(tmp_path: Path) -> None:
    nodes = [node_checkout(tmp_path / f"node{rank}") for rank in (0, 1)]
    port = free_port()
    argv = [HAHA, "run", TWO_NODES, "--engine", "transformers"]
    procs = [
        subprocess.Popen(
            [*argv, "--repo", str(root)],
            env=node_env(root, rank, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank, root in enumerate(nodes)
    ]
    outputs = [p.communicate(timeout=1500)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)

    # Node 0 alone evaluates and writes the results; they record the two nodes.
    results = json.loads((nodes[0] / f"train/results/{TWO_NODES}.json").read_text())
    assert results["meta"]["train"] == {"processes": 1, "nodes": 2}
    assert results["meta"]["cpu_overrides"]["plugins"] == [None, [CPU_DDP_PLUGIN]]
    assert not (nodes[1] / f"train/results/{TWO_NODES}.json").exists()
    # Axolotl 0.19.0 saves the adapter on each node's local rank 0 (axolotl/train.py,
    # save_trained_model: `cfg.local_rank == 0`): both work folders hold one, byte for byte the same,
    # which only the gradient all-reduce across the nodes makes so (each rank saw other rows).
    adapters = [list((root / "work" / TWO_NODES).rglob("adapter_model.safetensors")) for root in nodes]
    assert [len(found) for found in adapters] == [1, 1]
    assert adapters[0][0].read_bytes() == adapters[1][0].read_bytes()
    # The model store gets it once: node 0 publishes, node 1 does not.
    assert list((nodes[0] / "store").rglob("adapter_model.safetensors"))
    assert not (nodes[1] / "store").exists()
    # Both nodes took part: each rank took half of the 8 rows, so the epoch is 1 step, not 2 (the
    # Trainer draws its bar on global rank 0 only), and node 1 ran the Trainer to its end.
    assert steps_in(nodes[0] / "work" / TWO_NODES / "train.log") == 1
    assert "Starting trainer" in (nodes[1] / "work" / TWO_NODES / "train.log").read_text()
    for root in nodes:
        assert json.loads((root / "work" / TWO_NODES / "train.json").read_text())["nodes"] == 2


def test_a_nodes_config_on_a_lone_machine_is_refused_with_the_fix(tmp_path: Path) -> None:
    root = node_checkout(tmp_path / "node0")
    env = node_env(root, 0, free_port())
    del env["NUM_NODES"]
    done = subprocess.run(
        [HAHA, "run", TWO_NODES, "--no-publish", "--repo", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 4, done.stdout + done.stderr  # RunFailed
    assert "asks for 2 nodes" in done.stderr and "NUM_NODES=2" in done.stderr
    assert not (root / f"train/results/{TWO_NODES}.json").exists()
