"""RunPod Instant Clusters: the nodes of a multi-node run (`haha.nodes`), rented and ended as one.

runpod-python 1.12 has no call for clusters; RunPod's REST API v2 has (docs.runpod.io/api-reference-v2,
its openapi.json): `POST /v2/clusters` (createCluster), `GET /v2/clusters` (listClusters) and
`DELETE /v2/clusters/{id}` (deleteCluster: "Permanently deletes a cluster and terminates all of its
member pods"), on the GraphQL API's host (`servers: https://api.runpod.io`, which is what
`RUNPOD_API_BASE_URL` names) with the same key as a Bearer token. Errors are problem+json
(`ErrorResponse`: title, status, detail, errors).

What a cluster cannot do that a pod can (`CreateClusterRequest`): pull from a private registry
("Private registries are not yet supported for clusters — there is no registry field"), filter hosts
by CUDA version, or be interruptible. `refusals` names those before anything is asked of RunPod.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from haha.compute.base import Pod, PodSpec
from haha.errors import InputError, ServiceError

log = logging.getLogger(__name__)

PATH = "/v2/clusters"
CREATE_CLUSTER = f"POST {PATH}"  # createCluster, as `haha launch --dry-run` names it
# ClusterType: "TRAINING is the generic distributed-training cluster" (the others run Slurm or Ray).
TRAINING = "TRAINING"
TIMEOUT_S = 30.0
MIN_VOLUME_GB = 10  # PersistentMount.size: "Upstream enforces a 10 GB floor"
# A member pod still on its way or up (PodStatus: PROVISIONING, STARTING, RUNNING; then EXITED, ERROR,
# TERMINATED). A listed cluster is in flight until every member has ended (none placed yet: it is).
_LIVE = ("PROVISIONING", "STARTING", "RUNNING")


class ClusterCallError(Exception):
    """RunPod answered a cluster call with an error (`status` 0: no answer at all)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status, self.detail = status, detail

    @property
    def transient(self) -> bool:
        """No answer, or a server error: the call may have gone through, and may go through if repeated."""
        return self.status == 0 or self.status >= 500 or self.status == 429


def refusals(spec: PodSpec) -> list[InputError]:
    """Why RunPod cannot rent `spec` as a cluster, each with its fix (empty: it can)."""
    out = []
    if spec.registry_auth_id:
        out.append(
            InputError(
                "RunPod clusters cannot pull a private image: createCluster has no registry field "
                "(docs.runpod.io/api-reference-v2, CreateClusterRequest)",
                file="haha.toml",
                field="compute.registry_auth_id",
                fix="make the pod image public (GHCR: package settings → visibility) and empty "
                "compute.registry_auth_id, or train on one pod (remove haha.nodes)",
            )
        )
    if 0 < spec.volume_gb < MIN_VOLUME_GB and not spec.network_volume_id:
        out.append(
            InputError(
                f"compute.volume_gb is {spec.volume_gb}: a cluster's persistent volume is at least "
                f"{MIN_VOLUME_GB} GB (PersistentMount.size)",
                file="haha.toml",
                field="compute.volume_gb",
                fix=f"set compute.volume_gb to 0 (none) or {MIN_VOLUME_GB} or more",
            )
        )
    if spec.interruptible:
        out.append(
            InputError(
                "RunPod clusters are on-demand only: createCluster takes no bid",
                field="haha.interruptible",
                fix="remove haha.interruptible (or haha.nodes) from the config",
            )
        )
    return out


def cluster_request(spec: PodSpec, gpu: str, data_center: str | None, mount_path: str) -> dict[str, Any]:
    """The createCluster body for `spec` on `gpu`: `spec.nodes` pods of `spec.gpu_count` GPUs each,
    the pod's image, env (secrets included: RunPod keeps them as it keeps a pod's) and disks."""
    body: dict[str, Any] = {
        "name": spec.name,
        "type": TRAINING,
        "compute": {"gpuTypeId": gpu, "gpuCountPerPod": spec.gpu_count, "podCount": spec.nodes},
        "image": spec.image,
        "env": {**spec.env, **spec.secrets},
        "disk": spec.container_disk_gb,
    }
    if spec.network_volume_id:
        body["mounts"] = {"network": [{"volumeId": spec.network_volume_id, "path": mount_path}]}
    elif spec.volume_gb:
        body["mounts"] = {"persistent": {"size": spec.volume_gb, "path": mount_path}}
    if data_center:  # a network volume lives in one data center, and so must the cluster
        body["dataCenterIds"] = [data_center]
    return body


def cluster_pod(data: dict[str, Any]) -> Pod:
    """A cluster as one Pod (its id, name, GPU type and nodes): plan and reap treat it as a pod."""
    by_status = (data.get("pods") or {}).get("byStatus") or {}
    ended = bool(by_status) and not any(by_status.get(s) for s in _LIVE)  # none yet: provisioning
    compute = data.get("compute") or {}
    return Pod(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        status="EXITED" if ended else "RUNNING",
        gpu_type=str(compute.get("gpuTypeId") or ""),
        nodes=int(compute.get("podCount") or 2),
    )


