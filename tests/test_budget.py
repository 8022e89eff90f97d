"""Spend limits (haha.toml [budget]): the pure decisions on synthetic months, the settings' validation,
and `haha check` / `haha plan` / `haha launch` as processes (against the RunPod fake where pods matter).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from check_helpers import ROOT, git, make_git_repo, make_repo
from fakes.runpod_graphql import RunPodFake
from haha.budget import Spent, decide, per_pr_finding, spent_in
from haha.check.gate import predict_costs
from haha.errors import InputError
from haha.repo import Repo
from haha.runcomment import held_body
from haha.settings import load_settings
from pod_results import write_fake_results

pytest_plugins = ["fakes.fixtures"]

SMOL = "haha-smollm2-135m-lora-001"
LLAMA = "haha-llama-3-8b-lora-001"
NEW = "haha-smollm2-135m-lora-002"
DIGEST = "ghcr.io/synagi/haha-pod@sha256:" + "ab" * 32
H200 = "NVIDIA H200"


# --- the pure decisions -------------------------------------------------------------------------
def test_no_limit_launches_everything_even_without_predictions() -> None:
    month = decide("2026-12", 0.0, [Spent("a", 900.0, True)], [("b", 50.0)], [("c", 10.0), ("d", None)])
    assert month.launch == ("c", "d") and month.held == ()


def test_runs_over_the_limit_are_held_in_order_and_later_ones_that_fit_still_launch() -> None:
    spent = [Spent("old-1", 40.0, True), Spent("old-2", 10.0, False)]
    month = decide(
        "2026-12", 100.0, spent, [("flying", 20.0)], [("a", 25.0), ("b", 10.0), ("c", 5.0), ("d", 1.0)]
    )
    # 50 collected + 20 in flight = 70; a (25) → 95; b → 105 > 100: held; c (5) → 100 fits; d → 101: held.
    assert month.launch == ("a", "c")
    assert [(h.config, h.predicted, h.before) for h in month.held] == [("b", 10.0, 95.0), ("d", 1.0, 100.0)]
    why = month.why(month.held[0])
    for text in (
        "b",
        "$10.00",
        "2026-12",
        "$105.00",
        "$100.00",
        "$50.00 collected from 2 runs",
        "1 estimated",
    ):
        assert text in why, why
    assert "$20.00 predicted for 1 run in flight" in why
    assert month.to_dict()["held"][0]["config"] == "b"


def test_a_run_without_a_prediction_is_held_under_a_limit() -> None:
    month = decide("2026-12", 100.0, [], [("flying", None)], [("a", None), ("b", 1.0)])
    assert month.launch == ("b",) and [h.config for h in month.held] == ["a"]
    assert "no cost prediction" in month.why(month.held[0])


def test_a_manual_override_launches_everything_and_is_recorded() -> None:
    month = decide("2026-12", 10.0, [Spent("old", 9.0, True)], [], [("a", 5.0)], override="deadline paper")
    assert month.launch == ("a",) and month.held == ()
    assert month.to_dict()["override"] == "deadline paper"


def test_exactly_at_the_limit_fits() -> None:
    assert decide("2026-12", 3.0, [Spent("x", 1.0, True)], [], [("a", 2.0)]).launch == ("a",)


def test_spend_is_this_utc_months_billed_cost_else_the_estimate() -> None:
    documents = {
        "billed": {"meta": {"created_at": "2026-12-01T00:00:05Z", "cost": {"billed_dollars": 2.5}}},
        "old-file": {"meta": {"created_at": "2026-12-31T23:59:59Z", "stage_seconds": {"train": 3600}}},
        "november": {"meta": {"created_at": "2026-11-30T23:59:59Z", "cost": {"billed_dollars": 99.0}}},
        "bad-cost": {"meta": {"created_at": "2026-12-02T00:00:00Z", "cost": {"billed_dollars": "nan"}}},
        "no-date": {"meta": {"cost": {"billed_dollars": 5.0}}},
    }
    spent = spent_in(documents, "2026-12", lambda doc: 3.59 if "stage_seconds" in doc["meta"] else None)
    assert spent == [
        Spent("bad-cost", 0.0, False),
        Spent("billed", 2.5, True),
        Spent("old-file", 3.59, False),
    ]


def test_the_per_pr_rule_names_the_configs_and_the_numbers() -> None:
    assert per_pr_finding([("a", 1.0), ("b", 2.0)], 0.0) is None
    assert per_pr_finding([("a", 1.0), ("b", 2.0)], 3.0) is None
    found = per_pr_finding([("a", 1.0), ("b", 2.5), ("c", None)], 3.0, 41)
    assert found is not None and (found.file, found.line, found.field) == (
        "haha.toml",
        41,
        "budget.per_pr_dollars",
    )
    for text in ("a $1.00", "b $2.50", "$3.50", "$3.00", "1 more without a prediction"):
        assert text in found.message, found.message
    assert "per_pr_dollars" in found.fix and "at least 4" in found.fix


def test_the_held_comment_says_why_and_how_to_launch() -> None:
    month = decide("2026-12", 1.0, [], [], [("haha-x-002", 1.5)])
    body = held_body(month, month.held[0])
    assert body.startswith("<!-- haha-run:haha-x-002 -->")
    assert "$1.50" in body and "$1.00" in body and "monthly_dollars" in body and "reason" in body


def test_the_finished_and_failed_comments_keep_an_overrides_reason() -> None:
    from haha.runcomment import failed_body, finished_body
    from haha.runstatus import RunStatus

    forced = RunStatus("succeeded", budget_override="paper deadline (run by octocat)")
    assert "paper deadline (run by octocat)" in finished_body("haha-x-002", forced, "PR #3", "$1.00")
    failed = RunStatus("failed", reason="OOM", budget_override="paper deadline (run by octocat)")
    assert "paper deadline" in failed_body("haha-x-002", failed, "logs/")
    assert "overridden" not in finished_body("haha-x-002", RunStatus("succeeded"), "PR #3", "$1.00")


# --- haha.toml ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "greater than or equal to 0"), ("nan", "finite"), ("inf", "finite"), ('"50"', "valid number")],
)
@pytest.mark.parametrize("key", ["per_pr_dollars", "monthly_dollars"])
def test_a_bad_limit_is_an_error_naming_line_and_field(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    root = make_repo(tmp_path)
    text = (root / "haha.toml").read_text()
    text = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
    (root / "haha.toml").write_text(text)
    line = next(i for i, raw in enumerate(text.splitlines(), 1) if raw.startswith(f"{key} ="))
    with pytest.raises(InputError) as caught:
        load_settings(root, {})
    shown = str(caught.value)
    assert f"haha.toml:{line}" in shown and f"budget.{key}" in shown and message in shown, shown


def test_whole_numbers_and_an_absent_table_are_fine(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = (root / "haha.toml").read_text()
    (root / "haha.toml").write_text(text.replace("monthly_dollars = 0.0", "monthly_dollars = 250"))
    assert load_settings(root, {}).budget.monthly_dollars == 250.0
    (root / "haha.toml").write_text(text[: text.index("# Spend limits")])
    assert load_settings(root, {}).budget.per_pr_dollars == 0.0


# --- the processes --------------------------------------------------------------------------------
def haha(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `haha` command as a workflow step runs it."""
    exe = Path(sys.executable).parent / "haha"
    full = {**os.environ, "HAHA_STORE": "local", **(env or {})}
    full.pop("GITHUB_TOKEN", None)
    return subprocess.run(
        [str(exe), *args, "--repo", str(root)], env=full, capture_output=True, text=True, timeout=180
    )


