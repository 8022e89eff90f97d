"""After a good run, the pod evaluates its base model without the adapter, if no current baseline exists.

The first pod of each base model (per eval.json) makes it on the GPU it already holds, and publishes
it beside its results; collect brings it to train/results/baseline/. Best effort: a failed baseline is
logged and never fails the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from haha.baseline import baseline_path
from haha.experiment import Experiment
from haha.pod.child import ChildRun
from haha.repo import Repo

Log = Callable[[str], None]


def baseline_in_pod(
    repo: Repo, basename: str, env: Mapping[str, str], child: ChildRun, log: Log
) -> Path | None:
    """The baseline file this pod wrote, or None (already current, or it failed)."""
    model = Experiment.load(repo.config_path(basename)).base_model
    path = baseline_path(repo, model)
    before = path.stat().st_mtime_ns if path.is_file() else None
    argv = [sys.executable, "-m", "haha.cli", "baseline", model, "--repo", str(repo.root)]
    log(f"baseline: {model} without the adapter")
    rc = child.run(argv, env, repo.root)
    if rc != 0:
        log(f"baseline: exited with status {rc}; the run's results stand without it")
        return None
    made = path.is_file() and path.stat().st_mtime_ns != before
    return path if made else None
