"""One frozen, typed settings object: defaults → `haha.toml` in the repo → an environment mapping.

This is the only module that reads the environment: the CLI hands `os.environ` to `load_settings`
(tests hand any mapping), every other module gets typed values from `Settings`. Secrets come only
from the environment and are kept out of `repr`. Child processes inherit the mapping given here,
through `Settings.child_env`; what a pod is told is read back through `Settings.pod_env`.
"""

from __future__ import annotations

import os
import pwd
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from haha.cluster import ClusterNode, cluster_from_env
from haha.errors import InputError
from haha.podenv import PodEnv, argv_from_env, passed_through

SETTINGS_FILE = "haha.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class GpuType(_Frozen):
    """A RunPod GPU type with what the cost model needs to know about it."""

    id: str
    price_per_hour: float = Field(gt=0, description="USD per GPU-hour, on-demand")
    peak_bf16_tflops: float = Field(gt=0, description="dense bf16 tensor peak, vendor spec")
    memory_gb: float = Field(gt=0)
    source: str = ""
    # Interruptible (spot) price, USD per GPU-hour: what the gate prices `interruptible` runs at and
    # the default bid. None: RunPod offers no interruptible price for it here (priced on-demand).
    spot_price_per_hour: float | None = Field(None, gt=0, description="USD per GPU-hour, interruptible")


class Throughput(_Frozen):
    """Measured training points used to fit predicted utilisation (MFU) against tokens per step."""

    small_step_tokens: int = Field(128, ge=1)
    small_step_mfu: float = Field(0.017, gt=0, le=1)
    large_step_tokens: int = Field(16384, ge=1)
    large_step_mfu: float = Field(0.30, gt=0, le=1)
    source: str = ""


class ComputeSettings(_Frozen):
    kind: Literal["local", "runpod"] = "local"
    image: str = "axolotlai/axolotl-cloud:main-latest"
    gpu_types: tuple[GpuType, ...] = ()
    gpu_count: int = Field(1, ge=1)
    cloud_type: Literal["SECURE", "COMMUNITY", "ALL"] = "SECURE"
    container_disk_gb: int = Field(60, ge=1)
    volume_gb: int = Field(0, ge=0)
    network_volume_id: str = ""
    deadline_hours: float = Field(6.0, gt=0)
    overhead_minutes: float = Field(20.0, ge=0)
    # Pod secret env name → the name of a RunPod secret (console → Secrets): the pod spec then carries
    # `{{ RUNPOD_SECRET_<name> }}` instead of the value, so the value is never shown with the pod.
    secret_refs: dict[str, str] = Field(default_factory=dict)
    # The id of registry credentials saved in RunPod (console → Settings → Container Registry Auth):
    # without it a private image (GHCR packages start private) never pulls and the pod bills idle.
    registry_auth_id: str = ""
    # A pod whose run has not reported `running` in the store this long after launch is reaped:
    # its image did not pull, or it crashed before `haha pod`.
    boot_timeout_minutes: float = Field(30.0, gt=0)
    # Shared pods: at most this many planned configs with one base model and the same GPUs run in one
    # pod, one after another, paying the image pull and model download once. 1: a pod per config.
    configs_per_pod: int = Field(1, ge=1, le=8)
    # Interruptible pods (README "Interruptible pods"): the default for configs whose `haha:` block
    # does not say; the bid cap per GPU-hour (None: each type's spot_price_per_hour); how many
    # preemptions a run may take before its next pod is on-demand (0: never interruptible again),
    # or, with on_demand_fallback off, before it is given up; checkpoints per run uploaded to the store.
    interruptible: bool = False
    bid_per_gpu: float | None = Field(None, gt=0)
    max_preemptions: int = Field(2, ge=0)
    on_demand_fallback: bool = True
    checkpoints_per_run: int = Field(10, ge=1, le=100)


class StoreSettings(_Frozen):
    kind: Literal["auto", "local", "hf"] = "auto"
    local_path: str = ".haha/store"
    private: bool = True


class BudgetSettings(_Frozen):
    """Spend limits in USD. 0 (the default) is no limit. Numbers only: a quoted "50" is refused, so a
    limit is never read other than the reviewer read it."""

    # `haha check` fails a PR whose new configs are predicted to cost more than this, together.
    per_pr_dollars: float = Field(0.0, ge=0, strict=True)
    # `haha plan` holds runs that would take this UTC month's spend over this.
    monthly_dollars: float = Field(0.0, ge=0, strict=True)


