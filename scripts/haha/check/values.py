"""Values a config's types allow but no run can use: caught here, not hours into a paid pod.

Three layers on top of Axolotl's generated JSON Schema (which knows types, not ranges):
- every number finite, and each key Haha's pipeline reads within its range (`RANGES`);
- `trust_remote_code` nowhere (top level or inside a dataset entry: Axolotl passes both to
  transformers, which then runs code from the model or dataset repo on the pod);
- the Axolotl 0.19.0 pydantic validators that need no GPU and no download, restated as rules
  (the gate runs in the light `gate` set, without Axolotl), each citing the validator it mirrors.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from haha.check.params import context_length
from haha.experiment import Experiment, as_number
from haha.findings import Finding

REMOTE_CODE_KEY = "trust_remote_code"
# pydantic's lax bool: these strings and numbers read as true (pydantic docs, "Boolean" conversions).
_TRUE = {True, "1", "true", "True", "TRUE", "yes", "Yes", "on", "On", "t", "y"}


@dataclass(frozen=True)
class Range:
    """Where a numeric key is usable: whole numbers only when `whole`, above `low` (or at least it
    when `low_inclusive`), at most `high` when given (or below it when not `high_inclusive`)."""

    low: float
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True
    whole: bool = False

    def allows(self, number: float) -> bool:
        if self.whole and not number.is_integer():
            return False
        above = number >= self.low if self.low_inclusive else number > self.low
        if self.high is None:
            return above
        return above and (number <= self.high if self.high_inclusive else number < self.high)

    def describe(self) -> str:
        low = f"{'≥' if self.low_inclusive else '>'} {self.low:g}"
        high = "" if self.high is None else f" and {'≤' if self.high_inclusive else '<'} {self.high:g}"
        return f"{'a whole number ' if self.whole else ''}{low}{high}"


# Upper bounds are far above any run on one 8-GPU pod; they keep typos (an extra 000) out of the estimate.
RANGES: dict[str, Range] = {
    "micro_batch_size": Range(1, high=4096, whole=True),
    "gradient_accumulation_steps": Range(1, high=65536, whole=True),
    "eval_batch_size": Range(1, high=4096, whole=True),
    "sequence_len": Range(1, whole=True),  # the model's context bounds it (check/estimate.py)
    "num_epochs": Range(0, low_inclusive=False),  # the pod deadline bounds it (check/estimate.py)
    "max_steps": Range(1, whole=True),
    "learning_rate": Range(0, low_inclusive=False, high=1),
    "lora_r": Range(1, high=4096, whole=True),
    "lora_alpha": Range(0, low_inclusive=False),
    "lora_dropout": Range(0, high=1, high_inclusive=False),
    "val_set_size": Range(0),  # a fraction below 1, or a row count
    "warmup_steps": Range(0, whole=True),
    "warmup_ratio": Range(0, high=1, high_inclusive=False),
    "weight_decay": Range(0),
    "max_grad_norm": Range(0),
    "logging_steps": Range(1, whole=True),
    "evals_per_epoch": Range(1, whole=True),
    "saves_per_epoch": Range(1, whole=True),
    "context_parallel_size": Range(1, high=8, whole=True),
    "seed": Range(0, whole=True),
}


def _error(exp: Experiment, message: str, field: str, fix: str) -> Finding:
    return Finding.from_error(exp.fail(message, field, fix))


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) below `value`, mappings and lists included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}.{i}" if path else str(i))


def check_finite(exp: Experiment) -> list[Finding]:
    """nan and inf (`.nan`, `.inf` in YAML) anywhere: no optimizer step survives them."""
    return [
        _error(exp, f"{path} is {value}: numbers must be finite", path, f"set {path} to a finite number")
        for path, value in _walk(exp.config, "")
        if isinstance(value, float) and not math.isfinite(value)
    ]


def check_ranges(exp: Experiment) -> list[Finding]:
    """Each key of RANGES that is set: a number (numeric strings count, as in pydantic) in range.

    Non-numbers are the schema's to report, except learning_rate, which Axolotl types `str | float`
    and converts with float() when training starts (AxolotlInputConfig.convert_learning_rate in
    axolotl/utils/schemas/training.py): "fast" passes the schema and fails on the pod.
    """
    findings = []
    for key, allowed in RANGES.items():
        value = exp.config.get(key)
        if value is None:
            continue
        number = as_number(value)
        if number is None and _overflows(value):
            findings.append(
                _error(
                    exp,
                    f"{key} is {str(value)[:40]}: not a usable number (infinite, or too large)",
                    key,
                    f"set {key} to {allowed.describe()}",
                )
            )
            continue
        if number is None:
            if key == "learning_rate" and isinstance(value, str):
                findings.append(
                    _error(
                        exp, f"learning_rate {value!r} is not a number", key, "write it like 2e-4 or 0.0002"
                    )
                )
            continue
        if not allowed.allows(number):
            findings.append(
                _error(
                    exp,
                    f"{key} is {value!r}; it must be {allowed.describe()}",
                    key,
                    f"set {key} to {allowed.describe()}",
                )
            )
    return findings


def _overflows(value: Any) -> bool:
    """An int beyond float range (10**400) or a string float() reads as inf/nan ("1e999")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    try:
        float(value)
    except OverflowError:
        return True
    except ValueError:
        return False
    return isinstance(value, str)  # parsed, yet as_number refused it: not finite


