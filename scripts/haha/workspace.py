"""Mapping a config's `/workspace/...` paths onto this machine.

Configs are written for the pod layout: datasets at /workspace/data/<file>, outputs under /workspace.
Datasets always come from the repo's train/data/; everything else lands in a per-run work folder —
`/workspace/runs/<basename>` inside a pod, `.haha/work/<basename>` in a local checkout.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from haha.experiment import WORKSPACE, WORKSPACE_DATA
from haha.repo import Repo
from haha.settings import Settings

# Keys whose relative values would otherwise land in the caller's working directory.
_RELATIVE_PATH_KEYS = ("output_dir", "dataset_prepared_path")


def workdir_for(repo: Repo, basename: str, settings: Settings) -> Path:
    """The per-run folder (HAHA_WORKDIR overrides the parent folder)."""
    if settings.workdir:
        parent = settings.workdir
    elif settings.runpod_pod_id:
        parent = Path(WORKSPACE) / "runs"
    else:
        parent = repo.root / ".haha" / "work"
    return parent / basename


def map_path(value: str, repo: Repo, workdir: Path) -> str:
    """One `/workspace` path → its local place; anything else unchanged."""
    path = PurePosixPath(value)
    if path.is_relative_to(WORKSPACE_DATA):
        return str(repo.data_dir / path.relative_to(WORKSPACE_DATA))
    if path.is_relative_to(WORKSPACE):
        return str(workdir / path.relative_to(WORKSPACE))
    return value


def localize(config: Any, repo: Repo, workdir: Path) -> Any:
    """A copy of `config` with every `/workspace` string mapped, and relative output paths anchored."""
    if isinstance(config, dict):
        out = {k: localize(v, repo, workdir) for k, v in config.items()}
        for key in _RELATIVE_PATH_KEYS:
            value = out.get(key)
            if isinstance(value, str) and not PurePosixPath(value).is_absolute():
                out[key] = str(workdir / value)
        return out
    if isinstance(config, list):
        return [localize(v, repo, workdir) for v in config]
    if isinstance(config, str) and config.startswith(str(WORKSPACE)):
        return map_path(config, repo, workdir)
    return config
