"""RunPod's Instant Clusters as its REST API v2 specifies them, served beside the GraphQL fake.

The source for every rule is RunPod's own OpenAPI document, api-reference-v2/openapi.json in
github.com/runpod/docs (snapshot a900806e, 2026-08-20; rendered at docs.runpod.io/api-reference-v2/
clusters/*), and the Instant Clusters guide (docs.runpod.io/instant-clusters, .../configuration):
- `POST /v2/clusters` (createCluster, 201 Cluster), `GET /v2/clusters` (listClusters, 200
  {clusters}), `GET /v2/clusters/{id}` (getCluster), `DELETE /v2/clusters/{id}` (deleteCluster, 204:
  "Permanently deletes a cluster and terminates all of its member pods"); 404 for an unknown id.
- Bearer auth (`bearerAuth`), else 401; errors are application/problem+json `ErrorResponse`
  {title, status, detail, errors}: 400 for a body that is not JSON, 422 for one the schema refuses.
- The request body is checked against CREATE_CLUSTER below, our transcription of CreateClusterRequest
  (BaseContainerConfig + name, type, compute, dataCenterIds, mounts, startJupyter, startSsh;
  `unevaluatedProperties: false`, so a `registry`, `allowedCudaVersions` or bid field is refused).
- A cluster is placed "always within a single data center" (CreateClusterRequest.dataCenterIds):
  `podCount` hosts of the GPU type there, each with `gpuCountPerPod` free GPUs; none: refused.
- Private registries are "not yet supported for clusters": a private image never pulls, so its
  members never start (and bill, like a pod's failed pull).
- Every member gets the cluster variables (configuration guide): PRIMARY_ADDR/MASTER_ADDR,
  PRIMARY_PORT/MASTER_PORT, NODE_ADDR, NODE_RANK (0: the primary), NUM_NODES, NUM_TRAINERS,
  HOST_NODE_ADDR, WORLD_SIZE; here all on 127.0.0.1, the primary's port a free one.
Unknown, so not modelled: the wording of a capacity refusal (the GraphQL deploy's is reused), whether
member pods also appear in GraphQL `myself.pods` (here they do not), and how RunPod bills a cluster.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jsonschema
from haha.compute.local import free_port

from fakes.server import Reply, Request

if TYPE_CHECKING:
    from fakes.runpod_graphql import Host, RunPodFake

_ID = {"type": "string"}
# CreateClusterRequest and the schemas it names (ClusterType, ClusterCompute, BaseContainerConfig,
# Mounts, PersistentMount, NetworkMount), constraint for constraint.
CREATE_CLUSTER: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "type", "compute"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"enum": ["APPLICATION", "TRAINING", "SLURM", "RAY"]},
        "compute": {
            "type": "object",
            "additionalProperties": False,
            "required": ["gpuTypeId", "gpuCountPerPod", "podCount"],
            "properties": {
                "gpuTypeId": {"type": "string", "minLength": 1},
                "gpuCountPerPod": {"type": "integer", "minimum": 1},
                "podCount": {"type": "integer", "minimum": 2, "maximum": 250},
            },
        },
        "dataCenterIds": {"type": "array", "items": _ID},
        "mounts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "persistent": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["size", "path"],
                    "properties": {"size": {"type": "integer", "minimum": 10}, "path": _ID},
                },
                "network": {
                    "type": "array",
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["volumeId", "path"],
                        "properties": {"volumeId": _ID, "path": _ID},
                    },
                },
            },
        },
        "startJupyter": {"type": "boolean"},
        "startSsh": {"type": "boolean"},
        # BaseContainerConfig
        "args": {"type": "string"},
        "disk": {"type": "integer", "minimum": 1},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "image": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "string"}},
    },
    "unevaluatedProperties": False,
}
_STATUS = {"enum": ["PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED"]}  # PodStatus
# Cluster (the response): what the fake answers is held to it as well.
CLUSTER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "type", "compute", "pods", "createdAt"],
    "properties": {
        "id": _ID,
        "name": _ID,
        "type": CREATE_CLUSTER["properties"]["type"],
        "compute": CREATE_CLUSTER["properties"]["compute"],
        "dataCenterId": _ID,
        "pods": {
            "type": "object",
            "additionalProperties": False,
            "required": ["total", "byStatus"],
            "properties": {
                "total": {"type": "integer"},
                "byStatus": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "primary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["podId", "status"],
            "properties": {"podId": _ID, "status": _STATUS, "sshEndpoint": _ID},
        },
        "createdAt": {"type": "string", "format": "date-time"},
    },
}
_CREATE = jsonschema.Draft202012Validator(CREATE_CLUSTER)
_CLUSTER = jsonschema.Draft202012Validator(CLUSTER)
_ONE = re.compile(r"^/v2/clusters/([^/]+)$")


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> Reply:
    """An `ErrorResponse` as application/problem+json."""
    body = {"title": title, "status": status, "detail": detail, **({"errors": errors} if errors else {})}
    reply = Reply.json(body, status)
    reply.headers["Content-Type"] = "application/problem+json"
    return reply


def handle(fake: RunPodFake, request: Request, key: str) -> Reply:
    """One REST call; `key` is the Bearer token the fake already accepted."""
    from fakes.runpod_graphql import HTML_502, _take

    one = _ONE.match(request.path)
    if request.path == "/v2/clusters" and request.method in ("GET", "POST"):
        operation = "listClusters" if request.method == "GET" else "createCluster"
    elif one and request.method in ("GET", "DELETE"):
        operation = "getCluster" if request.method == "GET" else "deleteCluster"
    else:
        return problem(404, "Not Found", f"no route {request.method} {request.path}")
    request.parsed = {"kind": "rest", "field": operation, "input": None, "key": key}
    if _take(fake.http_errors, operation):
        return Reply(502, HTML_502, {"Content-Type": "text/html"})
    if operation == "createCluster":
        return _create(fake, request)
    if operation == "listClusters":
        return Reply.json({"clusters": [_view(fake, c) for c in fake.clusters.values()]})
    request.parsed["input"] = {"id": one[1]} if one else None
    cluster = fake.clusters.get(one[1]) if one else None
    if cluster is None:
        return problem(404, "Not Found", "cluster not found")
    if operation == "getCluster":
        return Reply.json(_view(fake, cluster))
    _delete(fake, cluster)
    return Reply(204)


def _create(fake: RunPodFake, request: Request) -> Reply:
    try:
        body = request.json()
    except ValueError:
        return problem(400, "Bad Request", "request body is not JSON")
    request.parsed["input"] = body
    errors = [f"${''.join(f'.{p}' for p in e.absolute_path)}: {e.message}" for e in _CREATE.iter_errors(body)]
    if errors:
        return problem(422, "Unprocessable Entity", "Request validation failed.", errors)
    compute = body["compute"]
    gpu = compute["gpuTypeId"]
    if gpu in fake.deploy_errors:
        return problem(400, "Bad Request", fake.deploy_errors[gpu])
    hosts = _place(fake, compute, body.get("dataCenterIds") or [])
    if hosts is None:
        from fakes.runpod_graphql import OUT_OF_STOCK

        return problem(400, "Bad Request", OUT_OF_STOCK)
    cluster_id = f"cluster{next(fake._ids):04d}"
    members = [f"{cluster_id}-node{rank}" for rank in range(compute["podCount"])]
    for host in hosts:
        host.free -= compute["gpuCountPerPod"]
    fake.clusters[cluster_id] = {
        "id": cluster_id,
        "name": body["name"],
        "type": body["type"],
        "compute": compute,
        "dataCenterId": hosts[0].data_center,
        "image": body.get("image", ""),
        "env": body.get("env") or {},
        "members": members,
        "hosts": hosts,
        "createdAt": time.time(),  # billing starts (not a field of the reply: its createdAt is ISO)
        "started": set(),
    }
    if fake.starter is not None and body.get("image", "").startswith(fake.private_images):
        for member in members:  # no registry field: the pull fails, the members never start
            fake.starter.log_dir.mkdir(parents=True, exist_ok=True)
            fake.starter.log_path(member).write_text(f"error pulling image {body['image']}: unauthorized\n")
    elif fake.starter is not None:
        threading.Thread(target=_pull_then_start, args=(fake, cluster_id), daemon=True).start()
    return Reply.json(_view(fake, fake.clusters[cluster_id]), 201)


def _place(fake: RunPodFake, compute: dict[str, Any], centers: list[str]) -> list[Host] | None:
    """`podCount` hosts of the GPU type, each with the GPUs free, all in one data center."""
    from fakes.runpod_graphql import default_hosts

    if fake.hosts is None:
        fake.hosts = default_hosts(fake.gpus)
    if compute["gpuTypeId"] in fake.out_of_stock:
        return None
    by_center: dict[str, list[Host]] = {}
    for host in fake.hosts:
        fits = host.gpu == compute["gpuTypeId"] and host.free >= compute["gpuCountPerPod"]
        if fits and (not centers or host.data_center in centers):
            by_center.setdefault(host.data_center, []).append(host)
    return next(
        (hs[: compute["podCount"]] for hs in by_center.values() if len(hs) >= compute["podCount"]), None
    )


def _pull_then_start(fake: RunPodFake, cluster_id: str) -> None:
    time.sleep(fake.pull_seconds)
    cluster = fake.clusters.get(cluster_id)
    if cluster is None:  # deleted while it pulled
        return
    port = free_port()
    nodes = len(cluster["members"])
    per_node = cluster["compute"]["gpuCountPerPod"]
    for rank, member in enumerate(cluster["members"]):
        pod_key = f"rp-pod-key-{member}"
        fake._pod_keys[pod_key] = member
        env = {
            **cluster["env"],
            "RUNPOD_API_KEY": pod_key,
            "PRIMARY_ADDR": "127.0.0.1",
            "MASTER_ADDR": "127.0.0.1",
            "PRIMARY_PORT": str(port),
            "MASTER_PORT": str(port),
            "NODE_ADDR": "127.0.0.1",
            "NODE_RANK": str(rank),
            "NUM_NODES": str(nodes),
            "NUM_TRAINERS": str(per_node),
            "HOST_NODE_ADDR": f"127.0.0.1:{port}",
            "WORLD_SIZE": str(nodes * per_node),
        }
        _start(fake, cluster, member, env)


def _start(fake: RunPodFake, cluster: dict[str, Any], member: str, env: dict[str, str]) -> None:
    assert fake.starter is not None
    fake.starter.start(member, env)
    cluster["started"].add(member)
    # A member's container that exits while its cluster stands is started again, as a pod's is.
    fake.starter.keep_up(member, env, lambda: cluster["id"] in fake.clusters)


def _delete(fake: RunPodFake, cluster: dict[str, Any]) -> None:
    del fake.clusters[cluster["id"]]
    for host in cluster["hosts"]:
        host.free += cluster["compute"]["gpuCountPerPod"]
    fake.deleted_clusters[cluster["id"]] = dict(cluster, deletedAt=time.time())
    if fake.starter is not None:  # every member is stopped, shortly after the answer
        threading.Thread(target=_kill_later, args=(fake, list(cluster["members"])), daemon=True).start()


def _kill_later(fake: RunPodFake, members: list[str]) -> None:
    time.sleep(0.3)
    assert fake.starter is not None
    for member in members:
        fake.starter.kill(member)


def _view(fake: RunPodFake, cluster: dict[str, Any]) -> dict[str, Any]:
    """The `Cluster` RunPod answers (checked against CLUSTER): members counted by PodStatus."""
    statuses = [_member_status(fake, cluster, m) for m in cluster["members"]]
    by_status: dict[str, int] = {}
    for status in statuses:
        by_status[status] = by_status.get(status, 0) + 1
    view = {
        "id": cluster["id"],
        "name": cluster["name"],
        "type": cluster["type"],
        "compute": cluster["compute"],
        "dataCenterId": cluster["dataCenterId"],
        "pods": {"total": len(statuses), "byStatus": by_status},
        "primary": {"podId": cluster["members"][0], "status": statuses[0]},
        "createdAt": datetime.fromtimestamp(cluster["createdAt"], UTC).isoformat().replace("+00:00", "Z"),
    }
    _CLUSTER.validate(view)
    return view


def _member_status(fake: RunPodFake, cluster: dict[str, Any], member: str) -> str:
    if member not in cluster["started"] or fake.starter is None:
        return "PROVISIONING"
    return "RUNNING" if member in fake.starter.running() else "EXITED"
