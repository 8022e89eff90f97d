"""The run status (`status.json` beside a run's artifacts in the model store): one type, one reader/writer.

Written by the pod (`running`, then `succeeded` or `failed`), by `haha run` outside a pod, by boot.sh's
EXIT trap and by the reaper (`failed`). Read by plan (a failed config is held), collect (cost, PR body),
reap and the run-status comment on the PR that started the run. Nothing else spells its keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from haha.errors import InputError
from haha.store.base import STATUS_NAME, ModelStore, RunArtifacts

State = Literal["running", "succeeded", "failed"]
STATES: tuple[State, ...] = ("running", "succeeded", "failed")


@dataclass(frozen=True)
class RunStatus:
    """Where one run of a config stands. Times are ISO 8601 UTC stamps (`clock.stamp`)."""

    state: State
    mode: str = "train"
    reason: str | None = None
    pod_id: str | None = None
    pod_name: str | None = None
    gpu_type: str | None = None
    gpu_count: int | None = None
    cost_per_hour: float | None = None
    git_ref: str | None = None
    config_sha256: str | None = None
    pr: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    deadline: str | None = None
    pod_seconds: float | None = None
    reaped_at: str | None = None
    log_location: str | None = None
    budget_override: str | None = None  # why a manual launch went over the monthly spend limit
    # Interruptible pods (haha.resume): "interruptible" or "on-demand"; the last checkpoint in the
    # store (its training step and when it was uploaded); preemptions so far, the steps they made the
    # run repeat, and the W&B run every pod of this run logs to.
    pod_type: str | None = None
    checkpoint_step: int | None = None
    checkpoint_at: str | None = None
    preemptions: int | None = None
    steps_repeated: int | None = None
    wandb_run_id: str | None = None

    @property
    def final(self) -> bool:
        """The run recorded its end: nothing may overwrite it with another end."""
        return self.state in ("succeeded", "failed")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = STATUS_NAME) -> RunStatus:
        """Parse a stored status; unknown keys (written by newer versions) are ignored."""
        fix = "delete the status file or write a valid one"
        if not isinstance(data, Mapping) or data.get("state") not in STATES:
            raise InputError(
                f"not a run status: state must be one of {', '.join(STATES)}",
                file=source,
                field="state",
                fix=fix,
            )
        known = {f.name: f.type for f in fields(cls)}
        for key, value in data.items():
            kind = _KINDS.get(str(known.get(key)), str)
            if key in known and key != "state" and value is not None and not _is(value, kind):
                found = type(value).__name__
                raise InputError(f"expected {known[key]}, found {found}", file=source, field=key, fix=fix)
        return cls(**{k: v for k, v in data.items() if k in known})


# The JSON types of RunStatus's annotations (bool is an int to Python, never to a status).
_KINDS: dict[str, type | tuple[type, ...]] = {"int | None": int, "float | None": (int, float)}


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def read_status(store: ModelStore, basename: str) -> RunStatus | None:
    """The published status of a config's latest run, or None when it never reported."""
    data = store.fetch_status(basename)
    if data is None:
        return None
    return RunStatus.from_dict(data, f"{store.location(basename)}/{STATUS_NAME}")


def write_status(
    store: ModelStore,
    basename: str,
    status: RunStatus,
    *,
    results_file: Path | None = None,
    log_files: Sequence[Path] = (),
    baseline_file: Path | None = None,
) -> str:
    """Publish the status (last, after results and logs: a reader that sees it sees them)."""
    return store.publish(
        RunArtifacts(
            basename,
            results_file=results_file,
            baseline_file=baseline_file,
            log_files=tuple(p for p in log_files if p.is_file()),
            status=status.to_dict(),
        )
    )


def is_final(status: RunStatus | None) -> bool:
    return status is not None and status.final
