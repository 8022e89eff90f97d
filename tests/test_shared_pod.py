"""Shared pods (`[compute] configs_per_pod`): the grouping, the pod name, and plan, launch and reap
decisions on pods that run several configs; `haha plan`/`launch`/`reap` as processes against the RunPod
fake. The pod side (configs run one after another in one pod) is in test_pod_flow.py.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from check_helpers import git
from fakes.runpod_graphql import RunPodFake
from haha.compute.base import Pod
from haha.plan import CurrentEval, PlannedRun, in_flight, make_plan, pods_of
from haha.podname import PodName
from haha.reap import BootTimeout, decide
from haha.settings import load_settings
from haha.sharedpod import group, pod_hours, saving
from haha.store import get_store
from test_runpod_launch import ENV, NEW, OTHER, haha, root, set_compute

pytest_plugins = ["fakes.fixtures"]
__all__ = ["root"]  # the fixture, shared with test_runpod_launch

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
H100, H200 = ("NVIDIA H100 80GB HBM3",), ("NVIDIA H200",)


def run(config: str, gpus: int = 1, types: tuple[str, ...] = H100, mode: str = "train") -> PlannedRun:
    return PlannedRun(config, mode, "no results yet", gpus, types)  # type: ignore[arg-type]


def names(pods: list[tuple[PlannedRun, ...]]) -> list[list[str]]:
    return [[r.config for r in pod] for pod in pods]


# --- the grouping (pure) ---------------------------------------------------------------------------
def test_configs_share_a_pod_only_with_one_base_model_mode_and_gpus_up_to_the_cap() -> None:
    runs = [
        run("a-001"),
        run("a-002"),
        run("a-003", gpus=2),  # other GPU count
        run("a-004", types=H200),  # other GPU types
        run("a-005", mode="eval"),  # an eval-only run does not train: another pod
        run("a-006"),
        run("b-001"),  # another base model
        run("a-007"),
    ]
    bases = {r.config: "llama" for r in runs} | {"b-001": "smol"}

    assert names(pods_of(runs, bases, 3)) == [
        ["a-001", "a-002", "a-006"],
        ["a-003"],
        ["a-004"],
        ["a-005"],
        ["b-001"],
        ["a-007"],  # the first pod is full: a second one for the same model
    ]
    assert names(pods_of(runs, bases, 1)) == [[r.config] for r in runs]  # off: a pod per config


def test_a_config_whose_needs_are_unknown_never_shares() -> None:
    runs = [run("a-001"), PlannedRun("a-002", "train", "x"), run("a-003")]
    assert names(pods_of(runs, {"a-001": "m", "a-002": "m", "a-003": "m"}, 4)) == [
        ["a-001", "a-003"],
        ["a-002"],
    ]
    assert names(pods_of(runs, {}, 4)) == [["a-001"], ["a-002"], ["a-003"]]  # no base model known
    assert group([1, 2, 3, 4, 5], lambda n: n % 2, 2) == [(1, 3), (2, 4), (5,)]


def test_a_shared_pod_lives_each_configs_deadline_with_the_overhead_once() -> None:
    assert pod_hours(6.0, 20.0, 1) == 6.0
    assert pod_hours(6.0, 30.0, 3) == pytest.approx(6.0 + 2 * 5.5)
    assert saving([2, 1, 3], 20.0, 3.0) == (60.0, 3.0)  # three overheads not paid, at $3/h
    assert saving([1], 20.0, None) == (0.0, None)


# --- pod names -----------------------------------------------------------------------------------
def test_a_shared_pod_name_names_every_config_and_parses_back() -> None:
    deadline = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    name = PodName.make("llama-3-8b-001", "1a2b3c4d", deadline, ("llama-3-8b-002", "smol.v2-007"))

    assert str(name) == "haha-llama-3-8b-001_002_smol.v2-007-1a2b3c4-20261128T0300Z"
    assert PodName.parse(str(name)) == name
    assert name.basenames == ("llama-3-8b-001", "llama-3-8b-002", "smol.v2-007")
    single = PodName.parse("haha-haha-llama-3-8b-lora-001-1a2b3c4-20261128T0300Z")
    assert single is not None and single.basenames == ("haha-llama-3-8b-lora-001",)
    assert PodName.parse("haha-a-001_x-1a2b3c4-20261128T0300Z") is None  # not ours


# --- plan and reap decisions ---------------------------------------------------------------------
def shared_pod(minutes_ago: float, pod_id: str, *basenames: str, status: str = "RUNNING") -> Pod:
    """A pod as launch names a shared one: launch + its lifetime (6 h each, 20 min overhead once) + 1 min."""
    hours = pod_hours(6.0, 20.0, len(basenames))
    deadline = NOW - timedelta(minutes=minutes_ago) + timedelta(hours=hours, minutes=1)
    return Pod(pod_id, str(PodName.make(basenames[0], "1234567", deadline, basenames[1:])), status)


def test_every_config_of_a_live_shared_pod_is_in_flight_and_not_planned_again() -> None:
    live = shared_pod(5, "p1", "a-001", "a-002")
    flying = in_flight([live, shared_pod(500, "p2", "c-001", "c-002", status="EXITED")])
    desired = {"a-001": "x", "a-002": "y", "c-001": "z"}

    plan = make_plan(desired, {}, flying, {}, CurrentEval("e"))

    assert flying == {"a-001", "a-002"}  # the second waits its turn: in flight all the same
    assert [r.config for r in plan.runs] == ["c-001"] and plan.in_flight == ("a-001", "a-002")


def test_the_reaper_times_a_shared_pods_boot_from_its_launch_not_from_a_single_pods() -> None:
    boot = BootTimeout(30.0, 6.0, 20.0)
    young, silent = shared_pod(29, "p1", "a-001", "a-002"), shared_pod(31, "p2", "b-001", "b-002")
    statuses = {"a-001": None, "b-001": None}

    assert [r.pod.id for r in decide([young, silent], NOW, statuses, boot)] == ["p2"]
    late = shared_pod(60 * pod_hours(6.0, 20.0, 2) + 2, "p3", "c-001", "c-002")
    assert [r.pod.id for r in decide([young, late], NOW)] == ["p3"]  # past the pod's own deadline


# --- as processes, against the RunPod fake --------------------------------------------------------
@pytest.fixture
def two_new(root: Path) -> Path:
    """NEW and OTHER: two new configs of one base model and the same GPUs, in one merge."""
    shutil.copy(root / f"train/config/{NEW}.yml", root / f"train/config/{OTHER}.yml")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a second new config")
    return root


def test_haha_plan_and_launch_put_two_configs_of_one_base_model_in_one_pod(
    two_new: Path, runpod_api: RunPodFake
) -> None:
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}
    apart = json.loads(haha(two_new, "plan", "--compute", "runpod", env=env).stdout)
    assert [i["config"] for i in apart["include"]] == [NEW, OTHER]  # off by default: a pod each

    set_compute(two_new, configs_per_pod=2)
    dry = haha(two_new, "launch", "--dry-run", OTHER, env=ENV)  # naming either config shows the pod
    assert dry.returncode == 0, dry.stderr
    (request,) = json.loads(dry.stdout)
    assert (request["config"], request["configs"]) == (NEW, [NEW, OTHER])
    done = haha(two_new, "plan", "--compute", "runpod", env=env)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    (entry,) = plan["include"]  # one matrix entry: the pod, named after its first config
    assert (entry["config"], entry["pod"], plan["count"]) == (NEW, [NEW, OTHER], 2)

    launched = haha(two_new, "launch", NEW, env=env)
    assert launched.returncode == 0, launched.stderr
    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    sent = {e["key"]: e["value"] for e in deploy["env"]}
    assert sent["HAHA_BASENAME"] == NEW and sent["HAHA_BASENAMES"] == f"{NEW},{OTHER}"
    assert PodName.parse(deploy["name"]).basenames == (NEW, OTHER)  # type: ignore[union-attr]
    (item,) = json.loads(launched.stdout)
    assert item["configs"] == [NEW, OTHER]

    again = json.loads(haha(two_new, "plan", "--compute", "runpod", env=env).stdout)
    assert again["count"] == 0 and again["in_flight"] == [NEW, OTHER]
    assert haha(two_new, "launch", OTHER, env=env).returncode == 0
    assert len(runpod_api.calls("podFindAndDeployOnDemand")) == 1  # the second is in flight already


def test_haha_reap_marks_every_config_of_a_shared_pod_that_never_started(
    two_new: Path, runpod_api: RunPodFake
) -> None:
    set_compute(two_new, configs_per_pod=2, boot_timeout_minutes=0.01)
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}
    assert haha(two_new, "launch", env=env).returncode == 0
    (pod_id,) = runpod_api.pods
    assert runpod_api.pulling == {pod_id}  # the private image never pulls

    time.sleep(1.0)  # past the 0.6 s boot timeout
    done = haha(two_new, "reap", env=env)

    assert done.returncode == 0, done.stderr
    assert [c["podId"] for c in runpod_api.calls("podTerminate")] == [pod_id]
    reaped = json.loads(done.stdout.splitlines()[-1])  # after the report, printed (no GitHub token)
    assert [(r["config"], r["pod"], r["marked_failed"]) for r in reaped] == [
        (NEW, pod_id, True),
        (OTHER, pod_id, True),
    ]
    store = get_store(load_settings(two_new, {}), two_new)
    for name in (NEW, OTHER):
        status = store.fetch_status(name)
        assert status["state"] == "failed" and status["pod_id"] == pod_id


def test_each_config_of_a_shared_pod_gets_its_own_env_deadline_and_clock() -> None:
    from haha.pod.shared import each_config, turn
    from haha.podenv import PodEnv

    pod = PodEnv("a-001", "train", "abc", "url", NOW + timedelta(hours=11), "p", "runpod", "hf")
    pod = PodEnv.from_env({**pod.to_env(), "HAHA_BASENAMES": "a-001,a-002"}, "", NOW, 6.0)
    pod = replace(pod, boot_epoch=NOW.timestamp())

    assert pod.basenames == ("a-001", "a-002") and not pod.waited_its_turn
    first = turn(pod, "a-001", True, NOW, 6.0)
    late = turn(pod, "a-002", False, NOW + timedelta(hours=8), 6.0)
    assert (first.deadline, first.boot_epoch) == (NOW + timedelta(hours=6), NOW.timestamp())
    assert (late.deadline, late.boot_epoch) == (pod.deadline, None)  # never past the pod's own
    assert late.waited_its_turn and late.to_env()["HAHA_BASENAME"] == "a-002"
    assert [p.basename for p in each_config(pod)] == ["a-001", "a-002"]
    assert [p.basename for p in each_config(replace(pod, basenames=()))] == ["a-001"]


def test_haha_reap_of_an_overdue_shared_pod_marks_only_the_configs_that_did_not_end_in_it(
    two_new: Path, runpod_api: RunPodFake
) -> None:
    from haha.runstatus import RunStatus, write_status

    overdue = PodName.make(NEW, "1234567", datetime.now(UTC) - timedelta(minutes=5), (OTHER,))
    pod_id = runpod_api.add_pod(str(overdue))
    store = get_store(load_settings(two_new, {}), two_new)
    write_status(store, NEW, RunStatus("succeeded", pod_id=pod_id, pod_name=str(overdue)))
    write_status(store, OTHER, RunStatus("failed", pod_id="pod-of-an-earlier-run"))  # not this pod's end

    done = haha(two_new, "reap", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})

    assert done.returncode == 0, done.stderr
    assert [c["podId"] for c in runpod_api.calls("podTerminate")] == [pod_id]
    reaped = json.loads(done.stdout.splitlines()[-1])
    assert [(r["config"], r["marked_failed"]) for r in reaped] == [(NEW, False), (OTHER, True)]
    assert store.fetch_status(NEW)["state"] == "succeeded"
    other = store.fetch_status(OTHER)
    assert (other["state"], other["pod_id"]) == ("failed", pod_id) and "deadline" in other["reason"]
