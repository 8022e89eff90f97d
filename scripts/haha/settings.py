"""One frozen, typed settings object: defaults → `haha.toml` in the repo → an environment mapping.

The environment is passed in (never read at import time) so tests can pass `env={}`.
Secrets come only from the environment and are kept out of `repr`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from haha.errors import InputError

SETTINGS_FILE = "haha.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GpuType(_Frozen):
    """A RunPod GPU type with what the cost model needs to know about it."""

    id: str
    price_per_hour: float = Field(gt=0, description="USD per GPU-hour, on-demand")
    peak_bf16_tflops: float = Field(gt=0, description="dense bf16 tensor peak, vendor spec")
    memory_gb: float = Field(gt=0)
    source: str = ""


class Throughput(_Frozen):
    """Measured training points used to fit predicted utilisation (MFU) against tokens per step."""

    small_step_tokens: int = 128
    small_step_mfu: float = 0.017
    large_step_tokens: int = 16384
    large_step_mfu: float = 0.30
    source: str = ""


class ComputeSettings(_Frozen):
    kind: Literal["local", "runpod"] = "local"
    image: str = "axolotlai/axolotl-cloud:main-latest"
    gpu_types: tuple[GpuType, ...] = ()
    gpu_count: int = 1
    cloud_type: Literal["SECURE", "COMMUNITY", "ALL"] = "SECURE"
    container_disk_gb: int = 60
    volume_gb: int = 0
    network_volume_id: str = ""
    deadline_hours: float = 6.0
    overhead_minutes: float = 20.0
    # Pod secret env name → the name of a RunPod secret (console → Secrets): the pod spec then carries
    # `{{ RUNPOD_SECRET_<name> }}` instead of the value, so the value is never shown with the pod.
    secret_refs: dict[str, str] = Field(default_factory=dict)


class StoreSettings(_Frozen):
    kind: Literal["auto", "local", "hf"] = "auto"
    local_path: str = ".haha/store"
    private: bool = True


class Settings(_Frozen):
    org: str = "synagi"
    github_repo: str = "synagi/haha"
    wandb_project: str = "haha"
    wandb_entity: str = ""
    default_max_tokens: int = 64
    eval_batch_size: int = Field(256, ge=1, description="rows per decode batch in the transformers engine")
    compute: ComputeSettings = ComputeSettings()
    store: StoreSettings = StoreSettings()
    throughput: Throughput = Throughput()
    # Secrets: from the environment only.
    runpod_api_key: SecretStr | None = None
    hf_token: SecretStr | None = None
    wandb_api_key: SecretStr | None = None
    github_token: SecretStr | None = None
    # The eval environment's interpreter (HAHA_EVAL_PYTHON): `haha run` evaluates there, with vLLM.
    eval_python: str | None = None
    # Service endpoints: overridable from the environment (tests point them at loopback fakes).
    hf_endpoint: str = "https://huggingface.co"
    github_api_url: str = "https://api.github.com"

    @property
    def store_kind(self) -> Literal["local", "hf"]:
        """`auto` means the Hub when a token is present, else the local folder store."""
        if self.store.kind == "auto":
            return "hf" if self.hf_token else "local"
        return self.store.kind

    def gpu(self, gpu_id: str | None = None) -> GpuType:
        """The named GPU type, or the first of the fallback list (the one plans are priced on)."""
        if not self.compute.gpu_types:
            raise InputError("no GPU types configured", file=SETTINGS_FILE, field="compute.gpu_types")
        if gpu_id is None:
            return self.compute.gpu_types[0]
        for gpu in self.compute.gpu_types:
            if gpu.id == gpu_id:
                return gpu
        raise InputError(f"unknown GPU type {gpu_id!r}", file=SETTINGS_FILE, field="compute.gpu_types")


_SECRET_ENV = {
    "runpod_api_key": "RUNPOD_API_KEY",
    "hf_token": "HF_TOKEN",
    "wandb_api_key": "WANDB_API_KEY",
    "github_token": "GITHUB_TOKEN",
}

_ENDPOINT_ENV = {
    "hf_endpoint": "HF_ENDPOINT",
    "github_api_url": "GITHUB_API_URL",
    "eval_python": "HAHA_EVAL_PYTHON",
}


def load_settings(root: Path, env: Mapping[str, str]) -> Settings:
    """Read `haha.toml` under `root` (if any) and overlay secrets and `HAHA_*` overrides from `env`."""
    path = root / SETTINGS_FILE
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"not valid TOML: {exc}", file=path, fix="fix the TOML syntax") from exc
    if "eval_python" in data:  # the eval environment's own `haha` would delegate to itself again
        raise InputError(
            "eval_python is not a haha.toml setting",
            file=path,
            field="eval_python",
            fix="set HAHA_EVAL_PYTHON in the environment (make run does)",
        )
    for key, var in _SECRET_ENV.items():
        if env.get(var):
            data[key] = env[var]
    for key, var in _ENDPOINT_ENV.items():
        if env.get(var):
            data[key] = env[var]
    if env.get("HAHA_COMPUTE"):
        data.setdefault("compute", {})["kind"] = env["HAHA_COMPUTE"]
    if env.get("HAHA_STORE"):
        data.setdefault("store", {})["kind"] = env["HAHA_STORE"]
    if env.get("HAHA_STORE_PATH"):  # local pods run in a checkout of their own but share one store
        data.setdefault("store", {})["local_path"] = env["HAHA_STORE_PATH"]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(first["msg"], file=path, field=field, fix=f"see {SETTINGS_FILE} comments") from exc
