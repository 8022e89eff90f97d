"""This machine's place in a multi-node run: what RunPod's Instant Clusters tell every node.

RunPod sets these on every node of an Instant Cluster (docs.runpod.io/instant-clusters/configuration,
"Environment variables"): `PRIMARY_ADDR`/`MASTER_ADDR` and `PRIMARY_PORT`/`MASTER_PORT` (the primary
node; "all ports are available"), `NODE_RANK` (0 on the primary), `NUM_NODES`, `NUM_TRAINERS` (GPUs per
node) and `WORLD_SIZE` (NUM_NODES × NUM_TRAINERS). A run reads the first five (NUM_TRAINERS for the
bill: every node's GPUs are paid for); torchrun's static rendezvous (`--nnodes --node_rank
--master_addr --master_port`) then gives node 0's first process global rank 0 (the Trainer's logging
and, with DeepSpeed or FSDP, its saving rank). `haha.settings` reads the environment and calls
`cluster_from_env`; nothing else here touches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from haha.errors import InputError

# The variables, RunPod's names first (docs.runpod.io/instant-clusters/configuration).
NUM_NODES = "NUM_NODES"
NODE_RANK = "NODE_RANK"
NUM_TRAINERS = "NUM_TRAINERS"
ADDR = ("PRIMARY_ADDR", "MASTER_ADDR")
PORT = ("PRIMARY_PORT", "MASTER_PORT")
DEFAULT_PORT = 29500  # torchrun's default --master_port
_FIX = (
    "a multi-node run needs NUM_NODES, NODE_RANK and PRIMARY_ADDR (or MASTER_ADDR) on every node, "
    "as RunPod's Instant Clusters set them; unset NUM_NODES for a one-node run"
)


@dataclass(frozen=True)
class ClusterNode:
    """One node of `num_nodes`: its rank and where the primary node's rendezvous listens."""

    num_nodes: int
    node_rank: int
    master_addr: str
    master_port: int
    gpus_per_node: int | None = None  # NUM_TRAINERS, where set

    def whole_run(self, gpus_here: int | None) -> int | None:
        """GPUs of the whole run (every node has as many as this one), from this node's count."""
        per_node = gpus_here or self.gpus_per_node
        return per_node * self.num_nodes if per_node else None

    @property
    def primary(self) -> bool:
        """Node 0: the node that holds global rank 0, and that evaluates and publishes."""
        return self.node_rank == 0

    def torchrun_args(self, processes: int) -> list[str]:
        """torchrun's static rendezvous for this node: `processes` per node, ranks by node order."""
        return [
            "--nnodes",
            str(self.num_nodes),
            "--node_rank",
            str(self.node_rank),
            "--nproc_per_node",
            str(processes),
            "--master_addr",
            self.master_addr,
            "--master_port",
            str(self.master_port),
        ]


def _whole(env: Mapping[str, str], name: str, low: int, high: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        span = f"{low}..{high}" if high is not None else f"{low} or more"
        raise InputError(f"{name} is {raw!r}; it must be a whole number {span}", field=name, fix=_FIX)
    return int(raw)


def cluster_from_env(env: Mapping[str, str]) -> ClusterNode | None:
    """This node's place from `env`; None unless NUM_NODES says more than one node."""
    if not env.get(NUM_NODES, "").strip() or env[NUM_NODES].strip() == "1":
        return None
    nodes = _whole(env, NUM_NODES, 2)
    rank = _whole(env, NODE_RANK, 0, nodes - 1)
    addr = next((env[name].strip() for name in ADDR if env.get(name, "").strip()), "")
    if not addr:
        raise InputError("NUM_NODES is set but PRIMARY_ADDR/MASTER_ADDR is not", field=ADDR[0], fix=_FIX)
    port_var = next((name for name in PORT if env.get(name, "").strip()), None)
    port = _whole(env, port_var, 1, 65535) if port_var else DEFAULT_PORT
    trainers = _whole(env, NUM_TRAINERS, 1) if env.get(NUM_TRAINERS, "").strip() else None
    return ClusterNode(nodes, rank, addr, port, trainers)
