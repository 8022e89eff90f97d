"""Experiments the loop tests add: a tiny SmolLM2 LoRA that trains on CPU in about a minute."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from tiny_experiment import STARTER, short_rows, tiny_config

ROWS = 4


def experiment_files(name: str, dataset: str = "tiny.jsonl", **overrides: object) -> dict[str, str]:
    """The files a PR adds for experiment `name`: its config and its dataset."""
    config = tiny_config(dataset, num_epochs=2) | overrides
    rows = "".join(json.dumps(r) + "\n" for r in short_rows(ROWS))
    return {
        f"train/config/{name}.yml": yaml.safe_dump(config, sort_keys=False),
        f"train/data/{dataset}": rows,
    }


def small_eval(root: Path) -> None:
    """A base repo whose eval spec is 8 completions (the tiny model's eval on CPU in seconds).

    The starter config goes with it: its results were made with the full eval spec, so keeping them
    would plan an eval-only re-run of it beside the run under test.
    """
    rows = short_rows(4)
    spec = {
        "prompts": [r["instruction"] for r in rows],
        "settings": [{"temperature": 0.0, "max_tokens": 32}, {"temperature": 0.8, "max_tokens": 32}],
        "seedVariants": 1,
    }
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2) + "\n")
    (root / f"train/config/{STARTER}.yml").unlink()
    (root / f"train/results/{STARTER}.json").unlink()


def shared_pods(per_pod: int) -> Callable[[Path], None]:
    """A base repo prepared as `small_eval`, with `[compute] configs_per_pod = per_pod` in haha.toml."""

    def prepare(root: Path) -> None:
        small_eval(root)
        toml = root / "haha.toml"
        text = toml.read_text()
        assert "\nconfigs_per_pod = 1" in text, "haha.toml's [compute] lost its configs_per_pod line"
        toml.write_text(text.replace("\nconfigs_per_pod = 1", f"\nconfigs_per_pod = {per_pod}"))

    return prepare
