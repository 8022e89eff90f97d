"""The tiny experiment the run-stage and loop tests train: the starter SmolLM2 LoRA config, shrunk to
memorise a few short rows of the starter dataset on CPU in about a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STARTER = "haha-smollm2-135m-lora-001"


def short_rows(count: int) -> list[dict]:
    """The first `count` rows of the starter dataset whose output is under 90 characters."""
    lines = (ROOT / "train/data/haha-v1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if len(json.loads(line)["output"]) < 90][:count]


def tiny_config(dataset: str = "tiny.jsonl", **changes: object) -> dict:
    """The starter config on `/workspace/data/<dataset>`: short sequences, a high constant learning
    rate, no validation, eval or checkpoints; `changes` on top. Keys set to None are dropped.
    """
    config = yaml.safe_load((ROOT / f"train/config/{STARTER}.yml").read_text())
    config["datasets"][0]["path"] = f"/workspace/data/{dataset}"
    config.update(
        {
            "val_set_size": 0.0,
            "micro_batch_size": 4,
            "learning_rate": 0.003,
            "warmup_steps": 0,
            "lr_scheduler": "constant",
            "sequence_len": 96,
            "lora_dropout": 0.0,
            "saves_per_epoch": None,
            "save_strategy": "no",
            "eval_strategy": "no",
            "evals_per_epoch": None,
            **changes,
        }
    )
    return {k: v for k, v in config.items() if v is not None}
