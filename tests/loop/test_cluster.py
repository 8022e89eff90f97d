"""A multi-node run under the real workflows: merge a `haha: {nodes: 2}` config → launch.yml rents one
RunPod Instant Cluster (the fake's REST API v2) → both nodes boot from the image, check out the merge
and train one model together (torchrun's static rendezvous at PRIMARY_ADDR, gloo over loopback) →
node 0 evaluates, publishes and dispatches, then deletes the cluster, which stops node 1 → collect.yml
brings the results back, billed for both nodes. Asserted on what the fakes saw."""

from __future__ import annotations

import json
import re
from pathlib import Path

from loop.configs import experiment_files, small_eval
from loop.harness import SECRETS, Loop
from loop.test_launch import RESULTS_BRANCH, merge_experiment, run_comments

NAME = "haha-tiny-001"


def public_image(root: Path) -> None:
    """The small eval, and the pod image made public: clusters take no registry credentials."""
    small_eval(root)
    toml = root / "haha.toml"
    toml.write_text(re.sub(r'(?m)^registry_auth_id = "[^"]*"', 'registry_auth_id = ""', toml.read_text()))


def test_a_two_node_config_trains_on_one_cluster_and_node_zero_ends_it(make_loop) -> None:
    lp: Loop = make_loop(prepare=public_image, server_seconds=3600)
    lp.runpod.private_images = ()  # the GHCR package set to public, as the gate's fix says
    lp.runpod.pull_seconds = 2.0
    pr, before, sha = merge_experiment(lp, NAME, experiment_files(NAME, haha={"nodes": 2}))
    secrets = {k: v for k, v in SECRETS.items() if k != "WANDB_API_KEY"}  # no W&B fake (see test_launch)

    launch = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert launch.rc == 0, launch.output[-5000:]

    # One cluster of two one-GPU nodes, no lone pod; the run-status comment names it.
    assert lp.runpod.calls("podFindAndDeployOnDemand") == []
    (create,) = lp.runpod.calls("createCluster")
    assert create["compute"]["podCount"] == 2 and create["type"] == "TRAINING"
    assert create["env"]["HAHA_BASENAME"] == NAME and create["env"]["HAHA_REF"] == sha
    (cluster_id,) = lp.runpod.clusters
    (comment,) = run_comments(lp, pr, NAME)
    assert f"Cluster `{cluster_id}` of 2 nodes" in comment["body"]

    # A re-run of the push sees the cluster in flight and rents nothing.
    again = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert again.rc == 0, again.output[-4000:]
    assert len(lp.runpod.calls("createCluster")) == 1

    lp.wait_pods_gone(timeout=3000)
    node0, node1 = f"{cluster_id}-node0", f"{cluster_id}-node1"
    # Each node's container ran once; node 0 deleted the cluster (with its pod-scoped key), once.
    assert lp.runpod.starter.starts == {node0: 1, node1: 1}, lp.pod_logs()
    (delete,) = lp.runpod.queries("deleteCluster")
    assert delete["key"] == "pod" and list(lp.runpod.deleted_clusters) == [cluster_id]
    hub_repo = lp.hub.repos.get(f"synagi/{NAME}")
    assert hub_repo is not None, lp.pod_logs()
    status = json.loads(hub_repo.files["status.json"])
    assert status["state"] == "succeeded", lp.pod_logs()
    assert "logs/node-1.log" in hub_repo.files  # node 1's own log, beside node 0's
    # They trained together: node 1 took half the rows, and only node 0 wrote and published.
    node1_log = hub_repo.files["logs/node-1.log"].decode()
    assert "node 1 of 2" in node1_log and "node 0 evaluates" in node1_log, node1_log[-3000:]
    assert [d["client_payload"]["basename"] for d in lp.github.dispatches] == [NAME]

    # collect.yml: the results in the bot's PR, billed for both nodes' GPUs over the cluster's life.
    lp.checkout("main")
    (dispatch,) = lp.github.dispatches
    collect = lp.act("repository_dispatch", "collect.yml", lp.dispatch_event(dispatch))
    assert collect.rc == 0, collect.output[-5000:]
    document = json.loads(lp.github.show(RESULTS_BRANCH, f"train/results/{NAME}.json"))
    cost = document["meta"]["cost"]
    assert cost["gpu_count"] == 2, cost
    cluster = lp.runpod.deleted_clusters[cluster_id]
    assert abs(cost["billed_seconds"] - (cluster["deletedAt"] - cluster["createdAt"])) < 30, cost
    assert document["meta"]["train"]["nodes"] == 2
