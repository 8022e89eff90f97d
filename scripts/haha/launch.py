"""`haha launch`: start one pod per planned run, and never a second one for a config.

The pod spec is a pure function of settings, the plan, the commit and `now`. Launching re-plans
first (pods listed fresh), so running it twice — or on a stale matrix — starts nothing new.
The pod boots from scripts/haha/boot.sh, shipped base64-encoded in HAHA_BOOT.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from haha.clock import stamp
from haha.compute.base import Compute, Pod, PodSpec
from haha.errors import InputError
from haha.experiment import Experiment
from haha.plan import Plan, PlannedRun, load_plan
from haha.podname import PodName
from haha.repo import Repo
from haha.settings import SETTINGS_FILE, Settings
from haha.store.base import ModelStore

Log = Callable[[str], None]
# The image's start command: decode the boot script from the env and run it (no docker_args needed).
# A file of its own per pod: local pods share /tmp, and bash reads a script as it runs it.
START_COMMAND = 'boot="$(mktemp)" && echo "$HAHA_BOOT" | base64 -d > "$boot" && exec bash "$boot"'
# Secrets the pod needs, by env name: terminate itself, publish, log to W&B, notify GitHub.
SECRET_NAMES = ("RUNPOD_API_KEY", "HF_TOKEN", "WANDB_API_KEY", "GITHUB_TOKEN")
# A long-lived token for the pod's repository_dispatch; reaches the pod as GITHUB_TOKEN.
DISPATCH_TOKEN = "HAHA_DISPATCH_TOKEN"
# Plain env passed through to the pod when set where `haha launch` runs.
PASS_THROUGH = ("HAHA_RUN_ARGV", "WANDB_MODE", "WANDB_ENTITY")


def boot_script() -> str:
    return files("haha").joinpath("boot.sh").read_text()


def boot_b64() -> str:
    return base64.b64encode(boot_script().encode()).decode()


def gpu_count_for(config: Mapping[str, Any], settings: Settings) -> int:
    """Several GPUs only for configs that say how to use them (DeepSpeed or FSDP through accelerate)."""
    multi = config.get("deepspeed") or config.get("fsdp") or config.get("fsdp_version")
    return settings.compute.gpu_count if multi else 1


def repo_url(settings: Settings, env: Mapping[str, str]) -> str:
    """Where the pod clones from: HAHA_REPO_URL, else GitHub's HTTPS URL of `github_repo`."""
    return env.get("HAHA_REPO_URL") or f"https://github.com/{settings.github_repo}.git"


def pod_spec(
    settings: Settings,
    run: PlannedRun,
    config: Mapping[str, Any],
    sha: str | None,
    now: datetime,
    env: Mapping[str, str],
    local_root: Path | None = None,
) -> PodSpec:
    """Everything one pod needs. `local_root` set: a pod on this machine that shares this store."""
    deadline = now + timedelta(hours=settings.compute.deadline_hours)
    # The name's deadline (the reaper's) is rounded up to the minute: never before the pod's own.
    name = PodName.make(run.config, sha, deadline + timedelta(minutes=1))
    pod_env = {
        "HAHA_BASENAME": run.config,
        "HAHA_MODE": run.mode,
        "HAHA_REF": sha or "HEAD",
        "HAHA_REPO_URL": repo_url(settings, env),
        "HAHA_DEADLINE": stamp(deadline),
        "HAHA_POD_NAME": str(name),
        "HAHA_STORE": settings.store_kind,
        "HAHA_BOOT": boot_b64(),
        "JUPYTER_DISABLE": "1",
        "AXOLOTL_DO_NOT_TRACK": "1",
        **{k: env[k] for k in PASS_THROUGH if env.get(k)},
    }
    if local_root is not None:
        pod_env |= {
            "HAHA_REPO_URL": env.get("HAHA_REPO_URL") or str(local_root),
            "HAHA_COMPUTE": "local",
            "HAHA_COMPUTE_ROOT": str(local_root),
            "HAHA_CHECKOUT": str(local_root / ".haha" / "checkouts" / str(name)),
            "HAHA_BOOT_LOG": str(local_root / ".haha" / "checkouts" / f"{name}.boot.log"),
            "HAHA_STORE_PATH": str((local_root / settings.store.local_path).resolve()),
            "HAHA_PYTHON": sys.executable,
            "HAHA_POD_ARGV": json.dumps(["bash", "-c", START_COMMAND]),
        }
    else:
        pod_env["HAHA_COMPUTE"] = "runpod"
    secrets = {k: env[k] for k in SECRET_NAMES if env.get(k)}
    if env.get(DISPATCH_TOKEN):  # the workflow's own GITHUB_TOKEN expires when the launch job ends
        secrets["GITHUB_TOKEN"] = env[DISPATCH_TOKEN]
    return PodSpec(
        name=str(name),
        image=settings.compute.image,
        gpu_types=tuple(g.id for g in settings.compute.gpu_types),
        gpu_count=gpu_count_for(config, settings),
        cloud_type=settings.compute.cloud_type,
        container_disk_gb=settings.compute.container_disk_gb,
        volume_gb=settings.compute.volume_gb,
        network_volume_id=settings.compute.network_volume_id,
        env=pod_env,
        secrets=secrets,
    )


