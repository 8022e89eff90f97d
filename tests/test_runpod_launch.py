"""`haha launch` and `haha launch --dry-run` as processes, against the strict RunPod fake.

The repo pins the image's CUDA runtime (requirements/train-cuda.txt: CUDA 13.0) and pushes the image to
GHCR, whose packages start private: what a new user's first merge sends to RunPod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import ROOT, git, make_git_repo
from fakes.hf_hub import HubFake, HubRepo
from fakes.runpod_graphql import Host, RunPodFake
from fakes.server import serve
from pod_results import write_fake_results

pytest_plugins = ["fakes.fixtures"]

SMOL = "haha-smollm2-135m-lora-001"
LLAMA = "haha-llama-3-8b-lora-001"
NEW = "haha-smollm2-135m-lora-002"
OTHER = "haha-smollm2-135m-lora-003"
H200 = "NVIDIA H200"
DIGEST = "ghcr.io/synagi/haha-pod@sha256:" + "ab" * 32
AUTH = "cr-ghcr-1"
ENV = {"HF_TOKEN": "hf_secret_123", "WANDB_API_KEY": "wandb_secret_456", "HAHA_COMPUTE": "runpod"}


@pytest.fixture
def root(tmp_path: Path, runpod_api: RunPodFake) -> Path:
    """Two configs trained and collected, a third new one; the image pinned; the CUDA sets pinned."""
    root = make_git_repo(tmp_path)
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace('"ghcr.io/synagi/haha-pod:latest"', f'"{DIGEST}"'))
    (root / "requirements").mkdir()
    shutil.copy(ROOT / "requirements" / "train-cuda.txt", root / "requirements")
    for name in (SMOL, LLAMA):
        write_fake_results(root, name)
    shutil.copy(root / f"train/config/{SMOL}.yml", root / f"train/config/{NEW}.yml")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a new config")
    runpod_api.gpus = (*runpod_api.gpus, {"id": H200, "displayName": "H200 SXM", "memoryInGb": 141})
    return root


def set_compute(root: Path, **values: object) -> None:
    """Add [compute] keys to haha.toml (as a user edits it) and commit."""
    toml = root / "haha.toml"
    text = toml.read_text()
    for key, value in values.items():
        line = f"{key} = {json.dumps(value)}"
        text, found = re.subn(rf"(?m)^{key} = .*$", line, text)
        text = text if found else text.replace("[compute]\n", f"[compute]\n{line}\n", 1)
    toml.write_text(text)
    git(root, "commit", "-qam", "settings")


def haha(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haha.cli", *args, "--repo", str(root)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_launch_lands_on_a_host_whose_driver_is_newer_than_the_images_cuda(
    root: Path, runpod_api: RunPodFake
) -> None:
    runpod_api.hosts = [Host(H200, "12.8"), Host(H200, "13.1")]  # none reports exactly 13.0
    done = haha(root, "launch", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})

    assert done.returncode == 0, done.stderr
    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["minCudaVersion"] == "13.0" and "allowedCudaVersions" not in deploy
    (pod,) = runpod_api.pods.values()
    assert pod["host"].cuda == "13.1"


def test_a_private_image_pulls_with_the_registry_credentials_haha_toml_names(
    root: Path, runpod_api: RunPodFake
) -> None:
    runpod_api.registry_auths = {AUTH: "ghcr.io"}
    set_compute(root, registry_auth_id=AUTH)
    done = haha(root, "launch", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})

    assert done.returncode == 0, done.stderr
    (deploy,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert deploy["containerRegistryAuthId"] == AUTH
    assert len(runpod_api.pods) == 1 and runpod_api.pulling == set()


def test_dry_run_prints_the_deploy_request_and_needs_no_runpod_key(
    root: Path, runpod_api: RunPodFake
) -> None:
    set_compute(root, registry_auth_id=AUTH)
    (root / "haha.toml").write_text(
        (root / "haha.toml").read_text() + '\n[compute.secret_refs]\nWANDB_API_KEY = "wandb"\n'
    )
    git(root, "commit", "-qam", "a RunPod secret")
    done = haha(root, "launch", "--dry-run", NEW, env=ENV)  # no RUNPOD_API_KEY at all

    assert done.returncode == 0, done.stderr
    (request,) = json.loads(done.stdout)
    assert (request["config"], request["mutation"]) == (NEW, "podFindAndDeployOnDemand")
    sent = request["input"]
    assert sent["minCudaVersion"] == "13.0" and "allowedCudaVersions" not in sent
    assert sent["containerRegistryAuthId"] == AUTH
    assert (sent["imageName"], sent["gpuTypeId"]) == (DIGEST, request["gpu_types"][0])
    env = {e["key"]: e["value"] for e in sent["env"]}
    assert env["HF_TOKEN"] == "$HF_TOKEN"
    assert env["WANDB_API_KEY"] == "{{ RUNPOD_SECRET_wandb }}"
    assert env["HAHA_BASENAME"] == NEW
    # The gate's prediction travels with the pod (meta.cost.predicted_*); no GPU history here: assumed.
    predicted = json.loads(env["HAHA_PREDICTED"])
    assert predicted["from"] == "assumed" and predicted["seconds"] > 20 * 60 and predicted["dollars"] > 0
    assert float(env["HAHA_LAUNCHED_AT"]) > 0
    for secret in ("hf_secret_123", "wandb_secret_456"):
        assert secret not in done.stdout + done.stderr
    assert runpod_api.requests == []


def test_dry_run_of_the_whole_plan_only_lists_pods(root: Path, runpod_api: RunPodFake) -> None:
    done = haha(root, "launch", "--dry-run", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})

    assert done.returncode == 0, done.stderr
    assert [r["config"] for r in json.loads(done.stdout)] == [NEW]
    assert {r.parsed["kind"] for r in runpod_api.requests} == {"query", "rest"}  # GraphQL pods, REST clusters
    assert {r.method for r in runpod_api.requests if r.parsed["kind"] == "rest"} == {"GET"}
    assert runpod_api.pods == {} and runpod_api.clusters == {}


def test_with_a_network_volume_two_pods_download_the_base_model_once(
    root: Path, runpod_api: RunPodFake, tmp_path: Path
) -> None:
    """Each pod gets a container disk of its own (HOME) and the one network volume at its mount path."""
    base = "HuggingFaceTB/SmolLM2-135M-Instruct"
    hub = HubFake(token=ENV["HF_TOKEN"])
    hub.repos[base] = HubRepo(base, private=False)
    hub.repos[base].commit({"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 4096})
    shutil.copy(root / f"train/config/{NEW}.yml", root / f"train/config/{OTHER}.yml")
    git(root, "add", "-A")
    set_compute(root, network_volume_id="vol-1")
    requests = json.loads(haha(root, "launch", "--dry-run", NEW, OTHER, env=ENV).stdout)
    volume = tmp_path / "volume"

    with serve(hub) as (_, url):
        for n, request in enumerate(requests):
            sent = request["input"]
            assert sent["networkVolumeId"] == "vol-1"
            env = {e["key"]: e["value"] for e in sent["env"]}
            on_volume = {
                k: env[k].replace(sent["volumeMountPath"], str(volume)) for k in ("HF_HOME", "HF_HUB_CACHE")
            }
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from huggingface_hub import snapshot_download; snapshot_download({base!r})",
                ],
                env={
                    "PATH": os.environ["PATH"],
                    "HOME": str(tmp_path / f"pod{n}"),
                    "HF_ENDPOINT": url,
                    "HF_TOKEN": ENV["HF_TOKEN"],
                    **on_volume,
                },
                check=True,
                timeout=120,
            )

    downloads = [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert sorted(downloads) == sorted({*downloads}) and len(downloads) == 2  # each file once, for both pods
    assert (volume / "huggingface" / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct").is_dir()


def test_dry_run_for_local_compute_prints_the_pods_env(root: Path, runpod_api: RunPodFake) -> None:
    done = haha(root, "launch", "--dry-run", "--compute", "local", NEW, env=ENV)

    assert done.returncode == 0, done.stderr
    (request,) = json.loads(done.stdout)
    assert (request["config"], request["compute"]) == (NEW, "local")
    assert request["env"]["HAHA_BASENAME"] == NEW and request["env"]["HF_TOKEN"] == "$HF_TOKEN"
    assert "hf_secret_123" not in done.stdout and not (root / ".haha" / "pods").exists()
