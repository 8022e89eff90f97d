"""The HuggingFace Hub store: one model repo per run, `<org>/<basename>`, written in one commit.

The endpoint and token are passed on every call (never read from the environment here), so a
loopback fake or a private Hub mirror works the same as huggingface.co.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

from haha.errors import InputError, ServiceError
from haha.settings import Settings
from haha.store.base import (
    CHECKPOINT_DIR,
    LOGS_DIR,
    RESERVED,
    RunArtifacts,
    RunJsonFiles,
    artifact_files,
    checkpoint_files,
    parse_run_json,
)


class HubStore(RunJsonFiles):
    kind = "hf"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoint = settings.hf_endpoint.rstrip("/")

    def location(self, basename: str) -> str:
        return f"{self.endpoint}/{self._repo(basename)}"

    def publish(self, artifacts: RunArtifacts) -> str:
        """Create the repo if needed and add every artifact in a single commit."""
        repo = self._repo(artifacts.basename)
        api = HfApi(endpoint=self.endpoint, token=self._token())
        operations = [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(src) if isinstance(src, Path) else src)
            for rel, src in artifact_files(artifacts)
        ]
        try:
            api.create_repo(repo, private=self.settings.store.private, exist_ok=True)
            if operations:
                names = ", ".join(rel for rel, _ in artifact_files(artifacts))
                api.create_commit(repo, operations, commit_message=f"Publish {artifacts.basename}: {names}")
        except (HfHubHTTPError, OSError) as exc:
            raise ServiceError(f"HF Hub: could not publish {repo}: {exc}") from exc
        return self.location(artifacts.basename)

    def fetch_adapter(self, basename: str, dest: Path) -> Path | None:
        """Download the repo's adapter files (everything but results, status, card and logs) into `dest`."""
        ignore = [*sorted(RESERVED - {LOGS_DIR}), f"{LOGS_DIR}/*", f"{CHECKPOINT_DIR}/*", ".gitattributes"]
        with tempfile.TemporaryDirectory() as cache:
            snapshot = self._download(
                basename,
                lambda: snapshot_download(self._repo(basename), ignore_patterns=ignore, **self._kw(cache)),
            )
            folder = Path(snapshot) if snapshot else None
            files = [p for p in folder.iterdir() if p.is_file()] if folder and folder.is_dir() else []
            if not files:
                return None
            dest.mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copyfile(file, dest / file.name)  # snapshot files are links into the cache
        return dest

    def publish_checkpoint(self, basename: str, checkpoint: Path) -> str:
        """One commit: the new checkpoint's files added, the previous one's other files deleted."""
        repo = self._repo(basename)
        api = HfApi(endpoint=self.endpoint, token=self._token())
        files = checkpoint_files(checkpoint)
        try:
            api.create_repo(repo, private=self.settings.store.private, exist_ok=True)
            kept = {rel for rel, _ in files}
            old = [f for f in api.list_repo_files(repo) if f.startswith(f"{CHECKPOINT_DIR}/")]
            stale = [f for f in old if f not in kept]
            operations: list[CommitOperationAdd | CommitOperationDelete] = [
                CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(src)) for rel, src in files
            ]
            operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
            api.create_commit(repo, operations, commit_message=f"Checkpoint {basename}: {checkpoint.name}")
        except (HfHubHTTPError, OSError) as exc:
            raise ServiceError(f"HF Hub: could not upload a checkpoint to {repo}: {exc}") from exc
        return f"{self.location(basename)}/tree/main/{CHECKPOINT_DIR}"

    def fetch_checkpoint(self, basename: str, dest: Path) -> Path | None:
        with tempfile.TemporaryDirectory() as cache:
            snapshot = self._download(
                basename,
                lambda: snapshot_download(
                    self._repo(basename), allow_patterns=[f"{CHECKPOINT_DIR}/*"], **self._kw(cache)
                ),
            )
            found = Path(snapshot) / CHECKPOINT_DIR if snapshot else None
            if found is None or not found.is_dir():
                return None
            for file in (p for p in found.rglob("*") if p.is_file()):
                target = dest / file.relative_to(found)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)  # snapshot files are links into the cache
        return dest

    def fetch_log(self, basename: str, name: str) -> str | None:
        with tempfile.TemporaryDirectory() as cache:
            rel = f"{LOGS_DIR}/{name}"
            path = self._download(
                basename, lambda: hf_hub_download(self._repo(basename), rel, **self._kw(cache))
            )
            return Path(path).read_text(errors="replace") if path else None

    def read_json(self, basename: str, name: str) -> dict[str, Any] | None:
        with tempfile.TemporaryDirectory() as cache:
            path = self._download(
                basename, lambda: hf_hub_download(self._repo(basename), name, **self._kw(cache))
            )
            text = Path(path).read_text(encoding="utf-8", errors="replace") if path else None
        return parse_run_json(text, f"{self.location(basename)}/{name}") if text is not None else None

    def _download(self, basename: str, fn: Callable[[], str]) -> str | None:
        """Run a download; None when the repo or file does not exist."""
        try:
            return fn()
        except (RepositoryNotFoundError, RemoteEntryNotFoundError):
            return None
        except (HfHubHTTPError, OSError) as exc:
            raise ServiceError(f"HF Hub: could not download from {self._repo(basename)}: {exc}") from exc

    def _kw(self, cache: str) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "token": self._token(), "cache_dir": cache}

    def _repo(self, basename: str) -> str:
        return f"{self.settings.org}/{basename}"

    def _token(self) -> str:
        if self.settings.hf_token is None:
            raise InputError(
                "HF_TOKEN is not set", field="HF_TOKEN", fix="set the HF_TOKEN secret, or use the local store"
            )
        return self.settings.hf_token.get_secret_value()
