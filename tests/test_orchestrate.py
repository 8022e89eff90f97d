"""plan, launch and reap through the real runpod SDK (loopback GraphQL fake) on temporary git repos."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from check_helpers import edit_config, git, make_git_repo
from fakes.github_api import GitHubFake
from fakes.runpod_graphql import RunPodFake
from haha.compute.base import Pod
from haha.compute.runpod import RunPodCompute
from haha.errors import InputError
from haha.launch import START_COMMAND, boot_script, launch
from haha.plan import CurrentEval, Record, eval_shape, failed_same_config, make_plan, record_of
from haha.podname import PodName
from haha.reap import decide, reap
from haha.repo import Repo
from haha.runstatus import RunStatus
from haha.settings import load_settings
from haha.store import get_store
from pod_results import write_fake_results

pytest_plugins = ["fakes.fixtures"]

SMOL = "haha-smollm2-135m-lora-001"
LLAMA = "haha-llama-3-8b-lora-001"
H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"
DIGEST = "ghcr.io/synagi/haha-pod@sha256:" + "ab" * 32
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ENV = {
    "RUNPOD_API_KEY": "rp-test-key",
    "HF_TOKEN": "hf_secret_123",
    "WANDB_API_KEY": "wandb_secret_456",
    "HAHA_DISPATCH_TOKEN": "ghp_dispatch_789",
    "HAHA_STORE": "local",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The repo with its two configs trained and collected, and the image pinned."""
    root = make_git_repo(tmp_path)
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace('"ghcr.io/synagi/haha-pod:latest"', f'"{DIGEST}"'))
    for name in (SMOL, LLAMA):
        write_fake_results(root, name)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "trained")
    return root


@pytest.fixture(autouse=True)
def h200(request: pytest.FixtureRequest) -> None:
    """The fake's GPU list lacks the H200 that haha.toml tries first."""
    if "runpod_api" in request.fixturenames:
        fake = request.getfixturevalue("runpod_api")
        fake.gpus = (*fake.gpus, {"id": H200, "displayName": "H200", "memoryInGb": 141})


def add_configs(root: Path, *numbers: int) -> list[str]:
    names = []
    for n in numbers:
        name = f"haha-smollm2-135m-lora-{n:03d}"
        shutil.copy(root / f"train/config/{SMOL}.yml", root / f"train/config/{name}.yml")
        names.append(name)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "merge: two new configs")
    return names


def do_launch(root: Path, names: tuple[str, ...] = (), env: dict | None = None) -> list:
    env = {**ENV, **(env or {})}
    settings = load_settings(root, env)
    compute = RunPodCompute(settings)
    return launch(Repo(root), settings, compute, get_store(settings, root), names, NOW, lambda m: None)


def test_merge_adding_two_configs_launches_exactly_them_with_image_gpu_env(
    root: Path, runpod_api: RunPodFake
) -> None:
    new = add_configs(root, 2, 3)
    sha = git(root, "rev-parse", "HEAD").strip()
    launched = do_launch(root)

    assert [x.run.config for x in launched] == new
    deploys = runpod_api.calls("podFindAndDeployOnDemand")
    assert [d["gpuTypeId"] for d in deploys] == [H200, H200]
    first = deploys[0]
    assert first["imageName"] == DIGEST
    assert first["name"] == f"haha-{new[0]}-{sha[:7]}-20261128T1801Z"
    assert (first["gpuCount"], first["cloudType"], first["containerDiskInGb"]) == (1, "SECURE", 80)
    env = {e["key"]: e["value"] for e in first["env"]}
    assert env["HAHA_BASENAME"] == new[0] and env["HAHA_REF"] == sha and env["HAHA_MODE"] == "train"
    assert env["HAHA_DEADLINE"] == "2026-11-28T18:00:00Z"
    assert base64.b64decode(env["HAHA_BOOT"]).decode() == boot_script()
    assert env["GITHUB_TOKEN"] == "ghp_dispatch_789" and env["HF_TOKEN"] == "hf_secret_123"
    assert "HAHA_POD_ARGV" not in env


def test_launch_twice_or_while_running_never_starts_a_second_pod(root: Path, runpod_api: RunPodFake) -> None:
    (new,) = add_configs(root, 2)
    assert len(do_launch(root)) == 1
    assert do_launch(root) == []
    assert do_launch(root, (new, SMOL)) == []  # running, and done
    assert len(runpod_api.calls("podFindAndDeployOnDemand")) == 1


def test_out_of_stock_falls_back_to_the_next_gpu_type(root: Path, runpod_api: RunPodFake) -> None:
    add_configs(root, 2)
    runpod_api.out_of_stock = {H200}
    (launched,) = do_launch(root)
    assert [d["gpuTypeId"] for d in runpod_api.calls("podFindAndDeployOnDemand")] == [H200, H100]
    assert launched.pod.gpu_type == H100


