"""The pod flow end to end with --compute local, and faults injected through real inputs.

Each scenario launches real local pods: boot.sh (decoded from HAHA_BOOT, as the image does) clones the
test repo at its commit, `haha pod` runs the command in HAHA_RUN_ARGV (tests/pod_scripts/fake_run.py,
or the real `haha run`), publishes to the local store, dispatches to the GitHub fake and terminates
its own pod. The last test prints the table of faults tried → outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from check_helpers import git, make_git_repo
from fakes.github_api import GitHubFake
from haha.collect import collect, pending, write_pr_body
from haha.compute.local import RUNNING, TERMINATED, LocalCompute
from haha.launch import launch
from haha.phases import human_duration
from haha.plan import load_plan, sha256_file
from haha.repo import Repo
from haha.settings import load_settings
from haha.store import get_store

pytest_plugins = ["fakes.fixtures"]

FAKE_RUN = Path(__file__).parent / "pod_scripts" / "fake_run.py"
SMOL = "haha-smollm2-135m-lora-001"
LLAMA = "haha-llama-3-8b-lora-001"
FAULTS: list[tuple[str, str]] = []  # (fault, outcome) for the table printed last


@pytest.fixture
def repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_git_repo(tmp_path)
    for var in (
        "HF_TOKEN",
        "RUNPOD_POD_ID",
        "HAHA_POD_ID",
        "RUNPOD_API_KEY",
        "HAHA_RUN_ARGV",
        "HAHA_WORKDIR",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HAHA_STORE", "local")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_token")
    return root


@pytest.fixture
def github(github_api: tuple[GitHubFake, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubFake]:
    fake, url = github_api
    monkeypatch.setenv("GITHUB_API_URL", url)
    yield fake


def run_argv(monkeypatch: pytest.MonkeyPatch, behaviour: str) -> None:
    monkeypatch.setenv("HAHA_RUN_ARGV", json.dumps([sys.executable, str(FAKE_RUN), behaviour]))


def compute_for(root: Path) -> LocalCompute:
    return LocalCompute(load_settings(root, os.environ), root, grace_seconds=3.0)


def launch_local(root: Path, names: tuple[str, ...] = ()) -> list:
    settings = load_settings(root, os.environ)
    store = get_store(settings, root)
    return launch(Repo(root), settings, compute_for(root), store, names, datetime.now(UTC), print)


def wait_done(root: Path, seconds: float = 90.0) -> None:
    compute = compute_for(root)
    deadline = time.monotonic() + seconds
    while any(p.status == RUNNING for p in compute.list_pods()):
        if time.monotonic() > deadline:
            for pod in compute.list_pods():
                compute.terminate(pod.id)
            pytest.fail("a pod outlived the test: " + dump_logs(root))
        time.sleep(0.2)


def dump_logs(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((root / ".haha" / "pods").glob("*.log")))


def store_of(root: Path):
    return get_store(load_settings(root, os.environ), root)


def statuses(root: Path) -> list[str]:
    return [p.status for p in compute_for(root).list_pods()]


def test_success_publishes_notifies_and_terminates_then_collect_is_idempotent(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_argv(monkeypatch, "ok")
    (launched,) = launch_local(repo_root, (SMOL,))
    assert launched.pod.name.startswith(f"haha-{SMOL}-")
    wait_done(repo_root)

    store = store_of(repo_root)
    status = store.fetch_status(SMOL)
    assert status["state"] == "succeeded", dump_logs(repo_root)
    assert store.fetch_results(SMOL)["config"]["name"] == SMOL
    assert "fake run" in store.fetch_log(SMOL, "pod.log")
    assert statuses(repo_root) == [TERMINATED]
    assert [(d["client_payload"]["basename"], d["client_payload"]["state"]) for d in github.dispatches] == [
        (SMOL, "succeeded")
    ]

    repo = Repo(repo_root)
    assert [c.basename for c in pending(repo, store)] == [SMOL]
    first = collect(repo, store, None, print)
    assert [(c.basename, c.change) for c in first] == [(SMOL, "new")]
    body = write_pr_body(repo, store, load_settings(repo_root, {}), [SMOL], repo_root / "body.md")
    text = body.read_text()
    assert "Duration: 11 min 00 s" in text and "Cost:" in text and SMOL in text
    # The pod's own phases and bill (issue 18): launch's clock → boot.sh's → the pod's wrap-up.
    meta = json.loads(repo.results_path(SMOL).read_text())["meta"]
    assert list(meta["phases"]) == ["boot", "teardown"]  # the fake run measures no run phases
    assert 0 <= meta["phases"]["boot"] < 60 and 0 <= meta["phases"]["teardown"] < 60
    cost = meta["cost"]
    assert (cost["gpu_type"], cost["priced"], cost["cost_per_hour"]) == ("local", "billed", 0.0)
    assert meta["phases"]["boot"] <= cost["billed_seconds"] < 120 and cost["billed_dollars"] == 0.0
    # The gate's prediction, recorded at launch: no GPU history in this repo, so haha.toml's assumption.
    assert cost["predicted_from"] == "assumed" and cost["predicted_seconds"] > 20 * 60
    assert cost["predicted_dollars"] > 0 and "; predicted $" in text
    assert f"Phases: boot {human_duration(meta['phases']['boot'])}, teardown" in text
    git(repo_root, "add", "-A", "train")
    git(repo_root, "commit", "-qm", "collect")

    second = collect(repo, store, None, print)
    assert [(c.basename, c.change) for c in second] == [(SMOL, "same")]
    assert git(repo_root, "status", "--porcelain", "train") == ""
    assert pending(repo, store) == []
    assert [r.config for r in load_plan(repo, compute_for(repo_root), store).runs] == [LLAMA]
    FAULTS.append(("none (happy path)", "results+logs published, dispatch sent, pod terminated"))
    FAULTS.append(("collect run twice", "second run: change=same, git tree clean, nothing pending"))


@pytest.mark.parametrize(
    ("behaviour", "expected", "fault"),
    [
        ("train-crash", "illegal memory access", "training exception"),
        ("eval-oom", "OutOfMemoryError", "eval out of memory"),
    ],
)
def test_failure_mid_run_uploads_logs_marks_failed_and_terminates(
    repo_root: Path,
    github: GitHubFake,
    monkeypatch: pytest.MonkeyPatch,
    behaviour: str,
    expected: str,
    fault: str,
) -> None:
    run_argv(monkeypatch, behaviour)
    launch_local(repo_root, (SMOL,))
    wait_done(repo_root)

    store = store_of(repo_root)
    status = store.fetch_status(SMOL)
    assert status["state"] == "failed" and expected in status["reason"], status
    assert "fake run" in store.fetch_log(SMOL, "pod.log")
    assert store.fetch_results(SMOL) is None
    assert statuses(repo_root) == [TERMINATED]
    assert github.dispatches[-1]["client_payload"]["state"] == "failed"
    plan = load_plan(Repo(repo_root), compute_for(repo_root), store)
    assert [r.config for r in plan.runs] == [LLAMA] and plan.failed == (SMOL,)  # held until named
    assert status["config_sha256"] == sha256_file(Repo(repo_root).config_path(SMOL))
    retry = load_plan(Repo(repo_root), compute_for(repo_root), store, retry={SMOL})
    assert [r.config for r in retry.runs] == [LLAMA, SMOL]  # and launchable again when named
    FAULTS.append((fault, f"status failed ({expected}), logs uploaded, dispatch sent, pod terminated"))


def test_real_run_with_a_missing_dataset_fails_in_preflight(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo_root / "train/data/haha-v1.jsonl").unlink()
    git(repo_root, "commit", "-qam", "lose the dataset")
    launch_local(repo_root, (SMOL,))  # no HAHA_RUN_ARGV: the real `haha run`
    wait_done(repo_root, seconds=120)

    status = store_of(repo_root).fetch_status(SMOL)
    assert status["state"] == "failed" and "haha-v1.jsonl" in status["reason"], status
    assert statuses(repo_root) == [TERMINATED]
    FAULTS.append(
        ("config whose dataset is missing (real haha run)", "preflight error recorded, pod terminated")
    )


def test_boot_failure_is_recorded_by_the_exit_trap(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HAHA_REPO_URL", str(tmp_path / "no-such-repo"))
    run_argv(monkeypatch, "ok")
    launch_local(repo_root, (SMOL,))
    wait_done(repo_root)

    store = store_of(repo_root)
    status = store.fetch_status(SMOL)
    assert status["state"] == "failed" and "boot exited with status 12" in status["reason"], status
    assert status["pod_id"].startswith("local-") and status["mode"] == "train"  # what launch told it
    assert "no-such-repo" in store.fetch_log(SMOL, Path(_boot_log(repo_root)).name)
    assert statuses(repo_root) == [TERMINATED]
    FAULTS.append(("boot failure (clone fails)", "EXIT trap marked failed with boot log, pod terminated"))


def _boot_log(root: Path) -> str:
    (log,) = (root / ".haha" / "checkouts").glob("*.boot.log")
    return str(log)


def test_run_hitting_its_deadline_is_stopped_and_terminated(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = repo_root / "haha.toml"
    toml.write_text(toml.read_text().replace("deadline_hours = 6.0", "deadline_hours = 0.002"))  # 7.2 s
    run_argv(monkeypatch, "sleep")
    started = time.monotonic()
    launch_local(repo_root, (SMOL,))
    wait_done(repo_root, seconds=60)

    status = store_of(repo_root).fetch_status(SMOL)
    assert status["state"] == "failed" and "deadline" in status["reason"], status
    assert statuses(repo_root) == [TERMINATED]
    assert time.monotonic() - started < 40
    FAULTS.append(("run hangs past its deadline", "watchdog stopped it, marked failed, pod terminated"))


def test_lost_dispatch_is_recovered_by_scheduled_collect(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_expired_token")  # the fake answers 401
    run_argv(monkeypatch, "ok")
    launch_local(repo_root, (SMOL,))
    wait_done(repo_root)

    store = store_of(repo_root)
    assert github.dispatches == []
    assert store.fetch_status(SMOL)["state"] == "succeeded"
    assert statuses(repo_root) == [TERMINATED]
    repo = Repo(repo_root)
    assert [c.basename for c in pending(repo, store)] == [SMOL]  # what the schedule's matrix gets
    collect(repo, store, [SMOL], print)
    assert repo.results_path(SMOL).is_file()
    FAULTS.append(("lost dispatch (401)", "results already in store; scheduled collect brought them in"))


def test_merge_of_two_configs_then_rerun_after_partial_failure(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_argv(monkeypatch, f"fail-for={LLAMA}")
    gate = repo_root.parent / "release-pods"
    monkeypatch.setenv("FAKE_RUN_GATE", str(gate))  # hold both pods in flight until released
    launched = launch_local(repo_root)
    assert sorted(x.run.config for x in launched) == [LLAMA, SMOL]
    assert launch_local(repo_root) == []  # both in flight: no second pods
    gate.touch()
    wait_done(repo_root)
    assert len(compute_for(repo_root).list_pods()) == 2

    store = store_of(repo_root)
    repo = Repo(repo_root)
    plan = load_plan(repo, compute_for(repo_root), store)
    # The failed config is held, not relaunched on every merge; the good one waits for collect.
    assert plan.runs == () and plan.failed == (LLAMA,) and plan.awaiting_collect == (SMOL,)
    assert launch_local(repo_root) == []

    collect(repo, store, None, print)
    run_argv(monkeypatch, "ok")
    (again,) = launch_local(repo_root, (LLAMA,))  # naming it is asking for the retry
    assert again.run.config == LLAMA and again.run.reason == "retry after a failed run"
    wait_done(repo_root)
    collect(repo, store, None, print)
    assert load_plan(repo, compute_for(repo_root), store).done == (LLAMA, SMOL)
    FAULTS.append(
        ("one of two configs fails", "failed one held until named, then relaunched; both collected")
    )


def test_two_configs_share_one_pod_and_a_failure_does_not_stop_the_next(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configs_per_pod = 2: two configs of one base model run one after another in one pod, each with
    its own status and results; the retry after the first one failed runs only that one."""
    second = "haha-smollm2-135m-lora-002"
    config = repo_root / "train" / "config"
    (config / f"{second}.yml").write_text((config / f"{SMOL}.yml").read_text())
    toml = repo_root / "haha.toml"
    toml.write_text(toml.read_text().replace("\nconfigs_per_pod = 1", "\nconfigs_per_pod = 2"))
    git(repo_root, "add", "-A")
    git(repo_root, "commit", "-qm", "a second SmolLM2 config; shared pods on")
    run_argv(monkeypatch, f"fail-for={SMOL}")
    gate = repo_root.parent / "release-pods"
    monkeypatch.setenv("FAKE_RUN_GATE", str(gate))  # hold the pods in flight until released

    launched = launch_local(repo_root)
    assert sorted((x.run.config, x.configs) for x in launched) == [(LLAMA, ()), (SMOL, (SMOL, second))]
    assert launch_local(repo_root) == []  # both configs of the shared pod are in flight
    gate.touch()
    wait_done(repo_root)
    assert statuses(repo_root) == [TERMINATED, TERMINATED]  # two pods for three configs

    store = store_of(repo_root)
    first, then = store.fetch_status(SMOL), store.fetch_status(second)
    assert (first["state"], then["state"]) == ("failed", "succeeded"), dump_logs(repo_root)
    assert first["pod_id"] == then["pod_id"] and then["started_at"] >= first["finished_at"]
    assert store.fetch_results(SMOL) is None and store.fetch_results(second)["config"]["name"] == second
    sent = sorted((d["client_payload"]["basename"], d["client_payload"]["state"]) for d in github.dispatches)
    assert sent == [(LLAMA, "succeeded"), (SMOL, "failed"), (second, "succeeded")]

    repo = Repo(repo_root)
    collect(repo, store, None, print)
    run_argv(monkeypatch, "ok")
    (again,) = launch_local(repo_root, (SMOL,))  # the retry: only what is still missing
    assert (again.run.config, again.configs) == (SMOL, ())
    wait_done(repo_root)
    collect(repo, store, None, print)
    assert load_plan(repo, compute_for(repo_root), store).done == (LLAMA, SMOL, second)
    FAULTS.append(("one of two configs in a shared pod fails", "the next still ran; retry ran only it"))


