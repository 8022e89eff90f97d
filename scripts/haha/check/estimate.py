"""Applying the cost model to one config: its shape, its rows' token lengths, the first GPU type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from haha.check import cost
from haha.check.history import PastRun, predict_overhead, predict_speed, source_of
from haha.check.params import estimate_params
from haha.check.scale import ScaleView, resources_or_default
from haha.experiment import Experiment, number_or
from haha.findings import Finding, Severity
from haha.phases import human_duration
from haha.settings import GpuType, Settings

# Axolotl's defaults for the keys the estimate reads (AxolotlInputConfig, 0.19.0).
DEFAULT_SEQUENCE_LEN = 512
# What Axolotl does with rows over sequence_len, per `excess_length_strategy` (default: drop).
LONG_ROW_ACTIONS = {
    "drop": "dropped",
    "truncate": "truncated",
    "raise": "refused: Axolotl stops with an error",
}


@dataclass(frozen=True)
class ConfigCost:
    """Predicted training size, time and price of one new config on the first GPU type."""

    config: str
    base_model: str
    params: float | None
    params_source: str
    tokenizer: str
    rows: int
    long_rows: int
    long_rows_action: str
    train_tokens: float
    tokens_per_step: float
    gpu: str
    mfu: float
    train_seconds: float | None
    total_hours: float | None
    dollars: float | None  # the whole pod: every GPU, training plus overhead
    gpus: int = 1
    scaling_efficiency: float = 1.0  # cost.cluster_efficiency(gpus, nodes)
    nodes: int = 1  # machines of `gpus` GPUs each (haha.nodes); dollars are for all of them
    global_batch: int | None = None
    memory_gib: float | None = None  # predicted per GPU (check/scale.py's model)
    gpu_memory_gib: float | None = None
    # Issue 18: the pod's other billed seconds, and where each prediction came from (check/history.py).
    overhead_seconds: float | None = None
    overhead_from: str = "assumed"
    train_from: str = "assumed"
    predicted_from: str = "assumed"  # meta.cost.predicted_from: "7 runs", "assumed", or which part
    # The pod's kind (haha.interruptible) and bid (haha.bid_per_gpu): configs share a pod only where
    # both are the same (plan.share_key), so the gate's shared-pod line groups them as plan does.
    interruptible: bool = False
    bid_per_gpu: float | None = None

    @property
    def long_share(self) -> float:
        return self.long_rows / self.rows if self.rows else 0.0


def shape_of(exp: Experiment) -> cost.Shape:
    """The batching keys of a config, with Axolotl's defaults where they are unset."""
    c = exp.config
    return cost.Shape(
        # Out-of-range values are errors of their own (check/values.py); the estimate stays defined.
        micro_batch_size=max(int(number_or(c.get("micro_batch_size"), 1)), 1),
        sequence_len=max(int(number_or(c.get("sequence_len"), DEFAULT_SEQUENCE_LEN)), 1),
        sample_packing=c.get("sample_packing") is True,
        num_epochs=max(number_or(c.get("num_epochs"), 1), 0.0),
        val_set_size=max(number_or(c.get("val_set_size"), 0), 0.0),
    )


def _note(exp: Experiment, severity: Severity, message: str, field: str, fix: str) -> Finding:
    return Finding.from_error(exp.fail(message, field, fix), severity)


def kept_lengths(lengths: list[int], sequence_len: int, action: str) -> list[int]:
    """Token lengths Axolotl trains on: long rows dropped, or cut to sequence_len."""
    if action == "truncated":
        return [min(n, sequence_len) for n in lengths]
    return [n for n in lengths if n <= sequence_len]


