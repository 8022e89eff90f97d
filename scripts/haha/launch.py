"""`haha launch`: start one pod per planned run, and never a second one for a config.

The pod spec is a pure function of settings, the plan, the commit and `now`. Launching re-plans
first (pods listed fresh), so running it twice — or on a stale matrix — starts nothing new.
The pod boots from scripts/haha/boot.sh, shipped base64-encoded in HAHA_BOOT.
"""

from __future__ import annotations

import base64
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haha.compute.base import Compute, Pod, PodSpec
from haha.errors import InputError
from haha.experiment import Experiment, Resources
from haha.phases import Prediction
from haha.plan import Plan, PlannedRun, load_plan, share_pods
from haha.podenv import LocalPod, PodEnv
from haha.podname import PodName
from haha.repo import Repo
from haha.resultsindex import ResultsIndex
from haha.settings import SETTINGS_FILE, Settings
from haha.store.base import ModelStore

if TYPE_CHECKING:
    from haha.check.gate import Estimator

Log = Callable[[str], None]
# The image's start command: decode the boot script from the env and run it (no docker_args needed).
# A file of its own per pod: local pods share /tmp, and bash reads a script as it runs it.
START_COMMAND = 'boot="$(mktemp)" && echo "$HAHA_BOOT" | base64 -d > "$boot" && exec bash "$boot"'
# Secrets the pod needs, by env name: publish to the Hub, log to W&B. Never RUNPOD_API_KEY: RunPod gives
# every pod a pod-scoped key of its own (as RUNPOD_API_KEY), enough to terminate itself, so the
# account-wide key stays in the workflow. Where haha.toml maps a name to a RunPod secret
# ([compute.secret_refs]), the pod spec carries only the reference `{{ RUNPOD_SECRET_<name> }}`.
# The pod's GITHUB_TOKEN is HAHA_DISPATCH_TOKEN, a long-lived token for its repository_dispatch; the
# workflow's own GITHUB_TOKEN is never passed on: it expires when the launch job ends.
POD_SECRETS = {"HF_TOKEN": "hf_token", "WANDB_API_KEY": "wandb_api_key", "GITHUB_TOKEN": "dispatch_token"}
# The pinned train set names the CUDA runtime the image's torch was built for; RunPod places the pod on
# a host whose driver supports that CUDA or newer (minCudaVersion).
CUDA_REQUIREMENTS = Path("requirements") / "train-cuda.txt"
_CUDA_RUNTIME = re.compile(r"^nvidia-cuda-runtime(?:-cu\d+)?==(\d+)\.(\d+)", re.MULTILINE)


def boot_script() -> str:
    return files("haha").joinpath("boot.sh").read_text()


def boot_b64() -> str:
    return base64.b64encode(boot_script().encode()).decode()


def repo_url(settings: Settings) -> str:
    """Where the pod clones from: HAHA_REPO_URL, else `$GITHUB_SERVER_URL/<github_repo>.git`."""
    return settings.repo_url or f"{settings.github_server_url.rstrip('/')}/{settings.github_repo}.git"


def min_cuda_version(requirements: str) -> str:
    """The CUDA version the pinned CUDA runtime needs of a host's driver (empty: not pinned)."""
    found = _CUDA_RUNTIME.search(requirements)
    return f"{int(found[1])}.{int(found[2])}" if found else ""


def volume_env(settings: Settings) -> dict[str, str]:
    """With a network volume, the pod's HF cache lives on it: a base model downloads once per data center.

    huggingface_hub (and with it transformers, Axolotl, vLLM and haha's settings) reads HF_HOME and
    HF_HUB_CACHE; RunPod's pod env overrides the image's.
    """
    if not settings.compute.network_volume_id:
        return {}
    from haha.compute.runpod import VOLUME_MOUNT_PATH

    home = f"{VOLUME_MOUNT_PATH}/huggingface"
    return {"HF_HOME": home, "HF_HUB_CACHE": f"{home}/hub"}


def deadline_for(settings: Settings, now: datetime, configs: int = 1) -> datetime:
    """When a pod launched `now` must have ended (its own watchdog; the reaper allows a minute more).

    A shared pod of several configs lives for each one's deadline_hours, the overhead counted once.
    """
    from haha.sharedpod import pod_hours

    c = settings.compute
    return now + timedelta(hours=pod_hours(c.deadline_hours, c.overhead_minutes, configs))


def secret_ref(name: str) -> str:
    """How a RunPod pod spec refers to a secret stored in RunPod (resolved when the pod starts)."""
    return "{{ RUNPOD_SECRET_" + name + " }}"


