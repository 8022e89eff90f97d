"""`haha pod` and `haha pod-terminate` on the nodes of a RunPod Instant Cluster, as processes with the
variables RunPod sets on every node, against the RunPod fake's cluster API (no containers: the cluster
exists, these processes are its nodes)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from check_helpers import edit_config, git, make_git_repo
from fakes.github_api import GitHubFake
from fakes.runpod_graphql import RunPodFake
from haha import clock
from haha.compute.base import PodSpec
from haha.compute.local import TERMINATED, group_alive
from haha.compute.runpod import RunPodCompute
from haha.settings import load_settings
from test_pod_flow import (  # noqa: F401 (github, repo_root: fixtures)
    dump_logs,
    github,
    launch_local,
    repo_root,
    run_argv,
    statuses,
    store_of,
    wait_done,
)

pytest_plugins = ["fakes.fixtures"]

FAKE_RUN = Path(__file__).parent / "pod_scripts" / "fake_run.py"
SMOL = "haha-smollm2-135m-lora-001"
NAME = f"haha-{SMOL}-1a2b3c4-20261128T0300Z"


@pytest.fixture
def cluster(tmp_path: Path, runpod_api: RunPodFake) -> tuple[Path, str]:
    """A repo, and a two-node cluster named as launch names it (its nodes are the processes below)."""
    root = make_git_repo(tmp_path)
    settings = load_settings(root, {"RUNPOD_API_KEY": runpod_api.api_key})
    spec = PodSpec(NAME, "docker.io/synagi/haha-pod@sha256:" + "0" * 64, (runpod_api.gpus[0]["id"],), nodes=2)
    return root, RunPodCompute(settings).launch(spec).id


def node_env(runpod_api: RunPodFake, rank: int, deadline_s: float, behaviour: str = "ok") -> dict[str, str]:
    """What the node's container has: RunPod's cluster variables and pod id, and what launch told it."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HAHA_", "RUNPOD_POD"))},
        "RUNPOD_API_KEY": runpod_api.api_key,
        "RUNPOD_POD_ID": f"member-{rank}",
        "NUM_NODES": "2",
        "NODE_RANK": str(rank),
        "PRIMARY_ADDR": "127.0.0.1",
        "NUM_TRAINERS": "1",
        "HAHA_COMPUTE": "runpod",
        "HAHA_STORE": "local",
        "HAHA_BASENAME": SMOL,
        "HAHA_POD_NAME": NAME,
        "HAHA_DEADLINE": clock.stamp(clock.now() + timedelta(seconds=deadline_s)),
        "HAHA_RUN_ARGV": json.dumps([sys.executable, str(FAKE_RUN), behaviour]),
        "HAHA_RETRY_BACKOFF_S": "0",
    }


def haha(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haha.cli", *args, "--repo", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_worker_trains_then_stays_up_until_the_deadline_ends_the_cluster(
    cluster: tuple[Path, str], runpod_api: RunPodFake
) -> None:
    root, cluster_id = cluster
    started = time.monotonic()
    done = haha(root, "pod", SMOL, env=node_env(runpod_api, 1, deadline_s=6))

    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 5  # it waited for node 0 (which never ended the cluster)
    assert [d["id"] for d in runpod_api.calls("deleteCluster")] == [cluster_id]
    assert runpod_api.calls("podTerminate") == []  # a node alone is never terminated
    store = root / load_settings(root, {}).store.local_path / SMOL
    assert (store / "logs" / "node-1.log").is_file()
    assert not (store / "status.json").exists()  # node 0 owns the run's status


def test_a_worker_whose_training_hangs_is_stopped_at_the_deadline(
    cluster: tuple[Path, str], runpod_api: RunPodFake
) -> None:
    root, cluster_id = cluster
    done = haha(root, "pod", SMOL, env=node_env(runpod_api, 1, deadline_s=4, behaviour="sleep"))
    assert done.returncode == 1, done.stderr
    assert [d["id"] for d in runpod_api.calls("deleteCluster")] == [cluster_id]


def test_a_worker_whose_training_crashes_ends_the_cluster_at_once(
    cluster: tuple[Path, str], runpod_api: RunPodFake
) -> None:
    root, cluster_id = cluster
    started = time.monotonic()
    done = haha(root, "pod", SMOL, env=node_env(runpod_api, 1, deadline_s=600, behaviour="train-crash"))
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 60  # not at the deadline, ten minutes away
    assert [d["id"] for d in runpod_api.calls("deleteCluster")] == [cluster_id]
    store = root / load_settings(root, {}).store.local_path / SMOL
    assert "Traceback" in (store / "logs" / "node-1.log").read_text()  # why, for whoever reads the failure
    # boot.sh's EXIT trap on this node then: node 0 owns the run's record, so none is written here.
    trap = haha(root, "pod-terminate", "--basename", SMOL, "--rc", "1", env=node_env(runpod_api, 1, 600))
    assert trap.returncode == 0, trap.stderr
    assert not (store / "status.json").exists()


def test_node_zero_cannot_end_its_cluster_when_its_key_may_not_see_clusters(
    cluster: tuple[Path, str], runpod_api: RunPodFake
) -> None:
    """Not "nothing to end": the teardown fails, so boot.sh tries its next layer and the reaper knows."""
    root, cluster_id = cluster
    runpod_api.rest_refused = True
    done = haha(root, "pod-terminate", env=node_env(runpod_api, 0, deadline_s=600))
    assert done.returncode == 1, done.stderr
    assert cluster_id in runpod_api.clusters


def test_node_zeros_teardown_deletes_the_cluster_and_a_second_finds_it_gone(
    cluster: tuple[Path, str], runpod_api: RunPodFake
) -> None:
    root, cluster_id = cluster
    env = node_env(runpod_api, 0, deadline_s=600)
    first = haha(root, "pod-terminate", env=env)
    again = haha(root, "pod-terminate", env=env)  # boot.sh's trap after `haha pod`'s own teardown

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert runpod_api.clusters == {} and list(runpod_api.deleted_clusters) == [cluster_id]
    assert [d["id"] for d in runpod_api.calls("deleteCluster")] == [cluster_id]
    assert runpod_api.calls("podTerminate") == []


def test_a_local_cluster_runs_its_nodes_on_this_machine_and_node_zero_ends_them(
    repo_root: Path,  # noqa: F811
    github: GitHubFake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--compute local`: one record, a process per node with RunPod's variables on loopback, each its
    own checkout; node 0 publishes (the stand-in run), the worker waits, node 0 ends both."""
    run_argv(monkeypatch, "ok")
    edit_config(repo_root, f"train/config/{SMOL}.yml", haha={"nodes": 2})
    git(repo_root, "commit", "-qam", "two nodes")
    (launched,) = launch_local(repo_root, (SMOL,))
    assert launched.pod.nodes == 2
    wait_done(repo_root)

    store = store_of(repo_root)
    assert store.fetch_status(SMOL)["state"] == "succeeded", dump_logs(repo_root)
    assert store.fetch_log(SMOL, "node-1.log") is not None  # the worker ran and uploaded its log
    assert statuses(repo_root) == [TERMINATED]  # one record, ended by node 0's teardown
    (record,) = [json.loads(p.read_text()) for p in (repo_root / ".haha" / "pods").glob("local-*.json")]
    pids = [m["pid"] for m in record["members"]]
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "a node outlived its cluster"


def alive(pid: int) -> bool:
    """A node's process group still has a live process (its leader, our child, reaped first)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return group_alive(pid)
    assert [d["client_payload"]["basename"] for d in github.dispatches] == [SMOL]  # node 0 alone
