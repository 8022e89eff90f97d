"""RunPod pods through the `runpod` SDK (GraphQL at `$RUNPOD_API_BASE_URL/graphql`, read per call).

On-demand only, walking the configured GPU types in order while RunPod reports them out of stock.
Secrets travel in the pod env; they are redacted from every message this module produces.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
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


class RunPodCompute:
    kind = "runpod"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

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
        """Deploy on the first GPU type in `spec.gpu_types` that has capacity."""
        runpod = self._sdk()
        if not spec.gpu_types:
            raise InputError(
                "no GPU types to try", field="compute.gpu_types", fix="list GPU types in haha.toml"
            )
        secrets = self._secrets(spec)
        tried = []
        for gpu in spec.gpu_types:
            log.info("launching %s on %s", spec.name, gpu)
            try:
                created = runpod.create_pod(**self._create_args(spec, gpu))
            except Exception as exc:  # the SDK raises QueryError, ValueError and requests errors
                message = _redact(str(exc), secrets)
                if OUT_OF_STOCK not in message.lower():
                    raise ServiceError(f"RunPod refused {spec.name} on {gpu}: {message}") from None
                log.info("%s is out of stock, trying the next GPU type", gpu)
                tried.append(gpu)
                continue
            return Pod(id=created["id"], name=spec.name, gpu_type=gpu, cost_per_hour=self._price(gpu))
        raise ServiceError(
            f"no capacity for {spec.name}: every GPU type is out of stock ({', '.join(tried)})",
            field="compute.gpu_types",
            fix="add more GPU types to the fallback list in haha.toml, or retry later",
        )

    def _create_args(self, spec: PodSpec, gpu: str) -> dict[str, Any]:
        env = {**spec.env, **spec.secrets}
        return {
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

    def _price(self, gpu: str) -> float | None:
        return next((g.price_per_hour for g in self.settings.compute.gpu_types if g.id == gpu), None)

    def list_pods(self) -> list[Pod]:
        """Every pod on the account, as RunPod reports it."""
        runpod = self._sdk()
        pods = self._call(runpod.get_pods, "list pods")
        return [_pod(p) for p in pods or []]

    def terminate(self, pod_id: str) -> None:
        """Terminate; a pod that is already gone counts as terminated."""
        runpod = self._sdk()
        try:
            runpod.terminate_pod(pod_id)
        except Exception as exc:
            if self._call(lambda: runpod.get_pod(pod_id), f"look up pod {pod_id}") is not None:
                message = _redact(str(exc), self._secrets())
                raise ServiceError(f"RunPod could not terminate pod {pod_id}: {message}") from None
        log.info("terminated pod %s", pod_id)

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return fn()
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
