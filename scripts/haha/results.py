"""Results files: built in the seed's format, validated against the schema, written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from haha.atomic import write_json_atomic
from haha.evalspec import EvalSpec
from haha.evaluate.requests import EvalRequest
from haha.experiment import Experiment
from haha.schemas import validate

# The seed project's results carried these keys first; we keep their order, then add every other
# hyperparameter, so that two configs differing in any training choice differ here too.
# meta.schema_version of the files written now (schemas/results.schema.json; absent before it existed).
SCHEMA_VERSION = 1
STANDARD_KEYS = (
    "base_model",
    "adapter",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "sequence_len",
    "sample_packing",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "optimizer",
    "lr_scheduler",
    "learning_rate",
)
# Where files go and how runs are logged: not hyperparameters, identical across experiments.
NOT_HYPERPARAMETERS = frozenset(
    {
        "default_system_message",
        "output_dir",
        "dataset_prepared_path",
        "wandb_project",
        "wandb_entity",
        "wandb_watch",
        "wandb_name",
        "wandb_log_model",
        "wandb_run_id",
        "wandb_mode",
        "hub_model_id",
        "hub_strategy",
        "logging_steps",
        "save_steps",
        "saves_per_epoch",
        "save_strategy",
        "save_total_limit",
        "eval_steps",
        "evals_per_epoch",
        "eval_strategy",
        "debug",
        "strict",
        "early_stopping_patience",
    }
)


def config_summary(exp: Experiment) -> dict[str, Any]:
    """`config` of a results file: name, system message, then every hyperparameter of the experiment."""
    config = exp.config
    summary: dict[str, Any] = {"name": exp.basename, "default_system_message": exp.system_message}
    summary.update({k: config[k] for k in STANDARD_KEYS if config.get(k) is not None})
    summary.update(
        {
            k: v
            for k, v in sorted(config.items())
            if k not in summary and k not in NOT_HYPERPARAMETERS and v is not None
        }
    )
    return summary


def build_results(
    exp: Experiment,
    spec: EvalSpec,
    requests: Sequence[EvalRequest],
    completions: Sequence[str],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Nest completions as prompt → setting → seed, the order build_requests produced them in."""
    by_key = {
        (r.prompt_index, r.setting_index, r.seed): c for r, c in zip(requests, completions, strict=True)
    }
    results = [
        {
            "prompt": prompt,
            "settingsResults": [
                {**setting, "completions": [by_key[(p, s, seed)] for seed in spec.seeds]}
                for s, setting in enumerate(spec.settings)
            ],
        }
        for p, prompt in enumerate(spec.prompts)
    ]
    document: dict[str, Any] = {"config": config_summary(exp), "results": results}
    if meta is not None:
        document["meta"] = {"schema_version": SCHEMA_VERSION, **meta}
    return document


def write_results(document: dict[str, Any], path: Path) -> Path:
    """Validate, then write via a temp file + rename: readers never see half a file."""
    validate("results", document, file=path)
    return write_json_atomic(path, document)
