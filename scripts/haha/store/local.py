"""A folder store: `<path>/<basename>/` laid out like the Hub repo (adapter files at the root).

Everything a publish writes is staged inside the run folder first, then moved into place file by
file with `os.replace`, results and status last: a reader never sees a half-written file, and a
publish that fails part-way leaves the previous files as they were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from haha.store.base import (
    CHECKPOINT_DIR,
    LOGS_DIR,
    RunArtifacts,
    RunJsonFiles,
    adapter_files,
    artifact_files,
    parse_run_json,
)


class LocalStore(RunJsonFiles):
    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def location(self, basename: str) -> str:
        return str(self.path / basename)

    def publish(self, artifacts: RunArtifacts) -> str:
        """Stage every artifact, then swap each into place; replaces a previous adapter whole."""
        run = self.path / artifacts.basename
        run.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=run, prefix=".staging-"))
        try:
            staged = _stage(artifacts, staging)
            stale = {p.name for p in adapter_files(run)} if artifacts.adapter_dir else set()
            for rel in staged:
                (run / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, run / rel)
                stale.discard(rel)
            for name in stale:
                (run / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.location(artifacts.basename)

    def fetch_adapter(self, basename: str, dest: Path) -> Path | None:
        run = self.path / basename
        files = adapter_files(run) if run.is_dir() else []
        if not files:
            return None
        dest.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, dest / file.name)
        return dest

    def publish_checkpoint(self, basename: str, checkpoint: Path) -> str:
        """Copy the folder in beside the old one, then swap: a reader sees the old or the new one whole."""
        run = self.path / basename
        run.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=run, prefix=".staging-"))
        try:
            shutil.copytree(checkpoint, staging / CHECKPOINT_DIR)
            old = run / CHECKPOINT_DIR
            if old.exists():
                os.replace(old, staging / "old")
            os.replace(staging / CHECKPOINT_DIR, old)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return f"{self.location(basename)}/{CHECKPOINT_DIR}"

    def fetch_checkpoint(self, basename: str, dest: Path) -> Path | None:
        found = self.path / basename / CHECKPOINT_DIR
        if not found.is_dir():
            return None
        shutil.copytree(found, dest, dirs_exist_ok=True)
        return dest

    def fetch_log(self, basename: str, name: str) -> str | None:
        path = self.path / basename / LOGS_DIR / name
        return path.read_text(errors="replace") if path.is_file() else None

    def read_json(self, basename: str, name: str) -> dict[str, Any] | None:
        path = self.path / basename / name
        if not path.is_file():
            return None
        return parse_run_json(path.read_text(encoding="utf-8", errors="replace"), str(path))


def _stage(artifacts: RunArtifacts, staging: Path) -> list[str]:
    """Copy or write every artifact under `staging`; the relative paths, in the order to publish."""
    staged = []
    for rel, source in artifact_files(artifacts):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copy2(source, target)
        else:
            target.write_bytes(source)
        staged.append(rel)
    return staged
