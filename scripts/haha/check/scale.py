"""The PR gate's view of scale: the `haha:` block, world size, global batch, GPU memory, sharding.

Everything here is a pure function of the config, the previous config of its series (parsed by the
gate), haha.toml and (for the repo's DeepSpeed files and pinned train set) files in the repo; nothing
is downloaded.

Memory model (per GPU, roughly; good to a factor of ~1.5, meant to catch "does not fit", not to
size a run to the last GiB):

- weights: params × bytes in the load precision (`load_in_4bit` 0.5, `load_in_8bit` 1, bf16/fp16 2,
  else fp32 4); sharded over every GPU of the run (all nodes) by ZeRO-3 and FSDP only;
- trainable state: LoRA params (scaled from Llama-3-8B, where r=32 on every linear layer is 84M params:
  params × r × 3.3e-4) or every param for a full finetune, at 16 bytes each (fp32 weight or master copy,
  fp32 gradient, two Adam moments; 8-bit optimizers 10 bytes). DeepSpeed ZeRO partitions it as its
  paper does (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
  Models", §5 and Fig. 1, https://arxiv.org/abs/1910.02054; DeepSpeed's docs,
  https://www.deepspeed.ai/tutorials/zero/): stage 1 (P_os) shards the optimizer state (master copy and
  moments), stage 2 (P_os+g) the gradients too, stage 3 (P_os+g+p) the parameters too, each over the
  data-parallel world; FSDP shards all of it. `offload_optimizer: {device: cpu}` (ZeRO-Offload, used by
  Axolotl's zero2.json) keeps the optimizer state in CPU memory, `offload_param` (stage 3) the weights;
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
from haha.experiment import NODE_GPUS, ConfigName, Experiment, Resources, number_or
from haha.findings import Finding, Severity
from haha.repo import read_bounded
from haha.schemas import refuse_constant
from haha.settings import GpuType, Settings
from haha.yamlfile import line_index

GIB = 1024**3
MAX_DEEPSPEED_BYTES = 256 * 1024  # Axolotl's ZeRO JSONs are ~1 KB; the same bound as a config
MAX_DEEPSPEED_DEPTH = 32
ZERO_STAGES = (0, 1, 2, 3)  # deepspeed.runtime.zero.config.ZeroStageEnum
TRAIN_REQUIREMENTS = Path("requirements") / "train-cuda.txt"  # what the pod image trains with
MAX_REQUIREMENTS_BYTES = 4 * 1024**2
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
    data: Any = deepspeed_json(config, root)
    if data:
        zero = data.get("zero_optimization")
        stage = zero.get("stage") if isinstance(zero, dict) else None
        if isinstance(stage, int):
            return stage
    if isinstance(value, str) and (m := _ZERO.search(PurePosixPath(value).name)):
        return int(m[1])
    return None


def deepspeed_json(config: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """The DeepSpeed JSON: inline, or the repo's file when it reads as a JSON object; else {}."""
    value = config.get("deepspeed")
    if isinstance(value, dict):
        return value
    path = PurePosixPath(value) if isinstance(value, str) else None
    if path is None or root is None or path.is_absolute() or ".." in path.parts:
        return {}  # only a file inside the repo is read (the gate refuses other paths)
    try:
        if not (root / path).is_file() or (root / path).stat().st_size > MAX_DEEPSPEED_BYTES:
            return {}
        data = json.loads((root / path).read_text(encoding="utf-8"), parse_constant=refuse_constant)
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _offloaded(zero: dict[str, Any], key: str) -> bool:
    """`offload_optimizer` / `offload_param` with a device other than "none" (DeepSpeed's default)."""
    part = zero.get(key)
    return isinstance(part, dict) and str(part.get("device") or "none").lower() != "none"