def pod_secrets(settings: Settings, refs: Mapping[str, str]) -> dict[str, str]:
    """The secret env of a pod: RunPod secret references where `refs` names one, else the values set."""
    wanted = {name: settings.secret(field) for name, field in POD_SECRETS.items()}
    return {
        name: secret_ref(refs[name]) if name in refs else value
        for name, value in wanted.items()
        if name in refs or value
    }


def pod_spec(
    settings: Settings,
    run: PlannedRun,
    resources: Resources,
    sha: str | None,
    now: datetime,
    local_root: Path | None = None,
    pr: int | None = None,
    cuda: str = "",
    budget_override: str | None = None,
    more: tuple[str, ...] = (),
    prediction: Prediction | None = None,
    launched_at: float | None = None,
) -> PodSpec:
    """Everything one pod needs. `local_root` set: a pod on this machine that shares this store.

    `more`: the configs a shared pod runs after `run`'s (same mode, base model and GPUs).
    `launched_at`: when the pod is asked for (unix seconds; default `now`), its billing's start."""
    deadline = deadline_for(settings, now, 1 + len(more))
    # The name's deadline (the reaper's) is rounded up to the minute: never before the pod's own.
    name = PodName.make(run.config, sha, deadline + timedelta(minutes=1), more)
    local = None
    if local_root is not None:
        checkouts = local_root / ".haha" / "checkouts"
        local = LocalPod(
            compute_root=str(local_root),
            checkout=str(checkouts / str(name)),
            boot_log=str(checkouts / f"{name}.boot.log"),
            store_path=str((local_root / settings.store.local_path).resolve()),
            python=sys.executable,
            argv=("bash", "-c", START_COMMAND),
        )
    pod_env = PodEnv(
        basename=run.config,
        mode=run.mode,
        ref=sha or "HEAD",
        repo_url=repo_url(settings) if local_root is None else settings.repo_url or str(local_root),
        deadline=deadline,
        pod_name=str(name),
        compute="local" if local_root is not None else "runpod",
        store=settings.store_kind,
        boot_b64=boot_b64(),
        pr=pr,
        run_argv=settings.run_argv,
        passed=settings.passed_to_pods(),
        local=local,
        budget_override=budget_override,
        basenames=(run.config, *more) if more else (),
        launched_at=now.timestamp() if launched_at is None else launched_at,
        prediction=prediction,
        interruptible=bool(run.interruptible),
        resume=bool(run.resume),
        preemptions=run.preemptions or 0,
    )
    return PodSpec(
        name=str(name),
        image=settings.compute.image,
        gpu_types=resources.gpu_types,
        gpu_count=resources.gpus,
        nodes=resources.nodes,
        cloud_type=settings.compute.cloud_type,
        container_disk_gb=settings.compute.container_disk_gb,
        volume_gb=settings.compute.volume_gb,
        network_volume_id=settings.compute.network_volume_id,
        min_cuda_version=cuda,
        registry_auth_id=settings.compute.registry_auth_id,
        interruptible=bool(run.interruptible),
        bid_per_gpu=bids(settings, resources) if run.interruptible else {},
        env={**pod_env.to_env(), **(volume_env(settings) if local_root is None else {})},
        secrets=pod_secrets(settings, settings.compute.secret_refs if local_root is None else {}),
    )


def bids(settings: Settings, resources: Resources) -> dict[str, float]:
    """The bid per GPU-hour for each GPU type: the config's (or haha.toml's) cap, else the type's
    interruptible price, else its on-demand price (RunPod takes the bid as the most it may charge)."""
    out = {}
    for gpu_id in resources.gpu_types:
        gpu = settings.gpu(gpu_id)
        out[gpu_id] = resources.bid_per_gpu or gpu.spot_price_per_hour or gpu.price_per_hour
    return out


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
    deadline: datetime
    pr: int | None = None  # the pull request the run came from
    configs: tuple[str, ...] = ()  # a shared pod: every config it runs, this run's first

    def to_dict(self) -> dict[str, Any]:
        out = {
            "config": self.run.config,
            "mode": self.run.mode,
            "pod": self.pod.id,
            "name": self.pod.name,
            "gpu_type": self.pod.gpu_type,
            "pr": self.pr,
        }
        return out | ({"configs": list(self.configs)} if self.configs else {})


def select(plan: Plan, names: Sequence[str]) -> tuple[list[PlannedRun], list[str]]:
    """The planned runs among `names` (all when empty), and the names that are not launchable now."""
    if not names:
        return list(plan.runs), []
    planned = {r.config: r for r in plan.runs}
    return [planned[n] for n in names if n in planned], [n for n in names if n not in planned]


