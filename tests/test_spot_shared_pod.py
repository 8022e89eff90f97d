"""Interruptible pods and shared pods together (`interruptible` + `[compute] configs_per_pod`): which
configs may share a rented pod, and what plan, launch and reap do when RunPod preempts a pod that runs
several configs one after another. The grouping and the reaper's decision as pure functions; `haha
plan`/`launch`/`reap` as processes against the RunPod fake; `haha pod` as a process that RunPod stops.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from check_helpers import git, make_git_repo
from fakes.runpod_graphql import RunPodFake
from haha.compute.base import Pod
from haha.plan import PlannedRun, pods_of
from haha.podname import PodName
from haha.reap import BootTimeout, decide
from haha.runstatus import RunStatus, read_status, write_status
from haha.settings import load_settings
from haha.store import get_store
from pod_results import write_fake_results
from test_pod_flow import github, repo_root
from test_runpod_launch import NEW, OTHER, haha, root, set_compute

pytest_plugins = ["fakes.fixtures"]
__all__ = ["github", "repo_root", "root"]  # the fixtures, shared with test_runpod_launch and test_pod_flow

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
H100 = ("NVIDIA H100 80GB HBM3",)
ENV = {"HAHA_COMPUTE": "runpod"}  # no HF token: the runs' statuses live in the repo's local store
FAKE_RUN = Path(__file__).parent / "pod_scripts" / "fake_run.py"


def run(config: str, spot: bool = True, resume: bool | None = None) -> PlannedRun:
    return PlannedRun(config, "train", "x", 1, H100, interruptible=spot or None, resume=resume)


def names(pods: list[tuple[PlannedRun, ...]]) -> list[list[str]]:
    return [[r.config for r in pod] for pod in pods]


# --- the grouping (pure) -----------------------------------------------------------------------------
def test_a_rented_pod_never_mixes_with_on_demand_another_bid_or_a_resumed_run() -> None:
    runs = [
        run("a-001"),
        run("a-002", spot=False),  # on-demand: another kind of pod (deployed, not rented)
        run("a-003"),
        run("a-004"),  # the same base model and GPUs, but a higher bid
        run("a-005", resume=True),  # resumes a preempted run: a pod of its own
        run("a-006", spot=False),
        run("a-007"),
        run("a-008", spot=False, resume=True),  # resumed on-demand after too many preemptions
    ]
    bases = {r.config: "llama" for r in runs}
    bids = {"a-001": None, "a-003": None, "a-004": 2.5, "a-005": None, "a-007": 2.5}

    assert names(pods_of(runs, bases, 4, bids)) == [
        ["a-001", "a-003"],  # each type's spot price
        ["a-002", "a-006"],
        ["a-004", "a-007"],  # $2.50 per GPU-hour
        ["a-005"],
        ["a-008"],
    ]


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ({"interruptible": True}, {"interruptible": True}, True),
        ({"interruptible": True}, {}, False),  # one rented, one deployed
        ({"interruptible": True}, {"interruptible": True, "bid_per_gpu": 2.5}, False),
    ],
)
def test_the_gate_says_configs_share_a_pod_only_where_plan_will_put_them_in_one(
    tmp_path: Path, first: dict, second: dict, shared: bool
) -> None:
    from check_helpers import SMOL, check, make_repo
    from haha.check.render import render_markdown

    root = make_repo(tmp_path)
    other = "haha-smollm2-135m-lora-002"
    config = yaml.safe_load((root / SMOL).read_text())
    for path, block in ((root / SMOL, first), (root / f"train/config/{other}.yml", second)):
        path.write_text(yaml.safe_dump({**config, "haha": block} if block else config, sort_keys=False))
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace("\nconfigs_per_pod = 1", "\nconfigs_per_pod = 2"))

    out = render_markdown(check(root))

    assert (f"{Path(SMOL).stem} + {other} run one after another in one pod" in out) is shared


def test_the_configs_a_preempted_pod_never_got_to_are_picked_up_by_the_resume_schedule() -> None:
    from haha.plan import Plan, displaced, resumes_only, with_displaced

    def pod(pod_id: str, first: str, more: tuple[str, ...], status: str, spot: bool = True) -> Pod:
        name = str(PodName.make(first, "1234567", NOW + timedelta(hours=11), more))
        return Pod(pod_id, name, status, interruptible=spot)

    stopped = pod("p1", "a-001", ("a-002", "a-003"), "EXITED")
    reaped = str(PodName.make("c-001", "1234567", NOW, ("c-002",)))  # gone from the list
    pods = [
        stopped,
        pod("p2", "b-001", ("b-002",), "RUNNING"),  # alive
        pod("p3", "d-001", ("d-002",), "EXITED", spot=False),  # an on-demand pod that exited
    ]
    statuses = {
        "a-001": RunStatus("succeeded", pod_name=stopped.name),  # finished in it: done
        "a-002": RunStatus("running", pod_name=stopped.name, pod_type="interruptible"),  # resumes
        "a-003": RunStatus("failed", pod_name="haha-a-003-1234567-20261201T0000Z"),  # an older run
        "c-001": RunStatus("running", pod_name=reaped, pod_type="interruptible"),
        "c-002": None,
    }

    assert displaced(pods, statuses) == {"a-003", "c-002"}
    runs = [run("a-002", resume=True), run("a-003"), run("c-001", resume=True), run("c-002"), run("e-001")]
    marked = with_displaced(runs, displaced(pods, statuses))
    only = resumes_only(Plan(runs=tuple(marked)))
    assert [(r.config, r.resume, r.displaced) for r in only.runs] == [
        ("a-002", True, None),
        ("a-003", None, True),
        ("c-001", True, None),
        ("c-002", None, True),  # e-001, new on this push: left to the push's own plan
    ]


# --- the reaper's decision (pure) ---------------------------------------------------------------------
def spot_pod(pod_id: str, deadline: datetime, status: str = "EXITED") -> Pod:
    name = PodName.make("a-001", "1234567", deadline, ("a-002",))
    return Pod(pod_id, str(name), status, interruptible=True)


def test_a_preempted_shared_pod_is_reaped_as_preempted_past_its_deadline_and_its_boot_timeout() -> None:
    """Reaping it as expired or never started would mark both configs failed, and plan would hold them."""
    boot = BootTimeout(30.0, 6.0, 20.0)
    late = spot_pod("p1", NOW - timedelta(minutes=5))  # sat stopped past its deadline
    young = spot_pod("p2", NOW + timedelta(hours=11))  # preempted while it booted: no status yet
    running = spot_pod("p3", NOW - timedelta(minutes=5), status="RUNNING")  # a live one past it

    assert boot.overdue(PodName.parse(young.name), NOW)  # type: ignore[arg-type]
    reaps = decide([late, young, running], NOW, {"a-001": None}, boot)
    assert [(r.pod.id, r.preempted) for r in reaps] == [("p1", True), ("p3", False), ("p2", True)]


# --- plan, launch and reap as processes against the RunPod fake --------------------------------------
def spot_config(root: Path, name: str, **block: object) -> str:
    """Make `name` (a copy of NEW where missing) an interruptible config; its sha256."""
    path = root / f"train/config/{name}.yml"
    if not path.exists():
        shutil.copy(root / f"train/config/{NEW}.yml", path)
    config = yaml.safe_load(path.read_text())
    config["haha"] = {"interruptible": True, **block}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"{name}: interruptible")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def env_of(deploy: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in deploy["env"]}


def plan_of(root: Path, env: dict[str, str], *args: str) -> dict:
    done = haha(root, "plan", "--compute", "runpod", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def reap_of(root: Path, env: dict[str, str]) -> list[tuple[str, bool]]:
    done = haha(root, "reap", "--compute", "runpod", env=env)
    assert done.returncode == 0, done.stderr
    return [(r["config"], r["marked_failed"]) for r in json.loads(done.stdout.splitlines()[-1])]


def running_on(runpod: RunPodFake, pod_id: str, sha: str, **more: object) -> RunStatus:
    """What an interruptible pod's run records while it trains (pod/lifecycle.py, haha.resume.carried)."""
    name = runpod.pods[pod_id]["name"]
    return RunStatus(
        "running", pod_id=pod_id, pod_name=name, pod_type="interruptible", config_sha256=sha, **more
    )  # type: ignore[arg-type]


