"""LocalCompute starts, lists and terminates real detached processes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from haha.compute.base import PodSpec
from haha.compute.local import EXITED, RUNNING, TERMINATED, LocalCompute, pod_argv
from haha.errors import InputError
from process_settings import process_settings

NAME = "haha-haha-llama-3-8b-lora-001-local-20261128T0300Z"
SECRET = "hf_local_secret_789"


def python_pod(code: str, **env: str) -> PodSpec:
    argv = json.dumps([sys.executable, "-c", code])
    return PodSpec(
        name=NAME,
        image="",
        gpu_types=(),
        env={"HAHA_POD_ARGV": argv, "HAHA_BASENAME": "haha-llama-3-8b-lora-001", **env},
        secrets={"HF_TOKEN": SECRET},
    )


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def compute(tmp_path: Path) -> Iterator[LocalCompute]:
    local = LocalCompute(process_settings(tmp_path), tmp_path, grace_seconds=1.0)
    yield local
    for pod in local.list_pods():  # no sleeper outlives a failed test
        local.terminate(pod.id)


def record(compute: LocalCompute, pod_id: str) -> dict:
    return json.loads((compute.dir / f"{pod_id}.json").read_text())


SLEEPER = f"""
import os, time
env = os.environ
print("pod", env["HAHA_BASENAME"], env["HAHA_POD_ID"], env["HF_TOKEN"] == {SECRET!r}, flush=True)
time.sleep(60)
"""


def test_launch_runs_the_pod_command_with_env_and_log(compute: LocalCompute) -> None:
    pod = compute.launch(python_pod(SLEEPER))
    rec = record(compute, pod.id)
    log = Path(rec["log"])
    wait_for(lambda: log.exists() and log.read_text().strip() != "")

    assert log.read_text().split() == ["pod", "haha-llama-3-8b-lora-001", pod.id, "True"]
    assert [(p.id, p.name, p.status) for p in compute.list_pods()] == [(pod.id, NAME, RUNNING)]
    assert SECRET not in (compute.dir / f"{pod.id}.json").read_text()


def test_terminate_kills_the_whole_group_and_is_idempotent(compute: LocalCompute, tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    pod = compute.launch(python_pod(code))
    wait_for(lambda: child_pid.exists() and child_pid.read_text() != "")
    pids = [record(compute, pod.id)["pid"], int(child_pid.read_text())]

    compute.terminate(pod.id)

    wait_for(lambda: all(gone(pid) for pid in pids), seconds=5)
    assert [p.status for p in compute.list_pods()] == [TERMINATED]
    compute.terminate(pod.id)
    compute.terminate("local-does-not-exist")
    assert [p.status for p in compute.list_pods()] == [TERMINATED]


def test_pod_ignoring_sigterm_is_killed_after_grace(compute: LocalCompute, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').write('1')\n"
        "time.sleep(60)\n"
    )
    pod = compute.launch(python_pod(code))
    wait_for(ready.exists)
    pid = record(compute, pod.id)["pid"]

    started = time.monotonic()
    compute.terminate(pod.id)

    assert time.monotonic() - started >= compute.grace_seconds
    wait_for(lambda: gone(pid), seconds=5)
    assert record(compute, pod.id)["status"] == TERMINATED


def test_finished_pod_is_listed_as_exited(compute: LocalCompute) -> None:
    pod = compute.launch(python_pod("print('done')"))

    wait_for(lambda: compute.list_pods()[0].status == EXITED)
    compute.terminate(pod.id)  # nothing left to kill
    assert compute.list_pods()[0].status == TERMINATED


def test_pod_argv_defaults_to_haha_pod_with_the_basename() -> None:
    spec = PodSpec(name=NAME, image="", gpu_types=())
    assert pod_argv(spec) == [sys.executable, "-m", "haha.cli", "pod", "haha-llama-3-8b-lora-001"]


@pytest.mark.parametrize("raw", ["not json", "[]", '"python"', "[1, 2]"])
def test_pod_argv_must_be_a_json_list_of_strings(raw: str) -> None:
    with pytest.raises(InputError, match="HAHA_POD_ARGV"):
        pod_argv(PodSpec(name=NAME, image="", gpu_types=(), env={"HAHA_POD_ARGV": raw}))