def test_unpinned_image_is_refused(root: Path, runpod_api: RunPodFake) -> None:
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace(DIGEST, "ghcr.io/synagi/haha-pod:latest"))
    add_configs(root, 2)
    with pytest.raises(InputError, match="digest"):
        do_launch(root)
    assert runpod_api.calls("podFindAndDeployOnDemand") == []


def test_pr_editing_a_trained_config_does_not_retrain_but_eval_change_re_evaluates(root: Path) -> None:
    edit_config(root, f"train/config/{SMOL}.yml", learning_rate=0.001)
    git(root, "commit", "-qam", "edit trained config")
    from haha.compute.local import LocalCompute
    from haha.plan import load_plan

    settings = load_settings(root, {})
    plan = load_plan(Repo(root), LocalCompute(settings, root), None)
    assert plan.runs == () and plan.stale_configs == (SMOL,)

    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec["prompts"].append("A cat was elected mayor of a small town in Alaska.")
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))
    plan = load_plan(Repo(root), LocalCompute(settings, root), None)
    assert [(r.config, r.mode) for r in plan.runs] == [(LLAMA, "eval"), (SMOL, "eval")]
    assert plan.to_json() == load_plan(Repo(root), LocalCompute(settings, root), None).to_json()


def test_make_plan_is_pure_and_deterministic() -> None:
    desired = {"b-001": "x", "a-001": "y", "c-001": "z", "d-001": "w"}
    done = {"c-001": Record("old", "z"), "d-001": Record("new", "w")}
    plan = make_plan(desired, done, {"b-001"}, {"a-001": Record("new")}, CurrentEval("new"))
    assert plan.runs[0].config == "c-001" and plan.runs[0].mode == "eval"
    assert (plan.in_flight, plan.awaiting_collect, plan.done) == (("b-001",), ("a-001",), ("d-001",))
    assert json.loads(plan.to_json())["include"] == [
        {"config": "c-001", "mode": "eval", "reason": plan.runs[0].reason}
    ]


def test_a_failed_config_is_held_until_named_or_edited() -> None:
    desired = {"a-001": "sha-a", "b-001": "sha-b"}
    held = make_plan(desired, {}, set(), {}, "e", failed={"a-001"})
    assert [r.config for r in held.runs] == ["b-001"] and held.failed == ("a-001",)
    retried = make_plan(desired, {}, set(), {}, "e", failed={"a-001"}, retry={"a-001"})
    assert [r.config for r in retried.runs] == ["a-001", "b-001"] and retried.failed == ()
    st = RunStatus.from_dict
    assert failed_same_config(st({"state": "failed", "config_sha256": "sha-a"}), "sha-a")
    assert not failed_same_config(st({"state": "failed", "config_sha256": "old"}), "sha-a")  # edited: retry
    assert not failed_same_config(st({"state": "succeeded", "config_sha256": "sha-a"}), "sha-a")
    assert failed_same_config(st({"state": "failed"}), "sha-a")  # statuses from before the hash was recorded


def test_reaper_decision_is_a_function_of_pods_and_now() -> None:
    past = str(PodName("a-001", "1234567", NOW - timedelta(minutes=1)))
    future = str(PodName("b-001", "1234567", NOW + timedelta(hours=1)))
    pods = [Pod("p1", past), Pod("p2", future), Pod("p3", "someone-elses-pod"), Pod("p4", past, "TERMINATED")]
    assert [r.pod.id for r in decide(pods, NOW)] == ["p1"]


def test_reaper_terminates_only_the_pod_past_its_deadline_and_reports_it(
    root: Path, runpod_api: RunPodFake, github_api: tuple[GitHubFake, str]
) -> None:
    a, b = add_configs(root, 2, 3)
    do_launch(root)
    runpod_api.pods["pod9999"] = {"id": "pod9999", "name": "not-ours", "desiredStatus": "RUNNING"}
    fake, url = github_api
    env = {**ENV, "GITHUB_TOKEN": fake.token, "GITHUB_API_URL": url}
    settings = load_settings(root, env)
    store = get_store(settings, root)
    from haha.store import RunArtifacts

    store.publish(RunArtifacts(a, status={"state": "running"}))
    expired = datetime(2026, 11, 28, 18, 2, tzinfo=UTC)  # both are past; renew one pod's name to the future
    pod_a, pod_b = sorted(runpod_api.pods)[:2]
    runpod_api.pods[pod_b]["name"] = str(PodName(b, "1234567", expired + timedelta(hours=1)))
    store.publish(RunArtifacts(b, status={"state": "running", "pod_id": pod_b}))  # b's run started

    reaped = reap(RunPodCompute(settings), store, settings, expired, lambda m: None)

    assert [r.reap.pod.id for r in reaped] == [pod_a]
    assert set(runpod_api.pods) == {pod_b, "pod9999"}
    assert store.fetch_status(a)["state"] == "failed" and "deadline" in store.fetch_status(a)["reason"]
    (issue,) = fake.issues.values()
    assert a in issue["title"] and issue["labels"] == [{"name": "haha-reaper"}]
    assert reap(RunPodCompute(settings), store, settings, expired, lambda m: None) == []


