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


def tiny_config() -> dict:
    """The starter SmolLM2 config, shrunk to overfit ROWS rows fast."""
    config = yaml.safe_load((ROOT / "train/config/haha-smollm2-135m-lora-001.yml").read_text())
    config["datasets"][0]["path"] = "/workspace/data/tiny.jsonl"
    config.update(
        {
            "val_set_size": 0.0,
            "num_epochs": 12,
            "micro_batch_size": 4,
            "learning_rate": 0.003,
            "warmup_steps": 0,
            "lr_scheduler": "constant",
            "sequence_len": 96,
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "saves_per_epoch": None,
            "save_strategy": "no",
            "eval_strategy": "no",
            "evals_per_epoch": None,
        }
    )
    return {k: v for k, v in config.items() if v is not None}


def make_tiny_repo(root: Path) -> list[dict]:
    """A repo with one tiny config, ROWS training rows and an eval spec over those same setups."""
    for sub in ("train/config", "train/data", "train/eval", "train/results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    lines = (ROOT / "train/data/haha-v1.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if len(json.loads(line)["output"]) < 90][:ROWS]
    (root / "train/data/tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / f"train/config/{NAME}.yml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
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
