"""The contracts the GitOps loop crosses: exit statuses of the real `haha` process, the launch → pod
environment, the run status, the pod spec's secrets, and RunPod calls under faults (real SDK, fake API).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from check_helpers import DATA, LLAMA, ROOT, SMOL, edit_config, make_git_repo, make_repo
from fakes.runpod_graphql import RunPodFake
from haha.compute.base import PodSpec
from haha.compute.runpod import RunPodCompute
from haha.errors import InputError, ServiceError
from haha.experiment import Experiment
from haha.launch import min_cuda_version, pod_secrets
from haha.local_fit import why_not_local
from haha.phases import Prediction
from haha.podenv import LocalPod, PodEnv
from haha.runstatus import RunStatus
from haha.settings import Settings, load_settings

pytest_plugins = ["fakes.fixtures"]

HAHA = Path(sys.executable).parent / "haha"
H100, H100_PCIE = "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe"
NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def haha(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `haha` command, as a workflow step runs it."""
    return subprocess.run([str(HAHA), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


# --- exit statuses of the real process ---------------------------------------------------------------
def test_check_exits_0_on_a_clean_repo_and_1_on_errors(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    clean = haha("check", cwd=root)
    assert clean.returncode == 0, clean.stderr

    (root / "train/config/haha-smollm2-135m-lora-003.yml").write_text((root / SMOL).read_text())
    gap = haha("check", "--format", "github", cwd=root)
    assert gap.returncode == 1
    assert "::error file=train/config/haha-smollm2-135m-lora-003.yml" in gap.stdout


@pytest.mark.parametrize(
    ("change", "field"),
    [({"adapter": "lorax"}, "adapter"), ({"micro_batch_size": 0}, "micro_batch_size")],
)
def test_values_the_schema_allows_but_cannot_train_fail_the_gate(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    root = make_repo(tmp_path)
    edit_config(root, LLAMA, **change)
    done = haha("check", "--format", "github", cwd=root)
    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("::error") and f"title={field}::" in x)
    assert f"file={LLAMA},line=" in line


def test_an_empty_dataset_fails_the_gate(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / DATA).write_text("")
    done = haha("check", "--format", "github", cwd=root)
    assert done.returncode == 1
    assert any(
        x.startswith(f"::error file={DATA},line=1") and "no rows" in x for x in done.stdout.splitlines()
    )


def test_pod_terminate_exits_1_when_the_pod_stays_up(tmp_path: Path, runpod_api: RunPodFake) -> None:
    runpod_api.terminate_errors = 99
    pod_id = RunPodCompute(_settings(), backoff_s=0).launch(_spec()).id
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNPOD_API_BASE_URL": os.environ["RUNPOD_API_BASE_URL"],  # the fixture's fake
        "RUNPOD_POD_ID": pod_id,
        "RUNPOD_API_KEY": "rp-test-key",
        "HAHA_STORE": "local",
        "HAHA_RETRY_BACKOFF_S": "0",  # the 4 failing tries without 2 + 4 + 8 s of backoff
    }

    def pod_terminate() -> int:
        args = [str(HAHA), "pod-terminate"]
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, timeout=300).returncode

    assert pod_terminate() == 1
    assert pod_id not in runpod_api.terminated
    runpod_api.terminate_errors = 0
    assert pod_terminate() == 0
    assert pod_id in runpod_api.terminated


# --- the launch → pod environment --------------------------------------------------------------------
@pytest.mark.parametrize("local", [False, True])
def test_pod_env_round_trips(local: bool) -> None:
    pod = PodEnv(
        basename="haha-x-001",
        mode="eval",
        ref="1a2b3c4d",
        repo_url="https://github.com/o/r.git",
        deadline=NOW,
        pod_name="haha-haha-x-001-1a2b3c4-20261128T0601Z",
        compute="local" if local else "runpod",
        store="hf",
        boot_b64="ZWNobyBoaQ==",
        pr=17,
        run_argv=("python", "-c", "print('hi')"),
        passed={"HF_ENDPOINT": "http://127.0.0.1:1", "WANDB_MODE": "offline"},
        budget_override="over the monthly limit: paper deadline (run by octocat)",
        local=LocalPod("/r", "/r/c", "/r/b.log", "/r/store", "/usr/bin/python3", ("bash", "-c", "x"))
        if local
        else None,
        launched_at=1764900000.125,
        prediction=Prediction(1234.5, 1.23, "7 runs"),
    )
    assert PodEnv.from_env(pod.to_env(), "ignored", NOW, 6.0) == pod


def test_pod_env_needs_only_the_name_when_run_by_hand() -> None:
    pod = PodEnv.from_env({}, "haha-x-001", NOW, 2.0)
    assert (pod.basename, pod.mode, pod.deadline, pod.pr, pod.pod_id) == (
        "haha-x-001",
        "train",
        datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        None,
        None,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("HAHA_MODE", "fit"), ("HAHA_PR", "x"), ("HAHA_DEADLINE", "soon"), ("HAHA_LAUNCHED_AT", "noon")],
)
def test_pod_env_rejects_bad_values_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(InputError) as caught:
        PodEnv.from_env({name: value}, "haha-x-001", NOW, 1.0)
    assert caught.value.location.field == name