class Settings(_Frozen):
    org: str = "synagi"
    github_repo: str = "synagi/haha"
    wandb_project: str = "haha"
    wandb_entity: str = ""
    default_max_tokens: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1, description="rows per decode batch in the transformers engine")
    # The first wait before a pod retries terminating itself or publishing (then doubled, or grown, per
    # try): a setting so that tests of those failures need not sit through real backoffs.
    retry_backoff_s: float = Field(2.0, ge=0)
    compute: ComputeSettings = ComputeSettings()
    store: StoreSettings = StoreSettings()
    throughput: Throughput = Throughput()
    budget: BudgetSettings = BudgetSettings()
    # Secrets: from the environment only.
    runpod_api_key: SecretStr | None = None
    hf_token: SecretStr | None = None
    wandb_api_key: SecretStr | None = None
    github_token: SecretStr | None = None
    dispatch_token: SecretStr | None = None  # pods' GITHUB_TOKEN for repository_dispatch
    judge_api_key: SecretStr | None = None
    # Service endpoints: overridable from the environment (tests point them at loopback fakes).
    hf_endpoint: str = "https://huggingface.co"
    github_api_url: str = "https://api.github.com"
    github_server_url: str = "https://github.com"
    # Where and how this process runs, and whom `haha judge` asks: from the environment only (ENV_ONLY).
    judge_url: str | None = None  # an OpenAI-compatible base URL
    judge_model: str | None = None
    eval_python: str | None = None  # the eval environment's interpreter: `haha run` evaluates there
    hf_hub_cache: Path | None = None  # load_settings resolves it as huggingface_hub does (hub_cache)
    hf_offline: bool = False
    workdir: Path | None = None  # the parent of per-run work folders
    wandb_mode: str | None = None  # None: online exactly when there is a W&B key
    runpod_pod_id: str | None = None  # RunPod sets it in its pods
    local_pod_id: str | None = None  # compute `local` sets it in its pods
    boot_epoch: float | None = None  # unix seconds at which the pod's container started (boot.sh)
    repo_url: str | None = None  # where pods clone from (default: the GitHub repo)
    run_argv: tuple[str, ...] | None = None  # replaces a pod's `haha run` (tests inject faults with it)
    github_step_summary: Path | None = None  # the Actions job summary file
    cluster: ClusterNode | None = (
        None  # this node of a multi-node run (NUM_NODES, NODE_RANK, …: haha.cluster)
    )
    # The mapping this came from: what child processes inherit.
    _environ: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def store_kind(self) -> Literal["local", "hf"]:
        """`auto` means the Hub when a token is present, else the local folder store."""
        if self.store.kind == "auto":
            return "hf" if self.hf_token else "local"
        return self.store.kind

    def gpu(self, gpu_id: str | None = None) -> GpuType:
        """The named GPU type, or the first of the fallback list (the one plans are priced on)."""
        fix = "add a [[compute.gpu_types]] table (id, price_per_hour, peak_bf16_tflops, memory_gb)"
        if not self.compute.gpu_types:
            raise InputError(
                "no GPU types configured", file=SETTINGS_FILE, field="compute.gpu_types", fix=fix
            )
        if gpu_id is None:
            return self.compute.gpu_types[0]
        for gpu in self.compute.gpu_types:
            if gpu.id == gpu_id:
                return gpu
        raise InputError(
            f"unknown GPU type {gpu_id!r}", file=SETTINGS_FILE, field="compute.gpu_types", fix=fix
        )

    def secret(self, name: str) -> str | None:
        """The value of the secret field `name`, where it is set (for the one place that hands it on)."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else None

    @property
    def hub_cache_dir(self) -> Path:
        """Where huggingface_hub, transformers, Axolotl and vLLM keep models for this environment."""
        return self.hf_hub_cache if self.hf_hub_cache is not None else hub_cache(self._environ)

    @property
    def inside_pod(self) -> bool:
        """This process runs in a pod (RunPod's or a local one), whose `haha pod` records the run's end."""
        return bool(self.runpod_pod_id or self.local_pod_id)

    def child_env(self, changes: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The environment of a child process: this one's, with `changes` (None removes a variable).

        `hf_offline` set on a copy of these settings (a base model in a local folder) carries over.
        """
        env = dict(self._environ)
        if self.hf_offline:
            env["HF_HUB_OFFLINE"] = "1"
        for name, value in (changes or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def pod_env(self, basename: str, now: datetime) -> PodEnv:
        """What `haha launch` told this pod (`basename` where it was not told: `haha pod` by hand), with
        what the provider and boot.sh set: the pod id and when the container started."""
        pod = PodEnv.from_env(self._environ, basename, now, self.compute.deadline_hours)
        gpus = self.cluster.whole_run(pod.gpu_count) if self.cluster else pod.gpu_count  # every node's
        return replace(
            pod, pod_id=self.runpod_pod_id or self.local_pod_id, boot_epoch=self.boot_epoch, gpu_count=gpus
        )

    def passed_to_pods(self) -> dict[str, str]:
        """Plain settings a pod gets from where launch runs (podenv.PASS_THROUGH), as set there."""
        return passed_through(self._environ)


# Field → the variable it comes from. Only the environment sets these (haha.toml refuses them).
ENV_ONLY = {
    "runpod_api_key": "RUNPOD_API_KEY",
    "hf_token": "HF_TOKEN",
    "wandb_api_key": "WANDB_API_KEY",
    "github_token": "GITHUB_TOKEN",
    "dispatch_token": "HAHA_DISPATCH_TOKEN",
    "judge_api_key": "HAHA_JUDGE_API_KEY",
    "judge_url": "HAHA_JUDGE_URL",
    "judge_model": "HAHA_JUDGE_MODEL",
    "eval_python": "HAHA_EVAL_PYTHON",
    "hf_hub_cache": "HF_HUB_CACHE",
    "hf_offline": "HF_HUB_OFFLINE",
    "workdir": "HAHA_WORKDIR",
    "wandb_mode": "WANDB_MODE",
    "runpod_pod_id": "RUNPOD_POD_ID",
    "local_pod_id": "HAHA_POD_ID",
    "boot_epoch": "HAHA_BOOT_EPOCH",
    "repo_url": "HAHA_REPO_URL",
    "run_argv": "HAHA_RUN_ARGV",
    "github_step_summary": "GITHUB_STEP_SUMMARY",
}
# Field → the variable that overrides its haha.toml value.
ENV_OVERRIDES = {
    "hf_endpoint": "HF_ENDPOINT",
    "github_api_url": "GITHUB_API_URL",
    "github_server_url": "GITHUB_SERVER_URL",
    "retry_backoff_s": "HAHA_RETRY_BACKOFF_S",
}
_NESTED_OVERRIDES = {
    ("compute", "kind"): "HAHA_COMPUTE",
    ("store", "kind"): "HAHA_STORE",
    ("store", "local_path"): "HAHA_STORE_PATH",  # local pods run in a checkout of their own, one store
}
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's reading of HF_HUB_OFFLINE


def runpod_api_url() -> str:
    """The RunPod API's base URL as the runpod SDK reads it for every GraphQL call (runpod/api/
    graphql.py: RUNPOD_API_BASE_URL in this process's environment, at call time), so the REST calls
    it does not make (clusters: compute.runpod_clusters) go to the same host."""
    return os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io")


def load_settings(root: Path, env: Mapping[str, str]) -> Settings:
    """Read `haha.toml` under `root` (if any) and overlay the variables set in `env`."""
    path = root / SETTINGS_FILE
    text, data = _read_toml(path)
    for key, var in (ENV_ONLY | ENV_OVERRIDES).items():
        if env.get(var):
            data[key] = env[var]
    for (section, key), var in _NESTED_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
    data |= _derived(env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _settings_error(exc, path, text, env) from exc
    settings._environ = dict(env)
    return settings


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and its table ("" and {} without a file: every setting has its default)."""
    if not path.exists():
        return "", {}
    fix = "fix the TOML syntax (https://toml.io)"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read it as UTF-8 text: {exc}", file=path, fix=fix) from exc
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)  # Python 3.14+; before, the message holds it
        raise InputError(f"not valid TOML: {exc}", file=path, line=line, fix=fix) from exc
    for key in data.keys() & ENV_ONLY.keys():  # e.g. the eval environment's `haha` would delegate again
        raise InputError(
            f"{key} is not a haha.toml setting",
            file=path,
            line=_toml_line(text, (key,)),
            field=key,
            fix=f"set {ENV_ONLY[key]} in the environment",
        )
    return text, data


def setting_line(root: Path, *loc: str) -> int | None:
    """The line of a haha.toml key under `root` (e.g. "budget", "per_pr_dollars"), for findings that
    name a setting; None without the file or the key."""
    path = root / SETTINGS_FILE
    try:
        return _toml_line(path.read_text(encoding="utf-8"), loc)
    except (OSError, UnicodeDecodeError):
        return None


_TABLE = re.compile(r"\[\s*([^\[\]]+?)\s*\]")
_TABLE_ARRAY = re.compile(r"\[\[\s*([^\[\]]+?)\s*\]\]")
_KEY = re.compile(r"[\"']?([A-Za-z0-9_-]+)[\"']?\s*=")


def _toml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key at `loc` (e.g. compute.gpu_types.0.memory_gb), else of its table."""
    target = [str(part) for part in loc]
    table: list[str] = []
    arrays: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (depth matched, line)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if match := _TABLE_ARRAY.fullmatch(line.split("#")[0].strip()):
            keys = tuple(k.strip().strip("\"'") for k in match.group(1).split("."))
            arrays[keys] = arrays.get(keys, -1) + 1
            path = [*keys, str(arrays[keys])]
        elif match := _TABLE.fullmatch(line.split("#")[0].strip()):
            path = [k.strip().strip("\"'") for k in match.group(1).split(".")]
        elif match := _KEY.match(line):
            path = [*table, match.group(1)]
            if path == target[: len(path)]:
                best = max(best or (0, 0), (len(path), number))
            continue
        else:
            continue
        table = path
        if path == target[: len(path)]:
            best = max(best or (0, 0), (len(path), number))
    return best[1] if best else None


def _derived(env: Mapping[str, str]) -> dict[str, Any]:
    """Fields whose variables need reading before validation: the HF cache, booleans, JSON."""
    out: dict[str, Any] = {"hf_hub_cache": hub_cache(env)}
    if env.get("HF_HUB_OFFLINE"):
        out["hf_offline"] = env["HF_HUB_OFFLINE"].strip().upper() in _TRUE
    if env.get("HAHA_RUN_ARGV"):
        out["run_argv"] = argv_from_env(env["HAHA_RUN_ARGV"], "HAHA_RUN_ARGV")
    out["cluster"] = cluster_from_env(env)
    return out


def hub_cache(env: Mapping[str, str]) -> Path:
    """The HF hub cache of a process with environment `env`, resolved as huggingface_hub resolves it.

    huggingface_hub.constants reads os.environ once, at import; this is its resolution (same
    variables, order, defaults and names: huggingface_hub/constants.py, `default_home` to
    `HF_HUB_CACHE`) over any mapping, with `~` and `$VAR` expanded from that mapping as os.path does.
    A hand-made `~/.cache/huggingface/hub` misses XDG_CACHE_HOME, and `haha models seed` would then
    write where transformers does not look.
    """
    default_home = os.path.join(_expanduser("~", env), ".cache")
    hf_home = _expand(
        env.get("HF_HOME", os.path.join(env.get("XDG_CACHE_HOME", default_home), "huggingface")), env
    )
    default_cache_path = os.path.join(hf_home, "hub")
    huggingface_hub_cache = env.get("HUGGINGFACE_HUB_CACHE", default_cache_path)  # the legacy name
    return Path(_expand(env.get("HF_HUB_CACHE", huggingface_hub_cache), env))


_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # posixpath.expandvars's pattern


def _expand(path: str, env: Mapping[str, str]) -> str:
    """os.path.expandvars(os.path.expanduser(path)), reading `env` instead of os.environ."""

    def value(match: re.Match[str]) -> str:
        name = match[1][1:-1] if match[1].startswith("{") else match[1]
        return env.get(name, match[0])  # unknown variables stay as they are

    return _VARIABLE.sub(value, _expanduser(path, env))


def _expanduser(path: str, env: Mapping[str, str]) -> str:
    """posixpath.expanduser with HOME from `env` (the password database where `env` has none)."""
    if not path.startswith("~"):
        return path
    end = path.find("/", 1)
    end = len(path) if end < 0 else end
    name = path[1:end]
    try:
        if name:
            home = pwd.getpwnam(name).pw_dir
        else:
            home = env["HOME"] if "HOME" in env else pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return path
    return (home.rstrip("/") + path[end:]) or "/"


def _settings_error(exc: ValidationError, path: Path, text: str, env: Mapping[str, str]) -> InputError:
    """The first problem, named by its haha.toml field and line, or by the variable it came from."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join(str(p) for p in loc)
    by_field = {".".join(k): v for k, v in _NESTED_OVERRIDES.items()} | ENV_ONLY | ENV_OVERRIDES
    var = by_field.get(field) or by_field.get(str(loc[0]))
    if var and env.get(var):  # the value came from the environment, not from haha.toml
        return InputError(first["msg"], field=var, fix=f"fix or unset {var}")
    if first["type"] == "extra_forbidden":
        message, fix = (
            f"unknown setting {loc[-1]!r}",
            "remove it or correct its name (see the haha.toml comments)",
        )
    else:
        message = f"{first['msg']} (found {first['input']!r})" if first["type"] != "missing" else first["msg"]
        fix = f"see the {SETTINGS_FILE} comments and README.md for what {loc[-1]} takes"
    return InputError(message, file=path, line=_toml_line(text, loc), field=field, fix=fix)