class ClusterApi:
    """The three cluster calls, over `requests` (the SDK's own HTTP library)."""

    def __init__(self, base_url: str, api_key: str, secrets: Iterable[str] = ()) -> None:
        self.url = base_url.rstrip("/") + PATH
        self._key = api_key
        self._secrets = [s for s in (api_key, *secrets) if s]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", self.url, body)

    def clusters(self) -> list[dict[str, Any]]:
        return list(self._call("GET", self.url).get("clusters") or [])

    def delete(self, cluster_id: str) -> None:
        """Delete the cluster and every node of it; 404 ("Cluster not found") raises like any error."""
        self._call("DELETE", f"{self.url}/{cluster_id}")

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import requests

        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        try:
            reply = requests.request(method, url, json=body, headers=headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise ClusterCallError(0, self.redact(f"{type(exc).__name__}: {exc}")) from None
        if reply.status_code >= 400:
            raise ClusterCallError(reply.status_code, self.redact(_detail(reply)))
        if reply.status_code == 204 or not reply.content:
            return {}
        try:
            data = reply.json()
        except ValueError:
            raise ClusterCallError(
                0, self.redact(f"not JSON from {method} {url}: {reply.text[:200]!r}")
            ) from None
        return data if isinstance(data, dict) else {}


def _detail(reply: Any) -> str:
    """The problem+json `detail` (and each validation failure in `errors`), else the body's start."""
    try:
        problem = reply.json()
    except ValueError:
        return reply.text[:300] or reply.reason
    if not isinstance(problem, dict):
        return str(problem)[:300]
    errors = problem.get("errors") or []
    detail = str(problem.get("detail") or problem.get("title") or reply.reason)
    return detail + (f" ({'; '.join(map(str, errors))})" if errors else "")


def create_cluster(
    api: ClusterApi,
    spec: PodSpec,
    body_for: Callable[[str], dict[str, Any]],
    is_capacity: Callable[[str], bool],
    wait: Callable[[int], None],
    tries: int,
) -> tuple[str, str]:
    """Create on the first GPU type with capacity, as a pod launch walks them (compute.runpod).

    A capacity refusal: the next type. No answer or a 5xx: the list is checked for the cluster (the
    create may have gone through), then retried after `wait(attempt)`. Returns (cluster id, GPU type).
    """
    if problems := refusals(spec):
        raise problems[0]
    answers = []
    for gpu in spec.gpu_types:
        for attempt in range(1, tries + 1):
            log.info(
                "creating cluster %s: %d × %d %s (try %d)",
                spec.name,
                spec.nodes,
                spec.gpu_count,
                gpu,
                attempt,
            )
            try:
                made = api.create(body_for(gpu))
                if not made.get("id"):
                    raise ServiceError(
                        f"RunPod created cluster {spec.name} but answered no id: {made!r:.200}"
                    )
                return str(made["id"]), gpu
            except ClusterCallError as exc:
                if is_capacity(exc.detail):
                    answers.append(f"{gpu}: {exc.detail}")
                    break
                if not exc.transient:
                    raise ServiceError(f"RunPod refused cluster {spec.name} on {gpu}: {exc}") from None
                with contextlib.suppress(ServiceError):  # the list did not answer either: retry
                    if (found := find_named(api, spec.name)) is not None:
                        return found.id, gpu
                if attempt == tries:
                    answers.append(f"{gpu}: no answer ({exc} ×{tries})")
                else:
                    wait(attempt)
    raise ServiceError(
        f"no capacity for cluster {spec.name} ({spec.nodes} nodes) on any GPU type; RunPod answered: "
        + " | ".join(answers),
        field="compute.gpu_types",
        fix="add more GPU types to the fallback list in haha.toml, or retry later",
    )


def launch_cluster(
    api: ClusterApi,
    spec: PodSpec,
    data_center: str | None,
    is_capacity: Callable[[str], bool],
    wait: Callable[[int], None],
    tries: int,
    list_price: Callable[[str], float | None],
    mount_path: str,
) -> Pod:
    """Create `spec`'s cluster (see create_cluster) and report it as one Pod, priced per hour at the
    list price for every node's GPUs; its volume is mounted at `mount_path`, as a pod's is."""
    cluster_id, gpu = create_cluster(
        api,
        spec,
        lambda g: cluster_request(spec, g, data_center, mount_path),
        is_capacity,
        wait,
        tries,
    )
    per_gpu = list_price(gpu)
    price = None if per_gpu is None else per_gpu * spec.gpu_count * spec.nodes  # every node's GPUs
    return Pod(cluster_id, spec.name, "RUNNING", gpu, price, nodes=spec.nodes)


def listed(api: ClusterApi) -> list[Pod]:
    """Every cluster on the account as a Pod. A key the REST API turns away (401/403: a key restricted
    to GraphQL) lists none, with a warning: such a key cannot have created any either."""
    try:
        return [cluster_pod(c) for c in api.clusters() if isinstance(c, dict) and c.get("id")]
    except ClusterCallError as exc:
        if exc.status in (401, 403):
            log.warning("RunPod: this key may not list clusters (%s); multi-node runs are not seen", exc)
            return []
        raise ServiceError(f"RunPod: could not list clusters: {exc}") from None


def find_named(api: ClusterApi, name: str) -> Pod | None:
    """The cluster called `name` (None: there is none). Strict, unlike `listed`: a node ending its own
    cluster must not take "this key may not list clusters" for "the cluster is gone"."""
    try:
        found = (c for c in api.clusters() if isinstance(c, dict) and c.get("id") and c.get("name") == name)
        return next((cluster_pod(c) for c in found), None)
    except ClusterCallError as exc:
        raise ServiceError(f"RunPod: could not look up cluster {name}: {exc}") from None


def delete_cluster(api: ClusterApi, cluster_id: str) -> tuple[bool, str | None]:
    """(deleted, why unsure): DELETE `cluster_id` as a cluster. Not one (404; 400/422: not an id of
    that form; 401/403: a key that cannot have made clusters): (False, None). No answer or a 5xx:
    (False, the error), so a caller that then finds no pod of that id reports it."""
    try:
        api.delete(cluster_id)
    except ClusterCallError as exc:
        return False, (str(exc) if exc.transient else None)
    log.info("deleted cluster %s", cluster_id)
    return True, None