# --- the run status ----------------------------------------------------------------------------------
def test_run_status_round_trips_and_ignores_keys_it_does_not_know() -> None:
    status = RunStatus(state="failed", reason="boom", pod_id="p1", pr=3, cost_per_hour=2.5, pod_seconds=61.0)
    assert RunStatus.from_dict(status.to_dict()) == status
    assert RunStatus.from_dict({**status.to_dict(), "added_later": 1}) == status
    assert status.final and not RunStatus(state="running").final


def test_run_status_with_an_unknown_state_is_an_error() -> None:
    with pytest.raises(InputError) as caught:
        RunStatus.from_dict({"state": "done"})
    assert caught.value.location.field == "state"


# --- what a pod is given ------------------------------------------------------------------------------
def test_pod_secrets_hold_no_account_key_and_use_references_where_configured() -> None:
    env = {
        "RUNPOD_API_KEY": "rp-account",
        "HF_TOKEN": "hf_value",
        "WANDB_API_KEY": "wb_value",
        "GITHUB_TOKEN": "ghs_workflow",
        "HAHA_DISPATCH_TOKEN": "github_pat_dispatch",
    }
    settings = load_settings(Path("/nonexistent"), env)
    assert pod_secrets(settings, {}) == {
        "HF_TOKEN": "hf_value",
        "WANDB_API_KEY": "wb_value",
        "GITHUB_TOKEN": "github_pat_dispatch",
    }
    refs = pod_secrets(settings, {"HF_TOKEN": "haha_hf", "GITHUB_TOKEN": "haha_dispatch"})
    assert refs["HF_TOKEN"] == "{{ RUNPOD_SECRET_haha_hf }}"
    assert refs["GITHUB_TOKEN"] == "{{ RUNPOD_SECRET_haha_dispatch }}"
    assert "rp-account" not in json.dumps(refs) and "ghs_workflow" not in json.dumps(refs)


def test_min_cuda_version_follows_the_pinned_runtime() -> None:
    assert min_cuda_version("torch==2.13.0\nnvidia-cuda-runtime==13.0.96\n") == "13.0"
    assert min_cuda_version("nvidia-cuda-runtime-cu12==12.8.90\n") == "12.8"
    assert min_cuda_version("torch==2.13.0\n") == ""


# --- RunPod under faults ------------------------------------------------------------------------------
def test_listing_pods_never_asks_for_their_env(runpod_api: RunPodFake) -> None:
    compute = RunPodCompute(_settings(), backoff_s=0)
    pod = compute.launch(_spec())
    assert [p.id for p in compute.list_pods()] == [pod.id]
    assert compute.get(pod.id) is not None
    listings = [
        q for q in runpod_api.requests if q.parsed.get("kind") == "query" and q.parsed["field"] != "gpuTypes"
    ]
    assert listings and all(not any(s.endswith(".env") for s in q.parsed["selected"]) for q in listings)