@dataclass(frozen=True)
class Sharding:
    """Which parts of the training state are split over the GPUs (divided by `ways`, every GPU of
    the run: GPUs per node × nodes), and which ZeRO-Offload keeps in CPU memory instead."""

    weights: bool
    gradients: bool
    optimizer: bool
    ways: int
    optimizer_offloaded: bool = False
    weights_offloaded: bool = False

    @classmethod
    def of(cls, config: dict[str, Any], root: Path | None, gpus: int) -> Sharding:
        if fsdp_set(config):
            return cls(True, True, True, gpus)
        if not config.get("deepspeed"):
            return cls(False, False, False, gpus)
        stage = zero_stage(config, root) or 0
        zero = deepspeed_json(config, root).get("zero_optimization")
        zero = zero if isinstance(zero, dict) else {}
        return cls(
            stage >= 3,
            stage >= 2,
            stage >= 1,
            gpus,
            optimizer_offloaded=stage >= 1 and _offloaded(zero, "offload_optimizer"),
            weights_offloaded=stage >= 3 and _offloaded(zero, "offload_param"),
        )


# --- the DeepSpeed JSON -------------------------------------------------------------------------------
AXOLOTL_DS_DIR = "deepspeed_configs"  # Axolotl's ZeRO JSONs, committed here (deepspeed_configs/README.md)


