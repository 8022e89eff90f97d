"""Checkpoints and resume with real Axolotl: a run on an "interruptible pod" uploads its checkpoints to the
store and records the last one in its status; a resumed run downloads it and Axolotl continues from
that step (its progress bar starts there), in the same W&B run, and the results record the resume.

`haha run` is what a pod's child runs; the pod's environment (HAHA_INTERRUPTIBLE, HAHA_RESUME,
HAHA_PREEMPTIONS) and the status its `haha pod` writes first are given as the pod would have them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from haha.repo import Repo
from haha.run import run_experiment
from haha.runstatus import read_status, write_status
from haha.settings import load_settings
from haha.store.local import LocalStore
from run_fixtures import NAME, make_tiny_repo

pytestmark = pytest.mark.slow
STEPS = 6  # 8 rows, micro_batch 4: two steps an epoch, three epochs
_BAR = re.compile(rf"\|\s*(\d+)/{STEPS} \[")


def small_repo(root: Path) -> None:
    """The tiny repo, trained three epochs, checkpointing every two steps, a two-completion eval."""
    make_tiny_repo(root)
    path = root / f"train/config/{NAME}.yml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | {"num_epochs": 3}, sort_keys=False))
    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec |= {"prompts": spec["prompts"][:2], "settings": spec["settings"][:1], "seedVariants": 1}
    (root / "train/eval/eval.json").write_text(json.dumps(spec))
    toml = root / "haha.toml"
    toml.write_text(re.sub(r"(?m)^checkpoints_per_run = .*$", "checkpoints_per_run = 3", toml.read_text()))


def run(root: Path, **pod: str) -> tuple[list[str], dict]:
    env = {"HAHA_WORKDIR": str(root / "work"), "PATH": "/usr/bin:/bin", **pod}
    env |= {k: v for k, v in os.environ.items() if k.startswith(("HF_", "HOME", "XDG_"))}
    log: list[str] = []
    run_experiment(Repo(root), load_settings(root, env), NAME, log.append, engine="transformers")
    return log, json.loads((root / f"train/results/{NAME}.json").read_text())


def test_a_run_checkpoints_to_the_store_and_a_resumed_run_continues_from_there(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    small_repo(root)
    store = LocalStore(root / ".haha/store")

    log, first = run(root, HAHA_INTERRUPTIBLE="1")
    # Each checkpoint went up while training ran (outside a pod the run's end then replaces the status).
    uploaded = [int(s) for s in re.findall(r"checkpoint: step (\d+) uploaded", "\n".join(log))]
    assert uploaded and uploaded == sorted(set(uploaded)) and set(uploaded) <= {2, 4, 6}, log
    stored = root / ".haha/store" / NAME / "checkpoint"
    assert json.loads((stored / "trainer_state.json").read_text())["global_step"] == uploaded[-1]
    assert (stored / "adapter_model.safetensors").is_file() and (stored / "optimizer.pt").is_file()
    status = read_status(store, NAME)
    assert status is not None

    # A new pod: an empty disk, the store's checkpoint at step 4 (save_total_limit 2 kept 4 and 6),
    # and the status its `haha pod` wrote (haha.resume.carried).
    shutil.rmtree(stored)
    shutil.copytree(root / "work" / NAME / "output" / "checkpoint-4", stored)
    run_id = first["meta"]["wandb"]["run_id"]
    carried = {"checkpoint_step": 4, "preemptions": 1, "steps_repeated": 1, "wandb_run_id": run_id}
    write_status(store, NAME, replace(status, state="running", **carried))
    shutil.rmtree(root / "work")
    (root / f"train/results/{NAME}.json").unlink()
    log, second = run(root, HAHA_RESUME="1", HAHA_PREEMPTIONS="1")

    assert "train: resuming from checkpoint-4 (step 4, downloaded from the store)" in log
    bars = [
        int(s) for s in _BAR.findall((root / "work" / NAME / "train.log").read_text().replace("\r", "\n"))
    ]
    # The bar opens at 0/6, then jumps to the checkpoint: steps 1-4 are not trained again.
    assert bars and not set(bars) & {1, 2, 3, 4} and max(bars) == STEPS, bars
    resumed = second["meta"]["resumed"]
    assert (resumed["count"], resumed["from_step"], resumed["steps_repeated"]) == (1, 4, 1)
    assert resumed["seconds_lost"] > 1  # one step at this run's pace (load and eval not counted out)
    assert second["meta"]["wandb"]["run_id"] == run_id
    assert "resumed" not in first["meta"]
