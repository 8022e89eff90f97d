"""`haha plan`: GitOps reconcile with no database. What to launch is a pure function of what is in
the repo (desired configs, collected results), what the model store holds (published but not yet
collected) and which pods exist (their names carry the basename).

planned = desired − done − in flight, plus eval-only re-runs for trained configs whose results were
made with other prompts, settings or seed count than eval.json now has. Results record eval.json's
hash (meta.eval_sha256): the same hash means current. Where the hash differs or is absent (results
made before the pipeline recorded it, as in a repo that adopts Haha with results in it), the file
itself says what it was made with: its prompts, their settings and the completions per setting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from haha.budget import MonthlyDecision
from haha.compute.base import Compute, Pod
from haha.errors import HahaError, InputError
from haha.evalspec import MAX_EVAL_CHARS
from haha.experiment import ConfigName, Experiment
from haha.podname import PodName
from haha.repo import Repo
from haha.resultsindex import ResultsIndex
from haha.runstatus import RunStatus, read_status
from haha.settings import Settings, load_settings
from haha.store.base import ModelStore

Mode = Literal["train", "eval"]
# Pod states that no longer run anything: a config whose only pods are in these may launch again.
STOPPED = frozenset({"EXITED", "TERMINATED"})


# What an evaluation covers: (prompt, setting as canonical JSON, seed count), one per prompt × setting.
EvalShape = frozenset[tuple[str, str, int]]


def _setting_key(setting: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in setting.items() if k != "completions"}, sort_keys=True)


def eval_shape(prompts: Iterable[str], settings: Sequence[Mapping[str, Any]], seeds: int) -> EvalShape:
    """What eval.json asks for: every prompt with every setting, `seeds` completions each."""
    return frozenset((p, _setting_key(s), seeds) for p in prompts for s in settings)


def shape_of_results(document: Mapping[str, Any]) -> EvalShape | None:
    """What a results file was made with, read from its entries; None when they cannot say."""
    entries = document.get("results")
    if not isinstance(entries, list):
        return None
    found = set()
    for entry in entries:
        settings = entry.get("settingsResults") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("prompt"), str)
            or not isinstance(settings, list)
        ):
            return None
        for setting in settings:
            if not isinstance(setting, dict) or not isinstance(setting.get("completions"), list):
                return None
            found.add((entry["prompt"], _setting_key(setting), len(setting["completions"])))
    return frozenset(found)


@dataclass(frozen=True)
class Record:
    """What a results file says about the run that made it (hashes are None in seed-project files)."""

    eval_sha256: str | None = None
    config_sha256: str | None = None
    made_with: EvalShape | None = None  # read from the file's own entries


@dataclass(frozen=True)
class CurrentEval:
    """eval.json now: its hash and what it asks for."""

    sha256: str
    shape: EvalShape | None = None


def is_current(record: Record, current: CurrentEval) -> bool:
    """Results made with eval.json as it is: its hash, else the same prompts, settings and seed count.

    Results that record neither (no hash, entries unreadable) count as current: nothing says otherwise.
    """
    if record.eval_sha256 == current.sha256:
        return True
    if record.made_with is not None and current.shape is not None:
        return record.made_with == current.shape
    return record.eval_sha256 is None


@dataclass(frozen=True)
class PlannedRun:
    config: str
    mode: Mode
    reason: str
    # The pod's GPUs, from the config's `haha:` block over haha.toml (filled by load_plan).
    gpus: int | None = None
    gpu_types: tuple[str, ...] | None = None
    # A shared pod's configs in the order it runs them, on each of them (None: a pod of its own).
    pod: tuple[str, ...] | None = None

    @property
    def leads_pod(self) -> bool:
        """This run starts a pod: its own, or a shared one named after it."""
        return self.pod is None or self.pod[0] == self.config

    # Interruptible pods (haha.resume): the pod kind, and for a preempted run what it resumes.
    interruptible: bool | None = None
    resume: bool | None = None
    preemptions: int | None = None
    nodes: int | None = None  # a multi-node run (haha.nodes): an Instant Cluster of this many pods
    # A fresh run of a config whose turn in a preempted shared pod never came (plan.displaced): the
    # resume schedule (`--resume-only`) starts it too, rather than leaving it to the next push.
    displaced: bool | None = None


@dataclass(frozen=True)
class Plan:
    runs: tuple[PlannedRun, ...] = ()
    done: tuple[str, ...] = ()
    in_flight: tuple[str, ...] = ()
    awaiting_collect: tuple[str, ...] = ()
    stale_configs: tuple[str, ...] = field(default=())  # edited after training: never retrained
    failed: tuple[str, ...] = ()  # last run of this very config failed: relaunched only when named
    # Runs not planned because something they depend on is unreadable: (basename, the error).
    errors: tuple[tuple[str, str], ...] = ()
    # The monthly spend limit's decision (haha.toml [budget]; spend.hold_over_limit): what it held, why.
    budget: MonthlyDecision | None = None

    def to_json(self) -> str:
        """Deterministic JSON: sorted lists, sorted keys; `include` feeds a GitHub Actions matrix."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            # One matrix entry per pod: a shared pod's later configs launch with its first.
            "include": [
                {k: v for k, v in asdict(r).items() if v is not None} for r in self.runs if r.leads_pod
            ],
            "count": len(self.runs),
            "done": list(self.done),
            "in_flight": list(self.in_flight),
            "awaiting_collect": list(self.awaiting_collect),
            "stale_configs": list(self.stale_configs),
            "failed": list(self.failed),
            "errors": [{"config": name, "error": error} for name, error in self.errors],
        } | ({"budget": self.budget.to_dict()} if self.budget else {})