def axolotl_ds_names(root: Path) -> str:
    names = sorted(p.name for p in (root / AXOLOTL_DS_DIR).glob("*.json"))
    return ", ".join(names) or "none committed"


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (a deep document must not exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_deepspeed_file(root: Path, rel: str) -> list[Finding]:
    """A repo-local DeepSpeed JSON read as the gate reads any file it is handed: bounded in size and
    depth, strict JSON (no NaN), an object, and a ZeRO stage DeepSpeed knows. Errors name the JSON."""
    path = root / rel

    def error(message: str, fix: str, line: int | None = None, field: str | None = None) -> Finding:
        return Finding(Severity.ERROR, message, rel, line, field, fix)

    try:
        size = path.stat().st_size
        text = path.read_text(encoding="utf-8") if size <= MAX_DEEPSPEED_BYTES else ""
    except (OSError, UnicodeDecodeError) as exc:
        return [error(f"cannot read the DeepSpeed config: {exc}", "commit it as UTF-8 JSON")]
    if size > MAX_DEEPSPEED_BYTES:
        return [error(f"over {MAX_DEEPSPEED_BYTES:,} bytes", "a DeepSpeed config is ~1 KB: trim it")]
    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        return [error(f"not valid JSON: {exc.msg}", "fix the JSON syntax at that line", exc.lineno)]
    except (ValueError, RecursionError) as exc:
        return [error(f"not valid JSON: {exc}", "write numbers as JSON numbers")]
    if not isinstance(data, dict):
        return [error("a DeepSpeed config must be a JSON object", 'e.g. {"zero_optimization": {"stage": 2}}')]
    if _depth(data) > MAX_DEEPSPEED_DEPTH:
        return [error(f"nested more than {MAX_DEEPSPEED_DEPTH} levels deep", "flatten it")]
    return _zero_findings(data, line_index(text), rel, None, "")


def _zero_findings(
    data: dict[str, Any], lines: dict[str, int], file: str, line: int | None, prefix: str
) -> list[Finding]:
    """`zero_optimization` is an object whose `stage` is one of DeepSpeed's 0-3."""
    zero = data.get("zero_optimization")
    if zero is None:
        return []
    if not isinstance(zero, dict):
        return [
            Finding(
                Severity.ERROR,
                "zero_optimization must be an object",
                file,
                lines.get("zero_optimization", line),
                f"{prefix}zero_optimization",
                'e.g. "zero_optimization": {"stage": 2}',
            )
        ]
    stage = zero.get("stage", 0)
    if isinstance(stage, bool) or stage not in ZERO_STAGES:
        return [
            Finding(
                Severity.ERROR,
                f"zero_optimization.stage is {stage!r}; DeepSpeed's ZeRO stages are 0, 1, 2 and 3",
                file,
                lines.get("zero_optimization.stage", line),
                f"{prefix}zero_optimization.stage",
                "set stage to 2 (shards optimizer state and gradients) or 3 (also the weights)",
            )
        ]
    return []


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
    if sharding.weights_offloaded:
        weights = 0.0
    trainable = trainable_params(c, params)
    moments = (STATE_BYTES_8BIT if "8bit" in str(c.get("optimizer") or "") else STATE_BYTES) - 8
    optimizer = trainable * (4 + moments)  # fp32 master copy (or fp32 LoRA weights) + Adam moments
    if sharding.optimizer:  # ZeRO-1 and up, FSDP
        optimizer /= sharding.ways
    if sharding.optimizer_offloaded:
        optimizer = 0.0
    state = optimizer + trainable * 4 / (sharding.ways if sharding.gradients else 1)  # fp32 gradients
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


def check_nodes(exp: Experiment, res: Resources, settings: Settings) -> list[Finding]:
    """A multi-node run is rented as a RunPod Instant Cluster: what the cluster API cannot do
    (compute.runpod_clusters.refusals: a private image, a bid, a small volume) is an error here, before
    the merge, at the config's haha key it concerns (haha.nodes for haha.toml's settings)."""
    if res.nodes == 1:
        return []
    from haha.compute.base import PodSpec
    from haha.compute.runpod_clusters import refusals

    c = settings.compute
    spec = PodSpec(
        exp.basename,
        c.image,
        res.gpu_types,
        res.gpus,
        nodes=res.nodes,
        volume_gb=c.volume_gb,
        network_volume_id=c.network_volume_id,
        registry_auth_id=c.registry_auth_id,
        interruptible=res.interruptible,
    )
    findings = []
    for refusal in refusals(spec):
        field = refusal.location.field or ""
        message = f"haha.nodes is {res.nodes}, but {refusal.message}"
        where = field if field.startswith("haha.") else "haha.nodes"
        findings.append(_finding(exp, Severity.ERROR, message, where, refusal.fix or ""))
    if res.gpus != NODE_GPUS:  # the API takes 1 up to the GPU type's maximum; RunPod's own table says 8
        findings.append(
            _finding(
                exp,
                Severity.WARNING,
                f"haha.nodes is {res.nodes} with haha.gpus {res.gpus}: RunPod offers Instant Clusters in "
                f"nodes of {NODE_GPUS} GPUs (docs.runpod.io/instant-clusters: 2-8 nodes, 16-64 GPUs), so a "
                "cluster of smaller nodes may be refused for capacity",
                "haha.gpus",
                f"set haha.gpus: {NODE_GPUS}, or train on one pod of up to {NODE_GPUS} GPUs "
                "(remove haha.nodes)",
            )
        )
    return findings


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
                    f"use one of Axolotl's ZeRO configs in {AXOLOTL_DS_DIR}/ ({axolotl_ds_names(root)}), "
                    f"or commit your own JSON as {ds}",
                )
            )
        else:
            findings += check_deepspeed_file(root, ds)
    elif isinstance(ds, dict):
        findings += _zero_findings(ds, {}, str(exp.path), exp.line("deepspeed"), "deepspeed.")
    zero = deepspeed_json(c, root).get("zero_optimization") if ds else None
    offloads = [
        k for k in ("offload_optimizer", "offload_param") if isinstance(zero, dict) and _offloaded(zero, k)
    ]
    if offloads:
        findings.append(
            _finding(
                exp,
                Severity.WARNING,
                f"the DeepSpeed config offloads to CPU memory ({', '.join(offloads)}): DeepSpeed then "
                "compiles its CPU Adam op when training starts (a C++ compiler and the CUDA toolkit's "
                "headers), which the pod image does not carry; not tried on a GPU here",
                "deepspeed",
                "use deepspeed_configs/zero1.json, zero3.json or zero3_bf16.json (no offload), unless the "
                "GPUs' memory is what stops the run",
            )
        )
    if ds and root is not None and (root / TRAIN_REQUIREMENTS).is_file():
        try:  # a lock file is ~100 KB; a PR's file is read bounded, like every file the gate reads
            pinned = read_bounded(root / TRAIN_REQUIREMENTS, MAX_REQUIREMENTS_BYTES)
        except (OSError, ValueError):  # unreadable, not UTF-8 or over the limit: no pin found in it
            pinned = ""
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
    before = world_of(previous, resources_or_default(previous, settings).world)
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
    world = world_of(exp, res.world)  # every GPU of every node: data parallel and sharding span them all
    findings += check_nodes(exp, res, settings)
    findings += check_sharding(exp, root, res.gpus)
    findings += check_global_batch(exp, settings, previous, world)
    types = [g for g in settings.compute.gpu_types if g.id in res.gpu_types]
    memory, found = check_memory(exp, settings, world, Sharding.of(exp.config, root, res.world), types)
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
