"""The whole loop with a real run: merge → launch.yml → a pod trains with Axolotl, evaluates,
publishes to the HF fake and dispatches → collect.yml opens the results PR → the run-status comment
on the merged PR says where the results are. Asserted on what the fakes saw."""

from __future__ import annotations

import json

import jsonschema
from haha.phases import POD_ORDER

from loop.configs import experiment_files, small_eval
from loop.harness import (
    DISPATCH_TOKEN,
    HF_TOKEN,
    IMAGE,
    RUNPOD_KEY,
    SECRETS,
    ActRun,
    Loop,
)

NEW = "haha-tiny-001"
POD_NAME = rf"^haha-{NEW}-[0-9a-f]{{7}}-\d{{8}}T\d{{4}}Z$"
RESULTS_BRANCH = "haha/results"


def merge_experiment(lp: Loop, name: str, files: dict[str, str]) -> tuple[int, str, str]:
    """A person's PR adding `files`, merged: (PR number, main before, merge commit)."""
    before = lp.github.rev("refs/heads/main")
    lp.push_branch(f"exp/{name}", files, f"Add {name}")
    pr = lp.github.open_pull(f"exp/{name}", f"Try {name}")["number"]
    sha = lp.merge(pr)
    return pr, before, sha


def merge_and_launch_quick_pods(lp: Loop, names: list[str]) -> tuple[int, str, ActRun]:
    """One PR adding `names`, merged, and launch.yml on its push; a stand-in for `haha run` ends each
    pod in seconds. Returns (PR number, merge commit, the launch run)."""
    from loop.harness import ROOT

    files = {k: v for name in names for k, v in experiment_files(name).items()}
    pr, before, sha = merge_experiment(lp, "-".join(names), files)
    fake_run = str(ROOT / "tests" / "pod_scripts" / "fake_run.py")
    env = {"HAHA_RUN_ARGV": json.dumps(["python", fake_run, "ok"])}
    return pr, sha, lp.act("push", "launch.yml", lp.push_event(before, sha), env=env)


def deploy_env(deploy: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in deploy["env"]}


def run_comments(lp: Loop, pr: int, name: str) -> list[dict]:
    return [c for c in lp.github.comments_on(pr) if f"<!-- haha-run:{name} -->" in c["body"]]


