"""RunPod pods through the `runpod` SDK (GraphQL at `$RUNPOD_API_BASE_URL/graphql`, read per call).

On-demand only, walking the configured GPU types in order while RunPod reports them out of stock.
Secrets travel in the pod env; they are redacted from every message this module produces.
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
from haha.errors import InputError, ServiceError
from haha.settings import Settings

log = logging.getLogger(__name__)

OUT_OF_STOCK = "no longer any instances available"
# The axolotl-cloud image keeps its HF cache under /workspace/data: a network volume there persists it.
VOLUME_MOUNT_PATH = "/workspace/data"


def _gql(text: str) -> str:
    """Escape a value for the SDK, which pastes it between double quotes into the GraphQL text."""
    return json.dumps(text)[1:-1]


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# Listing queries of our own: the SDK's get_pods/get_pod select every pod's `env`, secrets included.
PODS_QUERY = """
query Pods { myself { pods { id name desiredStatus costPerHr gpuCount machine { gpuDisplayName } } } }
"""
POD_QUERY = """
query Pod {
  pod(input: {podId: "%s"}) { id name desiredStatus costPerHr gpuCount machine { gpuDisplayName } }
}
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

    def _secrets(self, spec: PodSpec | None = None) -> list[str]:
        key = self.settings.runpod_api_key
        values = [key.get_secret_value()] if key else []
        return values + (list(spec.secrets.values()) if spec else [])

    def launch(self, spec: PodSpec) -> Pod:
        """Deploy on the first GPU type in `spec.gpu_types` that has capacity.

        Out of stock: the next type at once. A timeout or 5xx: retried with backoff (after checking
        that the failed call did not create the pod after all), then the next type.
        """
        runpod = self._sdk()
        if not spec.gpu_types:
            raise InputError(
                "no GPU types to try", field="compute.gpu_types", fix="list GPU types in haha.toml"
            )
        secrets = self._secrets(spec)
        tried = []
        for gpu in spec.gpu_types:
            for attempt in range(1, CREATE_TRIES + 1):
                log.info("launching %s on %s (try %d)", spec.name, gpu, attempt)
                try:
                    created = runpod.create_pod(**self._create_args(spec, gpu))
                    return Pod(id=created["id"], name=spec.name, gpu_type=gpu, cost_per_hour=self._price(gpu))
                except Exception as exc:  # the SDK raises QueryError, ValueError and requests errors
                    message = _redact(str(exc), secrets) or type(exc).__name__
                    if OUT_OF_STOCK in message.lower():
                        tried.append(f"{gpu}: out of stock")
                        break
                    if not is_transient(exc):
                        raise ServiceError(f"RunPod refused {spec.name} on {gpu}: {message}") from None
                    if (made := self._find(spec.name)) is not None:  # the call went through after all
                        return made
                    log.info("RunPod did not answer for %s (%s); retrying", gpu, message)
                    if attempt == CREATE_TRIES:
                        tried.append(f"{gpu}: {type(exc).__name__} ×{CREATE_TRIES}")
                    else:
                        self._sleep(self._backoff_s * 2 ** (attempt - 1))
        raise ServiceError(
            f"no capacity for {spec.name}: no GPU type could be had ({'; '.join(tried)})",
            field="compute.gpu_types",
            fix="add more GPU types to the fallback list in haha.toml, or retry later",
        )

    def _find(self, name: str) -> Pod | None:
        try:
            return next((p for p in self.list_pods() if p.name == name and p.status != "TERMINATED"), None)
        except ServiceError:
            return None

    def _create_args(self, spec: PodSpec, gpu: str) -> dict[str, Any]:
        env = {**spec.env, **spec.secrets}
        args: dict[str, Any] = {
            "name": _gql(spec.name),
            "image_name": _gql(spec.image),
            "gpu_type_id": _gql(gpu),
            "cloud_type": spec.cloud_type,
            "gpu_count": spec.gpu_count,
            "container_disk_in_gb": spec.container_disk_gb,
            "volume_in_gb": spec.volume_gb,
            "volume_mount_path": VOLUME_MOUNT_PATH,
            "network_volume_id": spec.network_volume_id or None,
            "env": {_gql(k): _gql(v) for k, v in env.items()},
        }
        if spec.cuda_versions:  # only hosts whose driver runs the image's CUDA build
            args["allowed_cuda_versions"] = list(spec.cuda_versions)
        return args

    def _price(self, gpu: str) -> float | None:
        return next((g.price_per_hour for g in self.settings.compute.gpu_types if g.id == gpu), None)

    def list_pods(self) -> list[Pod]:
        """Every pod on the account, as RunPod reports it (never their env)."""
        data = self._query(PODS_QUERY, "list pods")
        return [_pod(p) for p in ((data.get("myself") or {}).get("pods") or [])]

    def get(self, pod_id: str) -> Pod | None:
        data = self._query(POD_QUERY % _gql(pod_id), f"look up pod {pod_id}")
        return _pod(data["pod"]) if data.get("pod") else None

    def terminate(self, pod_id: str) -> None:
        """Terminate; a pod that is already gone counts as terminated."""
        runpod = self._sdk()
        try:
            runpod.terminate_pod(pod_id)
        except Exception as exc:
            if self.get(pod_id) is not None:
                message = _redact(str(exc), self._secrets())
                raise ServiceError(f"RunPod could not terminate pod {pod_id}: {message}") from None
        log.info("terminated pod %s", pod_id)

    def log_file(self, pod_id: str) -> Path | None:
        return None  # RunPod keeps a pod's console log only while it lives: pods upload their own

    def _query(self, query: str, what: str) -> dict[str, Any]:
        self._sdk()
        from runpod.api.graphql import run_graphql_query

        try:
            return run_graphql_query(query).get("data") or {}
        except Exception as exc:
            raise ServiceError(f"RunPod: could not {what}: {_redact(str(exc), self._secrets())}") from None


def _pod(data: dict[str, Any]) -> Pod:
    machine = data.get("machine") or {}
    return Pod(
        id=data["id"],
        name=data.get("name") or "",
        status=data.get("desiredStatus") or "UNKNOWN",
        gpu_type=machine.get("gpuDisplayName") or "",
        cost_per_hour=data.get("costPerHr"),
    )
