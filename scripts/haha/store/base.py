"""The ModelStore interface: one place per run (named by config basename) holding its artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

RESULTS_NAME = "results.json"
LOGS_DIR = "logs"
ADAPTER_DIR = "adapter"
STATUS_NAME = "status.json"


@dataclass(frozen=True)
class RunArtifacts:
    """What a run publishes. Adapter files go to the store root (as a HF model repo expects)."""

    basename: str
    adapter_dir: Path | None = None
    results_file: Path | None = None
    log_files: tuple[Path, ...] = ()
    model_card: str | None = None
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

    def fetch_adapter(self, basename: str, dest: Path) -> Path | None:
        """Download the adapter into `dest`; None when none was published."""
        ...
