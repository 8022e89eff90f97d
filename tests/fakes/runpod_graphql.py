"""A loopback RunPod GraphQL API: what runpod 1.12's create_pod/get_pods/get_pod/terminate_pod send,
and the listing queries `haha` sends through `runpod.api.graphql.run_graphql_query`.

Point the SDK at it with `RUNPOD_API_BASE_URL=<url>` (read on every call). Requests are recorded with
the parsed root field, its `input` and every field path the query selected (`request.parsed
["selected"]`, e.g. `myself.pods.env`), so tests can assert on image, GPU type, env — and that no
listing asks for pods' `env`. Replies carry only the fields a query selected, like a GraphQL server.

With a `PodStarter`, a deployed pod really runs: the image's start command (`bash -c <start>`) as a
process group on this machine, with the image's env, the pod's env and `RUNPOD_POD_ID`. Like RunPod,
a container that exits while its pod is not terminated is started again (up to `max_restarts`);
`podTerminate` kills the process group. Faults: GPU types out of stock, the first N terminates
failing, HTTP 5xx with an HTML body, and replies slower than the client waits.

Rules it holds the client to, each from RunPod's own material (cited beside the code):
- every query and mutation is checked against RUNPOD_SCHEMA (fields, arguments, input fields);
- a pod lands on a host of the GPU type with enough free GPUs and a driver the CUDA filter admits:
  `allowedCudaVersions` exactly, `minCudaVersion` as a floor; none: "no longer any instances";
- an image from a private registry pulls only with `containerRegistryAuthId` naming credentials for
  that registry; otherwise the pod is created, bills, and its container never starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haha.compute.local import group_alive

from fakes import runpod_clusters
from fakes.graphql import Field, FieldDef, GraphQLSyntaxError, Schema, parse
from fakes.server import LoopbackServer, Reply, Request

# The refusals RunPod is known to send when a GPU type has no capacity for a deploy. Their wording is
# RunPod's as its users quote it (RunPod publishes no list): github.com/runpod/runpodctl/issues/189
# and mlabonne/llm-autoeval#3 (the first), github.com/runpod/runpod-python/issues/168 (the second),
# TheLastBen/fast-stable-diffusion#2484 (the third).
OUT_OF_STOCK = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
NOT_ENOUGH_GPUS = "There are not enough free GPUs on the host machine to start this pod."
NO_RESOURCES = "This machine does not have the resources to deploy your pod. Please try a different machine."
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"

DEFAULT_GPUS = (
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM", "memoryInGb": 80},
    {"id": "NVIDIA H100 PCIe", "displayName": "H100 PCIe", "memoryInGb": 80},
    {"id": "NVIDIA A100-SXM4-80GB", "displayName": "A100 SXM", "memoryInGb": 80},
    {"id": "NVIDIA H200", "displayName": "H200 SXM", "memoryInGb": 141},
)
# What each host's driver reports as its CUDA version: RunPod filters hosts on it (docs.runpod.io
# /pods/logs: a driver older than the image's CUDA fails "unsatisfied condition: cuda>=X.Y"). The
# default pool has old and new drivers, none reporting exactly 13.0.
DEFAULT_HOST_CUDA = ("12.4", "13.1")
DEFAULT_DATA_CENTER = "EU-RO-1"
# RunPod's `podType` values (enum PodType: INTERRUPTABLE, RESERVED, BID, BACKGROUND, as transcribed from
# graphql-spec.runpod.io in github.com/my-opencode/runpod-api-helper runpod.types.ts): an on-demand
# pod, and one rented with podRentInterruptable.
RESERVED, INTERRUPTABLE = "RESERVED", "INTERRUPTABLE"


@dataclass
class Host:
    """One machine in RunPod's pool: its GPU type, driver CUDA version, free GPUs, cloud, data center."""

    gpu: str
    cuda: str
    free: int = 8
    cloud: str = "SECURE"
    data_center: str = DEFAULT_DATA_CENTER


def default_hosts(gpus: tuple[dict[str, Any], ...]) -> list[Host]:
    return [Host(g["id"], cuda) for g in gpus for cuda in DEFAULT_HOST_CUDA]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


