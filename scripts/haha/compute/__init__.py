"""Compute: where pods run. `local` (this machine, the embedded default) or `runpod`."""

from __future__ import annotations

from pathlib import Path

from haha.compute.base import Compute, Pod, PodSpec
from haha.settings import Settings


def get_compute(settings: Settings, root: Path, kind: str | None = None) -> Compute:
    """The Compute named by `kind` (or settings), SDKs imported only when chosen.

    `root` is the repository checkout: local pods keep their records under `<root>/.haha/pods/`.
    """
    kind = kind or settings.compute.kind
    if kind == "runpod":
        from haha.compute.runpod import RunPodCompute

        return RunPodCompute(settings)
    from haha.compute.local import LocalCompute

    return LocalCompute(settings, root)


__all__ = ["Compute", "Pod", "PodSpec", "get_compute"]
