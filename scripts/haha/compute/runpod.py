"""RunPod pods through the `runpod` SDK (GraphQL at `$RUNPOD_API_BASE_URL/graphql`, read per call).

On-demand only, walking the configured GPU types in order while RunPod refuses them for capacity.
The deploy is our own `podFindAndDeployOnDemand` (the input runpod 1.12's create_pod builds, plus
`minCudaVersion` and `containerRegistryAuthId`, which it has no parameter for), sent through the
SDK's own transport so its key and endpoint handling stay the SDK's. Secrets travel in the pod env;
they are redacted from every message this module produces.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from haha.compute.base import Pod, PodSpec
from haha.compute.runpod_clusters import (
    CREATE_CLUSTER,
    ClusterApi,
    cluster_request,
    delete_cluster,
    find_named,
    launch_cluster,
    listed,
)
from haha.errors import HahaError, InputError, ServiceError
from haha.settings import Settings, runpod_api_url

log = logging.getLogger(__name__)

# RunPod's answers when a GPU type has no capacity for the deploy (lower case, as matched): the
# next GPU type is tried. Any other refusal (balance, bad image name...) stops the launch.
CAPACITY_REFUSALS = (
    "no longer any instances available",
    "not enough free gpus",
    "does not have the resources to deploy",
)
# Where a network volume is mounted; launch points the pod's HF cache under it (launch.volume_env).
VOLUME_MOUNT_PATH = "/workspace/data"
DEPLOY = "podFindAndDeployOnDemand"
# Interruptible (spot) pods: RunPod's own GraphQL mutation (graphql-spec.runpod.io, PodRentInterruptable
# Input: the deploy's fields plus `bidPerGpu`); runpod-python 1.12 has no call for it.
RENT_INTERRUPTIBLE = "podRentInterruptable"
# What the deploy answers: no `env` (the SDK selects it, and with it every secret value).
_DEPLOY_SELECTION = "{ id name desiredStatus costPerHr machine { gpuDisplayName podHostId } }"


def _gql(text: str) -> str:
    """Escape a value for the SDK, which pastes it between double quotes into the GraphQL text."""
    return json.dumps(text)[1:-1]


class Enum(str):
    """A GraphQL enum value: written bare, not quoted."""


def is_capacity_refusal(message: str) -> bool:
    return any(marker in message.lower() for marker in CAPACITY_REFUSALS)


def deploy_input(spec: PodSpec, gpu: str, data_center_id: str | None = None) -> dict[str, Any]:
    """The `podFindAndDeployOnDemand` input for `spec` on `gpu`.

    The fields and defaults runpod 1.12's create_pod sends (runpod/api/mutations/pods.py), plus what
    it lacks: `minCudaVersion` (any host whose driver is at least the image's CUDA; its
    `allowedCudaVersions` is an exact list) and `containerRegistryAuthId` (a private image pulls).
    """
    fields: dict[str, Any] = {
        "name": spec.name,
        "imageName": spec.image,
        "cloudType": Enum(spec.cloud_type),
        "startSsh": True,
        "gpuTypeId": gpu,
        "supportPublicIp": True,
        "gpuCount": spec.gpu_count,
        "volumeInGb": spec.volume_gb,
        "minVcpuCount": 1,
        "minMemoryInGb": 1,
        "dataCenterId": data_center_id,
        "dockerArgs": "",
        "containerDiskInGb": spec.container_disk_gb,
        "volumeMountPath": VOLUME_MOUNT_PATH,
        "env": [{"key": k, "value": v} for k, v in {**spec.env, **spec.secrets}.items()],
    }
    if spec.network_volume_id:
        fields["networkVolumeId"] = spec.network_volume_id
    if spec.min_cuda_version:
        fields["minCudaVersion"] = spec.min_cuda_version
    if spec.registry_auth_id:
        fields["containerRegistryAuthId"] = spec.registry_auth_id
    return fields


def rent_input(spec: PodSpec, gpu: str, data_center_id: str | None = None) -> dict[str, Any]:
    """The `podRentInterruptable` input: the deploy's fields plus the bid per GPU-hour for `gpu`."""
    return {**deploy_input(spec, gpu, data_center_id), "bidPerGpu": spec.bid_per_gpu[gpu]}


