"""Predictions from the repo's own history: overhead and training speed measured by earlier runs.

Each results file with `meta.phases` (issue 18) is one past run: its overhead (boot + setup + eval +
publish + teardown: every billed second that is neither training nor the one-off baseline) and its
training speed as a share of what the [throughput] curve predicted for its shape: achieved FLOP/s per
GPU (6 × params × tokens trained ÷ train seconds ÷ GPUs, the cost model's own convention) over the
curve's FLOP/s at its tokens per micro-batch (tokens trained ÷ logged steps ÷ gradient accumulation
÷ GPUs). A share carries over to configs of other shapes and base models on the same GPU type.

A prediction takes the most recent runs of the narrowest scope that has enough of them — same GPU type
and base model, then same GPU type, then (overhead only) any — and their median, which one odd run
(a slow image pull, a retried upload) does not move. Too few runs anywhere: the haha.toml assumption,
said as such. Runs on a CPU (`make run`, local pods) predict nothing about a GPU and are left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haha.check import cost
from haha.phases import gpu_key
from haha.settings import Settings

OVERHEAD_PHASES = ("boot", "setup", "eval", "publish", "teardown")
MIN_RUNS = 3  # fewer than this in a scope: widen it (a median of one or two is one run's luck)
RECENT_RUNS = 10  # the newest runs of a scope: images, caches and code change, old runs stop telling


@dataclass(frozen=True)
class PastRun:
    """What one finished run measured, as the prediction needs it."""

    config: str
    base_model: str
    gpu: str  # phases.gpu_key of the GPU type it ran on
    created_at: str  # ISO 8601: sorts in time order
    overhead_seconds: float
    speed_share: float | None  # achieved ÷ the curve's training FLOP/s for its shape; None: not measurable


@dataclass(frozen=True)
class Predicted:
    """One predicted number and where it came from."""

    value: float
    runs: int  # 0: the haha.toml assumption
    scope: str  # "H200, Llama-3-8B", "H200", "any GPU", "haha.toml"

    @property
    def source(self) -> str:
        return f"from {self.runs} run{'s' if self.runs != 1 else ''}" if self.runs else "assumed"


# The curve's FLOP/s per GPU for (GPU type as the provider named it, tokens per micro-batch); None: unknown.
Expected = Callable[[str, float], float | None]


def past_run(
    name: str, document: Mapping[str, Any], params_of: Callable[[str], float | None], expected: Expected
) -> PastRun | None:
    """A results document as a past run; None where it measured no phases or ran on a CPU."""
    meta = document.get("meta")
    if not isinstance(meta, Mapping):
        return None
    phases, cost = meta.get("phases"), meta.get("cost")
    if not isinstance(phases, Mapping) or not isinstance(cost, Mapping) or meta.get("baseline"):
        return None
    if str(meta.get("device", "")).startswith("cpu") or not cost.get("gpu_type"):
        return None
    numbers = {k: float(v) for k, v in phases.items() if isinstance(v, (int, float))}
    base_model = str(meta.get("base_model") or "")
    gpus = max(int(cost.get("gpu_count") or 1), 1)
    share = None
    train_s, tokens, params = numbers.get("train"), meta.get("tokens_trained"), params_of(base_model)
    steps = _steps(meta) * max(_number((document.get("config") or {}).get("gradient_accumulation_steps")), 1)
    if train_s and isinstance(tokens, int) and tokens > 0 and params and steps:
        per_step = tokens / steps / gpus
        if curve := expected(str(cost["gpu_type"]), per_step):
            share = 6 * params * tokens / train_s / gpus / curve
    return PastRun(
        config=name,
        base_model=base_model,
        gpu=gpu_key(str(cost["gpu_type"])),
        created_at=str(meta.get("created_at") or ""),
        overhead_seconds=sum(numbers.get(k, 0.0) for k in OVERHEAD_PHASES),
        speed_share=share,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _steps(meta: Mapping[str, Any]) -> float:
    """Optimizer steps the run logged (meta.train_loss), 0 when it logged none."""
    losses = meta.get("train_loss")
    steps = [p.get("step") for p in losses if isinstance(p, Mapping)] if isinstance(losses, list) else []
    return max((_number(s) for s in steps), default=0.0)


def load_history(
    documents: Mapping[str, Mapping[str, Any]], params_of: Callable[[str], float | None], expected: Expected
) -> list[PastRun]:
    """Every past run among the collected results (name → JSON object: `ResultsIndex.documents`, which
    leaves out unreadable files; the gate reports those, check/records.py)."""
    found = (past_run(name, doc, params_of, expected) for name, doc in sorted(documents.items()))
    return [run for run in found if run is not None]


def _scopes(runs: Sequence[PastRun], gpu: str, base_model: str) -> list[tuple[str, list[PastRun]]]:
    key, model = gpu_key(gpu), base_model.rsplit("/", 1)[-1]
    return [
        (f"{gpu}, {model}", [r for r in runs if r.gpu == key and r.base_model == base_model]),
        (gpu, [r for r in runs if r.gpu == key]),
        ("any GPU", list(runs)),
    ]


def _median_of_recent(runs: Sequence[PastRun], value: Callable[[PastRun], float | None]) -> tuple[float, int]:
    recent = sorted((r for r in runs if value(r) is not None), key=lambda r: r.created_at)[-RECENT_RUNS:]
    values = [v for r in recent if (v := value(r)) is not None]
    return (statistics.median(values), len(values)) if values else (0.0, 0)


def predict_overhead(runs: Sequence[PastRun], gpu: str, base_model: str, assumed_s: float) -> Predicted:
    """Seconds a pod bills besides training, from the narrowest scope with MIN_RUNS runs."""
    for scope, found in _scopes(runs, gpu, base_model):
        median, n = _median_of_recent(found, lambda r: r.overhead_seconds)
        if n >= MIN_RUNS:
            return Predicted(median, n, scope)
    return Predicted(assumed_s, 0, "haha.toml")


def predict_speed(runs: Sequence[PastRun], gpu: str, base_model: str) -> Predicted | None:
    """The share of the curve's speed runs reached on this GPU type (same base model first); None: too few."""
    for scope, found in _scopes(runs, gpu, base_model)[:2]:  # another GPU type's share says nothing
        median, n = _median_of_recent(found, lambda r: r.speed_share)
        if n >= MIN_RUNS:
            return Predicted(median, n, scope)
    return None


def source_of(overhead: Predicted, speed: Predicted | None) -> str:
    """Where a whole prediction came from: `7 runs` (the fewer of its two parts), `assumed`, or which."""
    if overhead.runs and speed is not None:
        return f"{min(overhead.runs, speed.runs)} runs"
    if not overhead.runs and speed is None:
        return "assumed"
    training = speed.source if speed is not None else "assumed"
    return f"overhead {overhead.source}, training {training}"


def curve_flops(settings: Settings) -> Expected:
    """haha.toml's [throughput] curve as FLOP/s per GPU, for a GPU type as the provider names it."""
    curve = cost.fit_mfu(settings.throughput)

    def expected(gpu_type: str, tokens_per_step: float) -> float | None:
        gpu = next((g for g in settings.compute.gpu_types if gpu_key(g.id) == gpu_key(gpu_type)), None)
        if gpu is None:
            return None
        return cost.gpu_mfu(curve, tokens_per_step, gpu.peak_bf16_tflops) * gpu.peak_bf16_tflops * 1e12

    return expected