def in_flight(pods: Iterable[Pod]) -> frozenset[str]:
    """Basenames that have a pod still alive (any Haha-named pod not EXITED or TERMINATED); every
    config a shared pod names is in flight, whether it runs now or waits its turn."""
    names = (PodName.parse(p.name) for p in pods if p.status not in STOPPED)
    return frozenset(b for n in names if n is not None for b in n.basenames)


def make_plan(
    desired: Mapping[str, str],
    done: Mapping[str, Record],
    flying: Iterable[str],
    published: Mapping[str, Record],
    current: CurrentEval,
    failed: Iterable[str] = (),
    retry: Iterable[str] = (),
) -> Plan:
    """The pure reconcile step.

    desired: basename → sha256 of its config file; done: collected results; flying: basenames with
    live pods; published: results in the model store not yet matched by a collected file; failed:
    configs whose last run, of this same config file, failed — not relaunched on every merge (that
    would pay for the same failure again) unless named in `retry`.
    current: eval.json now.
    """
    flying, failed, retry = frozenset(flying), frozenset(failed), frozenset(retry)
    runs, done_names, waiting, stale, held = [], [], [], [], []
    for name in sorted(desired):
        record = done.get(name)
        if record and record.config_sha256 and record.config_sha256 != desired[name]:
            stale.append(name)
        if name in flying:
            continue
        mode: Mode | None = None
        if record is None:
            mode, reason = "train", "no results yet"
        elif not is_current(record, current):
            mode, reason = "eval", "eval.json asks for other prompts, settings or seeds than these results"
        if mode is None:
            done_names.append(name)
            continue
        if _published_covers(published.get(name), mode, current):
            waiting.append(name)
            continue
        if name in failed and name not in retry:
            held.append(name)
            continue
        runs.append(PlannedRun(name, mode, reason if name not in failed else "retry after a failed run"))
    return Plan(
        runs=tuple(runs),
        done=tuple(done_names),
        in_flight=tuple(sorted(flying & desired.keys())),
        awaiting_collect=tuple(waiting),
        stale_configs=tuple(stale),
        failed=tuple(held),
    )


def _published_covers(record: Record | None, mode: Mode, current: CurrentEval) -> bool:
    """Published results make a launch redundant: any for a train run, current-eval ones for eval."""
    if record is None:
        return False
    return mode == "train" or (record.eval_sha256 is not None and is_current(record, current))


