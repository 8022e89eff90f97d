"""A `haha: {nodes: 2}` config rented as one RunPod Instant Cluster, against the strict REST fake.

`haha plan` (the CLI, JSON), `launch` and `reap` with the real RunPodCompute; the cluster calls go over
RunPod's REST API v2 (tests/fakes/runpod_clusters.py holds each rule to RunPod's OpenAPI document).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from check_helpers import edit_config, git
from fakes.runpod_graphql import RunPodFake
from haha.compute.runpod import RunPodCompute
from haha.errors import InputError, ServiceError
from haha.launch import launch
from haha.podname import PodName
from haha.reap import reap
from haha.repo import Repo
from haha.settings import load_settings
from haha.store import RunArtifacts, get_store
from test_multigpu_launch import TWO, root  # noqa: F401 (the fixture)
from test_orchestrate import DIGEST, ENV, H100, NOW

pytest_plugins = ["fakes.fixtures"]

A100 = "NVIDIA A100-SXM4-80GB"


@pytest.fixture
def nodes(root: Path) -> Path:  # noqa: F811
    edit_config(root, f"train/config/{TWO}.yml", haha={"gpus": 2, "nodes": 2, "gpu_types": [H100, A100]})
    git(root, "commit", "-qam", "two nodes of two GPUs")
    return root


def haha_plan(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haha.cli", "plan", "--repo", str(repo)],
        env={**os.environ, **ENV, "HAHA_COMPUTE": "runpod"},
        capture_output=True,
        text=True,
    )


def do_launch(repo: Path) -> list:
    settings = load_settings(repo, ENV)
    compute = RunPodCompute(settings, backoff_s=0)
    return launch(Repo(repo), settings, compute, get_store(settings, repo), (), NOW, lambda m: None)


def test_a_nodes_config_is_planned_and_rented_as_one_cluster(nodes: Path, runpod_api: RunPodFake) -> None:
    done = haha_plan(nodes)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["include"]
    assert (run["config"], run["gpus"], run["nodes"]) == (TWO, 2, 2)

    (launched,) = do_launch(nodes)

    assert runpod_api.calls("podFindAndDeployOnDemand") == []  # no lone pod: it would wait forever
    (create,) = runpod_api.calls("createCluster")
    assert create["type"] == "TRAINING" and create["image"] == DIGEST
    assert create["compute"] == {"gpuTypeId": H100, "gpuCountPerPod": 2, "podCount": 2}
    assert create["name"] == launched.pod.name and create["env"]["HAHA_BASENAME"] == TWO
    assert create["env"]["HF_TOKEN"] == ENV["HF_TOKEN"]  # secrets travel as a pod's do
    assert launched.pod.id in runpod_api.clusters and launched.pod.nodes == 2

    # In flight now: a second plan (a re-run of the merge's workflow) rents nothing more.
    again = haha_plan(nodes)
    assert json.loads(again.stdout)["include"] == [] and TWO in json.loads(again.stdout)["in_flight"]
    assert do_launch(nodes) == [] and len(runpod_api.calls("createCluster")) == 1


def test_dry_run_prints_the_create_cluster_request_and_sends_nothing(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "haha.cli", "launch", "--dry-run", TWO, "--repo", str(nodes)],
        env={**os.environ, **ENV, "HAHA_COMPUTE": "runpod"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (request,) = json.loads(done.stdout)
    assert request["mutation"] == "POST /v2/clusters"
    assert request["input"]["compute"] == {"gpuTypeId": H100, "gpuCountPerPod": 2, "podCount": 2}
    assert request["input"]["env"]["HF_TOKEN"] == "$HF_TOKEN" and ENV["HF_TOKEN"] not in done.stdout
    assert runpod_api.requests == []


def test_no_capacity_for_the_first_gpu_type_rents_the_next(nodes: Path, runpod_api: RunPodFake) -> None:
    runpod_api.out_of_stock = {H100}
    (launched,) = do_launch(nodes)
    assert [c["compute"]["gpuTypeId"] for c in runpod_api.calls("createCluster")] == [H100, A100]
    assert launched.pod.gpu_type == A100


def test_a_create_that_answered_502_but_went_through_is_not_made_twice(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    runpod_api.http_errors = {"createCluster": 1}
    (launched,) = do_launch(nodes)
    assert len(runpod_api.calls("createCluster")) == 2  # the 502 (nothing made), then the retry
    assert list(runpod_api.clusters) == [launched.pod.id]


def test_a_private_image_is_refused_before_runpod_is_asked(nodes: Path, runpod_api: RunPodFake) -> None:
    toml = nodes / "haha.toml"
    toml.write_text(toml.read_text().replace('registry_auth_id = ""', 'registry_auth_id = "cr-ghcr-1"'))
    git(nodes, "commit", "-qam", "private image")
    with pytest.raises(InputError) as caught:
        do_launch(nodes)
    assert caught.value.location.field == "compute.registry_auth_id" and "public" in (caught.value.fix or "")
    assert runpod_api.calls("createCluster") == []


def test_an_interruptible_nodes_config_is_not_planned(nodes: Path, runpod_api: RunPodFake) -> None:
    edit_config(nodes, f"train/config/{TWO}.yml", haha={"gpus": 2, "nodes": 2, "interruptible": True})
    git(nodes, "commit", "-qam", "spot cluster")
    done = haha_plan(nodes)
    assert done.returncode == 2, done.stderr
    (error,) = json.loads(done.stdout)["errors"]
    assert error["config"] == TWO and "on-demand only" in error["error"]
    assert do_launch(nodes) == [] and runpod_api.calls("createCluster") == []


def test_terminate_deletes_the_whole_cluster_and_is_idempotent(nodes: Path, runpod_api: RunPodFake) -> None:
    (launched,) = do_launch(nodes)
    compute = RunPodCompute(load_settings(nodes, ENV))
    assert [p.id for p in compute.list_pods() if p.nodes == 2] == [launched.pod.id]

    compute.terminate(launched.pod.id)
    compute.terminate(launched.pod.id)  # gone: nothing to do, no error

    assert runpod_api.clusters == {} and list(runpod_api.deleted_clusters) == [launched.pod.id]
    # One DELETE for the whole cluster (not one per node); the second call's DELETE found nothing.
    assert [c["id"] for c in runpod_api.calls("deleteCluster")] == [launched.pod.id] * 2


def test_the_reaper_deletes_a_cluster_past_its_deadline_and_fails_the_run(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    (launched,) = do_launch(nodes)
    settings = load_settings(nodes, ENV)
    store = get_store(settings, nodes)
    store.publish(RunArtifacts(TWO, status={"state": "running", "pod_id": launched.pod.id}))
    deadline = PodName.parse(launched.pod.name).deadline  # type: ignore[union-attr]

    assert reap(RunPodCompute(settings), store, settings, deadline - timedelta(minutes=1), print) == []
    (reaped,) = reap(RunPodCompute(settings), store, settings, deadline + timedelta(minutes=1), print)

    assert reaped.reap.pod.id == launched.pod.id and runpod_api.clusters == {}
    assert store.fetch_status(TWO)["state"] == "failed"


def test_the_reaper_ends_a_cluster_still_up_after_its_run_and_keeps_the_runs_end(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    """Node 0's delete failed (say its pod key may not use the REST API): the account's reaper ends it."""
    (launched,) = do_launch(nodes)
    settings = load_settings(nodes, ENV)
    store = get_store(settings, nodes)
    finished = NOW + timedelta(minutes=30)
    ended = {"state": "succeeded", "pod_id": "member-0", "pod_name": launched.pod.name}
    store.publish(RunArtifacts(TWO, status=ended | {"finished_at": finished.isoformat()}))

    assert reap(RunPodCompute(settings), store, settings, finished + timedelta(minutes=5), print) == []
    (reaped,) = reap(RunPodCompute(settings), store, settings, finished + timedelta(minutes=11), print)

    assert reaped.reap.outlived and not reaped.marked_failed and runpod_api.clusters == {}
    assert store.fetch_status(TWO)["state"] == "succeeded"


def test_listing_fails_loudly_on_a_5xx_and_a_graphql_only_key_sees_no_clusters_but_cannot_end_one(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    (launched,) = do_launch(nodes)
    compute = RunPodCompute(load_settings(nodes, ENV))
    runpod_api.http_errors = {"listClusters": 1}
    with pytest.raises(ServiceError, match="could not list clusters"):
        compute.list_pods()
    runpod_api.rest_refused = True  # a key restricted to GraphQL: 403 from the REST API
    assert [p for p in compute.list_pods() if p.nodes > 1] == []  # plan and reap go on, with a warning
    with pytest.raises(ServiceError, match="could not look up cluster"):  # a node ending its cluster
        compute.find_cluster(launched.pod.name)
    assert launched.pod.id in runpod_api.clusters


def test_a_cluster_delete_that_got_no_answer_is_an_error_not_a_terminated_pod(
    nodes: Path, runpod_api: RunPodFake
) -> None:
    (launched,) = do_launch(nodes)
    compute = RunPodCompute(load_settings(nodes, ENV))
    runpod_api.http_errors = {"deleteCluster": 1}
    with pytest.raises(ServiceError, match="502"):
        compute.terminate(launched.pod.id)  # no pod has that id either: RunPod's answer is not known
    assert launched.pod.id in runpod_api.clusters
    compute.terminate(launched.pod.id)  # the caller's retry
    assert runpod_api.clusters == {}


# --- the fake holds the client to RunPod's OpenAPI document ----------------------------------------
def rest(runpod_api: RunPodFake, method: str, path: str, body: object = None, key: str | None = None):
    url = os.environ["RUNPOD_API_BASE_URL"] + path
    headers = {"Authorization": f"Bearer {key or runpod_api.api_key}"}
    return requests.request(method, url, json=body, headers=headers, timeout=10)


def cluster_body(**changes: object) -> dict:
    body = {
        "name": "c",
        "type": "TRAINING",
        "compute": {"gpuTypeId": H100, "gpuCountPerPod": 8, "podCount": 2},
        "image": "docker.io/library/python:3.11",
    }
    return body | changes


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"registry": {"id": "cr-1"}}, "registry"),  # "Private registries are not yet supported"
        ({"allowedCudaVersions": ["12.8"]}, "allowedCudaVersions"),  # no CUDA filter on clusters
        ({"compute": {"gpuTypeId": H100, "gpuCountPerPod": 8, "podCount": 1}}, "less than the minimum"),
        ({"compute": {"gpuTypeId": H100, "gpuCountPerPod": 0, "podCount": 2}}, "less than the minimum"),
        ({"type": "SPOT"}, "is not one of"),
        ({"env": {"N": 1}}, "is not of type 'string'"),
    ],
)
def test_the_fake_refuses_what_createcluster_refuses(
    runpod_api: RunPodFake, changes: dict, error: str
) -> None:
    reply = rest(runpod_api, "POST", "/v2/clusters", cluster_body(**changes))
    assert reply.status_code == 422 and reply.headers["Content-Type"] == "application/problem+json"
    assert any(error in e for e in reply.json()["errors"]), reply.json()
    assert runpod_api.clusters == {}


def test_the_fake_places_a_cluster_in_one_data_center_and_answers_a_cluster(runpod_api: RunPodFake) -> None:
    assert rest(runpod_api, "GET", "/v2/clusters", key="wrong").status_code == 401
    made = rest(runpod_api, "POST", "/v2/clusters", cluster_body())
    assert made.status_code == 201, made.text
    cluster = made.json()
    assert cluster["compute"]["podCount"] == 2 and cluster["dataCenterId"]
    assert datetime.fromisoformat(cluster["createdAt"]).tzinfo == UTC
    # The fake's data center has two hosts of each GPU type, 8 GPUs each: a third node finds no room.
    three = rest(
        runpod_api, "POST", "/v2/clusters", cluster_body(compute={**cluster["compute"], "podCount": 3})
    )
    assert three.status_code == 400 and "no longer any instances" in three.json()["detail"]
    assert rest(runpod_api, "DELETE", f"/v2/clusters/{cluster['id']}").status_code == 204
    assert rest(runpod_api, "GET", f"/v2/clusters/{cluster['id']}").status_code == 404


def test_nodes_configs_never_share_a_pod(nodes: Path, runpod_api: RunPodFake) -> None:
    """With configs_per_pod = 2, two one-pod configs share; two cluster configs get a cluster each."""
    three = "haha-smollm2-135m-lora-003"
    (nodes / f"train/config/{three}.yml").write_text((nodes / f"train/config/{TWO}.yml").read_text())
    toml = nodes / "haha.toml"
    text = toml.read_text()
    assert "\nconfigs_per_pod = 1" in text
    toml.write_text(text.replace("\nconfigs_per_pod = 1", "\nconfigs_per_pod = 2"))
    git(nodes, "add", "-A")
    git(nodes, "commit", "-qm", "a second two-node config; pods shared by two")
    plan = json.loads(haha_plan(nodes).stdout)
    assert [(r["config"], r.get("pod")) for r in plan["include"]] == [(TWO, None), (three, None)]
    for name in (TWO, three):  # the control: the same two configs on one pod each do share
        edit_config(nodes, f"train/config/{name}.yml", haha={"gpus": 2, "gpu_types": [H100, A100]})
    git(nodes, "commit", "-qam", "one pod each")
    shared = json.loads(haha_plan(nodes).stdout)["include"]
    assert [(r["config"], r.get("pod")) for r in shared] == [(TWO, [TWO, three])]
    edit_config(nodes, f"train/config/{TWO}.yml", haha={"gpus": 2, "nodes": 2, "gpu_types": [H100, A100]})
    edit_config(nodes, f"train/config/{three}.yml", haha={"gpus": 2, "nodes": 2, "gpu_types": [H100, A100]})
    git(nodes, "commit", "-qam", "two nodes again")
    do_launch(nodes)
    assert [c["env"]["HAHA_BASENAME"] for c in runpod_api.calls("createCluster")] == [TWO, three]
