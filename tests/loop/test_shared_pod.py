"""Shared pods under the real workflows: one merge adds two configs of one base model, haha.toml has
`configs_per_pod = 2`, so launch.yml starts one pod that trains and evaluates both (the tiny model, with
Axolotl), one after another; each publishes its own status and results and dispatches, and collect.yml
brings both results files back in the bot's PR. Asserted on what the fakes saw."""

from __future__ import annotations

import json

import jsonschema

from loop.configs import experiment_files, shared_pods
from loop.harness import SECRETS, Loop
from loop.test_launch import RESULTS_BRANCH, deploy_env, merge_experiment, run_comments

FIRST, SECOND = "haha-tiny-001", "haha-tiny-002"


def test_two_configs_of_one_merge_train_in_one_pod(make_loop) -> None:
    lp: Loop = make_loop(prepare=shared_pods(2), server_seconds=3600)  # two trainings on a busy CPU
    files = experiment_files(FIRST) | experiment_files(SECOND)  # one base model, one dataset
    pr, before, sha = merge_experiment(lp, FIRST, files)
    secrets = {k: v for k, v in SECRETS.items() if k != "WANDB_API_KEY"}  # no W&B fake (see test_launch)

    launch = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert launch.rc == 0, launch.output[-5000:]

    # One deploy for both configs: named after the first, its env listing both.
    (deploy,) = lp.runpod.calls("podFindAndDeployOnDemand")
    assert deploy["name"].startswith(f"haha-{FIRST}_002-"), deploy["name"]
    env = deploy_env(deploy)
    assert (env["HAHA_BASENAME"], env["HAHA_BASENAMES"]) == (FIRST, f"{FIRST},{SECOND}")
    pod_id = next(iter(lp.runpod.pods))
    for name in (FIRST, SECOND):  # each config's own run-status comment names the pod
        (comment,) = run_comments(lp, pr, name)
        assert pod_id in comment["body"] and "Shares its pod" in comment["body"]

    # The second config waits its turn in the live pod: a re-run of the push launches nothing.
    again = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert again.rc == 0, again.output[-4000:]
    assert len(lp.runpod.calls("podFindAndDeployOnDemand")) == 1

    # The pod trains both, one after another, then ends itself once.
    lp.wait_pods_gone(timeout=3000)
    assert lp.runpod.starter.starts == {pod_id: 1}, lp.pod_logs()
    assert list(lp.runpod.terminated) == [pod_id]
    statuses = {}
    for name in (FIRST, SECOND):
        hub_repo = lp.hub.repos.get(f"synagi/{name}")
        assert hub_repo is not None, lp.pod_logs()
        assert "adapter_model.safetensors" in " ".join(hub_repo.files), sorted(hub_repo.files)
        statuses[name] = json.loads(hub_repo.files["status.json"])
    first, second = statuses[FIRST], statuses[SECOND]
    assert first["state"] == second["state"] == "succeeded", lp.pod_logs()
    assert first["pod_id"] == second["pod_id"] == pod_id
    assert second["started_at"] >= first["finished_at"]  # its own clock: the boot is billed once
    dispatched = sorted(d["client_payload"]["basename"] for d in lp.github.dispatches)
    assert dispatched == [FIRST, SECOND]

    # collect.yml on the dispatches: both results files in the bot's PR, each valid and its own.
    lp.checkout("main")
    for dispatch in lp.github.dispatches:
        collect = lp.act("repository_dispatch", "collect.yml", lp.dispatch_event(dispatch))
        assert collect.rc == 0, collect.output[-5000:]
    (results_pr,) = lp.github.pulls_for(RESULTS_BRANCH)
    assert results_pr["user"]["login"] == "haha-bot[bot]"
    schema = json.loads(lp.github.show(RESULTS_BRANCH, "schemas/results.schema.json"))
    billed = {}
    for name in (FIRST, SECOND):
        document = json.loads(lp.github.show(RESULTS_BRANCH, f"train/results/{name}.json"))
        jsonschema.Draft202012Validator(schema).validate(document)
        assert document["config"]["name"] == name
        (finished,) = run_comments(lp, pr, name)
        assert results_pr["html_url"] in finished["body"]
        meta = document["meta"]
        assert {"setup", "train", "eval", "publish"} <= set(meta["phases"]), meta["phases"]
        assert meta["cost"]["priced"] == "billed", meta["cost"]
        billed[name] = meta["cost"]["billed_seconds"]
        assert ("boot" in meta["phases"]) == (name == FIRST)  # the pod's boot is billed to the first only
    # Each config is billed its own turn: together about the pod's life by RunPod's clock, not more.
    pod = lp.runpod.terminated[pod_id]
    assert abs(sum(billed.values()) - (pod["terminatedAt"] - pod["createdAt"])) < 30, billed
