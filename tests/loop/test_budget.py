"""The monthly spend limit in the loop: a merge that would take the month past haha.toml's
`[budget] monthly_dollars` launches nothing and says so on its PR; the launch workflow run by hand
with a reason launches it anyway, and the reason reaches the pod and the comment."""

from __future__ import annotations

import json
import re
from pathlib import Path

from loop.harness import ROOT, Loop
from loop.test_launch import deploy_env, merge_and_launch_quick_pods, run_comments

NAME = "haha-tiny-001"
LIMIT = 0.5  # the tiny config's prediction is about $1 (mostly haha.toml's overhead_minutes)


def monthly_limit(root: Path) -> None:
    toml = root / "haha.toml"
    toml.write_text(re.sub(r"(?m)^monthly_dollars = \S+", f"monthly_dollars = {LIMIT}", toml.read_text()))


def test_a_merge_over_the_monthly_limit_launches_nothing_and_says_so(make_loop) -> None:
    lp: Loop = make_loop(prepare=monthly_limit)
    pr, _, launch = merge_and_launch_quick_pods(lp, [NAME])
    assert launch.rc == 0, launch.output[-5000:]

    # RunPod was asked which pods are up, and told to deploy nothing.
    assert lp.runpod.queries("myself"), "the plan did not look at RunPod's pods"
    assert lp.runpod.calls("podFindAndDeployOnDemand") == []
    assert not lp.runpod.pods
    # The merged PR says why, with the numbers and the two ways out.
    (held,) = run_comments(lp, pr, NAME)
    body = held["body"]
    assert "held" in body and "monthly" in body, body
    assert f"${LIMIT:.2f}" in body and "monthly_dollars" in body and "reason" in body, body
    assert held["user"]["login"] == "github-actions[bot]"

    # Actions → launch → Run workflow, with the config and a reason: it launches over the limit.
    fake_run = str(ROOT / "tests" / "pod_scripts" / "fake_run.py")
    dispatch = {"inputs": {"config": NAME, "reason": "paper deadline"}, "repository": lp.repository()}
    env = {"HAHA_RUN_ARGV": json.dumps(["python", fake_run, "ok"])}
    run = lp.act("workflow_dispatch", "launch.yml", dispatch, env=env)
    assert run.rc == 0, run.output[-5000:]
    (deploy,) = lp.runpod.calls("podFindAndDeployOnDemand")
    sent = deploy_env(deploy)
    assert sent["HAHA_BASENAME"] == NAME and sent["HAHA_PR"] == str(pr)
    assert sent["HAHA_BUDGET_OVERRIDE"].startswith("paper deadline (run by "), sent["HAHA_BUDGET_OVERRIDE"]
    (launched,) = run_comments(lp, pr, NAME)
    assert launched["id"] == held["id"], "the held comment is edited in place"
    assert "launched" in launched["body"] and "paper deadline" in launched["body"], launched["body"]
    lp.wait_pods_gone(timeout=120)
    # The run's status in the store keeps the reason too (what the finished comment is built from).
    status = json.loads(lp.hub.repos[f"synagi/{NAME}"].files["status.json"])
    assert status["state"] == "succeeded", lp.pod_logs()
    assert status["budget_override"] == sent["HAHA_BUDGET_OVERRIDE"]
