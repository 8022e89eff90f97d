"""A shared pod (HAHA_BASENAMES): its configs run one after another, each as its own run.

Each config gets a `PodRun` of its own: its own status (started_at when its turn came; the first one's
is when the container started, so the boot is billed once), results, logs, W&B run, Hub repo and
dispatch. A failed config does not stop the next. Each has its own deadline, `deadline_hours` from
when its turn came but never past the pod's: the watchdog stops only the config that overruns. A
config whose turn comes after the pod's deadline, or after a signal ended the pod, is marked failed
without running; but where RunPod preempted an interruptible pod, the configs that did not run are left
without a record (plan starts them afresh) and the one it stopped stays `running` (plan resumes it).
The pod terminates once, after the last config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from haha import clock
from haha.pod.lifecycle import PodRun
from haha.pod.teardown import mark_failed_if_unfinished, terminate_self
from haha.pod.watchdog import LOG_INTERVAL_S
from haha.podenv import PodEnv
from haha.repo import Repo
from haha.settings import Settings

Log = Callable[[str], None]


def each_config(pod: PodEnv) -> list[PodEnv]:
    """The pod's env as each of its configs sees it (a pod of one config: just itself)."""
    return [replace(pod, basename=b) for b in pod.basenames] if pod.basenames else [pod]


def turn(pod: PodEnv, basename: str, first: bool, start: datetime, hours: float) -> PodEnv:
    """One config's env in a shared pod: its name, its own deadline within the pod's, and the pod's
    launch, boot and the gate's prediction only for the first (launch predicted the first config;
    later configs start their clock, and their bill, when their turn comes: meta.phases has no boot)."""
    deadline = min(pod.deadline, start + timedelta(hours=hours))
    if first:
        return replace(pod, basename=basename, deadline=deadline)
    later = {"boot_epoch": None, "launched_at": None, "prediction": None}
    return replace(pod, basename=basename, deadline=deadline, **later)


class SharedPodRun:
    """`haha pod` for a pod that names several configs. `run()` returns 0 when every config succeeded."""

    def __init__(
        self,
        repo: Repo,
        settings: Settings,
        pod: PodEnv,
        log: Log,
        now: Callable[[], datetime] = clock.now,
        log_interval_s: float = LOG_INTERVAL_S,
    ) -> None:
        self.repo, self.settings, self.pod, self.log, self.now = repo, settings, pod, log, now
        self.log_interval_s = log_interval_s

    def run(self) -> int:
        codes: list[int] = []
        stop: str | None = None
        preempted = False
        try:
            for i, basename in enumerate(self.pod.basenames):
                start = self.now()
                if stop is None and start >= self.pod.deadline:
                    stop = (
                        f"the shared pod's deadline {clock.stamp(self.pod.deadline)} passed before its turn"
                    )
                if stop is not None:
                    self._skip(basename, stop, record=not preempted)
                    codes.append(1)
                    continue
                self.log(f"pod: shared pod, config {i + 1} of {len(self.pod.basenames)}: {basename}")
                hours = self.settings.compute.deadline_hours
                one = PodRun(
                    self.repo,
                    self.settings,
                    basename,
                    self.log,
                    self.now,
                    self.log_interval_s,
                    pod=turn(self.pod, basename, i == 0, start, hours),
                    terminate=False,
                )
                codes.append(one.run())
                if one.preempted:  # the pod is gone: what has not run is planned again, not failed
                    stop, preempted = "the interruptible pod was preempted before its turn", True
                elif one.interrupted:
                    stop = "the shared pod was stopped before its turn"
        finally:
            terminate_self(self.settings, self.pod, self.log)
        return 0 if codes and not any(codes) else 1

    def _skip(self, basename: str, reason: str, record: bool = True) -> None:
        """A config whose turn never came: recorded failed, unless the pod was preempted (its status
        stays as it was, so `haha plan` launches it afresh: it lost nothing and did not fail)."""
        self.log(f"pod: {basename}: not run: {reason}")
        if not record:
            return
        try:
            mark_failed_if_unfinished(
                self.settings, self.repo.root, replace(self.pod, basename=basename), reason, [], self.log
            )
        except Exception as exc:  # the next config and the teardown matter more than this record
            self.log(f"store: could not record {basename} as failed: {exc}")


def run_pod(repo: Repo, settings: Settings, basename: str, log: Log) -> int:
    """`haha pod`: a cluster's worker node, a shared pod when its env names several configs, else the
    one config's run."""
    from haha.pod.worker import is_worker, run_worker

    if is_worker(settings):  # a cluster's node other than 0: it trains, node 0 does the rest
        return run_worker(repo, settings, basename, log)
    pod = settings.pod_env(basename, clock.now())
    if len(pod.basenames) > 1:
        return SharedPodRun(repo, settings, pod, log).run()
    return PodRun(repo, settings, basename, log).run()