# --- the thin loader ------------------------------------------------------------------------------
def sha256_file(path: Any) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_of(document: Mapping[str, Any] | None) -> Record | None:
    if document is None:
        return None
    meta = document.get("meta") or {}
    return Record(meta.get("eval_sha256"), meta.get("config_sha256"), shape_of_results(document))


def current_eval(repo: Repo) -> CurrentEval:
    """eval.json's hash and, where it parses, what it asks for (the gate reports a malformed one).
    Read bounded, as the gate reads it: no more than MAX_EVAL_CHARS bytes, nesting within the stack."""
    rel, fix = repo.rel(repo.eval_path), "restore train/eval/eval.json (see schemas/eval.schema.json)"
    try:
        with repo.eval_path.open("rb") as handle:
            raw = handle.read(MAX_EVAL_CHARS + 1)
    except OSError as exc:
        raise InputError(f"cannot read the eval spec: {exc.strerror}", file=rel, fix=fix) from exc
    if len(raw) > MAX_EVAL_CHARS:
        raise InputError(f"the eval spec is over {MAX_EVAL_CHARS:,} bytes", file=rel, fix=fix)
    try:
        spec = json.loads(raw)
        prompts, settings, seeds = spec["prompts"], spec["settings"], spec["seedVariants"]
        shape = eval_shape(prompts, settings, seeds) if isinstance(seeds, int) else None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        shape = None
    return CurrentEval(hashlib.sha256(raw).hexdigest(), shape)


def desired_configs(repo: Repo) -> dict[str, str]:
    """Every correctly named config on this checkout: basename → sha256 of its bytes."""
    return {
        p.stem: sha256_file(p)
        for p in repo.config_paths()
        if p.suffix == ".yml" and ConfigName.parse(p.stem) is not None
    }


def collected(results: ResultsIndex) -> dict[str, Record]:
    """Results files in train/results/; an unreadable one counts as done, so a run that came back is
    never paid for twice (`unreadable` says which, for the plan's errors)."""
    return {name: record_of(found.document) or Record() for name, found in results.collected().items()}


def unreadable(repo: Repo, results: ResultsIndex) -> dict[str, str]:
    """Each collected results file that is not a readable JSON object, and what plan does about it."""
    return {
        name: f"{repo.rel(found.path)}: {found.problem}; counted as done, so not run again (restore the "
        "file from the pipeline's output, or delete it to run the config again; `haha check` shows where)"
        for name, found in results.unreadable().items()
    }


def load_plan(
    repo: Repo,
    compute: Compute,
    store: ModelStore | None,
    retry: Iterable[str] = (),
    results: ResultsIndex | None = None,
) -> Plan:
    """Gather the inputs (repo files, pod list, store lookups for would-be launches) and plan."""
    desired = desired_configs(repo)
    results = results or ResultsIndex(repo)
    done = collected(results)
    pods = compute.list_pods()
    flying = in_flight(pods)
    current = current_eval(repo)
    first = make_plan(desired, done, flying, {}, current)
    published: dict[str, Record] = {}
    failed: set[str] = set()
    errors = unreadable(repo, results)
    statuses: dict[str, RunStatus | None] = {}
    if store is not None:  # only the candidates: two lookups each
        for run in first.runs:
            try:
                if (record := record_of(store.fetch_results(run.config))) is not None:
                    published[run.config] = record
                statuses[run.config] = read_status(store, run.config)
                if failed_same_config(statuses[run.config], desired[run.config]):
                    failed.add(run.config)
            except HahaError as exc:  # this run is not planned; the others still are
                errors[run.config] = str(exc)
    plan = make_plan(desired, done, flying, published, current, failed, retry)
    runs, given_up = [], []
    for run in plan.runs:
        if run.config in errors:
            continue
        try:
            run = with_resume(with_resources(repo, run), statuses.get(run.config), desired[run.config], repo)
        except HahaError as exc:
            errors[run.config] = str(exc)
            continue
        (given_up if run.resume is False else runs).append(run)
    runs = with_displaced(runs, displaced(pods, statuses))
    held = tuple(sorted({*plan.failed, *(r.config for r in given_up)}))
    return replace(plan, runs=tuple(runs), failed=held, errors=tuple(sorted(errors.items())))


