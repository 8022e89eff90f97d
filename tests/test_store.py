"""Both stores round-trip a run's artifacts; the Hub one through real huggingface_hub and the fake."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import shutil
from pathlib import Path

import httpx
import pytest
from fakes.hf_hub import HubFake
from haha.errors import ServiceError
from haha.settings import Settings
from haha.store.base import RunArtifacts
from haha.store.hf import HubStore
from haha.store.local import LocalStore

pytest_plugins = ["fakes.fixtures"]

BASENAME = "haha-llama-3-8b-lora-001"
RESULTS = {"basename": BASENAME, "metrics": {"eval_loss": 1.25}}
STATUS = {"state": "succeeded"}
CARD = "---\nlibrary_name: peft\nbase_model: meta-llama/Meta-Llama-3-8B\n---\n# haha-llama-3-8b-lora-001\n"
WEIGHTS = bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def make_artifacts(tmp_path: Path, weights: bytes = WEIGHTS, **overrides: object) -> RunArtifacts:
    adapter = tmp_path / "out"
    (adapter / "checkpoint-10").mkdir(parents=True, exist_ok=True)
    (adapter / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"old checkpoint")
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    (adapter / "adapter_config.json").write_text('{"r": 32}')
    (adapter / "README.md").write_text("PEFT's own card, not ours")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    log = tmp_path / "train.log"
    log.write_text("step 1 loss 2.0\n")
    fields: dict = {
        "basename": BASENAME,
        "adapter_dir": adapter,
        "results_file": results,
        "log_files": (log,),
        "model_card": CARD,
        "status": STATUS,
    }
    return RunArtifacts(**(fields | overrides))


def read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- local folder store ---------------------------------------------------------------------------------


def test_local_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    location = store.publish(make_artifacts(tmp_path))

    assert location == str(tmp_path / "store" / BASENAME)
    tree = read_tree(Path(location))
    assert set(tree) == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "results.json",
        "status.json",
        "README.md",
        "logs/train.log",
    }
    assert tree["README.md"] == CARD.encode()
    assert store.fetch_results(BASENAME) == RESULTS
    assert store.fetch_status(BASENAME) == STATUS
    dest = store.fetch_adapter(BASENAME, tmp_path / "fetched")
    assert dest is not None
    assert read_tree(dest) == {"adapter_model.safetensors": WEIGHTS, "adapter_config.json": b'{"r": 32}'}


def test_local_missing_run_is_none(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.publish(RunArtifacts(basename=BASENAME, status={"state": "failed", "reason": "oom"}))

    assert store.fetch_results(BASENAME) is None
    assert store.fetch_status(BASENAME) == {"state": "failed", "reason": "oom"}
    assert store.fetch_adapter(BASENAME, tmp_path / "dest") is None
    assert store.fetch_status("haha-other-002") is None


def test_local_republish_replaces_the_adapter_whole(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.publish(make_artifacts(tmp_path))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "adapter_model.safetensors").write_bytes(b"v2")

    store.publish(RunArtifacts(basename=BASENAME, adapter_dir=v2))

    tree = read_tree(tmp_path / "store" / BASENAME)
    assert tree["adapter_model.safetensors"] == b"v2"
    assert "adapter_config.json" not in tree  # stale file from the previous adapter is gone
    assert tree["results.json"] == json.dumps(RESULTS).encode()  # other artifacts untouched


def test_local_failed_publish_leaves_previous_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    store.publish(make_artifacts(tmp_path))
    before = read_tree(tmp_path / "store" / BASENAME)

    real_copy = shutil.copy2

    def disk_full_halfway(src: str, dst: str, **kwargs: object) -> str:
        if Path(src).name == "adapter_model.safetensors":
            Path(dst).write_bytes(Path(src).read_bytes()[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copy2", disk_full_halfway)
    with pytest.raises(OSError, match="No space left"):
        store.publish(make_artifacts(tmp_path / "v2", weights=b"v2" * 500))

    assert read_tree(tmp_path / "store" / BASENAME) == before
    assert [p.name for p in (tmp_path / "store" / BASENAME).iterdir() if p.name.startswith(".")] == []


def test_local_missing_input_changes_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.publish(make_artifacts(tmp_path))
    before = read_tree(tmp_path / "store" / BASENAME)

    with pytest.raises(FileNotFoundError):
        store.publish(make_artifacts(tmp_path / "v2", weights=b"v2", results_file=tmp_path / "absent.json"))

    assert read_tree(tmp_path / "store" / BASENAME) == before


# --- HuggingFace Hub store -------------------------------------------------------------------------------


def hub_settings(url: str, token: str = "hf_test_token") -> Settings:
    return Settings.model_validate({"hf_token": token, "hf_endpoint": url, "org": "synagi"})


def test_hub_publish_is_one_commit_and_round_trips(tmp_path: Path, hub_api: tuple[HubFake, str]) -> None:
    fake, url = hub_api
    store = HubStore(hub_settings(url))
    location = store.publish(make_artifacts(tmp_path))

    assert location == f"{url}/synagi/{BASENAME}"
    repo = fake.repos[f"synagi/{BASENAME}"]
    assert repo.private  # settings.store.private defaults to True
    commits = [r.parsed for r in fake.requests if r.path.endswith("/commit/main")]
    assert len(commits) == 1
    assert sorted(commits[0]["paths"]) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "logs/train.log",
        "results.json",
        "status.json",
    ]
    assert repo.files["adapter_model.safetensors"] == WEIGHTS
    assert repo.files["README.md"] == CARD.encode()
    assert any(r.path == "/api/validate-yaml" for r in fake.requests)

    assert store.fetch_results(BASENAME) == RESULTS
    assert store.fetch_status(BASENAME) == STATUS
    dest = store.fetch_adapter(BASENAME, tmp_path / "fetched")
    assert dest is not None
    assert read_tree(dest) == {"adapter_model.safetensors": WEIGHTS, "adapter_config.json": b'{"r": 32}'}


def test_hub_later_publish_adds_files(tmp_path: Path, hub_api: tuple[HubFake, str]) -> None:
    _, url = hub_api
    store = HubStore(hub_settings(url))
    store.publish(make_artifacts(tmp_path))
    store.publish(RunArtifacts(basename=BASENAME, status={"state": "failed", "reason": "eval crashed"}))

    assert store.fetch_status(BASENAME) == {"state": "failed", "reason": "eval crashed"}
    assert store.fetch_results(BASENAME) == RESULTS  # still there from the first commit


def test_hub_absent_repo_or_file_is_none(tmp_path: Path, hub_api: tuple[HubFake, str]) -> None:
    _, url = hub_api
    store = HubStore(hub_settings(url))
    assert store.fetch_results("haha-never-ran-001") is None
    assert store.fetch_adapter("haha-never-ran-001", tmp_path / "dest") is None

    store.publish(RunArtifacts(basename=BASENAME, status=STATUS))
    assert store.fetch_results(BASENAME) is None
    assert store.fetch_adapter(BASENAME, tmp_path / "dest") is None


def test_hub_rejected_token_is_a_service_error(tmp_path: Path, hub_api: tuple[HubFake, str]) -> None:
    _, url = hub_api
    store = HubStore(hub_settings(url, token="hf_wrong_token"))
    with pytest.raises(ServiceError, match="401") as info:
        store.publish(make_artifacts(tmp_path))
    assert "hf_wrong_token" not in str(info.value)
    with pytest.raises(ServiceError):
        store.fetch_results(BASENAME)


def test_hub_binary_files_go_through_lfs_and_the_commit_names_their_oid(
    tmp_path: Path, hub_api: tuple[HubFake, str]
) -> None:
    """As on the real Hub: safetensors (and any binary) via the LFS batch API, upload, verify."""
    fake, url = hub_api
    HubStore(hub_settings(url)).publish(make_artifacts(tmp_path))

    (preupload,) = [r.parsed for r in fake.requests if "/preupload/" in r.path]
    assert preupload["modes"]["adapter_model.safetensors"] == "lfs"
    assert preupload["modes"]["results.json"] == "regular"
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    (batch,) = [r.parsed for r in fake.requests if r.path.endswith(".git/info/lfs/objects/batch")]
    assert batch["oids"] == [oid]
    assert [r.method for r in fake.requests if r.path == f"/lfs-upload/{oid}"] == ["PUT"]
    assert any(r.path.endswith("/info/lfs/objects/verify") for r in fake.requests)
    (commit,) = [r.parsed for r in fake.requests if r.path.endswith("/commit/main")]
    assert commit["lfs"] == {"adapter_model.safetensors": oid}
    assert fake.repos[f"synagi/{BASENAME}"].files["adapter_model.safetensors"] == WEIGHTS


def _raw_commit(url: str, line: dict) -> httpx.Response:
    header = {"key": "header", "value": {"summary": "raw", "description": ""}}
    body = "\n".join(json.dumps(x) for x in (header, line)).encode()
    return httpx.post(
        f"{url}/api/models/synagi/{BASENAME}/commit/main",
        content=body,
        headers={"Authorization": "Bearer hf_test_token", "Content-Type": "application/x-ndjson"},
    )


def test_hub_refuses_an_lfs_oid_never_uploaded_and_binary_sent_as_regular(
    tmp_path: Path, hub_api: tuple[HubFake, str]
) -> None:
    """The fake's two refusals: a commit naming an oid it never received, and binary content inline."""
    fake, url = hub_api
    HubStore(hub_settings(url)).publish(RunArtifacts(basename=BASENAME, status=STATUS))
    missing = {"path": "w.safetensors", "algo": "sha256", "oid": "ab" * 32, "size": 3}
    reply = _raw_commit(url, {"key": "lfsFile", "value": missing})
    assert reply.status_code == 400 and "LFS pointer" in reply.json()["error"]
    inline = {"path": "plot.png", "encoding": "base64", "content": base64.b64encode(PNG).decode()}
    reply = _raw_commit(url, {"key": "file", "value": inline})
    assert reply.status_code == 400 and "binary" in reply.json()["error"]
    assert set(fake.repos[f"synagi/{BASENAME}"].files) == {".gitattributes", "status.json"}