def deploy_call(spec: PodSpec, gpu: str, data_center_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """The mutation for `spec` on `gpu` and its input: interruptible pods are rented, others deployed."""
    if spec.interruptible:
        return RENT_INTERRUPTIBLE, rent_input(spec, gpu, data_center_id)
    return DEPLOY, deploy_input(spec, gpu, data_center_id)


def first_request(spec: PodSpec) -> dict[str, Any]:
    """What launch asks RunPod first for `spec` (`haha launch --dry-run` shows it): the mutation or
    REST call, and its input, on the first GPU type."""
    if not spec.gpu_types:
        return {"mutation": DEPLOY, "input": None}
    gpu = spec.gpu_types[0]
    if spec.nodes > 1:
        return {"mutation": CREATE_CLUSTER, "input": cluster_request(spec, gpu, None, VOLUME_MOUNT_PATH)}
    mutation, fields = deploy_call(spec, gpu)
    return {"mutation": mutation, "input": fields}


def graphql_value(value: Any) -> str:
    """A GraphQL literal (JSON's string escapes are GraphQL's)."""
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {graphql_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(graphql_value(v) for v in value) + "]"
    return json.dumps(value)


def deploy_mutation(fields: dict[str, Any], mutation: str = DEPLOY) -> str:
    return f"mutation {{ {mutation}(input: {graphql_value(fields)}) {_DEPLOY_SELECTION} }}"


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# Listing queries of our own: the SDK's get_pods/get_pod select every pod's `env`, secrets included.
PODS_QUERY = """
query Pods {
  myself { pods { id name desiredStatus costPerHr gpuCount podType machine { gpuDisplayName } } }
}
"""
POD_QUERY = """
query Pod {
  pod(input: {podId: "%s"}) { id name desiredStatus costPerHr gpuCount podType machine { gpuDisplayName } }
}
"""
# RunPod's `podType` for a pod rented with podRentInterruptable (the console calls it "Spot").
INTERRUPTABLE = "INTERRUPTABLE"
# One pod's env (`KEY=value` strings), read only for its PR when the reaper ends a pod that never ran.
POD_ENV_QUERY = """
query PodEnv { pod(input: {podId: "%s"}) { id env } }
"""
# A create that fails this way may be RunPod's side hiccupping: retried, then the next GPU type.
CREATE_TRIES = 3
BACKOFF_S = 2.0


def is_transient(exc: Exception) -> bool:
    """A timeout, a dropped connection, or a 5xx whose body is not the API's JSON (an HTML error page)."""
    import requests

    return isinstance(exc, (requests.Timeout, requests.ConnectionError, requests.JSONDecodeError))


class RunPodCompute:
    kind = "runpod"

    def __init__(
        self, settings: Settings, sleep: Callable[[float], None] = time.sleep, backoff_s: float = BACKOFF_S
    ) -> None:
        self.settings = settings
        self._sleep, self._backoff_s = sleep, backoff_s

    def _sdk(self) -> ModuleType:
        """The runpod module with our key set (its calls read the module-global key)."""
        if self.settings.runpod_api_key is None:
            raise InputError(
                "RUNPOD_API_KEY is not set",
                field="RUNPOD_API_KEY",
                fix="set the RUNPOD_API_KEY secret (repository secret → workflow step env)",
            )
        import runpod

        runpod.api_key = self.settings.runpod_api_key.get_secret_value()
        return runpod

    def _clusters(self, spec: PodSpec | None = None) -> ClusterApi:
        return ClusterApi(runpod_api_url(), self._sdk().api_key, self._secrets(spec))

    def _secrets(self, spec: PodSpec | None = None) -> list[str]:
        key = self.settings.runpod_api_key
        values = [key.get_secret_value()] if key else []
        return values + (list(spec.secrets.values()) if spec else [])

    def launch(self, spec: PodSpec) -> Pod:
        """Deploy on the first GPU type in `spec.gpu_types` that has capacity.

        A capacity refusal: the next type at once. A timeout or 5xx: retried with backoff (after
        checking that the failed call did not create the pod after all), then the next type. When no
        type could be had, the error says what RunPod answered for each.
        """
        runpod = self._sdk()
        if not spec.gpu_types:
            raise InputError(
                "no GPU types to try", field="compute.gpu_types", fix="list GPU types in haha.toml"
            )
        secrets = self._secrets(spec)
        data_center = volume_data_center(runpod, spec.network_volume_id, secrets)
        if spec.nodes > 1:  # an Instant Cluster, through RunPod's REST API (compute.runpod_clusters)
            return launch_cluster(
                self._clusters(spec),
                spec,
                data_center,
                is_capacity_refusal,
                self._wait,
                CREATE_TRIES,
                self._price,
                VOLUME_MOUNT_PATH,
            )
        answers = []
        for gpu in spec.gpu_types:
            for attempt in range(1, CREATE_TRIES + 1):
                log.info("launching %s on %s (try %d)", spec.name, gpu, attempt)
                try:
                    created = self._deploy(runpod, spec, gpu, data_center)
                    return launched(created, spec, gpu, self._price(gpu))
                except Exception as exc:  # the SDK raises QueryError, ValueError and requests errors
                    message = _redact(str(exc), secrets) or type(exc).__name__
                    if is_capacity_refusal(message):
                        answers.append(f"{gpu}: {message}")
                        break
                    if not is_transient(exc):
                        raise ServiceError(f"RunPod refused {spec.name} on {gpu}: {message}") from None
                    if (made := self._find(spec.name)) is not None:  # the call went through after all
                        return made
                    log.info("RunPod did not answer for %s (%s); retrying", gpu, message)
                    if attempt == CREATE_TRIES:
                        answers.append(f"{gpu}: no answer ({type(exc).__name__} ×{CREATE_TRIES})")
                    else:
                        self._wait(attempt)
        raise ServiceError(
            f"no capacity for {spec.name} on any GPU type; RunPod answered: {' | '.join(answers)}",
            field="compute.gpu_types",
            fix="add more GPU types to the fallback list in haha.toml, or retry later",
        )

    def _deploy(self, runpod: ModuleType, spec: PodSpec, gpu: str, data_center: str | None) -> dict[str, Any]:
        """One deploy: the GPU type checked as create_pod checks it, then our mutation (interruptible:
        podRentInterruptable with the bid for this type)."""
        from runpod.api.graphql import run_graphql_query

        runpod.get_gpu(gpu)  # an unknown type: the SDK's ValueError, not a capacity miss
        field, fields = deploy_call(spec, gpu, data_center)
        return run_graphql_query(deploy_mutation(fields, field))["data"][field]

    def _wait(self, attempt: int) -> None:
        self._sleep(self._backoff_s * 2 ** (attempt - 1))

    def _find(self, name: str) -> Pod | None:
        try:
            return next((p for p in self.list_pods() if p.name == name and p.status != "TERMINATED"), None)
        except ServiceError:
            return None

    def _price(self, gpu: str) -> float | None:
        return next((g.price_per_hour for g in self.settings.compute.gpu_types if g.id == gpu), None)

    def list_pods(self) -> list[Pod]:
        """Every pod on the account, as RunPod reports it (never their env)."""
        data = self._query(PODS_QUERY, "list pods")
        return [_pod(p) for p in ((data.get("myself") or {}).get("pods") or [])] + listed(self._clusters())

    def get(self, pod_id: str) -> Pod | None:
        data = self._query(POD_QUERY % _gql(pod_id), f"look up pod {pod_id}")
        return _pod(data["pod"]) if data.get("pod") else None

    def terminate(self, pod_id: str) -> None:
        """Terminate (a cluster: delete it, every node); a pod or cluster already gone counts as ended.

        The id is tried as a cluster first (one DELETE: 404 for a pod), then as a pod. When the cluster
        call could not say (no answer, a 5xx) and no pod has the id, the error is raised, not hidden."""
        runpod = self._sdk()
        deleted, unsure = delete_cluster(self._clusters(), pod_id)
        if deleted:
            return
        try:
            runpod.terminate_pod(pod_id)
        except Exception as exc:
            if unsure or self.get(pod_id) is not None:
                message = unsure or _redact(str(exc), self._secrets())
                raise ServiceError(f"RunPod could not terminate pod {pod_id}: {message}") from None
        log.info("terminated pod %s", pod_id)

    def find_cluster(self, name: str) -> Pod | None:
        return find_named(self._clusters(), name)

    def launch_pr(self, pod_id: str) -> int | None:
        """HAHA_PR from the pod's env: only it is kept (the env holds secret values too)."""
        data = self._query(POD_ENV_QUERY % _gql(pod_id), f"read pod {pod_id}'s launch env")
        return pr_of(data.get("pod") or {}, self.settings.compute.deadline_hours)

    def log_file(self, pod_id: str) -> Path | None:
        return None  # RunPod keeps a pod's console log only while it lives: pods upload their own

    def _query(self, query: str, what: str) -> dict[str, Any]:
        self._sdk()
        from runpod.api.graphql import run_graphql_query

        try:
            return run_graphql_query(query).get("data") or {}
        except Exception as exc:
            raise ServiceError(f"RunPod: could not {what}: {_redact(str(exc), self._secrets())}") from None


def volume_data_center(runpod: ModuleType, volume_id: str, secrets: list[str]) -> str | None:
    """A network volume lives in one data center: the pod must be placed there (as create_pod does)."""
    if not volume_id:
        return None
    try:
        volumes = runpod.get_user()["networkVolumes"] or []
    except Exception as exc:
        raise ServiceError(
            f"RunPod: could not look up network volumes: {_redact(str(exc), secrets)}"
        ) from None
    found = next((v["dataCenterId"] for v in volumes if v["id"] == volume_id), None)
    if found is None:
        raise InputError(
            f"network volume {volume_id} is not on this RunPod account",
            file="haha.toml",
            field="compute.network_volume_id",
            fix="set the id RunPod shows under Storage, or empty it",
        )
    return found


def pr_of(pod: dict[str, Any], deadline_hours: float) -> int | None:
    """HAHA_PR among a pod's env (`KEY=value` strings); None where launch did not write the env."""
    from haha.clock import now
    from haha.podenv import PodEnv

    env = dict(e.split("=", 1) for e in pod.get("env") or [] if "=" in e)
    try:
        return PodEnv.from_env(env, "", now(), deadline_hours).pr
    except HahaError:  # an env launch did not write: no PR to report to
        return None


def launched(created: dict[str, Any], spec: PodSpec, gpu: str, list_price: float | None) -> Pod:
    """The pod a deploy made, priced per hour for all its GPUs, as RunPod's costPerHr is: haha.toml's
    list price (interruptible: what RunPod bills, its bid)."""
    per_gpu = spec.bid_per_gpu.get(gpu, list_price) if spec.interruptible else list_price
    price = None if per_gpu is None else per_gpu * spec.gpu_count
    if spec.interruptible:
        price = created.get("costPerHr") or price
    return Pod(created["id"], spec.name, "RUNNING", gpu, price, spec.interruptible)


def _pod(data: dict[str, Any]) -> Pod:
    machine = data.get("machine") or {}
    return Pod(
        id=data["id"],
        name=data.get("name") or "",
        status=data.get("desiredStatus") or "UNKNOWN",
        gpu_type=machine.get("gpuDisplayName") or "",
        cost_per_hour=data.get("costPerHr"),
        interruptible=data.get("podType") == INTERRUPTABLE,
    )
