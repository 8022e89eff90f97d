"""What a pod tells the world: its status and logs in the model store, then GitHub's dispatch.

Results and status reach the store before GitHub is told, so a lost dispatch is recovered by the
scheduled collect. Every call here survives a failing service: it logs and the pod goes on ending.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from haha import clock
from haha.errors import HahaError
from haha.podenv import PodEnv
from haha.runstatus import RunStatus, write_status
from haha.settings import Settings
from haha.store.base import LOGS_DIR, ModelStore, RunArtifacts

Log = Callable[[str], None]
PUBLISH_TRIES = 3


class RunRecord:
    """One run's status as the pod reports it: `running`, then one end."""

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], ModelStore],
        pod: PodEnv,
        started: datetime,
        config_sha256: str | None,
        log: Log,
    ) -> None:
        self.settings, self._store, self.pod, self.started = settings, store, pod, started
        self.config_sha256, self.log = config_sha256, log
        self.gpu_type: str | None = None
        self.cost_per_hour: float | None = None
        self.baseline_from: datetime | None = None  # when the pod started its baseline, if it did
        self.carried: dict[str, object] = {}  # interruptible pods: haha.resume.carried

    def status(self, state: str, now: datetime, reason: str | None = None) -> RunStatus:
        final = state != "running"
        return RunStatus(
            state=state,  # type: ignore[arg-type]
            mode=self.pod.mode,
            reason=reason,
            pod_id=self.pod.pod_id,
            pod_name=self.pod.pod_name or None,
            gpu_type=self.gpu_type,
            gpu_count=self.pod.gpu_count,
            cost_per_hour=self.cost_per_hour,
            git_ref=self.pod.ref or None,
            config_sha256=self.config_sha256,
            pr=self.pod.pr,
            started_at=clock.stamp(self.started),
            deadline=clock.stamp(self.pod.deadline),
            finished_at=clock.stamp(now) if final else None,
            pod_seconds=round((now - self.started).total_seconds(), 1) if final else None,
            log_location=f"{self._store().location(self.pod.basename)}/{LOGS_DIR}/pod.log",
            budget_override=self.pod.budget_override,
            **self.carried,  # type: ignore[arg-type]
        )

    def add_cost(self, results: Path, now: datetime) -> None:
        """The pod's phases (boot, baseline, teardown) and its bill, into the results file (pod/cost.py)."""
        from haha.pod.cost import pod_cost
        from haha.results import write_results

        try:
            document = json.loads(results.read_text())
            meta = document.setdefault("meta", {})
            meta["phases"], meta["cost"] = pod_cost(
                meta, self.pod, self.settings, (self.gpu_type, self.cost_per_hour, self.started),
                self.baseline_from, now,
            )  # fmt: skip
            write_results(document, results)
        except (OSError, ValueError, HahaError) as exc:  # the results stand without it
            self.log(f"results: could not record the pod's phases and cost: {exc}")

    def running(self, now: datetime) -> None:
        try:
            write_status(self._store(), self.pod.basename, self.status("running", now))
        except Exception as exc:
            self.log(f"store: could not record the start: {exc}")

    def upload_logs(self, logs: Sequence[Path]) -> None:
        try:
            self._store().publish(RunArtifacts(self.pod.basename, log_files=tuple(logs)))
        except Exception as exc:
            self.log(f"store: log upload failed: {exc}")

    def finish(
        self, status: RunStatus, results: Path | None, logs: Sequence[Path], baseline: Path | None = None
    ) -> bool:
        """Results (when good, with the pod's phases and bill), logs, a baseline and the final status,
        with retries; then the dispatch."""
        if results is not None:
            self.add_cost(results, clock.now())
        published = False
        for attempt in range(1, PUBLISH_TRIES + 1):
            try:
                write_status(
                    self._store(),
                    self.pod.basename,
                    status,
                    results_file=results,
                    log_files=logs,
                    baseline_file=baseline,
                )
                published = True
                break
            except Exception as exc:
                self.log(f"store: publish attempt {attempt} failed: {exc}")
                time.sleep(self.settings.retry_backoff_s * attempt)
        self._notify(status, published)
        return published

    def _notify(self, status: RunStatus, published: bool) -> None:
        if self.settings.github_token is None:
            self.log("notify: no GitHub token; the scheduled collect will pick the run up")
            return
        from haha.notify import dispatch_run_finished

        payload: dict[str, object] = {
            "state": status.state,
            "mode": status.mode,
            "pod_id": status.pod_id or "",
            "published": published,
        }
        if status.reason:
            payload["reason"] = status.reason[:500]
        try:
            dispatch_run_finished(self.settings, self.pod.basename, payload)
            self.log("notify: repository_dispatch sent")
        except Exception as exc:
            self.log(f"notify: dispatch failed ({exc}); the scheduled collect will pick the run up")