def plan_command(
    repo: Repo,
    settings: Settings,
    configs: Sequence[str],
    compute_kind: str | None,
    use_store: bool,
    log: Callable[[str], None],
    results: ResultsIndex | None = None,
) -> Plan:
    """`haha plan`: the plan for this commit; named configs only (and retried even after a failure).
    `results`: the process's one reader of train/results/ (the monthly limit reads them too)."""
    from haha.compute import get_compute
    from haha.store import get_store

    store = get_store(settings, repo.root) if use_store else None
    wanted = {Path(c).stem for c in configs}
    compute = get_compute(settings, repo.root, compute_kind)
    plan = load_plan(repo, compute, store, retry=wanted, results=results)
    if configs:
        plan = replace(plan, runs=tuple(r for r in plan.runs if r.config in wanted))
    plan = share_pods(repo, plan, settings.compute.configs_per_pod)
    for run in plan.runs:
        shared = f", in the shared pod of {', '.join(run.pod)}" if run.pod else ""
        log(f"plan: {run.config} ({run.mode}): {run.reason}{shared}")
    for name in plan.stale_configs:
        log(f"plan: warning: {name} changed after it was trained; it is not retrained (add a new config)")
    for name in plan.failed:
        log(f"plan: {name}: its last run failed; not relaunched (name it, e.g. `haha plan {name}`, to retry)")
    if configs:
        plan = replace(plan, errors=tuple(e for e in plan.errors if e[0] in wanted))
    for name, error in plan.errors:
        log(f"plan: {name}: not planned: {error}")
    return plan


def with_resources(repo: Repo, run: PlannedRun) -> PlannedRun:
    """The run with the GPUs its pod gets: haha.gpus / haha.gpu_types, else haha.toml's [compute]."""
    resources = Experiment.load(repo.config_path(run.config)).resources(load_settings(repo.root, {}))
    if resources.nodes > 1 and resources.interruptible:  # not planned (plan.errors); the gate says so too
        raise InputError(
            f"haha.nodes is {resources.nodes} and haha.interruptible is true: "
            "RunPod clusters are on-demand only",
            file=repo.config_path(run.config),
            field="haha.interruptible",
            fix="remove haha.interruptible (or haha.nodes) from the config",
        )
    interruptible = resources.interruptible or None  # None: on-demand, left out of the matrix
    nodes = resources.nodes if resources.nodes > 1 else None  # None: one pod, left out of the matrix
    return replace(
        run, gpus=resources.gpus, gpu_types=resources.gpu_types, interruptible=interruptible, nodes=nodes
    )


def with_resume(run: PlannedRun, status: RunStatus | None, config_sha256: str, repo: Repo) -> PlannedRun:
    """A run whose interruptible pod was preempted is resumed (haha.resume.decide); `resume` False:
    given up (held like a failed run). Eval-only runs and runs never preempted are left as planned."""
    from haha.resume import decide

    if run.mode != "train":
        return run
    compute = load_settings(repo.root, {}).compute
    wanted, fallback = bool(run.interruptible), compute.on_demand_fallback
    decision = decide(status, False, config_sha256, wanted, compute.max_preemptions, fallback)
    if decision.action == "fresh":
        return run
    return replace(
        run,
        reason=decision.reason,
        interruptible=decision.interruptible or None,
        resume=decision.action != "give up",
        preemptions=decision.preemptions,
    )


def resumes_only(plan: Plan) -> Plan:
    """The plan cut to runs that resume a preempted one, and those a preempted shared pod never got to
    (`haha plan --resume-only`: launch.yml's schedule, which starts nothing new, only picks up what
    RunPod took back)."""
    return replace(plan, runs=tuple(r for r in plan.runs if r.resume or r.displaced))


