"""Project rules for one config, on top of Axolotl's own schema."""

from __future__ import annotations

from pathlib import PurePosixPath

from haha.check.values import check_values
from haha.evaluate.vllm_limits import VLLM_LORA_RANKS
from haha.experiment import WORKSPACE, WORKSPACE_DATA, Experiment
from haha.findings import Finding, Severity
from haha.settings import Settings

VLLM_UNSUPPORTED_MODULES = {"embed_tokens", "lm_head"}


def _error(exp: Experiment, message: str, field: str, fix: str) -> Finding:
    return Finding.from_error(exp.fail(message, field, fix))


def _warning(exp: Experiment, message: str, field: str, fix: str) -> Finding:
    return Finding.from_error(exp.fail(message, field, fix), Severity.WARNING)


def check_wandb(exp: Experiment, settings: Settings) -> list[Finding]:
    """The pipeline names the W&B run after the config; the project is fixed."""
    findings = []
    if exp.config.get("wandb_project") != settings.wandb_project:
        findings.append(
            _error(
                exp,
                f"wandb_project must be {settings.wandb_project!r}",
                "wandb_project",
                f"set wandb_project: {settings.wandb_project}",
            )
        )
    if exp.config.get("wandb_name") not in (None, ""):
        findings.append(
            _error(
                exp,
                "wandb_name must be blank: the pipeline sets it to the config basename",
                "wandb_name",
                "leave it empty: `wandb_name:`",
            )
        )
    return findings


def check_prompt_format(exp: Experiment) -> list[Finding]:
    """ChatML and a system message: the eval builds its prompts from exactly these."""
    findings = []
    if exp.config.get("chat_template") != "chatml":
        findings.append(
            _error(
                exp,
                "chat_template must be chatml (models are trained and evaluated in ChatML)",
                "chat_template",
                "set chat_template: chatml",
            )
        )
    message = exp.config.get("default_system_message")
    if not isinstance(message, str) or not message.strip():
        findings.append(
            _error(
                exp,
                "default_system_message must be set: the eval uses it as the system prompt",
                "default_system_message",
                "set default_system_message: <your system prompt>",
            )
        )
    return findings


def check_safety(exp: Experiment) -> list[Finding]:
    """Outputs stay on the pod's workspace volume (remote code: check/values.py)."""
    findings = []
    out = exp.config.get("output_dir")
    path = PurePosixPath(out) if isinstance(out, str) else None
    if path is None or ".." in path.parts or not path.is_relative_to(WORKSPACE) or path == WORKSPACE:
        findings.append(
            _error(
                exp,
                f"output_dir must be a folder under {WORKSPACE}/",
                "output_dir",
                f"set output_dir: {WORKSPACE}/output",
            )
        )
    return findings


def check_datasets(exp: Experiment, data_files: set[str]) -> list[Finding]:
    """Each dataset path is /workspace/data/<file> and <file> exists in train/data/."""
    entries = exp.config.get("datasets")
    if not isinstance(entries, list) or not entries:
        return [
            _error(
                exp,
                "datasets must list at least one dataset",
                "datasets",
                f"add datasets: [{{path: {WORKSPACE_DATA}/<file>.jsonl, type: ...}}]",
            )
        ]
    with_path = {ref.index for ref in exp.datasets}
    findings = [
        _error(exp, "dataset entry has no path", f"datasets.{i}", f"add path: {WORKSPACE_DATA}/<file>.jsonl")
        for i in range(len(entries))
        if i not in with_path
    ]
    for ref in exp.datasets:
        field = f"datasets.{ref.index}.path"
        if problem := ref.problem():
            findings.append(
                _error(
                    exp,
                    f"dataset path {ref.workspace_path!r} {problem}",
                    field,
                    f"use {WORKSPACE_DATA}/<file> for a file committed in train/data/",
                )
            )
        elif ref.file_name not in data_files:
            findings.append(
                _error(
                    exp,
                    f"train/data/{ref.file_name} does not exist",
                    field,
                    f"commit the dataset as train/data/{ref.file_name} or fix the path",
                )
            )
    return findings


def check_vllm_compat(exp: Experiment) -> list[Finding]:
    """Choices that train fine but break the vLLM eval later."""
    findings = []
    modules = exp.config.get("lora_modules_to_save") or []
    blocked = sorted(VLLM_UNSUPPORTED_MODULES & set(modules if isinstance(modules, list) else []))
    if blocked:
        findings.append(
            _warning(
                exp,
                f"lora_modules_to_save with {', '.join(blocked)}: vLLM cannot load such an adapter unmerged",
                "lora_modules_to_save",
                "drop lora_modules_to_save (ChatML needs no new embeddings when the base "
                "tokenizer has the markers), or plan to merge the adapter before eval",
            )
        )
    rank = exp.config.get("lora_r")
    if isinstance(rank, int) and rank not in VLLM_LORA_RANKS:
        fitting = next((r for r in VLLM_LORA_RANKS if r >= rank), None)
        detail = (
            f"vLLM rounds max_lora_rank up to {fitting}, wasting memory"
            if fitting
            else f"above vLLM's maximum LoRA rank {VLLM_LORA_RANKS[-1]}: vLLM cannot serve it"
        )
        findings.append(
            _warning(
                exp,
                f"lora_r {rank} is not one of {', '.join(map(str, VLLM_LORA_RANKS))}: {detail}",
                "lora_r",
                "use lora_r from that list",
            )
        )
    return findings


ADAPTERS = ("lora", "qlora")


def check_trainable(exp: Experiment) -> list[Finding]:
    """An adapter Axolotl would not train here (ranges and the rest: check/values.py)."""
    findings = []
    adapter = exp.config.get("adapter")
    if adapter not in (None, "", *ADAPTERS):
        findings.append(
            _error(
                exp,
                f"adapter {adapter!r} is not one Axolotl trains here ({', '.join(ADAPTERS)})",
                "adapter",
                "set adapter: lora (or qlora with load_in_4bit: true)",
            )
        )
    return findings


def check_rules(exp: Experiment, settings: Settings, data_files: set[str]) -> list[Finding]:
    """Every project rule for one config."""
    return [
        *check_trainable(exp),
        *check_values(exp),
        *check_wandb(exp, settings),
        *check_prompt_format(exp),
        *check_safety(exp),
        *check_datasets(exp, data_files),
        *check_vllm_compat(exp),
    ]
