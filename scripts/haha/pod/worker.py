"""`haha pod` on a worker node of a cluster (NODE_RANK above 0): train with the others, then wait.

Node 0 owns the run: it evaluates, records the status, publishes and ends the cluster (deleting a
cluster stops every node in it). A worker only trains: `haha run` returns after training there. Its
container then stays up, because one that exits may be started again and would train alone. It waits
until the cluster is deleted (SIGTERM) or the pod's deadline passes. At the deadline it ends the
cluster itself: node 0 is gone or stuck, and the reaper would otherwise be last. A node whose training
failed ends the cluster at once: the run cannot finish without it, and node 0, stopped, records the
failure (its SIGTERM path) while this node's log says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from haha import clock
from haha.pod.child import ChildRun
from haha.pod.lifecycle import child_env, run_argv
from haha.pod.teardown import terminate_self
from haha.podenv import PodEnv
from haha.repo import Repo
from haha.settings import Settings
from haha.store import get_store
from haha.store.base import RunArtifacts
from haha.workspace import workdir_for

Log = Callable[[str], None]
WAIT_STEP_S = 30.0


def is_worker(settings: Settings) -> bool:
    """This machine is a cluster node other than node 0 (haha.cluster: RunPod's NODE_RANK)."""
    return settings.cluster is not None and not settings.cluster.primary


def run_worker(
    repo: Repo,
    settings: Settings,
    basename: str,
    log: Log,
    now: Callable[[], datetime] = clock.now,
    wait: Callable[[float], object] = time.sleep,
) -> int:
    """Train as this node, upload this node's log, wait for the cluster to end; the run's exit status."""
    assert settings.cluster is not None
    pod = settings.pod_env(basename, now())
    rank, nodes = settings.cluster.node_rank, settings.cluster.num_nodes
    log(f"pod: {pod.basename}: node {rank} of {nodes}; node 0 evaluates, publishes and ends the cluster")
    workdir = workdir_for(repo, pod.basename, settings)
    workdir.mkdir(parents=True, exist_ok=True)
    node_log = workdir / f"node-{rank}.log"
    with node_log.open("a", buffering=1) as out:
        child = ChildRun(out)
        stop = threading.Timer(max((pod.deadline - now()).total_seconds(), 0.0), child.stop)
        stop.daemon = True
        stop.start()
        rc = child.run(run_argv(pod, repo), child_env(settings, pod), repo.root)
        stop.cancel()
    log(f"run: node {rank} exited with status {rc}")
    _upload(settings, repo, pod, node_log, log)
    if rc != 0:  # the run cannot finish without this node: end it now, not at the deadline
        log("pod: this node's training failed; ending the cluster (node 0 records the failure)")
    else:
        while (left := (pod.deadline - now()).total_seconds()) > 0:
            wait(min(left, WAIT_STEP_S))
        log(f"deadline: {clock.stamp(pod.deadline)} passed and the cluster is still up; ending it")
    terminate_self(settings, pod, log)
    return 0 if rc == 0 else 1


def _upload(settings: Settings, repo: Repo, pod: PodEnv, node_log: Path, log: Log) -> None:
    """This node's log beside node 0's (`logs/node-<rank>.log`): a failed rendezvous shows there."""
    try:
        get_store(settings, repo.root).publish(RunArtifacts(pod.basename, log_files=(node_log,)))
    except Exception as exc:  # the log matters less than staying up for node 0
        log(f"store: node log upload failed: {exc}")
