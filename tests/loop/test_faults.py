"""Faults along the loop, with a stand-in for `haha run` (tests/pod_scripts/fake_run.py through
HAHA_RUN_ARGV) where training itself is not the point. Nothing lost, nothing duplicated, no pod left."""

from __future__ import annotations

import json
import time
from pathlib import Path

from loop.configs import experiment_files
from loop.harness import HF_TOKEN, ROOT, WANDB_KEY, Loop
from loop.test_launch import RESULTS_BRANCH, deploy_env, merge_experiment, run_comments

H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"
FAKE_RUN = str(ROOT / "tests" / "pod_scripts" / "fake_run.py")


def fake_run(behaviour: str) -> dict[str, str]:
    return {"HAHA_RUN_ARGV": json.dumps(["python", FAKE_RUN, behaviour])}


def launch(lp: Loop, name: str, env: dict[str, str]) -> tuple[int, str]:
    """Merge a PR adding experiment `name` and run launch.yml on the push; (PR, merge sha)."""
    pr, before, sha = merge_experiment(lp, name, experiment_files(name, dataset=f"{name}.jsonl"))
    run = lp.act("push", "launch.yml", lp.push_event(before, sha), env=env)
    assert run.rc == 0, run.output[-5000:]
    return pr, sha


def deploys(lp: Loop, name: str) -> list[str]:
    return [d["gpuTypeId"] for d in lp.runpod.calls("podFindAndDeployOnDemand") if name in d["name"]]


def hf_token_as_runpod_secret(root: Path) -> None:
    with open(root / "haha.toml", "a") as toml:
        toml.write('\n[compute.secret_refs]\nHF_TOKEN = "haha_hf_token"\n')


def test_launch_retries_then_falls_back_and_runs_collect_into_one_pr(make_loop) -> None:
    lp: Loop = make_loop(prepare=hf_token_as_runpod_secret)
    lp.runpod.secrets = {"haha_hf_token": HF_TOKEN}
    ok = fake_run("ok")

    # The first GPU type is out of stock, and RunPod's first answer is slower than the SDK waits.
    lp.runpod.out_of_stock = {H200}
    lp.runpod.slow = {"podFindAndDeployOnDemand": (1, 31.0)}
    pr_a, _ = launch(lp, "haha-tiny-001", ok)
    assert deploys(lp, "haha-tiny-001") == [H200, H200, H100]
    env = deploy_env(lp.runpod.calls("podFindAndDeployOnDemand")[-1])
    # HF_TOKEN is a RunPod secret reference (the value never sits in the pod spec); the W&B key is
    # plain env; the account's RunPod key is not there at all.
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_haha_hf_token }}"
    assert HF_TOKEN not in json.dumps(lp.runpod.calls("podFindAndDeployOnDemand"))
    assert env["WANDB_API_KEY"] == WANDB_KEY
    assert "RUNPOD_API_KEY" not in env

    # RunPod answers 502 with an HTML page three times: retried with backoff, then the next type.
    lp.runpod.out_of_stock = set()
    lp.runpod.http_errors = {"podFindAndDeployOnDemand": 3}
    started = time.monotonic()
    pr_b, _ = launch(lp, "haha-tinyb-001", ok)
    assert deploys(lp, "haha-tinyb-001") == [H200, H200, H200, H100]
    assert time.monotonic() - started > 2.0  # it backed off between tries

    for pr, name in ((pr_a, "haha-tiny-001"), (pr_b, "haha-tinyb-001")):
        (comment,) = run_comments(lp, pr, name)
        assert "H100" in comment["body"] and "$2.69/h" in comment["body"], comment["body"]

    # The pods published with the token RunPod resolved from the reference.
    lp.wait_pods_gone(timeout=180)
    assert {"synagi/haha-tiny-001", "synagi/haha-tinyb-001"} <= set(lp.hub.repos), lp.pod_logs()

    # Both runs finish together: two dispatches, collected one after the other into ONE results PR.
    assert len(lp.github.dispatches) == 2, lp.pod_logs()
    lp.checkout("main")
    for dispatch in lp.github.dispatches:
        run = lp.act("repository_dispatch", "collect.yml", lp.dispatch_event(dispatch))
        assert run.rc == 0, run.output[-5000:]
    (results_pr,) = lp.github.pulls_for(RESULTS_BRANCH)
    names = lp.github.ls(RESULTS_BRANCH, "train/results")
    assert {"haha-tiny-001.json", "haha-tinyb-001.json"} <= {n.rsplit("/", 1)[-1] for n in names}

    # It merges cleanly; the next scheduled collect finds nothing new and opens nothing.
    lp.merge(results_pr["number"])
    pushes = len(lp.github.pushes)
    run = lp.act("schedule", "collect.yml", lp.schedule_event("17 * * * *"))
    assert run.rc == 0, run.output[-5000:]
    assert len(lp.github.pulls_for(RESULTS_BRANCH)) == 1
    assert len(lp.github.pushes) == pushes
    assert not lp.runpod.pods and not lp.runpod.starter.running()


