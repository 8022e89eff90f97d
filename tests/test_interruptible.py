"""Interruptible pods: the resume decision as a pure function, checkpoints in both stores, and the
`haha` processes (launch, plan, reap) against the strict RunPod fake that rents and preempts them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from check_helpers import git
from fakes.hf_hub import HubFake
from fakes.runpod_graphql import RunPodFake
from haha.checkpoints import checkpoint_settings, newest_complete
from haha.experiment import Experiment
from haha.resume import carried, decide, last_step, save_steps
from haha.runstatus import RunStatus, read_status, write_status
from haha.settings import load_settings
from haha.store.hf import HubStore
from haha.store.local import LocalStore
from test_runpod_launch import DIGEST, NEW, haha, root, set_compute
from test_store import hub_settings

pytest_plugins = ["fakes.fixtures"]
__all__ = ["root"]
SHA = "c" * 64
# No HF token: the runs' statuses live in the repo's local folder store.
ENV = {"HAHA_COMPUTE": "runpod"}


def preempted(**changes: object) -> RunStatus:
    base = RunStatus(state="running", pod_id="pod0001", pod_type="interruptible", config_sha256=SHA)
    return RunStatus(**{**base.to_dict(), **changes})


# --- the pure decision -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "alive", "action", "interruptible", "count", "step"),
    [
        (None, False, "fresh", True, 0, None),  # never ran
        (preempted(), True, "fresh", True, 0, None),  # its pod still runs (plan never asks then)
        (preempted(state="failed"), False, "fresh", True, 0, None),  # a real failure
        (preempted(pod_type="on-demand"), False, "fresh", True, 0, None),  # an on-demand pod died
        (preempted(pod_type=None), False, "fresh", True, 0, None),  # a pod from before interruptible
        (preempted(config_sha256="d" * 64), False, "fresh", True, 0, None),  # another config's checkpoint
        (preempted(checkpoint_step=8), False, "resume", True, 1, 8),
        (preempted(), False, "resume", True, 1, None),  # no checkpoint yet: resumes from the start
        (preempted(checkpoint_step=8, preemptions=1), False, "resume", True, 2, 8),
        (preempted(checkpoint_step=8, preemptions=2), False, "resume on-demand", False, 3, 8),
    ],
)
def test_the_resume_decision(
    status: RunStatus | None, alive: bool, action: str, interruptible: bool, count: int, step: int | None
) -> None:
    decision = decide(status, alive, SHA, True, max_preemptions=2)
    assert (decision.action, decision.interruptible) == (action, interruptible)
    assert (decision.preemptions, decision.checkpoint_step) == (count, step)


def test_without_the_on_demand_fallback_a_run_preempted_too_often_is_given_up() -> None:
    decision = decide(preempted(preemptions=2), False, SHA, True, 2, on_demand_fallback=False)
    assert (decision.action, decision.preemptions) == ("give up", 3)
    assert decide(preempted(), False, SHA, True, 0).action == "resume on-demand"


def test_a_resumed_pods_status_carries_the_run_and_counts_the_repeated_steps() -> None:
    before = preempted(
        checkpoint_step=8, checkpoint_at="t", wandb_run_id="w1", preemptions=1, steps_repeated=2
    )
    out = carried(before, interruptible=True, resume=True, preemptions=2, reached=11)
    assert out == {
        "pod_type": "interruptible",
        "preemptions": 2,
        "checkpoint_step": 8,
        "checkpoint_at": "t",
        "wandb_run_id": "w1",
        "steps_repeated": 5,  # 2 before, and steps 9..11 now
    }
    assert carried(None, False, False, 0, None) == {}
    assert carried(None, False, True, 3, None) == {"pod_type": "on-demand"}


def test_checkpoint_interval_and_the_trainer_steps_read_from_a_log() -> None:
    assert save_steps(10) == 0.1 and save_steps(1) == 0.5
    config = {"save_strategy": "no", "saves_per_epoch": 1}
    assert checkpoint_settings(config, 4) == {
        "save_strategy": "steps",
        "save_steps": 0.25,
        "saves_per_epoch": None,
        "save_total_limit": 2,
    }
    assert checkpoint_settings({"save_steps": 50, "save_total_limit": 3}, 4)["save_steps"] == 50
    log = (
        "Loading weights: 100%|██████| 272/272 [00:00<00:00]\n 40%|████ | 4/10 [00:01<00:02]\n"
        " 50%|██| 1/2 [00:00<00:00]\n 60%|██████ | 6/10 [00:02<00:01]\n"
    )
    assert last_step(log) == 6 and last_step("no bars") is None


def test_the_haha_block_rejects_a_bad_bid_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "haha-x-001.yml"
    path.write_text("base_model: x\nhaha:\n  interruptible: yes please\n  bid_per_gpu: -1\n")
    problems = Experiment.load(path).block_problems(load_settings(tmp_path, {}))
    where = [(p.location.field, p.location.line) for p in problems]
    assert where == [("haha.interruptible", 3), ("haha.bid_per_gpu", 4)]
    assert all(p.fix for p in problems)


# --- checkpoints in the stores -----------------------------------------------------------------------
def make_checkpoint(parent: Path, step: int, complete: bool = True) -> Path:
    folder = parent / f"checkpoint-{step}"
    (folder / "rng").mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(bytes([step]) * 64)
    (folder / "optimizer.pt").write_bytes(b"\x00\x01" * 32 + bytes([step]))
    (folder / "rng" / "rng_state.pth").write_bytes(b"\x02" * 8)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_newest_complete_checkpoint_skips_one_still_being_written(tmp_path: Path) -> None:
    make_checkpoint(tmp_path, 4)
    make_checkpoint(tmp_path, 12)
    make_checkpoint(tmp_path, 16, complete=False)
    found = newest_complete(tmp_path)
    assert found is not None and found.name == "checkpoint-12"


@pytest.mark.parametrize("kind", ["local", "hf"])
def test_a_checkpoint_replaces_the_last_one_and_stays_out_of_the_adapter(
    kind: str, tmp_path: Path, hub_api: tuple[HubFake, str]
) -> None:
    from haha.store.base import RunArtifacts

    fake, url = hub_api
    store = LocalStore(tmp_path / "store") if kind == "local" else HubStore(hub_settings(url))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    store.publish(RunArtifacts("run-001", adapter_dir=adapter))
    store.publish_checkpoint("run-001", make_checkpoint(tmp_path / "a", 4))
    (tmp_path / "b").mkdir()
    newer = make_checkpoint(tmp_path / "b", 8)
    (newer / "optimizer.pt").unlink()  # a file the older checkpoint had must not linger
    store.publish_checkpoint("run-001", newer)

    got = store.fetch_checkpoint("run-001", tmp_path / "got")
    assert got is not None
    files = sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file())
    assert files == ["adapter_model.safetensors", "rng/rng_state.pth", "trainer_state.json"]
    assert json.loads((got / "trainer_state.json").read_text()) == {"global_step": 8}
    fetched = store.fetch_adapter("run-001", tmp_path / "adapter-out")
    assert fetched is not None and sorted(p.name for p in fetched.iterdir()) == ["adapter_config.json"]
    assert store.fetch_checkpoint("other-001", tmp_path / "none") is None
    if kind == "hf":  # binary checkpoint files go the Hub's LFS way, like the adapter's weights
        assert "checkpoint/adapter_model.safetensors" in fake.repos["synagi/run-001"].lfs


# --- the haha processes against the RunPod fake -----------------------------------------------------
def interruptible_config(root: Path, **block: object) -> None:
    path = root / f"train/config/{NEW}.yml"
    config = yaml.safe_load(path.read_text())
    config["haha"] = {"interruptible": True, **block}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(root, "commit", "-qam", "interruptible")


def env_of(deploy: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in deploy["env"]}


def test_an_interruptible_config_rents_a_spot_pod_with_its_bid(root: Path, runpod_api: RunPodFake) -> None:
    interruptible_config(root, bid_per_gpu=1.25)
    done = haha(root, "launch", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})

    assert done.returncode == 0, done.stderr
    assert runpod_api.calls("podFindAndDeployOnDemand") == []
    (rent,) = runpod_api.calls("podRentInterruptable")
    assert rent["bidPerGpu"] == 1.25 and rent["imageName"] == DIGEST
    assert env_of(rent)["HAHA_INTERRUPTIBLE"] == "1" and "HAHA_RESUME" not in env_of(rent)
    (pod,) = runpod_api.pods.values()
    assert pod["podType"] == "INTERRUPTABLE" and pod["costPerHr"] == 1.25


def test_a_bid_below_runpods_minimum_is_refused_with_runpods_answer(
    root: Path, runpod_api: RunPodFake
) -> None:
    interruptible_config(root, bid_per_gpu=0.1)
    runpod_api.spot_floor = {g["id"]: 0.5 for g in runpod_api.gpus}
    done = haha(root, "launch", env={**ENV, "RUNPOD_API_KEY": runpod_api.api_key})
    assert done.returncode != 0
    assert "minimum bid" in done.stderr and runpod_api.pods == {}


def test_a_preempted_run_is_reaped_resumed_and_after_max_preemptions_goes_on_demand(
    root: Path, runpod_api: RunPodFake
) -> None:
    """launch (spot) → RunPod preempts → reap ends the stopped pod, the run stays `running` → plan and
    launch resume it on a new spot pod → preempted again past compute.max_preemptions → on-demand."""
    interruptible_config(root)
    set_compute(root, max_preemptions=1)
    env = {**ENV, "RUNPOD_API_KEY": runpod_api.api_key}
    assert haha(root, "launch", env=env).returncode == 0
    (pod_id,) = runpod_api.pods
    store = LocalStore(root / ".haha/store")
    assert json.loads(haha(root, "plan", "--compute", "runpod", env=env).stdout)["count"] == 0  # in flight
    config_sha = hashlib.sha256((root / f"train/config/{NEW}.yml").read_bytes()).hexdigest()
    # What the pod recorded before RunPod took it back: running, interruptible, a checkpoint at step 6.
    write_status(store, NEW, preempted(pod_id=pod_id, config_sha256=config_sha, checkpoint_step=6))
    runpod_api.preempt(pod_id)
    assert runpod_api.pods[pod_id]["desiredStatus"] == "EXITED"

    plan = json.loads(haha(root, "plan", "--compute", "runpod", env=env).stdout)
    (run,) = plan["include"]
    assert (run["config"], run["mode"], run["resume"], run["preemptions"]) == (NEW, "train", True, 1)
    assert run["interruptible"] is True and "resuming from step 6" in run["reason"]

    reaped = haha(root, "reap", "--compute", "runpod", env=env)
    assert reaped.returncode == 0, reaped.stderr
    assert pod_id in runpod_api.terminated
    assert read_status(store, NEW).state == "running"  # not marked failed: plan resumes it

    assert haha(root, "launch", env=env).returncode == 0
    _, second = runpod_api.calls("podRentInterruptable")
    assert env_of(second)["HAHA_RESUME"] == "1" and env_of(second)["HAHA_PREEMPTIONS"] == "1"

    (again,) = runpod_api.pods
    write_status(
        store, NEW, preempted(pod_id=again, config_sha256=config_sha, checkpoint_step=9, preemptions=1)
    )
    runpod_api.preempt(again)
    assert haha(root, "launch", env=env).returncode == 0
    (on_demand,) = runpod_api.calls("podFindAndDeployOnDemand")
    assert env_of(on_demand)["HAHA_RESUME"] == "1" and env_of(on_demand)["HAHA_PREEMPTIONS"] == "2"
    assert "HAHA_INTERRUPTIBLE" not in env_of(on_demand)
    assert len(runpod_api.calls("podRentInterruptable")) == 2


# --- the gate ----------------------------------------------------------------------------------------
def test_the_gate_prices_an_interruptible_run_at_the_spot_price_and_says_what_a_preemption_costs() -> None:
    from haha.check.estimate import estimate
    from test_check_cost import SETTINGS, config

    shape = {"micro_batch_size": 16, "sequence_len": 1024, "sample_packing": True, "num_epochs": 2}
    on_demand, _ = estimate(config(**shape), [1000] * 100, "cl100k_base", SETTINGS)
    spot, findings = estimate(config(**shape, haha={"interruptible": True}), [1000] * 100, "x", SETTINGS)
    h200 = SETTINGS.gpu()
    assert h200.spot_price_per_hour is not None
    assert spot.dollars == pytest.approx(on_demand.dollars * h200.spot_price_per_hour / h200.price_per_hour)
    (note,) = [f for f in findings if f.message.startswith("interruptible:")]
    assert "may preempt" in note.message and "1/10 of the training" in note.message
    assert note.severity.value == "notice"
    capped, _ = estimate(
        config(**shape, haha={"interruptible": True, "bid_per_gpu": 2.0}), [1000] * 100, "x", SETTINGS
    )
    assert capped.dollars == pytest.approx(on_demand.dollars * 2.0 / h200.price_per_hour)
