"""Pods as detached processes on this machine: the default when no cloud is configured.

Each pod is a process group started from `HAHA_POD_ARGV` (a JSON list in the spec's env) with its
output in a log file, and a JSON record under `<root>/.haha/pods/` that later invocations read.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from haha.atomic import write_json_atomic
from haha.compute.base import Pod, PodSpec
from haha.podenv import argv_from_env
from haha.podname import PodName
from haha.settings import Settings

PODS_DIR = Path(".haha") / "pods"
ARGV_ENV = "HAHA_POD_ARGV"
POD_ID_ENV = "HAHA_POD_ID"
RUNNING, EXITED, TERMINATED = "RUNNING", "EXITED", "TERMINATED"


def pod_argv(spec: PodSpec) -> list[str]:
    """`HAHA_POD_ARGV` if given, else `python -m haha.cli pod <basename>` with this interpreter."""
    raw = spec.env.get(ARGV_ENV)
    if raw is None:
        parsed = PodName.parse(spec.name)
        return [sys.executable, "-m", "haha.cli", "pod", parsed.basename if parsed else spec.name]
    return argv_from_env(raw, ARGV_ENV)


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> int:
    """Start `argv` as the leader of a new session, output appended to `log_path`.

    posix_spawn rather than Popen: the pod outlives this process, so there is no Popen to wait on.
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)


def _start_time(pid: int) -> str | None:
    """The kernel's start tick of `pid` (Linux), so a reused pid is not mistaken for our pod."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(record: dict[str, Any]) -> bool:
    pid = record["pid"]
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when it is our own exited child
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _start_time(pid)
    return record.get("started") is None or started is None or started == record["started"]


def group_alive(pgid: int) -> bool:
    """Whether any process of the group `pgid` is still alive (one we may not signal counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _members(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes of a recorded pod: its one, or each node's of a cluster."""
    return list(record.get("members") or [record])


def cluster_env(spec: PodSpec) -> list[dict[str, str]]:
    """Each node's variables, as RunPod's Instant Clusters set them (haha.cluster), on loopback: node
    0 is the primary, every node checks out and works in a folder of its own."""
    port = free_port()
    nodes = []
    for rank in range(spec.nodes):
        env = {
            "NUM_NODES": str(spec.nodes),
            "NODE_RANK": str(rank),
            "NUM_TRAINERS": str(spec.gpu_count),
            "PRIMARY_ADDR": "127.0.0.1",
            "PRIMARY_PORT": str(port),
        }
        for folder in ("HAHA_CHECKOUT", "HAHA_BOOT_LOG"):  # launch's LocalPod: one checkout per node
            if rank and spec.env.get(folder):
                env[folder] = f"{spec.env[folder]}.node{rank}"
        nodes.append(env)
    return nodes


def free_port() -> int:
    """A TCP port free on loopback now (a primary node's rendezvous; the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCompute:
    kind = "local"

    def __init__(self, settings: Settings, root: Path, grace_seconds: float = 10.0) -> None:
        self.settings = settings
        self.dir = root / PODS_DIR
        self.grace_seconds = grace_seconds

    def launch(self, spec: PodSpec) -> Pod:
        """Start the pod command detached, in its own session, logging to `<id>.log`; a cluster
        (`spec.nodes` > 1) is that many such processes, one id, node 0 logging to `<id>.log`."""
        argv = pod_argv(spec)
        pod_id = f"local-{uuid.uuid4().hex[:12]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        members = []
        for rank, node_env in enumerate(cluster_env(spec) if spec.nodes > 1 else [{}]):
            member = f"{pod_id}-node{rank}" if rank else pod_id
            log_path = self.dir / f"{member}.log"
            env = self.settings.child_env({**spec.env, **spec.secrets, **node_env, POD_ID_ENV: member})
            pid = _spawn(argv, env, log_path)
            members.append({"pid": pid, "started": _start_time(pid), "log": str(log_path)})
        record = {"id": pod_id, "name": spec.name, "status": RUNNING, **members[0], "nodes": spec.nodes}
        self._write(record | ({"members": members} if spec.nodes > 1 else {}))
        return Pod(id=pod_id, name=spec.name, gpu_type="local", cost_per_hour=0.0, nodes=spec.nodes)

    def list_pods(self) -> list[Pod]:
        """Every recorded pod: RUNNING while its process lives (a cluster: any node's), then EXITED (or
        TERMINATED)."""
        return [
            Pod(
                id=r["id"],
                name=r["name"],
                status=self._status(r),
                gpu_type="local",
                cost_per_hour=0.0,
                nodes=r.get("nodes", 1),
            )
            for r in self._records()
        ]

    def terminate(self, pod_id: str) -> None:
        """SIGTERM the pod's process groups (a cluster: every node's), SIGKILL after the grace period.
        Unknown ids are a no-op; a terminated record whose processes live on is ended again."""
        record = self._read(pod_id)
        alive = [m for m in _members(record) if _alive(m)] if record else []
        if record is None or (record["status"] == TERMINATED and not alive):
            return
        record["status"] = TERMINATED
        self._write(record)  # first: a pod terminating itself is killed by the signal below
        own = os.getpgid(0)  # a node ending its own cluster: the other nodes first, itself last
        for member in sorted(alive, key=lambda m: m["pid"] == own):
            self._kill(member)

    def find_cluster(self, name: str) -> Pod | None:
        return next((p for p in self.list_pods() if p.nodes > 1 and p.name == name), None)

    def log_file(self, pod_id: str) -> Path | None:
        path = self.dir / f"{pod_id}.log"
        return path if path.is_file() else None

    def launch_pr(self, pod_id: str) -> int | None:
        return None  # local pods start at once: their runs report a start, and with it the PR

    def _kill(self, record: dict[str, Any]) -> None:
        pgid = record["pid"]  # setsid makes the pod its group's leader
        for sig, wait in ((signal.SIGTERM, self.grace_seconds), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                _alive(record)  # reaps the leader when it is our child, so the group can empty
                if not group_alive(pgid):
                    return
                time.sleep(0.05)

    def _status(self, record: dict[str, Any]) -> str:
        if record["status"] == TERMINATED:
            return TERMINATED
        return RUNNING if any(_alive(m) for m in _members(record)) else EXITED

    def _records(self) -> list[dict[str, Any]]:
        if not self.dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("local-*.json"))]

    def _read(self, pod_id: str) -> dict[str, Any] | None:
        path = self.dir / f"{pod_id}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _write(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.dir / f"{record['id']}.json", record)