# The part of RunPod's GraphQL schema (graphql-spec.runpod.io) this fake answers. The field lists are
# those runpod-python 1.12 selects and sends (runpod/api/queries/pods.py, gpus.py, user.py;
# runpod/api/mutations/pods.py) and those RunPod's GraphQL guide shows (docs.runpod.io/sdks/graphql/
# manage-pods: `runtime { uptimeInSeconds ports gpus container }`, `machine { podHostId }`), plus two
# deploy inputs the SDK lacks: `containerRegistryAuthId` (the pod-create reference, docs.runpod.io/
# api-reference/pods/POST/pods: registry credentials for a private image) and `minCudaVersion`
# (RunPod's v2 reference; sent to podFindAndDeployOnDemand by dstack's RunPod backend, PR #3304).
_POD_FIELDS = (
    "id containerDiskInGb costPerHr desiredStatus dockerArgs dockerId env gpuCount imageName "
    "lastStatusChange machineId memoryInGb name podType port ports uptimeSeconds vcpuCount volumeInGb "
    "volumeMountPath containerRegistryAuthId"
)
_DEPLOY_INPUT = (
    "name imageName cloudType startSsh gpuTypeId supportPublicIp gpuCount volumeInGb minVcpuCount "
    "minMemoryInGb allowedCudaVersions dataCenterId dockerArgs countryCode containerDiskInGb ports "
    "volumeMountPath templateId networkVolumeId minDownload minUpload containerRegistryAuthId "
    "minCudaVersion"
)


def _leaves(names: str) -> dict[str, FieldDef]:
    return {n: FieldDef() for n in names.split()}


RUNPOD_SCHEMA = Schema(
    types={
        "Query": {
            "myself": FieldDef("User"),
            "pod": FieldDef("Pod", {"input": "PodFilter"}),
            "gpuTypes": FieldDef("GpuType", {"input": "GpuTypeFilter"}),
        },
        "Mutation": {
            "podFindAndDeployOnDemand": FieldDef("Pod", {"input": "PodFindAndDeployOnDemandInput"}),
            # Interruptible (spot) pods. RunPod's own GraphQL guide showed it until 2026-05-06 (github.com/
            # runpod/docs sdks/graphql/manage-pods.mdx at 8e5aebdb^, "Spot Pod": `podRentInterruptable(
            # input: {bidPerGpu, cloudType, gpuCount, volumeInGb, containerDiskInGb, minVcpuCount,
            # minMemoryInGb, gpuTypeId, name, imageName, dockerArgs, ports, volumeMountPath, env})`);
            # commit 8e5aebdb removed every spot reference from the docs ("API schema fields in
            # openapi.json are retained"). The input type is the deploy's plus `bidPerGpu` (graphql-spec.
            # runpod.io#definition-PodRentInterruptableInput; SkyPilot's provisioner sends the same).
            "podRentInterruptable": FieldDef("Pod", {"input": "PodRentInterruptableInput"}),
            "podTerminate": FieldDef(None, {"input": "PodTerminateInput"}),
            "podStop": FieldDef("Pod", {"input": "PodStopInput"}),
        },
        "User": {
            **_leaves("id pubKey"),
            "networkVolumes": FieldDef("NetworkVolume"),
            "pods": FieldDef("Pod"),
        },
        "NetworkVolume": _leaves("id name size dataCenterId"),
        "Pod": {**_leaves(_POD_FIELDS), "runtime": FieldDef("PodRuntime"), "machine": FieldDef("PodMachine")},
        "PodMachine": _leaves("gpuDisplayName podHostId"),
        "PodRuntime": {
            **_leaves("uptimeInSeconds"),
            "ports": FieldDef("PodRuntimePorts"),
            "gpus": FieldDef("PodRuntimeGpus"),
            "container": FieldDef("PodRuntimeContainer"),
        },
        "PodRuntimePorts": _leaves("ip isIpPublic privatePort publicPort type"),
        "PodRuntimeGpus": _leaves("id gpuUtilPercent memoryUtilPercent"),
        "PodRuntimeContainer": _leaves("cpuPercent memoryPercent"),
        "GpuType": {
            **_leaves(
                "maxGpuCount id displayName manufacturer memoryInGb cudaCores secureCloud communityCloud "
                "securePrice communityPrice oneMonthPrice threeMonthPrice oneWeekPrice communitySpotPrice "
                "secureSpotPrice"
            ),
            "lowestPrice": FieldDef("LowestPrice", {"input": "GpuLowestPriceInput"}),
        },
        "LowestPrice": _leaves("minimumBidPrice uninterruptablePrice"),
    },
    inputs={
        "PodFilter": {"podId": ""},
        "GpuTypeFilter": {"id": ""},
        "GpuLowestPriceInput": {"gpuCount": ""},
        "PodTerminateInput": {"podId": ""},
        "PodStopInput": {"podId": ""},
        "PodFindAndDeployOnDemandInput": {
            **dict.fromkeys(_DEPLOY_INPUT.split(), ""),
            "env": "EnvironmentVariableInput",
        },
        "PodRentInterruptableInput": {
            **dict.fromkeys(_DEPLOY_INPUT.split(), ""),
            "bidPerGpu": "",
            "env": "EnvironmentVariableInput",
        },
        "EnvironmentVariableInput": {"key": "", "value": ""},
    },
)


