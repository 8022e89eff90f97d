"""Real, schema-valid results files for a repo's config and eval.json, without training."""

from __future__ import annotations

import hashlib
from pathlib import Path

from haha.evalspec import load_eval_spec
from haha.evaluate import build_requests
from haha.experiment import Experiment
from haha.repo import Repo
from haha.results import build_results, write_results


def write_fake_results(root: Path, basename: str, train_s: float = 600.0) -> Path:
    repo = Repo(root)
    exp = Experiment.load(repo.config_path(basename))
    spec = load_eval_spec(repo.eval_path)
    requests = build_requests(spec, exp.system_message, 64)
    completions = [f"punchline {i}" for i in range(len(requests))]
    meta = {
        "engine": "fake",
        "device": "cpu",
        "base_model": exp.base_model,
        "config_sha256": hashlib.sha256(exp.path.read_bytes()).hexdigest(),
        "eval_sha256": spec.sha256,
        "stage_seconds": {"train": train_s, "eval": 60.0},
        "git_commit": "0" * 40,
    }
    return write_results(build_results(exp, spec, requests, completions, meta), repo.results_path(basename))