def test_preempted_while_the_first_config_trains_it_resumes_and_the_second_starts_fresh(
    root: Path, runpod_api: RunPodFake
) -> None:
    """A shared spot pod is preempted during its first config: reap marks neither failed; plan resumes
    the first from its checkpoint in a pod of its own and starts the second afresh (never failed, never
    resumed); each config counts its own preemptions, so only the first falls back to on-demand."""
    sha = spot_config(root, NEW)
    spot_config(root, OTHER)
    set_compute(root, configs_per_pod=2, max_preemptions=1)
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}
    assert haha(root, "launch", env=env).returncode == 0
    (rent,) = runpod_api.calls("podRentInterruptable")
    assert env_of(rent)["HAHA_BASENAMES"] == f"{NEW},{OTHER}"  # two spot configs: one rented pod
    (pod_id,) = runpod_api.pods
    store = get_store(load_settings(root, {}), root)
    write_status(store, NEW, running_on(runpod_api, pod_id, sha, checkpoint_step=6))  # OTHER waits its turn
    runpod_api.preempt(pod_id)
    # The 15-minute schedule (`--resume-only`) picks up both: NEW to resume, OTHER whose turn never
    # came, from the stopped pod's name while RunPod lists it, and from NEW's status once it is reaped.
    picked = [(NEW, True, None), (OTHER, None, True)]
    only = plan_of(root, env, "--resume-only")
    assert [(r["config"], r.get("resume"), r.get("displaced")) for r in only["include"]] == picked

    assert reap_of(root, env) == [(NEW, False), (OTHER, False)]
    assert pod_id in runpod_api.terminated and pod_id not in runpod_api.pods
    assert read_status(store, NEW).state == "running" and read_status(store, OTHER) is None

    plan = plan_of(root, env)
    first, second = plan["include"]  # a pod each: the resume runs alone
    assert (first["config"], first["resume"], first["preemptions"], "pod" in first) == (NEW, True, 1, False)
    assert "resuming from step 6" in first["reason"]
    assert (second["config"], second["interruptible"], "resume" in second) == (OTHER, True, False)
    assert plan["failed"] == [] and plan["count"] == 2
    only = plan_of(root, env, "--resume-only")
    assert [(r["config"], r.get("resume"), r.get("displaced")) for r in only["include"]] == picked

    assert haha(root, "launch", env=env).returncode == 0
    _, resumed, fresh = runpod_api.calls("podRentInterruptable")
    assert (env_of(resumed)["HAHA_BASENAME"], env_of(resumed)["HAHA_RESUME"]) == (NEW, "1")
    assert env_of(resumed)["HAHA_PREEMPTIONS"] == "1" and "HAHA_BASENAMES" not in env_of(resumed)
    assert env_of(fresh)["HAHA_BASENAME"] == OTHER and "HAHA_RESUME" not in env_of(fresh)
    for pod in (resumed, fresh):  # each leads its pod: billed from its own launch, boot included
        assert "HAHA_LAUNCHED_AT" in env_of(pod)

    # Preempted again, each on its own pod: NEW's second preemption passes max_preemptions (1) and it
    # resumes on-demand; OTHER's first is within it and OTHER resumes on a spot pod.
    again = {PodName.parse(p["name"]).basename: i for i, p in runpod_api.pods.items()}  # type: ignore[union-attr]
    write_status(store, NEW, running_on(runpod_api, again[NEW], sha, checkpoint_step=9, preemptions=1))
    other_sha = hashlib.sha256((root / f"train/config/{OTHER}.yml").read_bytes()).hexdigest()
    write_status(store, OTHER, running_on(runpod_api, again[OTHER], other_sha, checkpoint_step=3))
    runpod_api.preempt(again[NEW])
    runpod_api.preempt(again[OTHER])
    assert haha(root, "launch", env=env).returncode == 0
    (on_demand,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert (env_of(on_demand)["HAHA_BASENAME"], env_of(on_demand)["HAHA_PREEMPTIONS"]) == (NEW, "2")
    assert "HAHA_INTERRUPTIBLE" not in env_of(on_demand)
    last = runpod_api.calls("podRentInterruptable")[-1]
    assert (env_of(last)["HAHA_BASENAME"], env_of(last)["HAHA_PREEMPTIONS"]) == (OTHER, "1")


def test_preempted_while_the_second_config_trains_only_the_second_resumes(
    root: Path, runpod_api: RunPodFake
) -> None:
    """The first config finished and published in the pod RunPod then took back: it is not run again,
    and the second resumes from its checkpoint, counted as its first preemption."""
    spot_config(root, NEW)
    sha = spot_config(root, OTHER)
    set_compute(root, configs_per_pod=2)
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}
    assert haha(root, "launch", env=env).returncode == 0
    (pod_id,) = runpod_api.pods
    store = get_store(load_settings(root, {}), root)
    checkout = root.parent / "pod-checkout"  # what the pod published for NEW: results and status
    shutil.copytree(root, checkout)
    write_fake_results(checkout, NEW)
    write_status(
        store,
        NEW,
        RunStatus("succeeded", pod_id=pod_id, pod_name=runpod_api.pods[pod_id]["name"]),
        results_file=checkout / f"train/results/{NEW}.json",
    )
    write_status(store, OTHER, running_on(runpod_api, pod_id, sha, checkpoint_step=4))
    runpod_api.preempt(pod_id)

    plan = plan_of(root, env)
    (entry,) = plan["include"]
    assert (entry["config"], entry["resume"], entry["preemptions"]) == (OTHER, True, 1)
    assert plan["awaiting_collect"] == [NEW] and plan["failed"] == []
    assert reap_of(root, env) == [(NEW, False), (OTHER, False)]
    assert read_status(store, NEW).state == "succeeded" and read_status(store, OTHER).state == "running"

    assert haha(root, "launch", env=env).returncode == 0
    _, resumed = runpod_api.calls("podRentInterruptable")
    assert env_of(resumed)["HAHA_BASENAME"] == OTHER and env_of(resumed)["HAHA_RESUME"] == "1"
    assert "HAHA_BASENAMES" not in env_of(resumed)


