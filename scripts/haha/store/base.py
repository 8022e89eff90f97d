"""The ModelStore interface: one place per run (named by config basename) holding its artifacts."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

RESULTS_NAME = "results.json"
LOGS_DIR = "logs"
ADAPTER_DIR = "adapter"
STATUS_NAME = "status.json"
BASELINE_NAME = "baseline.json"  # the run's base model without the adapter, when the pod made it
README_NAME = "README.md"
# Names at a run's root that are not adapter files.
CHECKPOINT_DIR = "checkpoint"  # the training checkpoint of an interruptible run (haha.resume)
RESERVED = frozenset({RESULTS_NAME, STATUS_NAME, BASELINE_NAME, README_NAME, LOGS_DIR, CHECKPOINT_DIR})


def checkpoint_files(checkpoint: Path) -> list[tuple[str, Path]]:
    """(path in the store, file) for every file of a checkpoint folder, sub-folders included."""
    return [
        (f"{CHECKPOINT_DIR}/{p.relative_to(checkpoint).as_posix()}", p)
        for p in sorted(checkpoint.rglob("*"))
        if p.is_file()
    ]


def adapter_files(adapter_dir: Path) -> list[Path]:
    """The adapter's top-level files, minus names the store reserves (PEFT writes its own README).

    Sub-folders (Axolotl's `checkpoint-*`) are left out: a run publishes its final adapter only.
    """
    return sorted(p for p in adapter_dir.iterdir() if p.is_file() and p.name not in RESERVED)


@dataclass(frozen=True)
class RunArtifacts:
    """What a run publishes. Adapter files go to the store root (as a HF model repo expects)."""

    basename: str
    adapter_dir: Path | None = None
    results_file: Path | None = None
    log_files: tuple[Path, ...] = ()
    model_card: str | None = None
    baseline_file: Path | None = None
    status: dict[str, Any] | None = field(default=None)


class ModelStore(Protocol):
    kind: str

    def location(self, basename: str) -> str:
        """A URL or path users can open to see this run's artifacts."""
        ...

    def publish(self, artifacts: RunArtifacts) -> str:
        """Upload whatever artifacts are set (idempotent; later calls add or replace files)."""
        ...

    def fetch_results(self, basename: str) -> dict[str, Any] | None:
        """The published results JSON, or None when the run has not published any."""
        ...

    def fetch_status(self, basename: str) -> dict[str, Any] | None:
        """The published run status (`{"state": "failed", "reason": ...}`), or None."""
        ...

    def fetch_baseline(self, basename: str) -> dict[str, Any] | None:
        """The base model's results (no adapter) that this run's pod made, or None."""
        ...

    def fetch_adapter(self, basename: str, dest: Path) -> Path | None:
        """Download the adapter into `dest`; None when none was published."""
        ...

    def fetch_log(self, basename: str, name: str) -> str | None:
        """The text of `logs/<name>` (what a pod uploaded last), or None."""
        ...

    def publish_checkpoint(self, basename: str, checkpoint: Path) -> str:
        """Replace the run's training checkpoint (`checkpoint/`, beside the adapter) with the folder
        `checkpoint` (a Trainer `checkpoint-<step>`): what a preempted run resumes from."""
        ...

    def fetch_checkpoint(self, basename: str, dest: Path) -> Path | None:
        """Download the run's checkpoint into `dest`; None when none was published."""
        ...


def parse_run_json(text: str, where: str) -> dict[str, Any]:
    """A run's JSON file as an object; a truncated or malformed one is an InputError naming it."""
    from haha.errors import InputError

    fix = "publish the run again (haha run / haha pod), or delete the file so it is not read"
    try:
        document = json.loads(text)
    except ValueError as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise InputError(f"not valid JSON: {exc}", file=where, line=line, fix=fix) from exc
    if not isinstance(document, dict):
        raise InputError(f"expected a JSON object, found {type(document).__name__}", file=where, fix=fix)
    return document


class RunJsonFiles(ABC):
    """The run's JSON files (results, status, baseline), read alike by every store that reads one file."""

    @abstractmethod
    def read_json(self, basename: str, name: str) -> dict[str, Any] | None:
        """The run's JSON file `name`, or None when the run or the file does not exist."""

    def fetch_results(self, basename: str) -> dict[str, Any] | None:
        return self.read_json(basename, RESULTS_NAME)

    def fetch_status(self, basename: str) -> dict[str, Any] | None:
        return self.read_json(basename, STATUS_NAME)

    def fetch_baseline(self, basename: str) -> dict[str, Any] | None:
        return self.read_json(basename, BASELINE_NAME)


def artifact_files(artifacts: RunArtifacts) -> list[tuple[str, Path | bytes]]:
    """(path in the store, source file or content) for every artifact set, in publish order.

    Results and status come last: a reader that sees them can rely on the rest being there.
    """
    files: list[tuple[str, Path | bytes]] = []
    if artifacts.adapter_dir is not None:
        files += [(p.name, p) for p in adapter_files(artifacts.adapter_dir)]
    files += [(f"{LOGS_DIR}/{p.name}", p) for p in artifacts.log_files]
    if artifacts.model_card is not None:
        files.append((README_NAME, artifacts.model_card.encode()))
    if artifacts.baseline_file is not None:
        files.append((BASELINE_NAME, artifacts.baseline_file))
    if artifacts.results_file is not None:
        files.append((RESULTS_NAME, artifacts.results_file))
    if artifacts.status is not None:
        files.append((STATUS_NAME, (json.dumps(artifacts.status, indent=2) + "\n").encode()))
    return files
