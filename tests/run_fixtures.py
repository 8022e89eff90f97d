"""A real, tiny training run shared by the run-stage tests: SmolLM2 + LoRA overfit on 8 rows.

Real Axolotl on CPU, real eval engine. The dataset is small enough to memorise in about a minute,
which makes the run a smoke test of the whole train → eval path (see test_overfit_reproduces_data).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from haha.repo import Repo
from haha.run import RunSummary, run_experiment
from haha.settings import Settings, load_settings
from tiny_experiment import short_rows, tiny_config

ROOT = Path(__file__).resolve().parents[1]
NAME = "haha-tiny-001"
ROWS = 8


@dataclass
class TrainedRepo:
    repo: Repo
    settings: Settings
    env: dict[str, str]
    summary: RunSummary
    rows: list[dict]
    log: list[str]


def make_tiny_repo(root: Path) -> list[dict]:
    """A repo with one tiny config, ROWS training rows and an eval spec over those same setups."""
    for sub in ("train/config", "train/data", "train/eval", "train/results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    rows = short_rows(ROWS)
    (root / "train/data/tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_config(num_epochs=12, lora_r=16, lora_alpha=32)  # epochs enough to overfit ROWS rows
    (root / f"train/config/{NAME}.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    spec = {
        "prompts": [r["instruction"] for r in rows],
        "settings": [{"temperature": 0.0, "max_tokens": 40}, {"temperature": 0.8, "max_tokens": 40}],
        "seedVariants": 2,
    }
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))
    return rows


def train_tiny(root: Path) -> TrainedRepo:
    rows = make_tiny_repo(root)
    # HAHA_BOOT_EPOCH as boot.sh exports it in a pod: the run then records boot → first training step.
    env = {
        "HAHA_WORKDIR": str(root / "work"),
        "PATH": "/usr/bin:/bin",
        "HAHA_BOOT_EPOCH": f"{time.time():.3f}",
    }
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("HF_", "HOME", "XDG_"))})
    repo = Repo(root)
    settings = load_settings(root, env)
    log: list[str] = []
    summary = run_experiment(repo, settings, NAME, log.append, engine="transformers")
    return TrainedRepo(repo, settings, env, summary, rows, log)