@dataclass
class PodStarter:
    """Runs each deployed pod's container on this machine.

    `start_command` is the image's start command (run as `bash -c`), `image_env` the env the image
    brings (PATH with its Python first, CA files, ...; `{pod_id}` in a value becomes the pod's id);
    logs go to `log_dir/<pod id>.log`.
    """

    start_command: str
    image_env: dict[str, str]
    log_dir: Path
    max_restarts: int = 3
    restart_delay_s: float = 0.5
    kill_grace_s: float = 5.0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)  # pod id → times its container started
    exits: dict[str, list[int]] = field(default_factory=dict)  # pod id → exit statuses, in order

    def log_path(self, pod_id: str) -> Path:
        return self.log_dir / f"{pod_id}.log"

    def start(self, pod_id: str, env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(pod_id), "ab") as log:
            log.write(f"--- container start {self.starts.get(pod_id, 0) + 1} ---\n".encode())
            log.flush()
            self.procs[pod_id] = subprocess.Popen(
                ["bash", "-c", self.start_command],
                env={
                    **{k: v.replace("{pod_id}", pod_id) for k, v in self.image_env.items()},
                    **env,
                    "RUNPOD_POD_ID": pod_id,
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts[pod_id] = self.starts.get(pod_id, 0) + 1

    def kill(self, pod_id: str) -> None:
        proc = self.procs.get(pod_id)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, self.kill_grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and group_alive(proc.pid):
                proc.poll()
                time.sleep(0.05)
            if not group_alive(proc.pid):
                break
        proc.poll()

    def stop_container(self, pod_id: str) -> None:
        """Stop the pod's whole container, as RunPod stops a preempted pod: SIGTERM, then after the
        grace period SIGKILL to every process in it, the ones that started sessions of their own
        included (`haha pod` runs its child so: a process-group kill alone would leave it training)."""
        import psutil

        proc = self.procs.get(pod_id)
        if proc is None:
            return
        try:
            inside = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            inside = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(inside, timeout=self.kill_grace_s)
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        self.kill(pod_id)

    def keep_up(self, pod_id: str, env: dict[str, str], stands: Callable[[], bool]) -> None:
        """Start the container again each time it exits while `stands()` (its pod or cluster is not
        terminated), up to `max_restarts`, as RunPod does; in a thread of its own."""

        def supervise() -> None:
            while True:
                rc = self.procs[pod_id].wait()
                self.exits.setdefault(pod_id, []).append(rc)
                time.sleep(self.restart_delay_s)
                if not stands() or self.starts[pod_id] > self.max_restarts:
                    return
                self.start(pod_id, env)

        threading.Thread(target=supervise, daemon=True).start()

    def running(self) -> list[str]:
        return [pid for pid, proc in self.procs.items() if proc.poll() is None or group_alive(proc.pid)]

    def kill_all(self) -> None:
        for pod_id in list(self.procs):
            self.kill(pod_id)


@dataclass
class RunPodFake:
    api_key: str = "rp-test-key"
    gpus: tuple[dict[str, Any], ...] = DEFAULT_GPUS
    prices: dict[str, float] = field(default_factory=dict)  # gpu id → costPerHr (default 2.99)
    out_of_stock: set[str] = field(default_factory=set)
    deploy_errors: dict[str, str] = field(default_factory=dict)  # gpu id → error message
    hosts: list[Host] | None = None  # None: default_hosts(gpus), built on first use
    # Registry credentials saved in the account (id → the registry host where they are valid), and the image
    # prefixes whose registry refuses anonymous pulls: GHCR packages pushed from Actions start private
    # (docs.github.com, "Configuring a package's access control and visibility").
    registry_auths: dict[str, str] = field(default_factory=dict)
    private_images: tuple[str, ...] = ("ghcr.io/",)
    # Faults, each for the next N calls (counted down as they happen):
    terminate_errors: int = 0  # podTerminate answers an error
    http_errors: dict[str, int] = field(default_factory=dict)  # root field → a 502 with an HTML body
    slow: dict[str, tuple[int, float]] = field(default_factory=dict)  # root field → (N, delay in s)
    # RunPod gives each pod an API key of its own in RUNPOD_API_KEY; it is accepted like the account's.
    inject_pod_key: bool = True
    # RunPod secrets: `{{ RUNPOD_SECRET_<name> }}` in a pod's env becomes the value when it starts.
    secrets: dict[str, str] = field(default_factory=dict)
    network_volumes: list[dict[str, Any]] = field(default_factory=list)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    pulling: set[str] = field(default_factory=set)  # pods whose image never pulls
    terminated: dict[str, dict[str, Any]] = field(default_factory=dict)
    starter: PodStarter | None = None
    # Seconds from a deploy to its container's start: the image pull (RunPod bills from the deploy;
    # pulls can take 15-20 min, NOTES.md). 0: the container starts within the deploy call.
    pull_seconds: float = 0.0
    # Interruptible pods: the lowest bid RunPod takes per GPU type (default: any), and the pods preempted.
    spot_floor: dict[str, float] = field(default_factory=dict)
    preempted: list[str] = field(default_factory=list)
    # Instant Clusters (REST API v2, fakes.runpod_clusters): id → cluster, and those deleted.
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rest_refused: bool = False  # the key is restricted to the GraphQL API (keys are scoped per API)
    requests: list[Request] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _pod_keys: dict[str, str] = field(default_factory=dict)  # key → pod id

    def handle(self, request: Request, base_url: str) -> Reply:
        key = request.header("authorization").removeprefix("Bearer ")
        known = key == self.api_key or key in self._pod_keys
        if request.path.startswith("/v2/"):  # the REST API v2's clusters (fakes.runpod_clusters)
            if not known:
                return runpod_clusters.problem(401, "Unauthorized", "invalid or missing API key")
            if self.rest_refused:  # bearerAuth: "requests may return 403 when a valid key lacks access"
                return runpod_clusters.problem(403, "Forbidden", "this API key lacks access to this resource")
            return runpod_clusters.handle(self, request, "account" if key == self.api_key else "pod")
        if request.method != "POST" or request.path != "/graphql":
            return Reply(404, b"not found")
        if not known:
            return Reply.json({"errors": [{"message": "Unauthorized"}]}, status=401)
        try:
            op = parse(request.json()["query"])
        except GraphQLSyntaxError as exc:
            return Reply.json({"errors": [{"message": str(exc)}]}, status=400)
        root = op.fields[0]
        if invalid := RUNPOD_SCHEMA.validate(op):  # before anything runs, as a GraphQL server does
            request.parsed = {"kind": op.kind, "field": root.name, "invalid": invalid}
            return Reply.json({"errors": [{"message": invalid}]}, status=400)
        request.parsed = {
            "kind": op.kind,
            "field": root.name,
            "input": root.args.get("input"),
            "selected": sorted(_paths(root)),
            "key": "account" if key == self.api_key else f"pod:{self._pod_keys[key]}",
        }
        if _take(self.http_errors, root.name):
            return Reply(502, HTML_502, {"Content-Type": "text/html"})
        try:
            data = getattr(self, f"_{root.name}")(root.args.get("input") or {})
        except _GraphQLError as exc:
            return Reply.json(
                {"errors": [{"message": str(exc), "path": [root.name]}], "data": {root.name: None}}
            )
        return Reply.json({"data": {root.name: _project(data, root.selections)}})

    def delay_for(self, request: Request) -> float:
        """Seconds to hold this request before answering it (outside the server's lock)."""
        try:
            name = parse(request.json()["query"]).fields[0].name
        except (GraphQLSyntaxError, ValueError, KeyError, TypeError):
            return 0.0
        count, seconds = self.slow.get(name, (0, 0.0))
        if count <= 0:
            return 0.0
        self.slow[name] = (count - 1, seconds)
        return seconds

    def _gpuTypes(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = args.get("id")
        return [dict(gpu, maxGpuCount=8) for gpu in self.gpus if wanted in (None, gpu["id"])]

    def _myself(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "user-1",
            "pubKey": "",
            "networkVolumes": self.network_volumes,
            "pods": list(self.pods.values()),
        }

    def _pod(self, args: dict[str, Any]) -> dict[str, Any] | None:
        return self.pods.get(args["podId"])

    def _podRentInterruptable(self, args: dict[str, Any]) -> dict[str, Any]:
        """An interruptible pod: RunPod bills the bid (`costPerHr`), and refuses a bid below the GPU
        type's current minimum (`lowestPrice { minimumBidPrice }`, in RunPod's GraphQL guide before
        runpod/docs 8e5aebdb, "Check GPU availability"). `podType` INTERRUPTABLE is how the API lists
        such a pod (enum PodType, transcribed above; RunPod's docs never showed it)."""
        if "bidPerGpu" not in args:
            raise _GraphQLError('Field "bidPerGpu" of required type "Float!" was not provided.')
        floor = self.spot_floor.get(args["gpuTypeId"], 0.0)
        if args["bidPerGpu"] < floor:
            raise _GraphQLError(f"Your bid price is lower than the minimum bid price of ${floor}/hr.")
        pod = self._podFindAndDeployOnDemand(args, pod_type=INTERRUPTABLE)
        pod["costPerHr"] = args["bidPerGpu"] * args.get("gpuCount", 1)
        return pod

    def preempt(self, pod_id: str) -> None:
        """RunPod takes an interruptible pod back: "terminated with only a 5-second warning (SIGTERM,
        then SIGKILL)" (RunPod's pods/pricing.mdx before runpod/docs 8e5aebdb, "Spot instances"; the
        starter's `kill_grace_s`, 5 s), and the pod shows `desiredStatus: EXITED` (PodStatus). RunPod
        does not start its container again (only a new bid, `podBidResume` in the same guide, could),
        and "your volume disk is retained" (ibid.): it is listed, billing its disk, until terminated."""
        pod = self.pods[pod_id]
        assert pod.get("podType") == INTERRUPTABLE, "RunPod preempts interruptible pods only"
        pod["desiredStatus"] = "EXITED"
        if isinstance(pod.get("host"), Host):
            pod["host"].free += pod.get("gpuCount", 1)
            pod["host"] = None
        self.preempted.append(pod_id)
        if self.starter is not None:
            self.starter.stop_container(pod_id)

    def _podFindAndDeployOnDemand(self, args: dict[str, Any], pod_type: str = RESERVED) -> dict[str, Any]:
        gpu = args["gpuTypeId"]
        if gpu in self.deploy_errors:
            raise _GraphQLError(self.deploy_errors[gpu])
        if gpu in self.out_of_stock:
            raise _GraphQLError(OUT_OF_STOCK)
        host = self._place(args)
        host.free -= args.get("gpuCount", 1)
        pod_id = f"pod{next(self._ids):04d}"
        display = next(g["displayName"] for g in self.gpus if g["id"] == gpu)
        env = {e["key"]: self._resolve(e["value"]) for e in args.get("env", [])}
        if self.inject_pod_key:
            pod_key = f"rp-pod-key-{pod_id}"
            self._pod_keys[pod_key] = pod_id
            env.setdefault("RUNPOD_API_KEY", pod_key)  # which one wins RunPod does not document
        self.pods[pod_id] = {
            "id": pod_id,
            "name": args["name"],
            "imageName": args["imageName"],
            "desiredStatus": "RUNNING",
            # "The cost in Runpod credits per hour of running a Pod" (RunPod's REST reference, github.com/
            # runpod/docs api-reference/openapi.json, Pod.costPerHr): all of its GPUs.
            "costPerHr": self.prices.get(gpu, 2.99) * args.get("gpuCount", 1),
            "gpuCount": args.get("gpuCount", 1),
            "env": [f"{e['key']}={e['value']}" for e in args.get("env", [])],
            "machineId": "m1",
            "machine": {"gpuDisplayName": display, "podHostId": f"{pod_id}-host"},
            "gpuTypeId": gpu,
            "podType": pod_type,
            "containerRegistryAuthId": args.get("containerRegistryAuthId"),
            "runtime": None,  # RunPod reports no runtime until the container runs
            "host": host,
            # When billing starts (RunPod bills a pod per second from its creation until it is
            # terminated: docs.runpod.io/pods/pricing); not a GraphQL field, tests compare meta.cost to it.
            "createdAt": time.time(),
        }
        if not self._pulls(args["imageName"], args.get("containerRegistryAuthId")):
            # The pod exists and bills while RunPod retries the pull; no container, no boot script.
            self.pulling.add(pod_id)
            if self.starter is not None:
                self.starter.log_dir.mkdir(parents=True, exist_ok=True)
                self.starter.log_path(pod_id).write_text(
                    f"error pulling image {args['imageName']}: unauthorized: authentication required\n"
                )
        elif self.starter is not None and self.pull_seconds > 0:
            threading.Thread(target=self._pull_then_start, args=(pod_id, env), daemon=True).start()
        elif self.starter is not None:
            self._start(pod_id, env)
        return self.pods[pod_id]

    def _pull_then_start(self, pod_id: str, env: dict[str, str]) -> None:
        time.sleep(self.pull_seconds)
        if pod_id in self.pods:  # not terminated while it pulled
            self._start(pod_id, env)

    def _start(self, pod_id: str, env: dict[str, str]) -> None:
        assert self.starter is not None
        self.pods[pod_id]["runtime"] = {"uptimeInSeconds": 0}
        self.starter.start(pod_id, env)
        self.starter.keep_up(pod_id, env, lambda: self._stands(pod_id))

    def _place(self, args: dict[str, Any]) -> Host:
        """A host for the deploy, as RunPod picks one; none: its capacity refusal.

        `allowedCudaVersions` is matched exactly against the version the host's driver reports: a
        version no host reports leaves nothing to pick (RunPod's pod-create reference, docs.runpod.io/
        api-reference/pods/POST/pods, "allowedCudaVersions"; its console's CUDA filter likewise lists
        versions, not a floor). `minCudaVersion` admits that version and every newer one (the v2
        reference; dstack PR #3304 "Require CUDA 12.8+ on the host").
        """
        if self.hosts is None:
            self.hosts = default_hosts(self.gpus)
        allowed, floor = args.get("allowedCudaVersions"), args.get("minCudaVersion")
        cloud, center = args.get("cloudType", "ALL"), args.get("dataCenterId")
        for host in self.hosts:
            if (
                host.gpu == args["gpuTypeId"]
                and host.free >= args.get("gpuCount", 1)
                and cloud in ("ALL", host.cloud)
                and center in (None, host.data_center)
                and (allowed is None or host.cuda in allowed)
                and (floor is None or _version(host.cuda) >= _version(floor))
            ):
                return host
        raise _GraphQLError(OUT_OF_STOCK)

    def _pulls(self, image: str, auth_id: str | None) -> bool:
        """A private registry's image pulls only with credentials valid there: a username and password
        saved in the account ("container registry auths", docs.runpod.io/api-reference/container-
        registry-auths/POST/containerregistryauth; `runpodctl registry create`), named on the pod by
        `containerRegistryAuthId` (docs.runpod.io/api-reference/pods/POST/pods)."""
        if not image.startswith(self.private_images):
            return True
        return auth_id is not None and self.registry_auths.get(auth_id) == image.split("/", 1)[0]

    def _resolve(self, value: str) -> str:
        def secret(match: re.Match[str]) -> str:
            if match[1] not in self.secrets:
                raise _GraphQLError(f"Secret {match[1]} not found")
            return self.secrets[match[1]]

        return re.sub(r"\{\{\s*RUNPOD_SECRET_(\w+)\s*\}\}", secret, value)

    def _stands(self, pod_id: str) -> bool:
        """RunPod restarts a container that exits while its pod is not terminated (nor preempted:
        a stopped interruptible pod is never restarted)."""
        return pod_id in self.pods and self.pods[pod_id].get("desiredStatus") != "EXITED"

    def _podTerminate(self, args: dict[str, Any]) -> None:
        pod_id = args["podId"]
        if self.terminate_errors > 0:
            self.terminate_errors -= 1
            raise _GraphQLError("Something went wrong. Please try again later or contact support.")
        if pod_id not in self.pods:
            raise _GraphQLError("Pod not found")
        pod = self.pods.pop(pod_id)
        if isinstance(pod.get("host"), Host):
            pod["host"].free += pod.get("gpuCount", 1)
        self.terminated[pod_id] = dict(pod, desiredStatus="TERMINATED", terminatedAt=time.time())
        if self.starter is not None:  # RunPod stops the container shortly after answering
            threading.Thread(target=self._kill_later, args=(pod_id,), daemon=True).start()

    def _kill_later(self, pod_id: str) -> None:
        time.sleep(0.3)
        assert self.starter is not None
        self.starter.kill(pod_id)

    def add_pod(self, name: str, gpu: str | None = None, cost: float = 2.99) -> str:
        """A pod that is already up (started elsewhere, before the test): no container runs."""
        pod_id = f"pod{next(self._ids):04d}"
        gpu = gpu or self.gpus[0]["id"]
        display = next(g["displayName"] for g in self.gpus if g["id"] == gpu)
        self.pods[pod_id] = {
            "id": pod_id,
            "name": name,
            "imageName": "ghcr.io/synagi/haha-pod@sha256:" + "0" * 64,
            "desiredStatus": "RUNNING",
            "costPerHr": cost,
            "gpuCount": 1,
            "env": [],
            "machineId": "m1",
            "machine": {"gpuDisplayName": display, "podHostId": f"{pod_id}-host"},
            "gpuTypeId": gpu,
        }
        return pod_id

    def calls(self, field_name: str) -> list[dict[str, Any]]:
        """Parsed `input` of every recorded request to `field_name`, in order."""
        return [r.parsed["input"] for r in self.requests if r.parsed.get("field") == field_name]

    def queries(self, field_name: str) -> list[dict[str, Any]]:
        """Everything parsed from each request to `field_name` (kind, input, selected, key)."""
        return [r.parsed for r in self.requests if r.parsed.get("field") == field_name]


def _paths(root: Field, prefix: str = "") -> set[str]:
    here = f"{prefix}{root.name}"
    out = {here}
    for child in root.selections:
        out |= _paths(child, here + ".")
    return out


def _project(data: Any, selections: list[Field]) -> Any:
    """Keep only the selected fields, recursively (a field without a selection is a leaf)."""
    if not selections or data is None:
        return data
    if isinstance(data, list):
        return [_project(item, selections) for item in data]
    return {f.name: _project(data.get(f.name), f.selections) for f in selections}


def _take(table: dict[str, int], name: str) -> bool:
    """Use up one of the next-N faults for `name`; whether there was one."""
    if table.get(name, 0) <= 0:
        return False
    table[name] -= 1
    return True


class _GraphQLError(Exception):
    pass


class _DelayingServer(LoopbackServer):
    """Holds slow requests before taking the server's lock, so other clients are still answered."""

    def _record(self, request: Request) -> Reply:
        delay = self.handler.delay_for(request)  # type: ignore[attr-defined]
        if delay:
            time.sleep(delay)
        return super()._record(request)


@contextmanager
def serve_runpod(fake: RunPodFake, max_seconds: float = 900.0) -> Iterator[tuple[RunPodFake, str]]:
    """Serve `fake` on a loopback port (slow-reply faults supported); kills its pods on exit."""
    try:
        with _DelayingServer(fake, max_seconds) as server:
            yield fake, server.url
    finally:
        if fake.starter is not None:
            fake.starter.kill_all()
