"""Two training processes on CPU through the launcher the pod uses, against one process.

The same tiny config trains twice through `haha run`: once as is (one process, `python -m
axolotl.cli.train`) and once with `haha: {gpus: 2}` (Axolotl's `axolotl train --launcher torchrun --
--nproc_per_node 2`, gloo on CPU). Real Axolotl, real DDP, real eval; nothing of ours is replaced.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from haha.repo import Repo
from haha.run import run_experiment
from haha.settings import load_settings
from haha.train import CPU_DDP_PLUGIN
from run_fixtures import NAME, make_tiny_repo

pytestmark = pytest.mark.slow

TWO = "haha-tiny-002"
_BAR = re.compile(r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[", re.MULTILINE)  # the Trainer's: no label


def shape(value: Any) -> Any:
    """The structure of a JSON document: keys and nesting, with leaves replaced by their type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return (
        "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    )


def steps_in(log_file: Path) -> int:
    """Training steps from the Trainer's progress bar (dataset and weight-loading bars have a label)."""
    return max(int(m.group(2)) for m in _BAR.finditer(log_file.read_text().replace("\r", "\n")))


def _tiny_two_configs(root: Path) -> None:
    make_tiny_repo(root)
    path = root / f"train/config/{NAME}.yml"
    config = yaml.safe_load(path.read_text())
    config.update({"num_epochs": 1, "logging_steps": 1})  # 8 rows, micro_batch 4: 2 steps on 1 process
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    (root / f"train/config/{TWO}.yml").write_text(
        yaml.safe_dump({**config, "haha": {"gpus": 2}}, sort_keys=False)
    )
    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec.update({"prompts": spec["prompts"][:2], "seedVariants": 1})
    spec["settings"] = [{"temperature": 0.8, "max_tokens": 4}]
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))


def test_two_processes_train_and_give_results_shaped_like_one(tmp_path: Path) -> None:
    _tiny_two_configs(tmp_path)
    env = {"HAHA_WORKDIR": str(tmp_path / "work"), "PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("HF_", "HOME", "XDG_"))})
    repo, settings = Repo(tmp_path), load_settings(tmp_path, env)

    one_log: list[str] = []
    run_experiment(repo, settings, NAME, one_log.append, engine="transformers", publish=False)
    two_log: list[str] = []
    started = time.monotonic()
    run_experiment(repo, settings, TWO, two_log.append, engine="transformers", publish=False)
    print(f"two-process run (train + eval): {time.monotonic() - started:.0f} s")

    one = json.loads(repo.results_path(NAME).read_text())
    two = json.loads(repo.results_path(TWO).read_text())
    assert shape(two["results"]) == shape(one["results"])
    assert shape({**two["config"], "name": ""}) == shape({**one["config"], "name": ""})
    assert "haha" not in two["config"]
    assert set(two["meta"]) == set(one["meta"])
    assert two["meta"]["tokens_trained"]

    assert any("2 processes through Axolotl's torchrun launcher" in line for line in two_log)
    assert not any("processes through" in line for line in one_log)
    assert two["meta"]["cpu_overrides"]["plugins"] == [None, [CPU_DDP_PLUGIN]]
    assert "plugins" not in one["meta"]["cpu_overrides"]
    # Axolotl never sees the haha: block.
    assert "haha" not in yaml.safe_load((tmp_path / "work" / TWO / "axolotl.yml").read_text())
    # Data parallel for real: each rank takes half of the 8 rows, so one epoch is half the steps.
    assert steps_in(tmp_path / "work" / NAME / "train.log") == 2
    assert steps_in(tmp_path / "work" / TWO / "train.log") == 1
    assert json.loads((tmp_path / "work" / TWO / "train.json").read_text())["processes"] == 2
