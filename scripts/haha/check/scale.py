"""The PR gate's view of scale: the `haha:` block, world size, global batch, GPU memory, sharding.

Everything here is a pure function of the config, the previous config of its series (parsed by the
gate), haha.toml and (for the repo's DeepSpeed files and pinned train set) files in the repo; nothing
is downloaded.

Memory model (per GPU, roughly; good to a factor of ~1.5, meant to catch "does not fit", not to
size a run to the last GiB):

- weights: params × bytes in the load precision (`load_in_4bit` 0.5, `load_in_8bit` 1, bf16/fp16 2,
  else fp32 4); sharded over the GPUs by ZeRO-3 and FSDP only;
- trainable state: LoRA params (scaled from Llama-3-8B, where r=32 on every linear layer is 84M params:
  params × r × 3.3e-4) or every param for a full finetune, at 16 bytes each (fp32 weight or master copy,
  fp32 gradient, two Adam moments; 8-bit optimizers 10 bytes); ZeRO-1 shards the optimizer part,
  ZeRO-2 the gradients too, ZeRO-3 and FSDP all of it;
- activations: tokens per micro-batch per GPU (micro_batch × sequence_len ÷ context_parallel_size) ×
  hidden × layers × 34 bytes without gradient checkpointing (Korthikanti et al. 2022, bf16, attention
  scores not stored as with SDPA/flash attention), or × 2 bytes per layer boundary plus one layer's
  34 bytes with it; hidden × layers come from the model's cached config.json, else from params by the
  fit hidden·layers ≈ 131072 × (params / 8.03e9)^0.74 (Llama-3-8B: 4096 × 32; Llama-3-70B: 8192 × 80);
- a fixed 2 GiB: CUDA context, allocator slack, logits.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from haha.check.params import _cached_config, estimate_params
from haha.experiment import ConfigName, Experiment, Resources, number_or
from haha.findings import Finding, Severity
from haha.settings import GpuType, Settings

GIB = 1024**3
TRAIN_REQUIREMENTS = Path("requirements") / "train-cuda.txt"  # what the pod image trains with
LORA_PARAMS_PER_RANK = 84e6 / 32 / 8.03e9  # Llama-3-8B, r=32, all linear layers: 84M trainable
STATE_BYTES = 16  # per trainable param: fp32 weight/master 4 + gradient 4 + Adam moments 8
STATE_BYTES_8BIT = 10  # Adam moments in 8 bits: 4 + 4 + 2
ACTIVATION_BYTES = 34  # per token, per hidden unit, per layer (bf16), without checkpointing
CHECKPOINT_BYTES = 2  # per token, per hidden unit, per layer boundary, with gradient checkpointing
FIXED_GIB = 2.0
_ZERO = re.compile(r"zero[_-]?(\d)", re.IGNORECASE)


def _finding(exp: Experiment, severity: Severity, message: str, field: str, fix: str) -> Finding:
    return Finding.from_error(exp.fail(message, field, fix), severity)


# --- the block and the world ----------------------------------------------------------------------
def resources_or_default(exp: Experiment, settings: Settings) -> Resources:
    """The block's resources, or haha.toml's defaults where the block is invalid (reported apart)."""
    if exp.block_problems(settings):
        return Resources(settings.compute.gpu_count, tuple(g.id for g in settings.compute.gpu_types))
    return exp.resources(settings)


@dataclass(frozen=True)
class World:
    """How many processes train and how many rows one optimizer step sees."""

    gpus: int
    micro_batch_size: int
    gradient_accumulation_steps: int
    context_parallel_size: int

    @property
    def data_parallel(self) -> int:
        """Replicas that each see different rows: GPUs ÷ context_parallel_size (ranks of a CP group
        share the same rows, each holding a slice of the sequence)."""
        return max(self.gpus // self.context_parallel_size, 1)

    @property
    def global_batch(self) -> int:
        """Rows per optimizer step: micro_batch × grad_accum × GPUs ÷ context_parallel_size."""
        return self.micro_batch_size * self.gradient_accumulation_steps * self.data_parallel

    def describe(self) -> str:
        cp = f" ÷ {self.context_parallel_size} (context parallel)" if self.context_parallel_size > 1 else ""
        return (
            f"{self.micro_batch_size} × {self.gradient_accumulation_steps} × {self.gpus} GPU"
            f"{'s' if self.gpus != 1 else ''}{cp}"
        )


def world_of(exp: Experiment, gpus: int) -> World:
    c = exp.config
    return World(
        gpus=gpus,
        # At least 1 here: values below are errors of their own (check/values.py), not a division by 0.
        micro_batch_size=max(int(number_or(c.get("micro_batch_size"), 1)), 1),
        gradient_accumulation_steps=max(int(number_or(c.get("gradient_accumulation_steps"), 1)), 1),
        context_parallel_size=max(int(number_or(c.get("context_parallel_size"), 1)), 1),
    )


# --- sharding ---------------------------------------------------------------------------------------
def fsdp_set(config: dict[str, Any]) -> bool:
    return bool(config.get("fsdp") or config.get("fsdp_config") or config.get("fsdp_version"))


def zero_stage(config: dict[str, Any], root: Path | None) -> int | None:
    """The DeepSpeed ZeRO stage: from the JSON (inline or the repo's file), else the file's name."""
    value = config.get("deepspeed")
    data: Any = value if isinstance(value, dict) else None
    if isinstance(value, str) and root is not None and (root / value).is_file():
        try:
            data = json.loads((root / value).read_text())
        except (OSError, ValueError):
            data = None
    if isinstance(data, dict):
        stage = (data.get("zero_optimization") or {}).get("stage")
        if isinstance(stage, int):
            return stage
    if isinstance(value, str) and (m := _ZERO.search(PurePosixPath(value).name)):
        return int(m[1])
    return None


@dataclass(frozen=True)
class Sharding:
    """Which parts of the training state are split over the GPUs (divided by `ways`)."""

    weights: bool
    gradients: bool
    optimizer: bool
    ways: int

    @classmethod
    def of(cls, config: dict[str, Any], root: Path | None, gpus: int) -> Sharding:
        if fsdp_set(config):
            return cls(True, True, True, gpus)
        stage = zero_stage(config, root) if config.get("deepspeed") else None
        stage = stage or 0
        return cls(stage >= 3, stage >= 2, stage >= 1, gpus)


# --- memory -----------------------------------------------------------------------------------------
def load_bytes(config: dict[str, Any]) -> float:
    """Bytes per weight as loaded: 4-bit 0.5, 8-bit 1, bf16/fp16 2, else fp32 4."""
    if config.get("load_in_4bit") is True or config.get("adapter") == "qlora":
        return 0.5
    if config.get("load_in_8bit") is True:
        return 1.0
    if config.get("bf16") in (True, "auto") or config.get("fp16") is True:
        return 2.0
    return 4.0


def hidden_layers(base_model: str, params: float) -> tuple[float, float]:
    """(hidden_size × num_hidden_layers, num_hidden_layers): the cached config.json, else the fit."""
    cached = _cached_config(base_model) if base_model else None
    hidden, layers = (cached or {}).get("hidden_size"), (cached or {}).get("num_hidden_layers")
    if isinstance(hidden, int) and isinstance(layers, int) and layers > 0:
        return float(hidden * layers), float(layers)
    scale = params / 8.03e9
    return 131072 * scale**0.74, max(32 * scale**0.3, 1.0)


@dataclass(frozen=True)
class Memory:
    """Predicted GiB per GPU, by part."""

    weights: float
    trainable_state: float
    activations: float
    fixed: float = FIXED_GIB

    @property
    def total(self) -> float:
        return self.weights + self.trainable_state + self.activations + self.fixed


def trainable_params(config: dict[str, Any], params: float) -> float:
    """LoRA/QLoRA: params × r × LORA_PARAMS_PER_RANK; no adapter: every parameter (full finetune)."""
    if config.get("adapter") in ("lora", "qlora"):
        rank = number_or(config.get("lora_r"), 8)
        return params * rank * LORA_PARAMS_PER_RANK
    return params


def memory_per_gpu(exp: Experiment, params: float, world: World, sharding: Sharding) -> Memory:
    """The memory model of the module docstring, for one GPU."""
    c = exp.config
    weights = params * load_bytes(c) / (sharding.ways if sharding.weights else 1)
    trainable = trainable_params(c, params)
    moments = (STATE_BYTES_8BIT if "8bit" in str(c.get("optimizer") or "") else STATE_BYTES) - 8
    state = (
        trainable * 4 / (sharding.ways if sharding.weights else 1)  # fp32 LoRA weights / master copy
        + trainable * 4 / (sharding.ways if sharding.gradients else 1)  # fp32 gradients
        + trainable * moments / (sharding.ways if sharding.optimizer else 1)  # Adam moments
    )
    tokens = world.micro_batch_size * number_or(c.get("sequence_len"), 512) / world.context_parallel_size
    hl, layers = hidden_layers(exp.base_model, params)
    if c.get("gradient_checkpointing"):
        activations = tokens * hl * CHECKPOINT_BYTES + tokens * (hl / layers) * ACTIVATION_BYTES
    else:
        activations = tokens * hl * ACTIVATION_BYTES
    return Memory(weights / GIB, state / GIB, activations / GIB)


def eval_weights_gib(params: float) -> float:
    """What the one eval GPU holds before any KV cache: the base weights in bf16."""
    return params * 2 / GIB


# --- the checks -------------------------------------------------------------------------------------
def check_block(exp: Experiment, settings: Settings) -> list[Finding]:
    return [Finding.from_error(problem) for problem in exp.block_problems(settings)]


def check_sharding(exp: Experiment, root: Path | None, gpus: int) -> list[Finding]:
    """DeepSpeed or FSDP, not both; referenced DeepSpeed files exist in the repo and in the image."""
    c = exp.config
    findings = []
    if c.get("deepspeed") and fsdp_set(c):
        findings.append(
            _finding(
                exp,
                Severity.ERROR,
                "deepspeed and fsdp are both set: Axolotl shards with one or the other",
                "deepspeed",
                "keep one: remove deepspeed, or remove fsdp/fsdp_config/fsdp_version",
            )
        )
    ds = c.get("deepspeed")
    if isinstance(ds, str) and root is not None:
        path = PurePosixPath(ds)
        if path.is_absolute() or ".." in path.parts:
            findings.append(
                _finding(
                    exp,
                    Severity.ERROR,
                    f"deepspeed {ds!r} must be a path relative to the repo root",
                    "deepspeed",
                    "commit the JSON (e.g. deepspeed_configs/zero2.json) and reference it by that path",
                )
            )
        elif not (root / ds).is_file():
            findings.append(
                _finding(
                    exp,
                    Severity.ERROR,
                    f"deepspeed config {ds} does not exist in the repo",
                    "deepspeed",
                    f"commit it as {ds} (Axolotl's are in its repository's deepspeed_configs/; "
                    "its wheel does not install them)",
                )
            )
    if ds and root is not None and (root / TRAIN_REQUIREMENTS).is_file():
        pinned = (root / TRAIN_REQUIREMENTS).read_text()
        if not re.search(r"^deepspeed==", pinned, re.MULTILINE):
            findings.append(
                _finding(
                    exp,
                    Severity.ERROR,
                    f"deepspeed is set but the pod image has no DeepSpeed (no pin in {TRAIN_REQUIREMENTS})",
                    "deepspeed",
                    "use fsdp_version: 2 with fsdp_config (in torch, nothing to install), or add deepspeed "
                    "to the train-cuda extra in pyproject.toml and run make lock",
                )
            )
    cp = max(int(number_or(c.get("context_parallel_size"), 1)), 1)
    if gpus % cp:
        findings.append(
            _finding(
                exp,
                Severity.ERROR,
                f"context_parallel_size {cp} does not divide the {gpus} GPUs of haha.gpus",
                "context_parallel_size",
                f"set haha.gpus to a multiple of {cp}, or context_parallel_size to a divisor of {gpus}",
            )
        )
    if gpus > 1 and not ds and not fsdp_set(c) and trainable_params(c, 1.0) >= 1.0:
        findings.append(
            _finding(
                exp,
                Severity.WARNING,
                f"a full finetune on {gpus} GPUs without DeepSpeed or FSDP keeps a whole copy of the "
                "weights, gradients and optimizer on every GPU",
                "adapter",
                "shard it: fsdp_version: 2 with fsdp_config, or a ZeRO-2/3 DeepSpeed config",
            )
        )
    return findings


def previous_in_series(exp: Experiment, configs: list[Path]) -> Path | None:
    """The highest-numbered config of the same series below this one."""
    name = exp.config_name
    if name is None:
        return None
    earlier = []
    for path in configs:
        other = ConfigName.parse(path.stem) if path.suffix == ".yml" else None
        if other and other.series == name.series and other.number < name.number:
            earlier.append((other.number, path))
    return max(earlier)[1] if earlier else None


def check_global_batch(
    exp: Experiment, settings: Settings, previous: Experiment | None, world: World
) -> list[Finding]:
    """A warning when the rows per optimizer step differ from the previous config of the series."""
    if previous is None:
        return []
    before = world_of(previous, resources_or_default(previous, settings).gpus)
    if before.global_batch == world.global_batch:
        return []
    target = before.global_batch
    accum, rem = divmod(target, world.micro_batch_size * world.data_parallel)
    micro, rem_micro = divmod(target, world.gradient_accumulation_steps * world.data_parallel)
    if accum >= 1 and not rem:
        fix = f"set gradient_accumulation_steps: {accum} to keep {target}"
    elif micro >= 1 and not rem_micro:
        fix = f"set micro_batch_size: {micro} to keep {target}"
    else:
        fix = "adjust learning_rate (and warmup) for the new batch, or match the old global batch"
    field = (
        "haha.gpus" if before.gpus != world.gpus and exp.line("haha.gpus") else "gradient_accumulation_steps"
    )
    return [
        _finding(
            exp,
            Severity.WARNING,
            f"global batch is {world.global_batch} rows per step ({world.describe()}); "
            f"{previous.basename} had {before.global_batch} ({before.describe()}): "
            "the learning rate and schedule were tuned for the old batch",
            field,
            fix,
        )
    ]


@dataclass(frozen=True)
class ScaleView:
    """What the cost table shows about scale for one config."""

    gpus: int
    gpu_types: tuple[str, ...]
    global_batch: int
    memory_gib: float | None  # predicted per GPU
    gpu_memory_gib: float | None  # of the smallest GPU type the pod may get


def check_memory(
    exp: Experiment, settings: Settings, world: World, sharding: Sharding, gpus: list[GpuType]
) -> tuple[float | None, list[Finding]]:
    """Predicted GiB per GPU against the smallest GPU type in the fallback list."""
    params, _ = estimate_params(exp.base_model)
    if params is None or not gpus:
        return None, []
    memory = memory_per_gpu(exp, params, world, sharding)
    smallest = min(gpus, key=lambda g: g.memory_gb)
    capacity = smallest.memory_gb * 1e9 / GIB  # datasheet GB → GiB
    findings = []
    parts = (
        f"weights {memory.weights:.1f} + trainable state {memory.trainable_state:.1f} + activations "
        f"{memory.activations:.1f} + {memory.fixed:.0f} fixed"
    )
    if memory.weights + memory.fixed > capacity:
        severity = Severity.ERROR
    elif memory.total > capacity:
        severity = Severity.WARNING
    else:
        severity = None
    if severity is not None:
        findings.append(
            _finding(
                exp,
                severity,
                f"predicted {memory.total:.0f} GiB per GPU ({parts}) is more than {smallest.id}'s "
                f"{capacity:.0f} GiB",
                "haha.gpus" if exp.line("haha.gpus") else "base_model",
                "shard over more GPUs (haha.gpus with fsdp_version: 2 or ZeRO-3), load in 4 bits "
                "(adapter: qlora), set gradient_checkpointing: true, or lower micro_batch_size/sequence_len",
            )
        )
    eval_gib = eval_weights_gib(params)
    if eval_gib + FIXED_GIB > capacity:
        findings.append(
            _finding(
                exp,
                Severity.WARNING,
                f"eval runs on one GPU and the bf16 weights alone ({eval_gib:.0f} GiB) do not fit "
                f"{smallest.id} ({capacity:.0f} GiB); tensor parallel eval is not used (it breaks seed "
                "reproducibility in vLLM)",
                "base_model",
                "list only GPU types with more memory in haha.gpu_types",
            )
        )
    return memory.total, findings


def check_scale(
    exp: Experiment, settings: Settings, root: Path | None, previous: Experiment | None = None
) -> tuple[ScaleView, list[Finding]]:
    """Every scale rule for one config, and what the cost table shows about it; `previous` is the
    config before it in its series (previous_in_series), already parsed by the caller."""
    findings = check_block(exp, settings)
    res = resources_or_default(exp, settings)
    world = world_of(exp, res.gpus)
    findings += check_sharding(exp, root, res.gpus)
    findings += check_global_batch(exp, settings, previous, world)
    types = [g for g in settings.compute.gpu_types if g.id in res.gpu_types]
    memory, found = check_memory(exp, settings, world, Sharding.of(exp.config, root, res.gpus), types)
    findings += found
    smallest = min((g.memory_gb for g in types), default=None)
    view = ScaleView(
        res.gpus,
        res.gpu_types,
        world.global_batch,
        memory,
        None if smallest is None else smallest * 1e9 / GIB,
    )
    return view, findings


def scaling_note(gpus: int) -> str:
    from haha.check.cost import SCALING_PER_DOUBLING, scaling_efficiency

    if gpus == 1:
        return ""
    return (
        f"{gpus} GPUs at {scaling_efficiency(gpus):.0%} data-parallel efficiency "
        f"({SCALING_PER_DOUBLING:.0%} per doubling, log2({gpus}) = {math.log2(gpus):.1f} doublings)"
    )
