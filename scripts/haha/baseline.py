"""The base model without an adapter, on the same eval.json, engine and seeds: what a finetune is
measured against, and the proof that an adapter was applied at all.

One file per base model, `train/results/baseline/<org>--<model>.json` (a results file: config.name
`baseline:<model id>`, meta.baseline true). It is made once per (base model, eval.json, engine): an
existing file for the same eval.json hash and engine is kept. The system message is the one the
model's configs use (the first config's, by name, when they differ).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haha import __version__
from haha.clock import stamp
from haha.errors import InputError, RunFailed
from haha.evaluate.engine import EngineName
from haha.experiment import Experiment
from haha.repo import Repo
from haha.results import SCHEMA_VERSION, write_results
from haha.settings import ENV_ONLY, Settings

Log = Callable[[str], None]
BASELINE_DIR = "baseline"
PREFIX = "baseline:"


def baseline_path(repo: Repo, base_model: str) -> Path:
    return repo.results_dir / BASELINE_DIR / f"{base_model.replace('/', '--')}.json"


def base_models(repo: Repo) -> dict[str, Experiment]:
    """Each base model the configs use → the config whose system message its baseline takes."""
    out: dict[str, Experiment] = {}
    for path in repo.config_paths():
        exp = Experiment.load(path)
        if exp.base_model and exp.base_model not in out:
            out[exp.base_model] = exp
    return out


def is_current(path: Path, eval_sha256: str, engine: str | None) -> bool:
    """A baseline already made for this eval.json (and engine, when one is asked for)."""
    try:
        meta = json.loads(path.read_text()).get("meta") or {}
    except (OSError, ValueError, AttributeError):  # absent, not JSON, or not an object
        return False
    return meta.get("eval_sha256") == eval_sha256 and engine in (None, meta.get("engine"))


def make_baseline(
    repo: Repo,
    settings: Settings,
    base_model: str,
    log: Log,
    engine: EngineName = "auto",
    force: bool = False,
) -> Path:
    """Evaluate `base_model` without an adapter (in the eval environment when one is configured)."""
    from haha.run import evaluate_here, preflight

    configs = base_models(repo)
    if base_model not in configs:
        raise InputError(
            f"no config uses base model {base_model!r}",
            field="base_model",
            fix=f"one of: {', '.join(sorted(configs)) or '(no configs)'}",
        )
    pre = preflight(repo, configs[base_model].basename, settings)
    path = baseline_path(repo, base_model)
    python = settings.eval_python
    # The engine the completions will come from: the eval environment runs vLLM.
    wanted = ("vllm" if python else None) if engine == "auto" else engine
    if not force and is_current(path, pre.spec.sha256, wanted):
        log(f"baseline: {repo.rel(path)} is current for this eval.json")
        return path
    if python:
        return _in_eval_env(python, repo, settings, base_model, engine, path, log)
    started = time.monotonic()
    evaluated = evaluate_here(pre, None, settings, engine, log)
    document = {
        "config": {
            "name": f"{PREFIX}{base_model}",
            "default_system_message": pre.exp.system_message,
            "base_model": base_model,
        },
        "results": evaluated.results,
        "meta": _meta(pre.spec.sha256, list(pre.spec.seeds), base_model, evaluated, repo, started),
    }
    write_results(document, path)
    log(f"baseline: {repo.rel(path)}")
    return path


def _meta(
    eval_sha256: str, seeds: list[int], base_model: str, evaluated: Any, repo: Repo, started: float
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "baseline": True,
        "haha_version": __version__,
        "created_at": stamp(),
        "engine": evaluated.engine,
        "eval": evaluated.mode,
        "versions": {"haha": __version__, **evaluated.versions},
        "base_model": base_model,
        "seeds": seeds,
        "eval_sha256": eval_sha256,
        "git_commit": repo.head_sha(),
        "stage_seconds": {"eval": round(time.monotonic() - started, 1)},
    }


def _in_eval_env(
    python: str, repo: Repo, settings: Settings, base_model: str, engine: str, path: Path, log: Log
) -> Path:
    """`haha baseline` again, in the eval environment (vLLM), which writes the file itself."""
    argv = [python, "-m", "haha.cli", "baseline", base_model, "--force", "--repo", str(repo.root)]
    argv += ["--engine", "vllm" if engine == "auto" else engine]
    log(f"baseline: in {python}")
    child_env = settings.child_env({ENV_ONLY["eval_python"]: None})  # the child evaluates itself
    done = subprocess.run(argv, cwd=repo.root, env=child_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunFailed(
            f"baseline in {python} exited with code {done.returncode}: {done.stderr.strip()[-600:]}",
            fix="`--engine transformers` evaluates in this environment",
        )
    return path
