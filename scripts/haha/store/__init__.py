"""Model store: where adapters, results and logs are published. HF Hub, or a local folder."""

from __future__ import annotations

from pathlib import Path

from haha.settings import Settings
from haha.store.base import ModelStore, RunArtifacts


def get_store(settings: Settings, root: Path, kind: str | None = None) -> ModelStore:
    """The store named by `kind`, else settings (`auto`: the Hub when HF_TOKEN is set)."""
    kind = kind or settings.store_kind
    if kind == "hf":
        from haha.store.hf import HubStore

        return HubStore(settings)
    from haha.store.local import LocalStore

    return LocalStore(root / settings.store.local_path)


__all__ = ["ModelStore", "RunArtifacts", "get_store"]