def require_pinned_image(settings: Settings) -> None:
    """A cloud pod runs an image pinned by digest, so a run can be repeated bit for bit."""
    if "@sha256:" not in settings.compute.image:
        raise InputError(
            f"compute.image is not pinned by digest: {settings.compute.image}",
            file=SETTINGS_FILE,
            field="compute.image",
            fix="set it to <image>@sha256:<digest> (the image workflow prints the digest it pushed)",
        )


@dataclass(frozen=True)
class Launched:
    run: PlannedRun
    pod: Pod


def select(plan: Plan, names: Sequence[str]) -> tuple[list[PlannedRun], list[str]]:
    """The planned runs among `names` (all when empty), and the names that are not launchable now."""
    if not names:
        return list(plan.runs), []
    planned = {r.config: r for r in plan.runs}
    return [planned[n] for n in names if n in planned], [n for n in names if n not in planned]


def launch(
    repo: Repo,
    settings: Settings,
    env: Mapping[str, str],
    compute: Compute,
    store: ModelStore | None,
    names: Sequence[str],
    now: datetime,
    log: Log,
) -> list[Launched]:
    """Re-plan (fresh pod list), then launch each selected run; skipped names are logged, not errors."""
    if compute.kind == "runpod":
        require_pinned_image(settings)
    wanted = [_basename(n) for n in names]
    plan = load_plan(repo, compute, store, retry=wanted)  # naming a config is asking to retry it
    runs, skipped = select(plan, wanted)
    for name in skipped:
        log(f"launch: {name}: {_why_not(plan, name)}; not launching")
    local_root = repo.root.resolve() if compute.kind == "local" else None
    sha = repo.head_sha()
    launched = []
    for run in runs:
        exp = Experiment.load(repo.config_path(run.config))
        spec = pod_spec(settings, run, exp.config, sha, now, env, local_root)
        pod = compute.launch(spec)
        log(f"launch: {run.config} ({run.mode}) → {compute.kind} pod {pod.id} {pod.name} on {pod.gpu_type}")
        launched.append(Launched(run, pod))
    return launched


def _basename(name: str) -> str:
    return Path(name).stem if name.endswith(".yml") else name


def _why_not(plan: Plan, name: str) -> str:
    for label, names in (
        ("a pod is already running it", plan.in_flight),
        ("results are already collected", plan.done),
        ("results are published, waiting for collect", plan.awaiting_collect),
        ("its last run failed; name it to retry", plan.failed),
    ):
        if name in names:
            return label
    return "no such config on this commit"
