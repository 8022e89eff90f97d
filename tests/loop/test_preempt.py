"""Interruptible pods under the real workflows: merge → launch.yml rents a spot pod → it trains and
uploads checkpoints to the HF fake → RunPod (the fake) preempts it mid-training → reap.yml ends the
stopped pod without failing the run → launch.yml's schedule resumes it on a new spot pod from the last
checkpoint → preempted again, past compute.max_preemptions → the next pod is on-demand and finishes →
one dispatch, one results PR, the resume recorded."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from loop.configs import experiment_files, small_eval
from loop.harness import SECRETS, Loop

NAME = "haha-tiny-001"
# Steps per run: 4 rows, micro_batch 4, no accumulation (tiny_config): one step per epoch.
EPOCHS = 6


def spot_settings(root: Path) -> None:
    """The small eval; one preemption before on-demand; a checkpoint every two of its six steps."""
    small_eval(root)
    toml = root / "haha.toml"
    text = toml.read_text()
    text = re.sub(r"(?m)^max_preemptions = .*$", "max_preemptions = 1", text)
    text = re.sub(r"(?m)^checkpoints_per_run = .*$", "checkpoints_per_run = 3", text)
    toml.write_text(text)


def status(lp: Loop) -> dict:
    repo = lp.hub.repos.get(f"synagi/{NAME}")
    raw = repo.files.get("status.json") if repo else None
    return json.loads(raw) if raw else {}


def wait_checkpoint(lp: Loop, pod_id: str, after: int, timeout: float = 900) -> int:
    """Until the pod `pod_id` has uploaded a checkpoint past step `after`; its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = status(lp)
        if found.get("pod_id") == pod_id and (found.get("checkpoint_step") or 0) > after:
            return found["checkpoint_step"]
        assert pod_id in lp.runpod.pods, f"pod {pod_id} ended before a checkpoint\n{lp.pod_logs()}"
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint past step {after} from {pod_id}\n{lp.pod_logs()}")


def env_of(deploy: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in deploy["env"]}


def test_a_run_preempted_twice_finishes_with_one_results_file_and_the_resume_recorded(make_loop) -> None:
    lp: Loop = make_loop(prepare=spot_settings)
    secrets = {k: v for k, v in SECRETS.items() if k != "WANDB_API_KEY"}  # no W&B fake: offline
    before = lp.github.rev("refs/heads/main")
    files = experiment_files(NAME, num_epochs=EPOCHS, haha={"interruptible": True})
    lp.push_branch(f"exp/{NAME}", files, f"Add {NAME}")
    pr = lp.github.open_pull(f"exp/{NAME}", f"Try {NAME}")["number"]
    sha = lp.merge(pr)
    launch = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert launch.rc == 0, launch.output[-5000:]
    (first,) = lp.runpod.calls("podRentInterruptable")
    assert lp.runpod.calls("podFindAndDeployOnDemand") == []
    assert first["bidPerGpu"] > 0 and env_of(first)["HAHA_INTERRUPTIBLE"] == "1"
    (pod1,) = lp.runpod.pods

    # RunPod takes the pod back once it has uploaded a checkpoint; reap ends it, the run stays running.
    step1 = wait_checkpoint(lp, pod1, after=0)
    lp.runpod.preempt(pod1)
    reap = lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"), secrets=secrets)
    assert reap.rc == 0, reap.output[-5000:]
    assert pod1 in lp.runpod.terminated and lp.github.issues == {}, reap.output[-3000:]
    assert status(lp)["state"] == "running", f"{status(lp)}\n{lp.pod_logs()[-3000:]}"

    # launch.yml on its schedule resumes it on a new interruptible pod; that one is preempted too.
    lp.checkout("main")
    resume = lp.act("schedule", "launch.yml", lp.schedule_event("*/15 * * * *"), secrets=secrets)
    assert resume.rc == 0, resume.output[-5000:]
    rents = lp.runpod.calls("podRentInterruptable")
    assert len(rents) == 2, f"{status(lp)}\n{resume.output[-6000:]}"
    second = rents[1]
    assert (env_of(second)["HAHA_RESUME"], env_of(second)["HAHA_PREEMPTIONS"]) == ("1", "1")
    (pod2,) = lp.runpod.pods
    step2 = wait_checkpoint(lp, pod2, after=step1)
    lp.runpod.preempt(pod2)

    # Past max_preemptions (1): the next pod is on-demand, resumes from step2 and finishes.
    again = lp.act("schedule", "launch.yml", lp.schedule_event("*/15 * * * *"), secrets=secrets)
    assert again.rc == 0, again.output[-5000:]
    deploys = lp.runpod.calls("podFindAndDeployOnDemand")
    assert len(deploys) == 1, f"{status(lp)}\n{again.output[-6000:]}\n{lp.pod_logs()[-4000:]}"
    third = deploys[0]
    assert env_of(third)["HAHA_PREEMPTIONS"] == "2" and "HAHA_INTERRUPTIBLE" not in env_of(third)
    lp.act("schedule", "reap.yml", lp.schedule_event("*/30 * * * *"), secrets=secrets)  # ends pod2
    lp.wait_pods_gone(timeout=1200)
    assert lp.runpod.preempted == [pod1, pod2]
    assert status(lp)["state"] == "succeeded", lp.pod_logs()

    # The training log of the pod that finished shows where it resumed.
    hub = lp.hub.repos[f"synagi/{NAME}"]
    pod_log = hub.files["logs/pod.log"].decode()
    assert f"train: resuming from checkpoint-{step2}" in pod_log, pod_log[-3000:]
    train_log = hub.files["logs/train.log"].decode()
    bars = [int(m) for m in re.findall(rf"\|\s*(\d+)/{EPOCHS} \[", train_log.replace("\r", "\n"))]
    assert bars and not set(bars) & set(range(1, step2 + 1)) and max(bars) == EPOCHS, bars

    # Exactly one dispatch (the preempted pods reported nothing), one results PR, the resume recorded.
    (dispatch,) = lp.github.dispatches
    lp.checkout("main")
    collect = lp.act("repository_dispatch", "collect.yml", lp.dispatch_event(dispatch))
    assert collect.rc == 0, collect.output[-5000:]
    (results_pr,) = lp.github.pulls_for("haha/results")
    document = json.loads(lp.github.show("haha/results", f"train/results/{NAME}.json"))
    resumed = document["meta"]["resumed"]
    assert resumed["count"] == 2 and resumed["from_step"] == step2
    assert resumed["steps_repeated"] >= 0 and results_pr["state"] == "open"
