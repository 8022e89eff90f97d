"""The Compute interface: launch, list and terminate pods. Pods are named after their config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PodSpec:
    """Everything needed to start one pod. `secrets` are env values that must never be printed."""

    name: str
    image: str
    gpu_types: tuple[str, ...]
    gpu_count: int = 1  # per pod (per node of a cluster)
    nodes: int = 1  # more than one: a cluster of `nodes` pods (compute.runpod_clusters)
    cloud_type: str = "SECURE"
    container_disk_gb: int = 80
    volume_gb: int = 0
    network_volume_id: str = ""
    min_cuda_version: str = ""  # hosts whose driver supports this CUDA or newer; empty: any
    registry_auth_id: str = ""  # the provider's saved credentials for a private image's registry
    # Interruptible (spot): cheaper, and the provider may stop it at any time (haha.resume).
    interruptible: bool = False
    bid_per_gpu: dict[str, float] = field(default_factory=dict)  # GPU type → bid, USD per GPU-hour
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Pod:
    """A pod as the provider reports it."""

    id: str
    name: str
    status: str = "RUNNING"
    gpu_type: str = ""
    cost_per_hour: float | None = None
    interruptible: bool = False
    nodes: int = 1  # a cluster (haha.nodes): one id for all its nodes, ended together


class Compute(Protocol):
    """What the orchestrator needs from a compute provider."""

    kind: str

    def launch(self, spec: PodSpec) -> Pod:
        """Start a pod; raise ServiceError when no GPU type in the list has capacity."""
        ...

    def list_pods(self) -> list[Pod]:
        """Every pod this account has (callers filter by name)."""
        ...

    def terminate(self, pod_id: str) -> None:
        """Terminate (not stop: a stopped pod still bills its volume). Idempotent."""
        ...

    def find_cluster(self, name: str) -> Pod | None:
        """The cluster (`nodes` > 1) called `name`, None when there is none; raises when the provider
        cannot say (a node ending its own cluster must not take that for "gone")."""
        ...

    def log_file(self, pod_id: str) -> Path | None:
        """The pod's console log on this machine, where the provider keeps one (local pods)."""
        ...

    def launch_pr(self, pod_id: str) -> int | None:
        """The pull request launch told this pod (HAHA_PR), where the provider keeps a pod's env."""
        ...