def estimate(
    exp: Experiment,
    lengths: list[int],
    tokenizer: str,
    settings: Settings,
    scale: ScaleView | None = None,
    history: Sequence[PastRun] | None = None,
) -> tuple[ConfigCost, list[Finding]]:
    """The cost of `exp` given its rows' token lengths, plus findings on long rows and low utilisation.

    Priced on the first GPU type of the config's `haha:` block (haha.toml's list by default), for
    all of its `gpus`, each at the per-GPU MFU of its micro-batch and with cost.scaling_efficiency.
    With a `history` (check/history.py), overhead and training speed come from past runs where it has
    enough of them; haha.toml's overhead_minutes and [throughput] curve otherwise.
    """
    shape = shape_of(exp)
    action = LONG_ROW_ACTIONS.get(str(exp.config.get("excess_length_strategy")), "dropped")
    kept = kept_lengths(lengths, shape.sequence_len, action)
    mean_tokens = sum(kept) / len(kept) if kept else 0.0
    tokens = cost.training_tokens(sum(kept), len(kept), shape)
    resources = resources_or_default(exp, settings)
    gpu, count = settings.gpu(resources.gpu_types[0] if resources.gpu_types else None), resources.gpus
    on_demand = gpu
    if resources.interruptible:  # priced as rented: the bid, else the type's interruptible price
        gpu = gpu.model_copy(update={"price_per_hour": interruptible_price(gpu, resources.bid_per_gpu)})
    past = history or ()
    overhead_p = predict_overhead(past, gpu.id, exp.base_model, settings.compute.overhead_minutes * 60)
    speed = predict_speed(past, gpu.id, exp.base_model)
    overhead = overhead_p.value / 60
    curve = cost.fit_mfu(settings.throughput)
    per_step = cost.tokens_per_step(shape, mean_tokens)
    max_steps = exp.number("max_steps", 0)
    if max_steps >= 1 and scale is not None:
        # HF Trainer: max_steps > 0 overrides num_train_epochs (TrainingArguments.max_steps), each
        # optimizer step being global_batch ÷ micro_batch_size micro-batches of `per_step` tokens.
        tokens = max_steps * per_step * scale.global_batch / shape.micro_batch_size
    mfu = cost.gpu_mfu(curve, per_step, gpu.peak_bf16_tflops)
    if speed is not None:  # the share of the curve's speed past runs reached on this GPU type
        mfu *= speed.value
    params, source = estimate_params(exp.base_model)
    seconds = None
    if params is not None and mfu > 0:
        flops = cost.training_flops(params, tokens)
        seconds = cost.train_seconds(flops, mfu, gpu.peak_bf16_tflops, count, resources.nodes)
    result = ConfigCost(
        config=exp.basename,
        base_model=exp.base_model,
        params=params,
        params_source=source,
        tokenizer=tokenizer,
        rows=len(lengths),
        long_rows=sum(n > shape.sequence_len for n in lengths),
        long_rows_action=action,
        train_tokens=tokens,
        tokens_per_step=per_step,
        gpu=gpu.id,
        mfu=mfu,
        train_seconds=seconds,
        total_hours=None if seconds is None else seconds / 3600 + overhead / 60,
        dollars=None if seconds is None else cost.dollars(seconds, overhead, gpu, count * resources.nodes),
        gpus=count,
        scaling_efficiency=cost.cluster_efficiency(count, resources.nodes),
        nodes=resources.nodes,
        global_batch=scale.global_batch if scale else None,
        memory_gib=scale.memory_gib if scale else None,
        gpu_memory_gib=scale.gpu_memory_gib if scale else None,
        overhead_seconds=overhead_p.value,
        overhead_from=overhead_p.source,
        train_from=speed.source if speed is not None else "assumed",
        predicted_from=source_of(overhead_p, speed),
        interruptible=resources.interruptible,
        bid_per_gpu=resources.bid_per_gpu if resources.interruptible else None,
    )
    share = speed.value if speed is not None else 1.0
    fixes = [
        _priced(change, after * share, result, gpu, overhead)
        for change, after in cost.utilisation_fixes(shape, mean_tokens, curve, gpu.peak_bf16_tflops)
    ]
    findings = _findings(exp, result, shape.sequence_len, max(lengths, default=0), fixes)
    if kept and cost.train_rows(len(kept), shape.val_set_size) == 0:
        findings.append(
            _note(
                exp,
                Severity.ERROR,
                f"val_set_size {exp.config.get('val_set_size')} holds out all {len(kept)} rows: nothing is "
                "left to train on",
                "val_set_size",
                "use a fraction below 1 (e.g. 0.05), or a row count below the dataset's size",
            )
        )
    if resources.interruptible:
        findings.append(preemption_note(exp, result, on_demand, gpu.price_per_hour, settings))
    return result, findings + _deadline(exp, result, settings.compute.deadline_hours)


def interruptible_price(gpu: GpuType, bid: float | None) -> float:
    """What an interruptible pod of `gpu` costs per GPU-hour: the bid cap, else the spot price."""
    return bid or gpu.spot_price_per_hour or gpu.price_per_hour


