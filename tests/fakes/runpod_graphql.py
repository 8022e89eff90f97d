"""A loopback RunPod GraphQL API: what runpod 1.12's create_pod/get_pods/get_pod/terminate_pod send.

Point the SDK at it with `RUNPOD_API_BASE_URL=<url>` (read on every call). Requests are recorded with
the parsed root field and its `input` so tests can assert on image, GPU type and env.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fakes.graphql import GraphQLSyntaxError, parse
from fakes.server import Reply, Request

OUT_OF_STOCK = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)

DEFAULT_GPUS = (
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM", "memoryInGb": 80},
    {"id": "NVIDIA H100 PCIe", "displayName": "H100 PCIe", "memoryInGb": 80},
    {"id": "NVIDIA A100-SXM4-80GB", "displayName": "A100 SXM", "memoryInGb": 80},
)


@dataclass
class RunPodFake:
    api_key: str = "rp-test-key"
    gpus: tuple[dict[str, Any], ...] = DEFAULT_GPUS
    out_of_stock: set[str] = field(default_factory=set)
    deploy_errors: dict[str, str] = field(default_factory=dict)  # gpu id → error message
    network_volumes: list[dict[str, Any]] = field(default_factory=list)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: Request, base_url: str) -> Reply:
        if request.method != "POST" or request.path != "/graphql":
            return Reply(404, b"not found")
        if request.header("authorization") != f"Bearer {self.api_key}":
            return Reply.json({"errors": [{"message": "Unauthorized"}]}, status=401)
        try:
            op = parse(request.json()["query"])
        except GraphQLSyntaxError as exc:
            return Reply.json({"errors": [{"message": str(exc)}]}, status=400)
        root = op.fields[0]
        request.parsed = {"kind": op.kind, "field": root.name, "input": root.args.get("input")}
        try:
            data = getattr(self, f"_{root.name}")(root.args.get("input") or {})
        except _GraphQLError as exc:
            return Reply.json(
                {"errors": [{"message": str(exc), "path": [root.name]}], "data": {root.name: None}}
            )
        return Reply.json({"data": {root.name: data}})

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

    def _podFindAndDeployOnDemand(self, args: dict[str, Any]) -> dict[str, Any]:
        gpu = args["gpuTypeId"]
        if gpu in self.deploy_errors:
            raise _GraphQLError(self.deploy_errors[gpu])
        if gpu in self.out_of_stock:
            raise _GraphQLError(OUT_OF_STOCK)
        pod_id = f"pod{next(self._ids):04d}"
        display = next(g["displayName"] for g in self.gpus if g["id"] == gpu)
        self.pods[pod_id] = {
            "id": pod_id,
            "name": args["name"],
            "imageName": args["imageName"],
            "desiredStatus": "RUNNING",
            "costPerHr": 2.99,
            "gpuCount": args.get("gpuCount", 1),
            "env": [f"{e['key']}={e['value']}" for e in args.get("env", [])],
            "machineId": "m1",
            "machine": {"gpuDisplayName": display, "podHostId": f"{pod_id}-host"},
        }
        return self.pods[pod_id]

    def _podTerminate(self, args: dict[str, Any]) -> None:
        if args["podId"] not in self.pods:
            raise _GraphQLError("Pod not found")
        del self.pods[args["podId"]]

    def calls(self, field_name: str) -> list[dict[str, Any]]:
        """Parsed `input` of every recorded request to `field_name`, in order."""
        return [r.parsed["input"] for r in self.requests if r.parsed.get("field") == field_name]


class _GraphQLError(Exception):
    pass