def test_in_a_shared_pod_the_watchdog_stops_only_the_config_that_overruns(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each config gets deadline_hours from when its turn comes: the one that hangs is stopped at its
    own deadline, and the next still runs within the pod's."""
    second = "haha-smollm2-135m-lora-002"
    config = repo_root / "train" / "config"
    (config / f"{second}.yml").write_text((config / f"{SMOL}.yml").read_text())
    toml = repo_root / "haha.toml"
    text = toml.read_text().replace("\nconfigs_per_pod = 1", "\nconfigs_per_pod = 2")
    text = text.replace("deadline_hours = 6.0", "deadline_hours = 0.004")  # 14.4 s per config
    toml.write_text(text.replace("overhead_minutes = 20.0", "overhead_minutes = 0.0"))  # the pod: 28.8 s
    git(repo_root, "add", "-A")
    git(repo_root, "commit", "-qm", "a second SmolLM2 config; shared pods with short deadlines")
    run_argv(monkeypatch, f"sleep-for={SMOL}")

    launched = launch_local(repo_root, (SMOL,))
    assert [x.configs for x in launched] == [(SMOL, second)]
    wait_done(repo_root, seconds=90)

    store = store_of(repo_root)
    hung, then = store.fetch_status(SMOL), store.fetch_status(second)
    assert hung["state"] == "failed" and "deadline" in hung["reason"], hung
    assert then["state"] == "succeeded", dump_logs(repo_root)
    assert store.fetch_results(second)["config"]["name"] == second
    assert statuses(repo_root) == [TERMINATED]
    FAULTS.append(("a config in a shared pod hangs", "stopped at its own deadline; the next still ran"))


def haha_cli(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `haha` process, as a workflow step or a pod runs it."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "haha"), *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(("behaviour", "heading"), [("ok", "finished"), ("train-crash", "failed")])
def test_run_status_comment_follows_the_run_on_the_merged_pr(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch, behaviour: str, heading: str
) -> None:
    github.merges[git(repo_root, "rev-parse", "HEAD").strip()] = 7
    run_argv(monkeypatch, behaviour)
    (launched,) = json.loads(haha_cli(repo_root, "launch", SMOL, "--compute", "local").stdout)
    assert launched["pr"] == 7
    (comment,) = github.comments.values()
    assert comment["issue_number"] == 7 and f"`{SMOL}` launched" in comment["body"]
    assert launched["pod"] in comment["body"]
    wait_done(repo_root)

    assert store_of(repo_root).fetch_status(SMOL)["pr"] == 7
    haha_cli(repo_root, "comment-status", "--results-pr", "https://github.com/synagi/haha/pull/9")
    haha_cli(repo_root, "comment-status", "--results-pr", "https://github.com/synagi/haha/pull/9")
    (comment,) = github.comments.values()  # edited in place, never a second comment
    assert f"`{SMOL}` {heading}" in comment["body"]
    edits = [r for r in github.requests if r.method == "PATCH"]
    assert len(edits) == 1  # the second refresh found nothing to change
    if heading == "finished":
        assert "pull/9" in comment["body"] and "Cost: $" in comment["body"]
    else:
        assert "illegal memory access" in comment["body"] and "logs/pod.log" in comment["body"]
    FAULTS.append((f"run status comment ({behaviour})", f"one PR comment: launched → {heading}"))


def test_a_retry_by_hand_reports_on_the_pr_that_added_the_config(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 item 6: `haha launch <config>` on a later main (another PR's merge) finds the PR
    whose branch added the config, not the PR of main's tip."""
    added = git(repo_root, "log", "--diff-filter=A", "--format=%H", "-1", "--", f"train/config/{SMOL}.yml")
    github.introduced[added.strip()] = 5
    (repo_root / "train" / "notes.md").write_text("later work\n")
    git(repo_root, "add", "-A")
    git(repo_root, "commit", "-qm", "Merge pull request #8: notes")
    github.merges[git(repo_root, "rev-parse", "HEAD").strip()] = 8
    run_argv(monkeypatch, "ok")

    (launched,) = json.loads(haha_cli(repo_root, "launch", SMOL, "--compute", "local").stdout)
    wait_done(repo_root)

    assert launched["pr"] == 5
    (comment,) = github.comments.values()
    assert comment["issue_number"] == 5 and f"`{SMOL}` launched" in comment["body"]
    assert store_of(repo_root).fetch_status(SMOL)["pr"] == 5


def test_a_restarted_container_does_not_run_again(
    repo_root: Path, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_argv(monkeypatch, "ok")
    (launched,) = launch_local(repo_root, (SMOL,))
    wait_done(repo_root)
    store = store_of(repo_root)
    assert store.fetch_status(SMOL)["state"] == "succeeded"

    # The same pod's container again (RunPod restarts one whose self-terminate failed): were it to
    # run, this command would record a failure.
    crash = json.dumps([sys.executable, str(FAKE_RUN), "train-crash"])
    again = haha_cli(
        repo_root,
        "pod",
        SMOL,
        HAHA_POD_ID=launched.pod.id,
        HAHA_COMPUTE_ROOT=str(repo_root),
        HAHA_RUN_ARGV=crash,
    )
    assert "fake run" not in again.stdout
    assert store.fetch_status(SMOL)["state"] == "succeeded"
    assert len(github.dispatches) == 1
    FAULTS.append(("container restarted after its run", "found its own end recorded; only terminated"))


def test_zz_print_fault_table() -> None:
    width = max((len(f) for f, _ in FAULTS), default=5)
    lines = [f"{'fault'.ljust(width)} | outcome", f"{'-' * width}-|-{'-' * 40}"]
    lines += [f"{fault.ljust(width)} | {outcome}" for fault, outcome in FAULTS]
    print("\n" + "\n".join(lines))