def test_merge_trains_publishes_dispatches_and_collects(make_loop) -> None:
    import re

    lp: Loop = make_loop(prepare=small_eval)
    lp.runpod.pull_seconds = 3.0  # the image pull: the run's meta.phases.boot must see it
    pr, before, sha = merge_experiment(lp, NEW, experiment_files(NEW))

    # No W&B key: there is no W&B fake, and with a key haha trains with W&B online (whatever
    # WANDB_MODE says). The fault tests check that the key reaches the pod.
    secrets = {k: v for k, v in SECRETS.items() if k != "WANDB_API_KEY"}
    launch = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert launch.rc == 0, launch.output[-5000:]

    # One pod, for exactly the new config, from the pinned image, with the deadline in its name.
    (deploy,) = lp.runpod.calls("podFindAndDeployOnDemand")
    assert deploy["imageName"] == IMAGE
    assert re.match(POD_NAME, deploy["name"]), deploy["name"]
    env = deploy_env(deploy)
    assert env["HAHA_BASENAME"] == NEW and env["HAHA_MODE"] == "train"
    assert env["HAHA_REF"] == sha
    assert env["HAHA_PR"] == str(pr)
    # Secrets as env — but not the account-wide RunPod key (the pod gets a scoped one from RunPod),
    # and the dispatch token, not the job's short-lived GITHUB_TOKEN.
    assert RUNPOD_KEY not in env.values()
    assert "RUNPOD_API_KEY" not in env
    assert env["HF_TOKEN"] == HF_TOKEN and "WANDB_API_KEY" not in env
    assert env["GITHUB_TOKEN"] == DISPATCH_TOKEN
    assert env["HAHA_REPO_URL"] == lp.github.clone_url()
    # No haha listing asked RunPod for pods' env (the SDK's own pod queries select it).
    listings = lp.runpod.queries("myself") + lp.runpod.queries("pod")
    assert listings and all(not any(p.endswith(".env") for p in q["selected"]) for q in listings)

    # The merged PR says the run started: pod, GPU type, price per hour, deadline.
    (status,) = run_comments(lp, pr, NEW)
    pod_id = next(iter(lp.runpod.pods))
    gpu = deploy["gpuTypeId"]
    assert pod_id in status["body"] and "/h" in status["body"]
    assert lp.github.comments_on(pr)[0]["user"]["login"] == "github-actions[bot]"

    # While the pod runs: a re-run of the same push, and a push with nothing new, start nothing.
    again = lp.act("push", "launch.yml", lp.push_event(before, sha), secrets=secrets)
    assert again.rc == 0, again.output[-4000:]
    before2 = sha
    sha2 = lp.push_branch("main", {"train/notes.md": "nothing to run\n"}, "Notes")
    lp.checkout("main")
    nothing = lp.act("push", "launch.yml", lp.push_event(before2, sha2), secrets=secrets)
    assert nothing.rc == 0, nothing.output[-4000:]
    assert len(lp.runpod.calls("podFindAndDeployOnDemand")) == 1

    # The pod trains, evaluates, publishes, dispatches and terminates itself, once.
    lp.wait_pods_gone(timeout=900)
    assert lp.runpod.starter.starts == {pod_id: 1}, lp.pod_logs()
    assert list(lp.runpod.terminated) == [pod_id]
    terminate = [q for q in lp.runpod.queries("podTerminate")]
    assert terminate[-1]["key"] == f"pod:{pod_id}", "the pod ends itself with its own scoped key"
    hub_repo = lp.hub.repos.get(f"synagi/{NEW}")
    assert hub_repo is not None, lp.pod_logs()
    assert "adapter_model.safetensors" in " ".join(hub_repo.files), sorted(hub_repo.files)
    # The weights went the way the real Hub routes binary files: LFS batch, upload, verify, commit by oid.
    assert "adapter_model.safetensors" in hub_repo.lfs, sorted(hub_repo.lfs)
    (dispatch,) = lp.github.dispatches
    assert dispatch["event_type"] == "haha-run-finished"
    assert lp.github.api("POST", "dispatches")[0].header("authorization").endswith(DISPATCH_TOKEN)

    # collect.yml on the dispatch: one results PR from the bot, with valid results for the run.
    lp.checkout("main")
    collect = lp.act("repository_dispatch", "collect.yml", lp.dispatch_event(dispatch))
    assert collect.rc == 0, collect.output[-5000:]
    (results_pr,) = lp.github.pulls_for(RESULTS_BRANCH)
    assert results_pr["user"]["login"] == "haha-bot[bot]"
    assert results_pr["state"] == "open"
    document = json.loads(lp.github.show(RESULTS_BRANCH, f"train/results/{NEW}.json"))
    schema = json.loads(lp.github.show(RESULTS_BRANCH, "schemas/results.schema.json"))
    jsonschema.Draft202012Validator(schema).validate(document)
    report = lp.github.show(RESULTS_BRANCH, "train/results/README.md").decode()
    assert NEW in report
    # Where the time and money went (issue 18): every phase of the pod, in pod order, billed at the
    # price RunPod reported, for about as long as RunPod billed (created → terminated, by its clock).
    meta, pod = document["meta"], lp.runpod.terminated[pod_id]
    assert {"boot", "setup", "train", "eval", "publish", "teardown"} <= set(meta["phases"]), meta["phases"]
    assert list(meta["phases"]) == [p for p in POD_ORDER if p in meta["phases"]]
    assert 3.0 <= meta["phases"]["boot"] < 60
    cost = meta["cost"]
    assert (cost["priced"], cost["cost_per_hour"]) == ("billed", pod["costPerHr"])
    assert cost["gpu_type"] == pod["machine"]["gpuDisplayName"] and cost["gpu_count"] == 1
    assert abs(cost["billed_seconds"] - sum(meta["phases"].values())) < 1
    # From launch's request (just before RunPod creates the pod) to the final upload (just before the
    # terminate): within seconds of what RunPod billed, either way.
    assert abs((pod["terminatedAt"] - pod["createdAt"]) - cost["billed_seconds"]) < 15
    assert cost["billed_dollars"] == round(cost["billed_seconds"] / 3600 * pod["costPerHr"], 4)

    # The run-status comment, edited in place: finished, with the results PR and the cost.
    (finished,) = run_comments(lp, pr, NEW)
    assert finished["id"] == status["id"]
    assert results_pr["html_url"] in finished["body"]
    assert "$" in finished["body"]
    assert gpu