def launch(
    repo: Repo,
    settings: Settings,
    compute: Compute,
    store: ModelStore | None,
    names: Sequence[str],
    now: datetime,
    log: Log,
    pr: int | None = None,
    budget_override: str | None = None,
) -> list[Launched]:
    """Re-plan (fresh pod list), then launch each selected run; skipped names are logged, not errors.

    `pr` is the pull request the runs came from: pods record it, so their end is reported there.
    `budget_override`: why a manual launch goes over the monthly spend limit (kept in each pod's env).
    """
    if compute.kind == "runpod":
        require_pinned_image(settings)
    wanted = [_basename(n) for n in names]
    results = ResultsIndex(repo)  # train/results/ read once: for the plan and each pod's prediction
    plan = load_plan(repo, compute, store, retry=wanted, results=results)  # naming a config retries it
    local = compute.kind == "local"
    plan = share_pods(repo, plan, settings.compute.configs_per_pod)
    runs, experiments = _selected(repo, plan, wanted, log, "launch: {name}: {why}; not launching")
    if local and not settings.run_argv:  # a substituted command runs no model
        refuse_unrunnable(experiments.values(), settings)
    launched = []
    pods = pods_to_launch(plan, runs)
    specs = _specs(repo, settings, pods, experiments, local, now, pr, budget_override, results)
    for group, spec in zip(pods, specs, strict=True):
        run, configs = group[0], tuple(r.config for r in group) if len(group) > 1 else ()
        pod = compute.launch(spec)
        shared = f" (shared with {', '.join(configs[1:])})" if configs else ""
        where = f"{compute.kind} pod {pod.id} {pod.name} on {pod.gpu_type}"
        log(f"launch: {run.config} ({run.mode}){shared} → {where}")
        launched.append(Launched(run, pod, deadline_for(settings, now, len(group)), pr, configs))
    return launched


def pods_to_launch(plan: Plan, selected: Sequence[PlannedRun]) -> list[tuple[PlannedRun, ...]]:
    """The pods that start the selected runs: a shared pod starts whole, with every config it names."""
    planned = {r.config: r for r in plan.runs}
    pods: list[tuple[PlannedRun, ...]] = []
    for run in selected:
        group = tuple(planned[c] for c in run.pod) if run.pod else (run,)
        if group not in pods:
            pods.append(group)
    return pods


def launch_command(
    repo: Repo,
    settings: Settings,
    configs: Sequence[str],
    compute_kind: str | None,
    now: datetime,
    log: Log,
    budget_override: str | None = None,
) -> list[Launched]:
    """`haha launch`: start the planned pods and say so on the PR each run came from."""
    from haha import runcomment
    from haha.compute import get_compute
    from haha.store import get_store

    compute = get_compute(settings, repo.root, compute_kind)
    pr = runcomment.source_pr(settings, repo, configs, log)
    store = get_store(settings, repo.root)
    if settings.budget.monthly_dollars <= 0:  # nothing to override: record none
        budget_override = None
    launched = launch(repo, settings, compute, store, configs, now, log, pr, budget_override)
    for x in launched:
        for config in x.configs or (x.run.config,):  # each config of a shared pod has its own comment
            body = runcomment.launched_body(
                config,
                x.pod.id,
                x.pod.gpu_type,
                x.pod.cost_per_hour,
                x.deadline,
                budget_override,
                x.pod.nodes,
            )
            runcomment.post(settings, pr, config, body + runcomment.shared_note(config, x.configs), log)
    return launched


def _selected(
    repo: Repo, plan: Plan, wanted: Sequence[str], log: Log, skipped_line: str
) -> tuple[list[PlannedRun], dict[str, Experiment]]:
    """The planned runs among `wanted` and their configs, parsed; the others logged with
    `skipped_line` (a format with {name} and {why})."""
    runs, skipped = select(plan, wanted)
    for name in skipped:
        log(skipped_line.format(name=name, why=_why_not(plan, name)))
    names = {c for run in runs for c in (run.pod or (run.config,))}
    return runs, {name: Experiment.load(repo.config_path(name)) for name in sorted(names)}


def _specs(
    repo: Repo,
    settings: Settings,
    pods: Sequence[tuple[PlannedRun, ...]],
    experiments: Mapping[str, Experiment],
    local: bool,
    now: datetime,
    pr: int | None,
    budget_override: str | None = None,
    results: ResultsIndex | None = None,
) -> Iterator[PodSpec]:
    """Each pod's spec: on this machine (sharing its store), or a cloud pod on the image's CUDA.

    Built one at a time, as each is launched: a pod's launch time is stamped just before it is asked for.
    """
    local_root = repo.root.resolve() if local else None
    cuda, sha = ("" if local else _cuda(repo)), repo.head_sha()
    predict = _predictor(repo, settings, results)
    for run, *more in pods:
        resources, prediction = experiments[run.config].resources(settings), predict(run)
        yield pod_spec(
            settings,
            run,
            resources,
            sha,
            now,
            local_root,
            pr,
            cuda,
            budget_override=budget_override,
            more=tuple(r.config for r in more),
            prediction=prediction,
            launched_at=time.time(),
        )


