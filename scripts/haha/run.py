"""The run: preflight → train (Axolotl) → eval (vLLM | transformers) → results JSON → publish.

The same code runs on a laptop (embedded defaults: CPU, local store, W&B offline) and in a pod.
Every stage is restartable: a finished adapter is not retrained, existing results need --force.

Training and eval need two Python environments (Axolotl and vLLM pin conflicting packages). Where
HAHA_EVAL_PYTHON names the eval environment's interpreter (the pod image, `make run`), the eval stage
runs there as `haha eval CONFIG --adapter ... --engine vllm` and its results are read back; without it,
eval runs in this process (vLLM when importable, else the transformers engine).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from haha import __version__
from haha.clock import stamp
from haha.errors import AlreadyDone, InputError, ModelUnavailable, RunFailed
from haha.evalspec import EvalSpec, load_eval_spec
from haha.evaluate import build_requests, choose_engine
from haha.evaluate.engine import EngineName
from haha.experiment import Experiment
from haha.models import ensure_model
from haha.phases import cost_meta, ordered, run_phases
from haha.repo import Repo
from haha.results import SCHEMA_VERSION, build_results, config_summary, write_results
from haha.runstatus import RunStatus
from haha.settings import ENV_ONLY, Settings
from haha.store import RunArtifacts, get_store
from haha.teed import Teed
from haha.train import (
    Device,
    TrainOutcome,
    eval_placement,
    find_adapter,
    loss_curve,
    output_dir_for,
    train,
)
from haha.workspace import workdir_for

Log = Callable[[str], None]


@dataclass
class RunSummary:
    basename: str
    results_file: Path | None = None
    adapter: Path | None = None
    location: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Preflight:
    """Everything checked before any expensive work starts."""

    exp: Experiment
    spec: EvalSpec
    workdir: Path
    model_path: Path | None  # local folder of the base model; None where it will be downloaded

    @property
    def model(self) -> str:
        """What engines load: the local folder when there is one (no Hub lookups), else the name."""
        return str(self.model_path or self.exp.base_model)


def preflight(repo: Repo, name: str, settings: Settings) -> Preflight:
    """Fail fast, before training, on a bad config, missing dataset, bad eval.json or missing model."""
    exp = Experiment.load(repo.config_path(name))
    if exp.config_name is None:
        raise exp.fail("config file name must be <series>-NNN.yml", "base_model")
    for ref in exp.datasets:
        field_name = f"datasets.{ref.index}.path"
        if problem := ref.problem():
            raise exp.fail(f"dataset path {ref.workspace_path!r} {problem}", field_name)
        if not (repo.data_dir / ref.file_name).is_file():
            raise exp.fail(
                f"dataset {ref.workspace_path} not found: no train/data/{ref.file_name}",
                field_name,
                fix=f"add train/data/{ref.file_name} or fix the path",
            )
    if not exp.datasets:
        raise exp.fail("no datasets", "datasets", fix="add datasets: [{path: /workspace/data/<file>, ...}]")
    spec = load_eval_spec(repo.eval_path)
    if not exp.base_model:
        raise exp.fail("base_model is not set", "base_model")
    try:
        model_path = ensure_model(exp.base_model, settings)
    except ModelUnavailable as exc:
        raise ModelUnavailable(
            exc.message, file=exp.path, line=exp.line("base_model"), field="base_model", fix=exc.fix
        ) from exc
    return Preflight(exp, spec, workdir_for(repo, exp.basename, settings), model_path)


EVAL_PYTHON = ENV_ONLY["eval_python"]


@dataclass(frozen=True)
class EvalOutcome:
    """What the eval stage hands to the results file, wherever the engine ran."""

    results: list[dict[str, Any]]  # the results document's `results`: prompt → setting → completions
    engine: str
    versions: dict[str, str]  # of the environment the engine ran in
    mode: dict[str, Any]  # meta.eval: batch_invariant, dtype, process
    log_file: Path | None = None


def evaluate(
    pre: Preflight,
    adapter: Path,
    repo: Repo,
    settings: Settings,
    engine_name: EngineName,
    log: Log,
) -> EvalOutcome:
    """The eval stage: in the eval environment when one is configured, else in this process."""
    if settings.eval_python:
        return evaluate_in(settings.eval_python, pre, adapter, repo, settings, engine_name, log)
    return evaluate_here(pre, adapter, settings, engine_name, log)


def evaluate_here(
    pre: Preflight, adapter: Path | None, settings: Settings, engine_name: EngineName, log: Log
) -> EvalOutcome:
    """Every prompt × setting × seed through the chosen engine, with progress in tenths."""
    requests = build_requests(pre.spec, pre.exp.system_message, settings.default_max_tokens)
    engine = choose_engine(engine_name, pre.model, adapter, settings.eval_batch_size)
    log(f"eval: {len(requests)} completions with the {engine.name} engine")
    reported = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > reported[0]:
            reported[0] = tenth
            log(f"eval: {done}/{total} completions")

    completions = engine.generate(requests, progress)
    document = build_results(pre.exp, pre.spec, requests, completions)
    mode = {**engine.mode(), "process": "in-process"}
    return EvalOutcome(document["results"], engine.name, engine.versions(), mode)


_SAID = re.compile(r"^\d\d:\d\d:\d\d (?=(eval|results|run|error|warning)\b)")


def evaluate_in(
    python: str,
    pre: Preflight,
    adapter: Path,
    repo: Repo,
    settings: Settings,
    engine_name: EngineName,
    log: Log,
) -> EvalOutcome:
    """Run `haha eval` in the eval environment and read back the results file it writes.

    Its progress lines are passed on; everything it prints goes to eval.log in the work folder.
    `auto` asks for vLLM there: the eval environment exists to run it, so a broken one fails loudly.
    """
    engine = "vllm" if engine_name == "auto" else engine_name
    if os.sep in python:  # a path relative to where haha runs, not to the child's cwd (the repo root)
        python = os.path.abspath(python)  # not resolve(): a venv's python is a symlink out of the venv
    argv = [python, "-m", "haha.cli", "eval", pre.exp.basename, "--adapter", str(adapter)]
    argv += ["--engine", engine, "--force", "--repo", str(repo.root)]
    child_env = settings.child_env({EVAL_PYTHON: None, "PYTHONUNBUFFERED": "1"})  # it evaluates itself
    pre.workdir.mkdir(parents=True, exist_ok=True)
    log_file = pre.workdir / "eval.log"
    log(f"eval: in {python} (--engine {engine}); its log: {log_file}")
    tail: list[str] = []
    try:
        child = Teed(argv, repo.root, child_env, log_file)
        for line in child:
            tail = [*tail[-30:], line.rstrip()]
            if _SAID.match(line):
                log(_SAID.sub("", line.rstrip()))
        code = child.returncode
    except OSError as exc:
        raise RunFailed(
            f"cannot start the eval environment's python {python!r}: {exc}",
            fix=f"build the eval environment (make .venv-vllm/.installed) or unset {EVAL_PYTHON}",
        ) from exc
    if code != 0:
        last = " | ".join(line for line in tail[-6:] if line.strip())
        raise RunFailed(
            f"eval in {python} exited with code {code}: {last[-600:]}",
            file=log_file,
            fix="read the eval log named here; `--engine transformers` evaluates in this environment",
        )
    document = json.loads(repo.results_path(pre.exp.basename).read_text())
    meta = document.get("meta") or {}
    if meta.get("eval_sha256") != pre.spec.sha256 or meta.get("engine") is None:
        raise RunFailed(
            f"the eval environment's results are for another eval.json ({meta.get('eval_sha256')})",
            file=repo.results_path(pre.exp.basename),
            fix="run again; eval.json must not change while a run evaluates",
        )
    versions = {k: v for k, v in (meta.get("versions") or {}).items() if k != "haha"}
    mode = {**(meta.get("eval") or {}), "process": "subprocess"}
    return EvalOutcome(document["results"], meta["engine"], versions, mode, log_file)


def run_experiment(
    repo: Repo,
    settings: Settings,
    name: str,
    log: Log,
    engine: EngineName = "auto",
    force: bool = False,
    publish: bool = True,
    retrain: bool = False,
) -> RunSummary:
    """The whole run for one config. Results land in train/results/ and in the model store.

    `force` overwrites existing results; the adapter is reused unless `retrain` is set too.
    """
    run_started = time.time()  # set-up starts here outside a pod (the model download is in preflight)
    pre = preflight(repo, name, settings)
    basename = pre.exp.basename
    results_file = _results_file(repo, basename, force)
    summary = RunSummary(basename)
    device = Device.detect()
    log(f"run: {basename} on {device}; work folder {pre.workdir}")

    started = time.monotonic()
    # A base model in a local folder: Axolotl must not look it up on the Hub.
    train_settings = settings.model_copy(update={"hf_offline": True}) if pre.model_path else settings
    outcome = train(pre.exp, repo, pre.workdir, train_settings, device, log, force=retrain)
    summary.stage_seconds["train"] = round(time.monotonic() - started, 1)
    summary.adapter = outcome.adapter_dir
    if outcome.nodes > 1 and settings.cluster is not None and not settings.cluster.primary:
        rank = settings.cluster.node_rank
        log(f"run: node {rank} of {outcome.nodes} trained; node 0 evaluates, writes results and publishes")
        summary.adapter = None
        return summary
    trained_at = time.time()

    started = time.monotonic()
    evaluated = evaluate(pre, outcome.adapter_dir, repo, settings, engine, log)
    summary.stage_seconds["eval"] = round(time.monotonic() - started, 1)

    store = get_store(settings, repo.root) if publish else None
    location = store.location(basename) if store else str(outcome.adapter_dir)
    if not store or store.kind == "local":  # a folder: record it relative to the repo, not this machine
        location = repo.rel(Path(location))
    meta = run_meta(pre, repo, settings, device, outcome, evaluated, location, summary.stage_seconds)
    first_step = None if outcome.skipped else outcome.first_step_at
    setup_from = settings.boot_epoch or run_started
    phases = run_phases(setup_from, first_step, trained_at, summary.stage_seconds["eval"])
    meta |= {"phases": phases, "cost": _list_price_cost(settings, time.time() - setup_from, device)}
    document = {"config": config_summary(pre.exp), "results": evaluated.results, "meta": meta}
    write_results(document, pre.workdir / "results.json")
    summary.results_file = write_results(document, results_file)
    log(f"results: {repo.rel(results_file)}")

    if store:
        started = time.monotonic()
        summary.location = store.publish(
            RunArtifacts(
                basename=basename,
                adapter_dir=outcome.adapter_dir,
                results_file=pre.workdir / "results.json",
                log_files=tuple(p for p in (outcome.log_file, evaluated.log_file) if p and p.exists()),
                model_card=model_card(pre.exp, document),
                # In a pod, the pod records the run's end (with its pod, PR and price): not this.
                status=None if settings.inside_pod else RunStatus("succeeded", finished_at=stamp()).to_dict(),
            )
        )
        log(f"publish: {summary.location} ({store.kind} store, {time.monotonic() - started:.1f} s)")
        if settings.inside_pod:  # the pod uploads this file again at its end (elsewhere the store's stands)
            meta["phases"] = ordered({**phases, "publish": time.monotonic() - started})
            write_results(document, results_file)
    return summary


def _list_price_cost(settings: Settings, seconds: float, device: Device) -> dict[str, Any]:
    """`meta.cost` as the run alone knows it: the list price of the GPU it ran on (the first configured
    type on a CPU); a pod replaces it with what its provider bills."""
    gpu = settings.gpu() if settings.compute.gpu_types else None
    gpu_type = gpu.id if gpu is not None else str(device)
    price = gpu.price_per_hour if gpu is not None else None
    return cost_meta(seconds, gpu_type, device.count, None, price, None)


def evaluate_only(
    repo: Repo,
    settings: Settings,
    name: str,
    log: Log,
    adapter: Path | None = None,
    engine: EngineName = "auto",
    force: bool = False,
) -> RunSummary:
    """`haha eval`: re-evaluate a trained config; adapter from --adapter, the work folder or the store."""
    run_started = time.time()
    pre = preflight(repo, name, settings)
    results_file = _results_file(repo, pre.exp.basename, force)
    adapter = adapter or find_adapter(output_dir_for(pre.exp, repo, pre.workdir))
    if adapter is None:
        adapter = get_store(settings, repo.root).fetch_adapter(
            pre.exp.basename, pre.workdir / "fetched-adapter"
        )
    if adapter is None:
        raise InputError(
            f"no adapter found for {pre.exp.basename}",
            fix=f"run `haha run {pre.exp.basename}` first or pass --adapter PATH",
        )
    device = Device.detect()
    started, eval_from = time.monotonic(), time.time()
    evaluated = evaluate(pre, adapter, repo, settings, engine, log)
    seconds = {"eval": round(time.monotonic() - started, 1)}
    outcome = TrainOutcome(adapter, 0.0, None, pre.workdir / "train.log", skipped=True)
    meta = run_meta(pre, repo, settings, device, outcome, evaluated, str(adapter), seconds)
    setup_from = settings.boot_epoch or run_started
    meta |= {
        "phases": run_phases(setup_from, None, eval_from, seconds["eval"]),
        "cost": _list_price_cost(settings, time.time() - setup_from, device),
    }
    document = {"config": config_summary(pre.exp), "results": evaluated.results, "meta": meta}
    summary = RunSummary(
        pre.exp.basename, write_results(document, results_file), adapter, stage_seconds=seconds
    )
    log(f"results: {repo.rel(results_file)}")
    return summary


def _results_file(repo: Repo, basename: str, force: bool) -> Path:
    """Where results go; existing ones are never overwritten without --force."""
    path = repo.results_path(basename)
    if path.exists() and not force:
        raise AlreadyDone(
            f"results already exist: {repo.rel(path)}", file=path, fix="pass --force to overwrite them"
        )
    return path


def run_meta(
    pre: Preflight,
    repo: Repo,
    settings: Settings,
    device: Device,
    outcome: TrainOutcome,
    evaluated: EvalOutcome,
    adapter_location: str,
    stage_seconds: dict[str, float],
) -> dict[str, Any]:
    """Provenance recorded beside the completions (schema: results.schema.json#/properties/meta).

    Versions: the eval environment's (engine, torch, transformers) plus Axolotl from this one.
    """
    import hashlib

    versions = {"haha": __version__, **evaluated.versions}
    with contextlib.suppress(Exception):
        versions["axolotl"] = version("axolotl")
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "haha_version": __version__,
        "created_at": stamp(),
        "engine": evaluated.engine,
        "eval": {**evaluated.mode, **eval_placement(pre.exp, device)},
        "train": {"processes": outcome.processes, **({"nodes": outcome.nodes} if outcome.nodes > 1 else {})},
        "versions": versions,
        "base_model": pre.exp.base_model,
        "adapter": adapter_location,
        "seeds": list(pre.spec.seeds),
        "config_sha256": hashlib.sha256(pre.exp.path.read_bytes()).hexdigest(),
        "eval_sha256": pre.spec.sha256,
        "git_commit": repo.head_sha(),
        "device": str(device),
        "cpu_overrides": outcome.overrides,
        "stage_seconds": stage_seconds,
        "tokens_trained": outcome.tokens_trained,
        "tokens_supervised": outcome.tokens_supervised,
        "train_loss": loss_curve(outcome.log_file),
        "settings": [
            {**s, "max_tokens": s.get("max_tokens", settings.default_max_tokens)} for s in pre.spec.settings
        ],
        "wandb": {
            "project": settings.wandb_project,
            "name": pre.exp.basename,
            "run_id": outcome.wandb_run_id,
            "run_by": getpass.getuser(),
        },
    }
    if outcome.wandb_run_id and settings.wandb_entity and settings.wandb_api_key:
        meta["wandb_url"] = (
            f"https://wandb.ai/{settings.wandb_entity}/{settings.wandb_project}/runs/{outcome.wandb_run_id}"
        )
    if outcome.resumed:  # a preempted run finished by a later pod (haha.resume)
        meta["resumed"] = outcome.resumed
    if settings.boot_epoch is not None and outcome.first_step_at is not None:
        meta["boot_to_first_step_s"] = round(max(outcome.first_step_at - settings.boot_epoch, 0.0), 1)
    return meta


def model_card(exp: Experiment, document: dict[str, Any]) -> str:
    """The HF model card: what this adapter is, its config, and the first completions per prompt."""
    rows = "\n".join(
        f"| {r['prompt']} | {r['settingsResults'][0]['completions'][0]} |" for r in document["results"][:12]
    )
    return f"""---
base_model: {exp.base_model}
library_name: peft
tags: [haha, lora, axolotl]
---
# {exp.basename}

A LoRA adapter from the [Haha](https://github.com/synagi/haha) experiment log: punchlines for joke
setups, trained with Axolotl on `{exp.base_model}` in ChatML.

System message: {exp.system_message}

## Sample completions (temperature {document["results"][0]["settingsResults"][0]["temperature"]}, seed 1)
| setup | punchline |
|---|---|
{rows}

## Config
```yaml
{exp.path.read_text()}```
"""