def displaced(pods: Iterable[Pod], statuses: Mapping[str, RunStatus | None]) -> frozenset[str]:
    """Configs whose turn in a preempted interruptible pod never came (no status written by that pod).
    The pods: those RunPod still lists as EXITED, and those a preempted run's status names (found after
    `haha reap` terminated the pod). Pure."""
    from haha.resume import was_preempted

    gone = [p.name for p in pods if p.interruptible and p.status == "EXITED"]
    gone += [s.pod_name for s in statuses.values() if s and s.pod_name and was_preempted(s, False)]
    out = set()
    for pod_name in gone:
        parsed = PodName.parse(pod_name)
        for basename in parsed.basenames if parsed else ():
            status = statuses.get(basename)
            if status is None or status.pod_name != pod_name:
                out.add(basename)
    return frozenset(out)


def with_displaced(runs: Sequence[PlannedRun], names: frozenset[str]) -> list[PlannedRun]:
    """Fresh runs of configs in `names` (plan.displaced) marked so: a preempted pod took their turn."""
    why = "its interruptible pod was preempted before its turn; starting it afresh"
    return [replace(r, displaced=True, reason=why) if r.config in names and not r.resume else r for r in runs]


def failed_same_config(status: RunStatus | None, config_sha256: str) -> bool:
    """A failed run of this exact config file (an edited config deserves a fresh try)."""
    if status is None or status.state != "failed":
        return False
    return status.config_sha256 in (None, config_sha256)


# --- shared pods ([compute] configs_per_pod) ------------------------------------------------------
def share_key(run: PlannedRun, base_model: str, bid: float | None = None) -> tuple[object, ...] | None:
    """What configs must have in common to share a pod: mode, base model, the pod's GPUs and its kind.

    The pod is either rented (interruptible, at one bid per GPU: `bid`, the config's haha.bid_per_gpu;
    None: each type's spot price) or deployed on-demand, so configs that differ there never share; a
    config does not run at another's bid. A resumed run never shares: the pod's env says resume and
    how often the run was preempted for every config it runs (haha.resume), and a config that was
    never preempted must start fresh with its own count. A multi-node run (a cluster) never shares.
    """
    if not base_model or run.gpus is None or run.gpu_types is None or run.resume or run.nodes:
        return None
    kind = ("interruptible", bid) if run.interruptible else ("on-demand",)
    return (run.mode, base_model, run.gpus, run.gpu_types, kind)


def pods_of(
    runs: Sequence[PlannedRun],
    base_models: Mapping[str, str],
    per_pod: int,
    bids: Mapping[str, float | None] | None = None,
) -> list[tuple[PlannedRun, ...]]:
    """The planned runs in pods: up to `per_pod` with one share_key each, in plan order (pure)."""
    from haha.sharedpod import group

    if per_pod <= 1:
        return [(run,) for run in runs]
    bid = bids or {}
    return group(runs, lambda r: share_key(r, base_models.get(r.config, ""), bid.get(r.config)), per_pod)


def share_pods(repo: Repo, plan: Plan, per_pod: int) -> Plan:
    """The plan with each shared pod's configs recorded on its runs (unchanged when per_pod is 1)."""
    if per_pod <= 1:
        return plan
    settings = load_settings(repo.root, {})
    experiments = {r.config: Experiment.load(repo.config_path(r.config)) for r in plan.runs}
    bases = {name: e.base_model for name, e in experiments.items()}
    # Planned runs passed with_resources, so their `haha:` blocks read (Experiment.resources).
    bids = {
        r.config: experiments[r.config].resources(settings).bid_per_gpu for r in plan.runs if r.interruptible
    }
    runs = []
    for pod in pods_of(plan.runs, bases, per_pod, bids):
        names = tuple(r.config for r in pod) if len(pod) > 1 else None
        runs.extend(replace(r, pod=names) for r in pod)
    order = {r.config: i for i, r in enumerate(plan.runs)}
    return replace(plan, runs=tuple(sorted(runs, key=lambda r: order[r.config])))