def _predictor(
    repo: Repo, settings: Settings, results: ResultsIndex | None
) -> Callable[[PlannedRun], Prediction | None]:
    """The gate's time and cost for a training run, recorded in its pod so the results can be compared
    with it (meta.cost.predicted_*). One gate estimator serves every pod this launch starts (past runs
    and tokenizers read once). Best effort: a config the gate cannot price launches all the same."""
    estimator: Estimator | None = None

    def prediction(run: PlannedRun) -> Prediction | None:
        nonlocal estimator
        if run.mode != "train":
            return None
        try:
            from haha.check.gate import Estimator

            estimator = estimator or Estimator(repo, settings, results)
            found = estimator.cost(run.config)
        except Exception:  # never let a prediction stop a launch
            return None
        if found is None or found.total_hours is None:
            return None
        dollars = None if found.dollars is None else round(found.dollars, 4)
        return Prediction(round(found.total_hours * 3600, 1), dollars, found.predicted_from)

    return prediction


def _cuda(repo: Repo) -> str:
    pinned = repo.root / CUDA_REQUIREMENTS
    return min_cuda_version(pinned.read_text()) if pinned.is_file() else ""


def shown_secrets(settings: Settings, refs: Mapping[str, str]) -> dict[str, str]:
    """The secret env as a dry run shows it: the RunPod secret reference, else `$<the variable>`."""
    from haha.settings import ENV_ONLY

    return {
        name: secret_ref(refs[name]) if name in refs else f"${ENV_ONLY[field]}"
        for name, field in POD_SECRETS.items()
        if name in refs or settings.secret(field)
    }


def dry_run(
    repo: Repo, settings: Settings, compute_kind: str, names: Sequence[str], now: datetime, log: Log
) -> list[dict[str, Any]]:
    """`haha launch --dry-run`: for each run launch would start, the request it would send; sends none.

    Configs named: planned from the checkout alone (no pod list, so no RunPod key needed). None named:
    the full plan, which asks RunPod which pods are up.
    """
    from haha.compute.runpod import first_request
    from haha.plan import collected, current_eval, desired_configs, make_plan, with_resources

    runpod = compute_kind == "runpod"
    if runpod:
        require_pinned_image(settings)
    wanted = [_basename(n) for n in names]
    results = ResultsIndex(repo)
    if wanted:
        desired = desired_configs(repo)
        plan = make_plan(desired, collected(results), (), {}, current_eval(repo), retry=wanted)
        plan = replace(plan, runs=tuple(with_resources(repo, run) for run in plan.runs))
    else:
        from haha.compute import get_compute
        from haha.store import get_store

        compute, store = get_compute(settings, repo.root, compute_kind), get_store(settings, repo.root)
        plan = load_plan(repo, compute, store, results=results)
    skip = "launch --dry-run: {name}: {why}; would not launch"
    plan = share_pods(repo, plan, settings.compute.configs_per_pod)
    runs, experiments = _selected(repo, plan, wanted, log, skip)
    out = []
    pods = pods_to_launch(plan, runs)
    specs = _specs(repo, settings, pods, experiments, not runpod, now, None, results=results)
    for (run, *more), spec in zip(pods, specs, strict=True):
        refs = settings.compute.secret_refs if runpod else {}
        spec = replace(spec, secrets=shown_secrets(settings, refs))
        item: dict[str, Any] = {"config": run.config, "mode": run.mode, "compute": compute_kind}
        if more:
            item["configs"] = [run.config, *(r.config for r in more)]
        if runpod:
            item |= {"gpu_types": list(spec.gpu_types), **first_request(spec)}
            if spec.network_volume_id:
                item["note"] = "dataCenterId: the network volume's, looked up at launch"
        else:
            item["env"] = {**spec.env, **spec.secrets}
        out.append(item)
    return out


def refuse_unrunnable(experiments: Iterable[Experiment], settings: Settings) -> None:
    """Local compute says up front what this machine cannot run, before any pod starts."""
    from haha.local_fit import why_not_local

    for exp in experiments:
        if refused := why_not_local(exp, settings):
            problem, fix = refused
            raise exp.fail(f"cannot run on this machine: {problem}", "base_model", fix)


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
