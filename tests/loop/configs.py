"""Experiments the loop tests add: a tiny SmolLM2 LoRA that trains on CPU in about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STARTER = "haha-smollm2-135m-lora-001"
ROWS = 4


def tiny_rows() -> list[dict]:
    lines = (ROOT / "train/data/haha-v1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if len(json.loads(line)["output"]) < 90][:ROWS]


def tiny_config(dataset: str = "tiny.jsonl") -> dict:
    """The starter SmolLM2 config, shrunk to memorise ROWS rows fast (as tests/run_fixtures.py)."""
    config = yaml.safe_load((ROOT / f"train/config/{STARTER}.yml").read_text())
    config["datasets"][0]["path"] = f"/workspace/data/{dataset}"
    config.update(
        {
            "val_set_size": 0.0,
            "num_epochs": 2,
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
        }
    )
    return {k: v for k, v in config.items() if v is not None}


def experiment_files(name: str, dataset: str = "tiny.jsonl", **overrides: object) -> dict[str, str]:
    """The files a PR adds for experiment `name`: its config and its dataset."""
    config = tiny_config(dataset) | overrides
    rows = "".join(json.dumps(r) + "\n" for r in tiny_rows())
    return {
        f"train/config/{name}.yml": yaml.safe_dump(config, sort_keys=False),
        f"train/data/{dataset}": rows,
    }


def small_eval(root: Path) -> None:
    """A base repo whose eval spec is 8 completions (the tiny model's eval on CPU in seconds).

    The starter config goes with it: its results were made with the full eval spec, so keeping them
    would plan an eval-only re-run of it beside the run under test.
    """
    rows = tiny_rows()[:4]
    spec = {
        "prompts": [r["instruction"] for r in rows],
        "settings": [{"temperature": 0.0, "max_tokens": 32}, {"temperature": 0.8, "max_tokens": 32}],
        "seedVariants": 1,
    }
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2) + "\n")
    (root / f"train/config/{STARTER}.yml").unlink()
    (root / f"train/results/{STARTER}.json").unlink()