def test_pod_faults_end_the_pod_and_say_why(make_loop) -> None:
    lp: Loop = make_loop()

    # The clone fails in boot: the run is marked failed and the pod ends, without a restart.
    lp.github.git_fetch_errors = 1000
    pr_clone, _ = launch(lp, "haha-tinyc-001", fake_run("ok"))
    lp.wait_pods_gone(timeout=120)
    lp.github.git_fetch_errors = 0
    (clone_pod,) = [p for p, d in lp.runpod.terminated.items() if "haha-tinyc-001" in d["name"]]
    assert lp.runpod.starter.starts[clone_pod] == 1, lp.pod_logs()

    # Training raises: the pod ends and says the run failed (collect then updates the comment).
    pr_crash, _ = launch(lp, "haha-tinyd-001", fake_run("train-crash"))
    lp.wait_pods_gone(timeout=120)
    states = {d["client_payload"]["basename"]: d["client_payload"]["state"] for d in lp.github.dispatches}
    assert states.get("haha-tinyd-001") == "failed", lp.github.dispatches
    dispatched = len(lp.github.dispatches)

    # Terminating fails — every try of the first container (haha pod's teardown, then boot.sh's trap:
    # 4 each) — and the dispatch is lost: RunPod restarts the container, which finds the run's end
    # recorded and only terminates; the scheduled collect picks the published results up.
    lp.runpod.terminate_errors = 8
    lp.github.dispatch_errors = 10
    pr_ok, _ = launch(lp, "haha-tinye-001", fake_run("ok"))
    lp.wait_pods_gone(timeout=240)
    (ok_pod,) = [p for p, d in lp.runpod.terminated.items() if "haha-tinye-001" in d["name"]]
    assert lp.runpod.starter.starts[ok_pod] == 2, lp.pod_logs()
    hub = lp.hub.repos.get("synagi/haha-tinye-001")
    assert hub is not None, lp.pod_logs()
    results = [c[1].get("results.json") for c in hub.commits if "results.json" in c[1]]
    assert len(set(results)) == 1, "the restarted container did not run (or publish) again"
    assert len(lp.github.dispatches) == dispatched  # the one for haha-tinye-001 was lost

    lp.checkout("main")
    run = lp.act("schedule", "collect.yml", lp.schedule_event("17 * * * *"))
    assert run.rc == 0, run.output[-5000:]
    (results_pr,) = lp.github.pulls_for(RESULTS_BRANCH)
    files = {n.rsplit("/", 1)[-1] for n in lp.github.ls(RESULTS_BRANCH, "train/results")}
    assert "haha-tinye-001.json" in files
    assert not {"haha-tinyc-001.json", "haha-tinyd-001.json"} & files

    # Each PR's run-status comment ends in the right state, edited in place (one comment each).
    (crash_comment,) = run_comments(lp, pr_crash, "haha-tinyd-001")
    assert "failed" in crash_comment["body"] and "CUDA error" in crash_comment["body"]
    assert f"{lp.hub_url}/synagi/haha-tinyd-001/logs/" in crash_comment["body"], "where the log is"
    assert "logs/pod.log" in lp.hub.repos["synagi/haha-tinyd-001"].files  # and it is there
    (ok_comment,) = run_comments(lp, pr_ok, "haha-tinye-001")
    assert "finished" in ok_comment["body"] and results_pr["html_url"] in ok_comment["body"]

    # The failed configs are held: the next push launches nothing.
    before = lp.github.rev("refs/heads/main")
    sha = lp.push_branch("main", {"train/notes.md": "no new config\n"}, "Notes")
    lp.checkout("main")
    deployed = len(lp.runpod.calls("podFindAndDeployOnDemand"))
    run = lp.act("push", "launch.yml", lp.push_event(before, sha))
    assert run.rc == 0
    assert len(lp.runpod.calls("podFindAndDeployOnDemand")) == deployed
    assert not lp.runpod.pods and not lp.runpod.starter.running()

    # A boot that fails before `haha pod` starts (the clone) still reaches the PR: failed, with why.
    (clone_comment,) = run_comments(lp, pr_clone, "haha-tinyc-001")
    assert "failed" in clone_comment["body"] and "status 12" in clone_comment["body"], clone_comment

    # A retry by hand (Actions → launch → Run workflow with the config) on main's tip, which no PR
    # made: the run's comment on the PR that added the config says it launched again (issue 16, 6).
    dispatch = {"inputs": {"config": "haha-tinyd-001"}, "repository": lp.repository()}
    run = lp.act("workflow_dispatch", "launch.yml", dispatch, env=fake_run("ok"))
    assert run.rc == 0, run.output[-5000:]
    retry = lp.runpod.calls("podFindAndDeployOnDemand")[-1]
    assert "haha-tinyd-001" in retry["name"] and deploy_env(retry)["HAHA_PR"] == str(pr_crash)
    (retried,) = run_comments(lp, pr_crash, "haha-tinyd-001")
    assert retried["id"] == crash_comment["id"] and "launched" in retried["body"], retried["body"]
    lp.wait_pods_gone(timeout=120)