def test_one_merge_with_three_configs_launches_each_once(make_loop) -> None:
    """The plan's matrix jobs run at once (act runs them side by side on one host, as a busy runner
    pool would): each installs haha into a venv of its own, so none runs `haha launch` while another
    reinstalls the package under it. A stand-in for `haha run` ends each pod in seconds."""
    import re

    lp: Loop = make_loop()
    names = ["haha-tiny-001", "haha-tinyb-001", "haha-tinyc-001"]
    pr, sha, launch = merge_and_launch_quick_pods(lp, names)
    assert launch.rc == 0, launch.output[-5000:]
    assert "No module named" not in launch.output, launch.output[-5000:]
    # The runner's Python, which every job on the host shares, is left as setup-python gave it.
    (site,) = lp.tool_cache.glob("Python/*/x64/lib/python3*/site-packages")
    assert not sorted(site.glob("haha*")), "a job installed haha into the runner's shared Python"
    deploys = lp.runpod.calls("podFindAndDeployOnDemand")
    assert sorted(deploy_env(d)["HAHA_BASENAME"] for d in deploys) == names, [d["name"] for d in deploys]
    for deploy in deploys:
        name = deploy_env(deploy)["HAHA_BASENAME"]
        assert re.match(rf"^haha-{name}-[0-9a-f]{{7}}-\d{{8}}T\d{{4}}Z$", deploy["name"]), deploy["name"]
        assert deploy_env(deploy)["HAHA_REF"] == sha and deploy_env(deploy)["HAHA_PR"] == str(pr)

    # Each pod runs once and ends itself; each run reports back.
    lp.wait_pods_gone(timeout=300)
    assert sorted(lp.runpod.starter.starts.values()) == [1, 1, 1], lp.pod_logs()
    assert len(lp.runpod.terminated) == 3
    assert sorted(d["client_payload"]["basename"] for d in lp.github.dispatches) == names, lp.pod_logs()


def test_a_run_with_an_unreadable_status_is_left_out_and_the_others_launch(make_loop) -> None:
    """A truncated status.json in the store: plan lists that run under errors and exits 2; the
    workflow still launches the other config, then fails its plan job to say which run was left out."""
    from fakes.hf_hub import HubRepo

    lp: Loop = make_loop()
    lp.hub.repos["synagi/haha-tinyb-001"] = HubRepo(
        "synagi/haha-tinyb-001", private=True, commits=[("0" * 40, {"status.json": b'{"state": "runn'})]
    )
    _, _, launch = merge_and_launch_quick_pods(lp, ["haha-tiny-001", "haha-tinyb-001"])
    assert launch.rc != 0, "the plan job must fail when it left a run out"
    deploys = lp.runpod.calls("podFindAndDeployOnDemand")
    assert [deploy_env(d)["HAHA_BASENAME"] for d in deploys] == ["haha-tiny-001"], launch.output[-5000:]
    assert any("haha-tinyb-001" in a["message"] for a in launch.annotations()), launch.output[-9000:]
    lp.wait_pods_gone(timeout=300)
