"""The cost model: training tokens → FLOPs → GPU time and dollars, and the utilisation to expect.

Calibration (docs/calibration.md; one H200, 2026-11-27; LoRA r=32 on the Llama-3-8B
shape, bf16, HF transformers eager): micro_batch 2 × seq 64 (128 tokens per micro-batch) trained at
345 tok/s = 1.7% MFU, packed 16 × 1024 (16,384 tokens) at 6,114 tok/s = 30% MFU, where
MFU = tokens/s × 6 × params / peak and the H200's peak is 989 TFLOP/s. haha.toml's [throughput]
holds those two points; everything here is a pure function of them and of the config's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from haha.settings import GpuType, Throughput

# Data-parallel scaling: each doubling of GPUs keeps 90% of the per-GPU throughput (gradient all-reduce,
# stragglers, the last uneven batch), so N GPUs run at 0.9^log2(N): 2 → 90%, 4 → 81%, 8 → 73%. An assumed
# round number, typical of DDP/ZeRO-2 on one NVLink node; not measured here (docs/calibration.md).
SCALING_PER_DOUBLING = 0.9
# Across nodes the all-reduce leaves NVLink for the cluster network (RunPod's Instant Clusters: a
# high-bandwidth inter-node fabric, docs.runpod.io/instant-clusters), slower than NVLink: each doubling
# of nodes keeps 80%, on top of the per-node figure. An assumption like the one above, not measured.
NODE_SCALING_PER_DOUBLING = 0.8
CALIBRATION_PEAK_TFLOPS = 989.0  # the H200 the [throughput] points were measured on (datasheet, dense bf16)
LOW_UTILISATION = 0.10
FLOPS_PER_PARAM_TOKEN = 6  # forward + backward, the same convention the calibration MFU uses


@dataclass(frozen=True)
class MfuCurve:
    """MFU(t) = u_max·t/(t + t_half): small micro-batches are overhead-bound, large ones saturate."""

    u_max: float
    t_half: float

    def at(self, tokens_per_step: float) -> float:
        return self.u_max * tokens_per_step / (tokens_per_step + self.t_half)


def fit_mfu(throughput: Throughput) -> MfuCurve:
    """The curve through both measured points: 1/MFU is linear in 1/t, so two points fix it exactly."""
    t1, u1 = throughput.small_step_tokens, throughput.small_step_mfu
    t2, u2 = throughput.large_step_tokens, throughput.large_step_mfu
    slope = (1 / u1 - 1 / u2) / (1 / t1 - 1 / t2)
    intercept = 1 / u1 - slope / t1
    if intercept <= 0 or slope <= 0:
        raise ValueError("the [throughput] points do not describe a saturating curve (MFU must rise with t)")
    return MfuCurve(u_max=1 / intercept, t_half=slope / intercept)


def gpu_mfu(curve: MfuCurve, tokens_per_step: float, peak_tflops: float) -> float:
    """MFU on a GPU with another peak: same achieved FLOP/s as the calibration card, capped at u_max.

    Small steps are bound by per-step overhead, which does not speed up with a bigger tensor peak.
    """
    return min(curve.u_max, curve.at(tokens_per_step) * CALIBRATION_PEAK_TFLOPS / peak_tflops)


@dataclass(frozen=True)
class Shape:
    """The config keys that decide how much useful work each micro-batch carries."""

    micro_batch_size: int
    sequence_len: int
    sample_packing: bool
    num_epochs: float
    val_set_size: float


def tokens_per_step(shape: Shape, mean_row_tokens: float) -> float:
    """Useful tokens per micro-batch: full packed sequences, else one (unpadded) row per slot."""
    per_row = shape.sequence_len if shape.sample_packing else min(mean_row_tokens, shape.sequence_len)
    return shape.micro_batch_size * per_row


def train_rows(rows: int, val_set_size: float) -> float:
    """Rows left for training after Axolotl splits off the validation set (fraction or count)."""
    held_out = rows * val_set_size if val_set_size < 1 else val_set_size
    return max(rows - held_out, 0.0)


def training_tokens(kept_tokens: int, kept_rows: int, shape: Shape) -> float:
    """Tokens trained on: the kept rows' tokens, minus the validation share, times epochs."""
    if kept_rows == 0:
        return 0.0
    share = train_rows(kept_rows, shape.val_set_size) / kept_rows
    return kept_tokens * share * shape.num_epochs


def training_flops(params: float, tokens: float) -> float:
    return FLOPS_PER_PARAM_TOKEN * params * tokens


def scaling_efficiency(gpu_count: int) -> float:
    """Share of N× one GPU's throughput that N data-parallel GPUs reach: 0.9 per doubling."""
    return SCALING_PER_DOUBLING ** math.log2(gpu_count) if gpu_count > 1 else 1.0


def cluster_efficiency(gpu_count: int, nodes: int = 1) -> float:
    """scaling_efficiency of the GPUs of one node × NODE_SCALING_PER_DOUBLING per doubling of nodes."""
    across = NODE_SCALING_PER_DOUBLING ** math.log2(nodes) if nodes > 1 else 1.0
    return scaling_efficiency(gpu_count) * across


def train_seconds(flops: float, mfu: float, peak_tflops: float, gpu_count: int = 1, nodes: int = 1) -> float:
    """Wall time at the predicted per-GPU MFU over `gpu_count` GPUs on each of `nodes` nodes."""
    gpus = gpu_count * nodes
    return flops / (mfu * peak_tflops * 1e12 * gpus * cluster_efficiency(gpu_count, nodes))


def dollars(train_s: float, overhead_minutes: float, gpu: GpuType, gpu_count: int = 1) -> float:
    """Pod cost: training plus fixed overhead (image pull, model download, eval), billed per GPU-hour."""
    return (train_s / 3600 + overhead_minutes / 60) * gpu.price_per_hour * gpu_count


def utilisation_fixes(
    shape: Shape, mean_row_tokens: float, curve: MfuCurve, peak_tflops: float
) -> list[tuple[str, float]]:
    """Config changes that raise utilisation, each with the MFU predicted after it."""
    fixes = []
    if not shape.sample_packing:
        packed = Shape(shape.micro_batch_size, shape.sequence_len, True, shape.num_epochs, shape.val_set_size)
        fixes.append(("sample_packing: true", tokens_per_step(packed, mean_row_tokens)))
    bigger = shape.micro_batch_size * 4
    fixes.append((f"micro_batch_size: {bigger}", tokens_per_step(shape, mean_row_tokens) * 4))
    if shape.sequence_len < 2048:
        fixes.append(("sequence_len: 2048 with sample_packing: true", shape.micro_batch_size * 2048))
    return [(change, gpu_mfu(curve, t, peak_tflops)) for change, t in fixes]