def check_remote_code(exp: Experiment) -> list[Finding]:
    """trust_remote_code set true at any depth: it runs the model's or dataset's repo code on the pod."""
    return [
        _error(
            exp,
            f"{path}: {value!r} would run code from the model or dataset repo on the pod",
            path,
            f"remove {path} or set it to false",
        )
        for path, value in _walk(exp.config, "")
        if path.rpartition(".")[2] == REMOTE_CODE_KEY and _truthy(value)
    ]


def _truthy(value: Any) -> bool:
    return isinstance(value, bool | int | str) and value in _TRUE


DEEPSPEED_REFUSES = ("muon", "polora", "q_galore_adamw8bit")  # Axolotl 0.19.0's optimizers without ZeRO


def check_axolotl_validators(exp: Experiment) -> list[Finding]:
    """Axolotl's own model validators that fail at load time, restated so the PR gate sees them."""
    c = exp.config
    adapter = c.get("adapter")
    four, eight = _truthy(c.get("load_in_4bit")), _truthy(c.get("load_in_8bit"))
    findings = []
    # axolotl/utils/schemas/peft.py, LoraConfig.validate_adapter (mode="before")
    if not adapter and not _truthy(c.get("inference")) and (four or eight):
        key = "load_in_4bit" if four else "load_in_8bit"
        findings.append(
            _error(
                exp,
                f"{key} without an adapter: Axolotl refuses quantized full finetunes",
                key,
                "set adapter: qlora (with load_in_4bit) or lora, or turn load_in_4bit/load_in_8bit off",
            )
        )
    # axolotl/utils/schemas/peft.py, LoraConfig.validate_qlora (mode="after")
    if adapter == "qlora" and not _truthy(c.get("merge_lora")):
        if eight:
            findings.append(
                _error(exp, "adapter qlora cannot load in 8 bits", "load_in_8bit", "set load_in_8bit: false")
            )
        if not four:
            findings.append(
                _error(
                    exp,
                    "adapter qlora needs load_in_4bit: true (Axolotl refuses it at load time)",
                    "adapter",
                    "set load_in_4bit: true, or use adapter: lora",
                )
            )
    # axolotl/utils/schemas/validation.py: check_muon_deepspeed_fsdp, check_polora, the q_galore_adamw8bit
    # check and check_ple_cpu_offload (all mode="before") refuse these beside any `deepspeed:`
    if c.get("deepspeed"):
        optimizer = str(c.get("optimizer") or "")
        key = "optimizer" if optimizer in DEEPSPEED_REFUSES else "ple_cpu_offload"
        if key == "optimizer" or _truthy(c.get("ple_cpu_offload")):
            findings.append(
                _error(
                    exp,
                    f"{key} {c.get(key)!r} is not compatible with DeepSpeed (Axolotl refuses it)",
                    key,
                    "use fsdp_version: 2 with fsdp_config instead of deepspeed, or another optimizer"
                    if key == "optimizer"
                    else "remove ple_cpu_offload, or shard without DeepSpeed",
                )
            )
    # axolotl/utils/schemas/validation.py, check_batch_size_fields (mode="before")
    if c.get("gradient_accumulation_steps") and c.get("batch_size"):
        findings.append(
            _error(
                exp,
                "gradient_accumulation_steps and batch_size are both set: Axolotl accepts only one",
                "batch_size",
                "remove batch_size (global batch: micro_batch_size × gradient_accumulation_steps × GPUs)",
            )
        )
    return findings


# RoPE scaling stretches a context by its factor; beyond this many times the model's context (or its
# scaled context) a sequence_len is a typo, not a choice.
CONTEXT_SLACK = 4


def check_context(exp: Experiment) -> list[Finding]:
    """sequence_len far above what the base model can attend to (when its context is known)."""
    context = context_length(exp.base_model)
    seq = as_number(exp.config.get("sequence_len"))
    if context is None or seq is None:
        return []
    rope = exp.config.get("rope_scaling")
    factor = as_number(rope.get("factor")) if isinstance(rope, dict) else None
    limit = context * max(factor or 1.0, 1.0) * CONTEXT_SLACK
    if seq <= limit:
        return []
    return [
        _error(
            exp,
            f"sequence_len {seq:,.0f} is far above {exp.base_model}'s context of {context:,} tokens",
            "sequence_len",
            f"set sequence_len to at most {context:,} (longer needs rope_scaling)",
        )
    ]


def check_values(exp: Experiment) -> list[Finding]:
    """Every value rule for one config."""
    return [
        *check_finite(exp),
        *check_ranges(exp),
        *check_context(exp),
        *check_remote_code(exp),
        *check_axolotl_validators(exp),
    ]
