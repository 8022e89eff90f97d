"""A pod and its provider: which pod this is, what it costs, ending it (with retries), recording a failure.

Used by `haha pod` on every path, by boot.sh's EXIT trap (`haha pod-terminate`) and by the deadline
watchdog. `terminate_self` reports failure instead of raising, so its caller can try the next layer
(boot.sh falls back to `runpodctl`; the reaper is last).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from haha import clock
from haha.compute.base import Compute
from haha.podenv import PodEnv
from haha.runstatus import RunStatus, is_final, read_status, write_status
from haha.settings import Settings
from haha.store import get_store

Log = Callable[[str], None]
TERMINATE_TRIES = 4
_CARRIED = (
    "mode", "pod_id", "pod_name", "gpu_type", "gpu_count", "cost_per_hour", "git_ref", "config_sha256", "pr",
    "started_at", "deadline", "budget_override",
)  # fmt: skip


def self_pod(settings: Settings, pod: PodEnv) -> tuple[Compute, str] | None:
    """This pod's Compute and id (None outside a pod: `haha pod` run by hand)."""
    if pod.pod_id is None:
        return None
    if pod.compute == "runpod":
        from haha.compute.runpod import RunPodCompute

        return RunPodCompute(settings), pod.pod_id
    if pod.local is not None:
        from haha.compute.local import LocalCompute

        return LocalCompute(settings, Path(pod.local.compute_root)), pod.pod_id
    return None


def describe_self(settings: Settings, pod: PodEnv, log: Log) -> tuple[str | None, float | None]:
    """(GPU type, price per hour) as the provider reports this pod: collect prices runs from it."""
    found = self_pod(settings, pod)
    if found is None:
        return None, None
    compute, pod_id = found
    try:
        if settings.cluster:  # a node: the cluster is what is billed (its member pods are not listed)
            me = compute.find_cluster(pod.pod_name)
        else:
            me = next((p for p in compute.list_pods() if p.id == pod_id), None)
    except Exception as exc:
        log(f"pod: could not look this pod up: {exc}")
        return None, None
    return (me.gpu_type or None, me.cost_per_hour) if me else (None, None)


def terminate_self(
    settings: Settings,
    pod: PodEnv,
    log: Log,
    tries: int = TERMINATE_TRIES,
) -> bool:
    """Terminate this pod (True outside one: nothing to do). Never raises: it is last on every path.

    Between tries it waits `settings.retry_backoff_s`, doubled each time."""
    found = self_pod(settings, pod)
    if found is None:
        log("teardown: not in a pod, nothing to terminate")
        return True
    compute, pod_id = found
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a local pod is in our own process group
    for attempt in range(1, tries + 1):
        log(f"teardown: terminating {compute.kind} pod {pod_id} (try {attempt} of {tries})")
        try:
            target = cluster_of(compute, pod) if settings.cluster else pod_id
            if target is None:
                log(f"teardown: no {compute.kind} cluster named {pod.pod_name} is left; nothing to end")
                return True
            compute.terminate(target)
            return True
        except Exception as exc:
            log(f"teardown: could not terminate {pod_id}: {exc}")
        if attempt < tries:
            time.sleep(settings.retry_backoff_s * 2 ** (attempt - 1))
    log(f"teardown: {pod_id} is still up; the next layer (runpodctl, then the reaper) must end it")
    return False


def cluster_of(compute: Compute, pod: PodEnv) -> str | None:
    """The id of this node's cluster (None: it is gone): ending it ends every node, and a node alone
    is not ended. The provider sets no variable for the id (docs.runpod.io/instant-clusters/
    configuration), so it is looked up by the name launch gave the cluster."""
    found = compute.find_cluster(pod.pod_name)
    return found.id if found else None


def mark_failed_if_unfinished(
    settings: Settings,
    root: Path,
    pod: PodEnv,
    reason: str,
    log_files: Sequence[Path],
    log: Log,
) -> bool:
    """boot.sh's trap: record a failure unless the run already recorded its end.

    What the pod was told (its PR above all) goes into the record even when the run never started,
    so the failure still reaches the PR that started it.
    """
    store = get_store(settings, root)
    basename = pod.basename
    current = read_status(store, basename)
    if is_final(current):
        return False
    failed = RunStatus(
        state="failed",
        reason=reason,
        finished_at=clock.stamp(),
        log_location=f"{store.location(basename)}/logs/",
        **(_carried(current) if current else _told(pod)),
    )
    write_status(store, basename, failed, log_files=log_files)
    log(f"store: marked {basename} failed: {reason}")
    return True


def _carried(status: RunStatus) -> dict[str, object]:
    """What a `running` status knew about the run (pod, PR, price), kept in the failure record."""
    return {k: getattr(status, k) for k in _CARRIED}


def _told(pod: PodEnv) -> dict[str, object]:
    """What launch told the pod, for a run that failed before it recorded anything."""
    return {
        "mode": pod.mode,
        "pod_id": pod.pod_id,
        "pod_name": pod.pod_name or None,
        "git_ref": pod.ref or None,
        "pr": pod.pr,
        "deadline": clock.stamp(pod.deadline),
        "budget_override": pod.budget_override,
    }