def set_budget(root: Path, **limits: float) -> None:
    toml = root / "haha.toml"
    text = toml.read_text()
    for key, value in limits.items():
        text = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
    toml.write_text(text)


def predicted(root: Path, *names: str) -> dict[str, float]:
    """The gate's own predictions (what both limits are measured with)."""
    costs = predict_costs(Repo(root), load_settings(root, {}), names)
    return {name: costs[name].dollars for name in names}


def test_check_fails_a_pr_over_the_per_pr_limit_and_passes_once_the_pr_raises_it(tmp_path: Path) -> None:
    root = make_git_repo(tmp_path)
    set_budget(root, per_pr_dollars=0.5)
    git(root, "commit", "-qam", "a per-PR limit on main")
    git(root, "checkout", "-qb", "pr")
    shutil.copy(root / f"train/config/{SMOL}.yml", root / f"train/config/{NEW}.yml")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a new config")
    cost = predicted(root, NEW)[NEW]
    assert cost > 0.5

    over = haha(root, "check", "--base", "main", "--format", "github")
    assert over.returncode == 1, over.stdout + over.stderr
    lines = (root / "haha.toml").read_text().splitlines()
    line = next(i for i, raw in enumerate(lines, 1) if raw.startswith("per_pr_dollars = 0.5"))
    (annotation,) = [a for a in over.stdout.splitlines() if "budget.per_pr_dollars" in a]
    assert f"file=haha.toml,line={line}" in annotation
    assert NEW in annotation and f"${cost:.2f}" in annotation and "$0.50" in annotation

    set_budget(root, per_pr_dollars=math.ceil(cost))  # in the PR itself, where the reviewer sees it
    git(root, "commit", "-qam", "raise the per-PR limit")
    within = haha(root, "check", "--base", "main", "--format", "markdown")
    assert within.returncode == 0, within.stdout
    assert f"within the per-PR limit of ${math.ceil(cost):.2f}" in within.stdout