def test_an_unreadable_status_does_not_stop_the_reaper(
    root: Path, runpod_api: RunPodFake, github_api: tuple[GitHubFake, str]
) -> None:
    """Issue 17: a truncated status.json stopped `haha reap` after the first pod, with a traceback."""
    a, b = add_configs(root, 2, 3)
    do_launch(root)
    fake, url = github_api
    settings = load_settings(root, {**ENV, "GITHUB_TOKEN": fake.token, "GITHUB_API_URL": url})
    store = get_store(settings, root)
    status = root / settings.store.local_path / a / "status.json"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text('{"state": "runn')  # cut off mid-upload
    log: list[str] = []
    reaped = reap(
        RunPodCompute(settings), store, settings, datetime(2026, 11, 28, 18, 2, tzinfo=UTC), log.append
    )
    assert sorted(r.reap.name.basename for r in reaped) == [a, b]
    assert not any(p["name"].startswith("haha-") for p in runpod_api.pods.values())
    assert store.fetch_status(a)["state"] == "failed" and store.fetch_status(b)["state"] == "failed"
    assert any("status unreadable" in m and "status.json:1" in m for m in log)


def test_image_start_command_decodes_and_runs_the_boot_script() -> None:
    assert START_COMMAND == 'boot="$(mktemp)" && echo "$HAHA_BOOT" | base64 -d > "$boot" && exec bash "$boot"'
    assert "pod-terminate" in boot_script() and "trap teardown EXIT" in boot_script()


def adopted_results(prompts: list[str], temperatures: list[float], seeds: int) -> dict:
    """A results file as a repo adopting Haha has it: no meta, so no hashes; just what it was made with."""
    settings = [{"temperature": t, "completions": [f"ha {i}" for i in range(seeds)]} for t in temperatures]
    entries = [{"prompt": p, "settingsResults": settings} for p in prompts]
    return {"config": {"name": "a-001"}, "results": entries}


@pytest.mark.parametrize(
    ("prompts", "temperatures", "seeds", "mode"),
    [
        (["p1", "p2"], [0.1, 0.7], 3, None),  # made with eval.json as it is: done
        (["p1", "p2"], [0.1, 0.7], 2, "eval"),  # other seed count
        (["p1"], [0.1, 0.7], 3, "eval"),  # a prompt added since
        (["p1", "p2"], [0.1], 3, "eval"),  # a setting added since
        (["p1", "p2"], [0.1, 0.9], 3, "eval"),  # a setting changed
    ],
)
def test_adopted_results_without_hashes_are_re_evaluated_when_eval_json_asks_for_more(
    prompts: list[str], temperatures: list[float], seeds: int, mode: str | None
) -> None:
    """Issue 17: results made before the pipeline recorded hashes were never re-evaluated."""
    asked = eval_shape(["p1", "p2"], [{"temperature": 0.1}, {"temperature": 0.7}], 3)
    current = CurrentEval("sha-now", asked)
    record = record_of(adopted_results(prompts, temperatures, seeds))
    plan = make_plan({"a-001": "cfg"}, {"a-001": record}, (), {}, current)
    assert [r.mode for r in plan.runs] == ([mode] if mode else [])
    assert plan.done == (() if mode else ("a-001",))
    hashed = Record("sha-before", "cfg", record.made_with)  # hashes or not: what it was made with decides
    assert make_plan({"a-001": "cfg"}, {"a-001": hashed}, (), {}, current).runs == plan.runs


def test_haha_plan_re_evaluates_adopted_results(root: Path) -> None:
    """The `haha plan` process, on results that carry no hashes, before and after eval.json changes."""
    path = root / f"train/results/{SMOL}.json"
    document = json.loads(path.read_text())
    del document["meta"]
    path.write_text(json.dumps(document, indent=2))
    haha = [str(Path(sys.executable).parent / "haha"), "plan", "--no-store", "--compute", "local"]

    def planned() -> list[tuple[str, str]]:
        done = subprocess.run([*haha, "--repo", str(root)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [(r["config"], r["mode"]) for r in json.loads(done.stdout)["include"]]

    assert planned() == []
    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec["seedVariants"] += 1
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))
    assert planned() == [(LLAMA, "eval"), (SMOL, "eval")]