def test_a_5xx_on_create_is_retried_on_the_same_gpu(runpod_api: RunPodFake) -> None:
    runpod_api.http_errors = {"podFindAndDeployOnDemand": 2}
    sleeps: list[float] = []
    pod = RunPodCompute(_settings(), sleep=sleeps.append, backoff_s=1.0).launch(_spec())
    assert pod.gpu_type == H100
    assert [c["gpuTypeId"] for c in runpod_api.calls("podFindAndDeployOnDemand")] == [H100] * 3
    assert sleeps == [1.0, 2.0] and len(runpod_api.pods) == 1


def test_a_gpu_that_keeps_failing_falls_back_to_the_next(runpod_api: RunPodFake) -> None:
    runpod_api.http_errors = {"podFindAndDeployOnDemand": 3}
    pod = RunPodCompute(_settings(), sleep=lambda s: None).launch(_spec())
    assert pod.gpu_type == H100_PCIE
    assert [c["gpuTypeId"] for c in runpod_api.calls("podFindAndDeployOnDemand")] == [H100] * 3 + [H100_PCIE]


def test_a_refusal_that_is_not_transient_stops_at_once(runpod_api: RunPodFake) -> None:
    runpod_api.deploy_errors = {H100: "Something is wrong with your input"}
    with pytest.raises(ServiceError, match="refused"):
        RunPodCompute(_settings(), sleep=lambda s: None).launch(_spec())
    assert len(runpod_api.calls("podFindAndDeployOnDemand")) == 1


def test_the_minimum_cuda_version_reaches_the_deploy_call(runpod_api: RunPodFake) -> None:
    RunPodCompute(_settings(), backoff_s=0).launch(_spec(min_cuda_version="13.0"))
    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["minCudaVersion"] == "13.0" and "allowedCudaVersions" not in deploy


def _settings() -> Settings:
    gpus = [
        {"id": g, "price_per_hour": 2.99, "peak_bf16_tflops": 989, "memory_gb": 80} for g in (H100, H100_PCIE)
    ]
    return Settings.model_validate({"runpod_api_key": "rp-test-key", "compute": {"gpu_types": gpus}})


def _spec(**overrides: object) -> PodSpec:
    fields: dict = {
        "name": "haha-haha-x-001-1a2b3c4-20261128T0601Z",
        "image": "ghcr.io/o/haha-pod@sha256:" + "ab" * 32,
        "gpu_types": (H100, H100_PCIE),
        "env": {"HAHA_BASENAME": "haha-x-001"},
    }
    return PodSpec(**(fields | overrides))


# --- local compute says up front what it cannot run ------------------------------------------------------
def test_local_launch_refuses_a_base_model_this_machine_cannot_load(tmp_path: Path) -> None:
    root = make_git_repo(tmp_path)
    done = subprocess.run(
        [str(HAHA), "launch", "haha-llama-3-8b-lora-001", "--compute", "local"],
        cwd=root,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert f"{LLAMA}:" in done.stderr.replace("\n", "") and "[base_model]" in done.stderr
    assert not (root / ".haha" / "pods").exists()  # no pod was started


def test_a_model_larger_than_this_machine_is_refused() -> None:
    exp = Experiment.load(ROOT / SMOL)
    assert why_not_local(exp, load_settings(ROOT, {"HF_HUB_OFFLINE": "1"}), memory=64 * 2**30) is None
    problem, fix = why_not_local(exp, load_settings(ROOT, {"HF_HUB_OFFLINE": "1"}), memory=2**28) or ("", "")
    assert "needs about" in problem and "this machine has 0 GiB" in problem and "runpod" in fix


def test_usage_errors_exit_2_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    for args in (["check", "--format", "xml"], ["run"], ["launch", "--compute", "aws"]):
        done = haha(*args, cwd=root)
        assert done.returncode == 2, args
        assert "Usage: haha" in done.stderr and "Traceback" not in done.stderr