def results_this_month(root: Path, name: str, billed: float | None) -> None:
    """Collected results for `name`, made now, billed `billed` (None: a file from before meta.cost)."""
    path = write_fake_results(root, name)
    document = json.loads(path.read_text())
    document["meta"]["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if billed is not None:
        document["meta"]["cost"] = {"billed_dollars": billed, "priced": "billed"}
    path.write_text(json.dumps(document))


def test_plan_holds_what_would_take_the_month_over_and_launches_what_fits(tmp_path: Path) -> None:
    root = make_git_repo(tmp_path)
    for extra in ("003", "004"):
        shutil.copy(
            root / f"train/config/{SMOL}.yml", root / f"train/config/haha-smollm2-135m-lora-{extra}.yml"
        )
    results_this_month(root, SMOL, billed=2.0)
    names = [LLAMA, "haha-smollm2-135m-lora-003", "haha-smollm2-135m-lora-004"]
    cost = predicted(root, *names)
    assert cost[LLAMA] > cost[names[1]]  # the bigger model first, in plan order
    # Room for one SmolLM2 run after what was billed this month, not for the Llama one.
    set_budget(root, monthly_dollars=round(2.0 + cost[names[1]] + 0.001, 3))

    done = haha(root, "plan")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [r["config"] for r in plan["include"]] == [names[1]]
    held = {h["config"]: h for h in plan["budget"]["held"]}
    assert set(held) == {LLAMA, names[2]}
    assert plan["budget"]["spent_dollars"] == 2.0
    assert (
        f"${cost[LLAMA]:.2f}" in held[LLAMA]["reason"]
        and "$2.00 collected from 1 run" in held[LLAMA]["reason"]
    )
    assert f"{LLAMA}: held:" in done.stderr

    override = haha(root, "plan", "--override-budget", "conference deadline")
    assert [r["config"] for r in json.loads(override.stdout)["include"]] == names
    assert json.loads(override.stdout)["budget"]["override"] == "conference deadline"


def test_without_a_limit_plan_is_as_before(tmp_path: Path) -> None:
    root = make_git_repo(tmp_path)
    done = haha(root, "plan")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert "budget" not in plan and [r["config"] for r in plan["include"]] == [LLAMA, SMOL]


@pytest.fixture
def runpod_root(tmp_path: Path, runpod_api: RunPodFake) -> Path:
    root = make_git_repo(tmp_path)
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace('"ghcr.io/synagi/haha-pod:latest"', f'"{DIGEST}"'))
    (root / "requirements").mkdir()
    shutil.copy(ROOT / "requirements" / "train-cuda.txt", root / "requirements")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pinned")
    runpod_api.gpus = (*runpod_api.gpus, {"id": H200, "displayName": "H200 SXM", "memoryInGb": 141})
    return root


def test_pods_in_flight_count_at_their_prediction_and_an_override_reaches_the_pod(
    runpod_root: Path, runpod_api: RunPodFake
) -> None:
    root = runpod_root
    env = {"RUNPOD_API_KEY": runpod_api.api_key, "HAHA_COMPUTE": "runpod"}
    cost = predicted(root, LLAMA, SMOL)
    started = haha(root, "launch", LLAMA, env=env)
    assert started.returncode == 0, started.stderr
    # Room for SMOL alone, not beside the Llama pod in flight.
    set_budget(root, monthly_dollars=round(cost[LLAMA] + cost[SMOL] - 0.01, 2))
    git(root, "commit", "-qam", "a monthly limit")

    plan = json.loads(haha(root, "plan", env=env).stdout)
    assert plan["include"] == [] and plan["in_flight"] == [LLAMA]
    assert plan["budget"]["in_flight_dollars"] == pytest.approx(cost[LLAMA], abs=1e-3)
    assert [h["config"] for h in plan["budget"]["held"]] == [SMOL]

    reason = "approved by @lead in #12"
    forced = haha(root, "launch", SMOL, "--override-budget", reason, env=env)
    assert forced.returncode == 0, forced.stderr
    deploys = runpod_api.calls("podFindAndDeployOnDemand")
    assert len(deploys) == 2
    sent = {e["key"]: e["value"] for e in deploys[-1]["env"]}
    assert sent["HAHA_BASENAME"] == SMOL and sent["HAHA_BUDGET_OVERRIDE"] == reason
    assert "HAHA_BUDGET_OVERRIDE" not in {e["key"] for e in deploys[0]["env"]}


def test_an_override_without_a_monthly_limit_records_nothing(
    runpod_root: Path, runpod_api: RunPodFake
) -> None:
    env = {"RUNPOD_API_KEY": runpod_api.api_key, "HAHA_COMPUTE": "runpod"}
    done = haha(runpod_root, "launch", SMOL, "--override-budget", "no limit to go over", env=env)
    assert done.returncode == 0, done.stderr
    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert "HAHA_BUDGET_OVERRIDE" not in {e["key"] for e in deploy["env"]}