def test_spot_and_on_demand_configs_and_spot_configs_with_other_bids_get_pods_of_their_own(
    root: Path, runpod_api: RunPodFake
) -> None:
    third = "haha-smollm2-135m-lora-004"
    spot_config(root, OTHER, bid_per_gpu=2.5)
    spot_config(root, third)
    set_compute(root, configs_per_pod=3)  # NEW stays on-demand
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}

    assert [r.get("pod") for r in plan_of(root, env)["include"]] == [None, None, None]
    assert haha(root, "launch", env=env).returncode == 0
    (deployed,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert env_of(deployed)["HAHA_BASENAME"] == NEW and "HAHA_BASENAMES" not in env_of(deployed)
    rents = runpod_api.calls("podRentInterruptable")
    assert sorted((env_of(r)["HAHA_BASENAME"], r["bidPerGpu"]) for r in rents)[0] == (OTHER, 2.5)
    assert all("HAHA_BASENAMES" not in env_of(r) for r in rents) and len(rents) == 2


# --- the pod: `haha pod` for a shared spot pod that RunPod stops -----------------------------------------
FIRST, SECOND = "haha-smollm2-135m-lora-001", "haha-smollm2-135m-lora-002"


def stop_shared_pod(
    tmp_path: Path, spot: bool, training: str
) -> tuple[int, RunStatus | None, RunStatus | None]:
    """`haha pod` for a shared pod of FIRST then SECOND (the fake run), stopped by SIGTERM while
    `training` trains, after the reader of its output went (boot.sh's tee, stopped with the container).
    Its exit status, and the two configs' statuses."""
    root = make_git_repo(tmp_path)
    shutil.copy(root / f"train/config/{FIRST}.yml", root / f"train/config/{SECOND}.yml")
    argv = [sys.executable, str(FAKE_RUN), f"sleep-for={training}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAHA_", "RUNPOD_", "HF_TOKEN"))}
    env |= {
        "HAHA_STORE": "local",
        "HAHA_BASENAMES": f"{FIRST},{SECOND}",
        "HAHA_RUN_ARGV": json.dumps(argv),
        "HAHA_WORKDIR": str(tmp_path / "work"),
    }
    env |= {"HAHA_INTERRUPTIBLE": "1"} if spot else {}
    store = get_store(load_settings(root, {"HAHA_STORE": "local"}), root)
    pod = subprocess.Popen(
        [sys.executable, "-m", "haha.cli", "pod", FIRST, "--repo", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while (status := read_status(store, training)) is None or status.state != "running":
            assert time.monotonic() < deadline and pod.poll() is None, f"{training} never started"
            time.sleep(0.1)
        time.sleep(1.0)  # its (fake) training has started
        assert pod.stdout is not None
        pod.stdout.close()  # the reader goes first
        pod.send_signal(signal.SIGTERM)  # RunPod stops the container
        pod.wait(timeout=60)
    finally:
        pod.kill()
    return pod.returncode, read_status(store, FIRST), read_status(store, SECOND)


@pytest.mark.parametrize("spot", [True, False])
def test_a_stopped_shared_pod_leaves_the_config_it_had_not_started_unrecorded_only_when_preempted(
    tmp_path: Path, spot: bool
) -> None:
    """SIGTERM during the first config: on a spot pod (a preemption) the first stays `running` and the
    second has no record, so plan resumes one and starts the other; on an on-demand pod (a reaper, a
    person) the pod still records both as failed, as before, though its output's reader is gone."""
    code, stopped, waiting = stop_shared_pod(tmp_path, spot, FIRST)

    assert code == 1 and stopped is not None
    if spot:
        assert (stopped.state, stopped.pod_type) == ("running", "interruptible")
        assert waiting is None  # not failed, not started: plan launches it afresh
    else:
        assert stopped.state == "failed" and waiting is not None and waiting.state == "failed"


def test_a_shared_spot_pod_preempted_during_its_second_config_keeps_the_first_ones_end(
    tmp_path: Path,
) -> None:
    code, done, stopped = stop_shared_pod(tmp_path, True, SECOND)

    assert code == 1 and done is not None and stopped is not None
    assert done.state == "succeeded"  # published: not run again
    assert (stopped.state, stopped.pod_type, stopped.pod_id) == ("running", "interruptible", done.pod_id)


def test_a_local_shared_spot_pod_stopped_like_a_preempted_one_resumes_one_config_and_restarts_the_other(
    repo_root: Path, github: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole pod, boot.sh and its EXIT trap (`haha pod-terminate`) included: its process group gets
    SIGTERM, as a container that RunPod stops does, while the first config trains. Then `haha plan`
    resumes the first alone and starts the second afresh."""
    from check_helpers import edit_config
    from haha.plan import load_plan, share_pods
    from haha.repo import Repo
    from test_pod_flow import SMOL, compute_for, launch_local, run_argv, store_of, wait_done

    second = "haha-smollm2-135m-lora-002"
    config = repo_root / "train" / "config"
    shutil.copy(config / f"{SMOL}.yml", config / f"{second}.yml")
    for name in (SMOL, second):
        edit_config(repo_root, f"train/config/{name}.yml", haha={"interruptible": True})
    git(repo_root, "add", "-A")
    set_compute(repo_root, configs_per_pod=2)  # commits
    run_argv(monkeypatch, f"sleep-for={SMOL}")

    (launched,) = launch_local(repo_root, (SMOL, second))
    assert launched.configs == (SMOL, second)
    store, deadline = store_of(repo_root), time.monotonic() + 90
    while read_status(store, SMOL) is None:  # its turn came: `running`
        assert time.monotonic() < deadline, "the first config never started"
        time.sleep(0.2)
    time.sleep(1.0)
    compute_for(repo_root).terminate(launched.pod.id)  # SIGTERM to the pod's process group
    wait_done(repo_root)

    stopped = read_status(store, SMOL)
    assert stopped is not None and (stopped.state, stopped.pod_type) == ("running", "interruptible")
    assert read_status(store, second) is None  # neither the pod nor its EXIT trap marked it failed
    repo = Repo(repo_root)
    plan = load_plan(repo, compute_for(repo_root), store, retry=(SMOL, second))
    plan = share_pods(repo, plan, 2)
    runs = {r.config: r for r in plan.runs}
    assert (runs[SMOL].resume, runs[SMOL].preemptions, runs[SMOL].pod) == (True, 1, None)
    assert (runs[second].resume, runs[second].interruptible) == (None, True) and plan.failed == ()