def preemption_note(
    exp: Experiment, result: ConfigCost, on_demand: GpuType, price: float, settings: Settings
) -> Finding:
    """An interruptible run may be preempted: what one preemption costs (haha.resume): the training
    since the last checkpoint (at most 1/checkpoints_per_run of it) again, and a new pod's overhead."""
    compute = settings.compute
    lost_s = (result.train_seconds or 0) / compute.checkpoints_per_run + compute.overhead_minutes * 60
    lost = lost_s / 3600 * price * result.gpus
    fallback = "resumes on an on-demand pod" if compute.on_demand_fallback else "is given up"
    return _note(
        exp,
        Severity.NOTICE,
        f"interruptible: priced at ${price:,.2f}/GPU-h (on-demand ${on_demand.price_per_hour:,.2f}); "
        f"RunPod may preempt the pod: each preemption repeats up to 1/{compute.checkpoints_per_run} of "
        f"the training since the last checkpoint plus a new pod's overhead (~{lost_s / 60:,.0f} min, "
        f"${lost:,.2f}); "
        f"after {compute.max_preemptions} preemptions the run {fallback}",
        "haha.interruptible",
        "set haha.interruptible: false for an on-demand pod that is never preempted",
    )


def _deadline(exp: Experiment, result: ConfigCost, deadline_hours: float) -> list[Finding]:
    """A run predicted to outlast the pod deadline is stopped there with nothing to show: an error."""
    hours = result.total_hours
    if hours is None or hours <= deadline_hours:
        return []
    key = "max_steps" if exp.number("max_steps", 0) >= 1 else "num_epochs"
    return [
        _note(
            exp,
            Severity.ERROR,
            f"{key} {exp.config.get(key, 1)} → predicted {hours:,.0f} h on {result.gpus}× {result.gpu} "
            f"> deadline {deadline_hours:g} h: the pod is stopped at its deadline",
            key,
            f"lower {key} (or the data, or sequence_len) or raise deadline_hours in haha.toml [compute]",
        )
    ]


def _priced(change: str, mfu: float, before: ConfigCost, gpu: GpuType, overhead_minutes: float) -> str:
    """`micro_batch_size: 8 → MFU 4%, train 20 min → 9 min, $2.40 → $1.80`: one fix, before and after.

    The same training tokens at the MFU after the change (the train time scales with 1/MFU).
    """
    text = f"{change} → MFU {mfu:.0%}"
    if before.train_seconds is None or mfu <= 0:
        return text
    seconds = before.train_seconds * before.mfu / mfu
    dollars = cost.dollars(seconds, overhead_minutes, gpu, before.gpus)
    text += f", train {human_duration(before.train_seconds)} → {human_duration(seconds)}"
    return text + ("" if before.dollars is None else f", ${before.dollars:.2f} → ${dollars:.2f}")


def _findings(
    exp: Experiment, result: ConfigCost, sequence_len: int, longest: int, fixes: list[str]
) -> list[Finding]:
    """Warnings about rows lost to sequence_len and about a GPU left idle, each with its fix."""
    findings = []
    if result.long_rows:
        findings.append(
            _note(
                exp,
                Severity.ERROR if result.long_rows_action.startswith("refused") else Severity.WARNING,
                f"{result.long_rows} of {result.rows} rows ({result.long_share:.1%}) are longer than "
                f"sequence_len {sequence_len} tokens and will be {result.long_rows_action}",
                "sequence_len",
                f"raise sequence_len above {longest} to keep every row whole",
            )
        )
    if result.params is None:
        findings.append(
            _note(
                exp,
                Severity.NOTICE,
                f"cannot tell how many parameters {exp.base_model or 'the base model'} has: no time or cost",
                "base_model",
                "add it to KNOWN_PARAMS in scripts/haha/check/params.py",
            )
        )
    if result.mfu < cost.LOW_UTILISATION:
        findings.append(
            _note(
                exp,
                Severity.WARNING,
                f"predicted GPU utilisation {result.mfu:.1%} on {result.gpu} ({result.tokens_per_step:.0f} "
                f"useful tokens per micro-batch); below {cost.LOW_UTILISATION:.0%} most of the paid GPU time "
                "is overhead",
                "micro_batch_size",
                "predicted after each change (same tokens; pod overhead unchanged): " + "; ".join(fixes),
            )
        )
    return findings
