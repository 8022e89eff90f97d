"""How far off is the gate's cost prediction: from the repo's history vs haha.toml's assumption.

    python bench/cost_calibration_bench.py [--runs 60] [--held-back 20] [--seed 18] [--noise 0.2]

The history is the committed results (train/results/*.json: those with meta.phases from a GPU pod)
plus a synthetic one, generated with a known truth and known noise (seeded): runs of a few configs on
two GPU types and two base models over two months, each with a shape (micro-batch, sequence length,
packing), the tokens it trained, an overhead (image pull, download, eval, upload) that depends on the
GPU type and base model, times lognormal noise, with 1 in 10 runs stuck in a slow pull (×3), and a
training speed the [throughput] curve overestimates by a fixed factor, times noise. The newest
`--held-back` runs are predicted in time order, each from the runs before it only (what the gate
knew on that day), by both methods; the bench prints the median and p90 absolute % error of the
predicted pod time and dollars side by side. Dollars are priced at the GPU type's list price on both
sides, so their % error equals the time's unless RunPod billed another price.
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haha.check import cost
from haha.check.history import (
    PastRun,
    curve_flops,
    load_history,
    past_run,
    predict_overhead,
    predict_speed,
)
from haha.check.params import estimate_params
from haha.repo import Repo
from haha.resultsindex import ResultsIndex
from haha.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"meta-llama/Meta-Llama-3-8B": 8.03e9, "HuggingFaceTB/SmolLM2-135M-Instruct": 134.5e6}
# The truth the synthetic history is drawn from: overhead seconds per (GPU, model), and the share of
# the [throughput] curve's speed that runs reach (the curve was measured once, eagerly, on one H200).
TRUE_OVERHEAD = {
    ("NVIDIA H200", "meta-llama/Meta-Llama-3-8B"): 14 * 60,
    ("NVIDIA H100 80GB HBM3", "meta-llama/Meta-Llama-3-8B"): 17 * 60,
    ("NVIDIA H200", "HuggingFaceTB/SmolLM2-135M-Instruct"): 6 * 60,
    ("NVIDIA H100 80GB HBM3", "HuggingFaceTB/SmolLM2-135M-Instruct"): 7 * 60,
}
TRUE_SPEED_SHARE = 0.7
DISPLAY = {"NVIDIA H200": "H200 SXM", "NVIDIA H100 80GB HBM3": "H100 SXM"}  # what RunPod reports
SHAPES = (
    (2, 512, False, 120.0),
    (4, 1024, True, 4096.0),
    (8, 2048, True, 16384.0),
    (16, 1024, True, 16384.0),
)


@dataclass(frozen=True)
class Case:
    """One run: what the prediction is given, and what the run billed."""

    document: dict[str, Any]
    gpu: str
    base_model: str
    tokens: float
    tokens_per_step: float
    actual_seconds: float
    actual_dollars: float


def synthetic(n: int, seed: int, noise: float) -> list[Case]:
    settings = load_settings(ROOT, {})
    curve = cost.fit_mfu(settings.throughput)
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        gpu_id, model = rng.choice(list(TRUE_OVERHEAD))
        gpu = settings.gpu(gpu_id)
        mb, seq, packed, per_step = rng.choice(SHAPES)
        tokens = float(int(10 ** rng.uniform(5, 7.5)))
        speed = cost.gpu_mfu(curve, per_step, gpu.peak_bf16_tflops) * gpu.peak_bf16_tflops * 1e12
        train_s = 6 * MODELS[model] * tokens / (speed * TRUE_SPEED_SHARE * rng.lognormvariate(0, noise))
        overhead = TRUE_OVERHEAD[(gpu_id, model)] * rng.lognormvariate(0, noise)
        overhead *= 3 if rng.random() < 0.1 else 1  # a slow image pull
        phases = {"boot": 0.45 * overhead, "setup": 0.3 * overhead, "train": train_s, "eval": 0.15 * overhead}
        phases |= {"publish": 0.07 * overhead, "teardown": 0.03 * overhead}
        seconds = sum(phases.values())
        day = i * 60 // n  # two months, in order
        steps = max(round(tokens / per_step), 1)  # one micro-batch per step (no gradient accumulation)
        meta = {
            "train_loss": [{"step": steps, "loss": 1.0}],
            "base_model": model,
            "device": f"1x {gpu_id}",
            "created_at": f"2026-{10 + day // 30:02d}-{1 + day % 30:02d}T{i % 24:02d}:00:00Z",
            "tokens_trained": int(tokens),
            "phases": phases,
            "cost": {
                "gpu_type": DISPLAY[gpu_id],
                "gpu_count": 1,
                "cost_per_hour": gpu.price_per_hour,
                "billed_seconds": seconds,
                "billed_dollars": seconds / 3600 * gpu.price_per_hour,
                "priced": "billed",
            },
        }
        config = {
            "name": f"bench-{i:03d}",
            "micro_batch_size": mb,
            "sequence_len": seq,
            "sample_packing": packed,
        }
        dollars = seconds / 3600 * gpu.price_per_hour
        cases.append(
            Case({"config": config, "meta": meta}, gpu_id, model, tokens, per_step, seconds, dollars)
        )
    return cases


def predict(case: Case, before: list[PastRun], method: str) -> tuple[float, float]:
    """(seconds, dollars) predicted for `case` knowing only `before`: as the gate does from history,
    from haha.toml alone, or from the truth the history was drawn from (the noise's own error)."""
    settings = load_settings(ROOT, {})
    gpu = settings.gpu(case.gpu)
    flops = 6 * MODELS[case.base_model] * case.tokens
    assumed_train = flops / curve_flops(settings)(case.gpu, case.tokens_per_step)  # type: ignore[operator]
    assumed_overhead = settings.compute.overhead_minutes * 60
    if method == "haha.toml":
        seconds = assumed_train + assumed_overhead
    elif method == "truth":
        seconds = TRUE_OVERHEAD[(case.gpu, case.base_model)] + assumed_train / TRUE_SPEED_SHARE
    else:  # as check/estimate.py does: the history's overhead, the curve × the history's share
        overhead = predict_overhead(before, case.gpu, case.base_model, assumed_overhead).value
        speed = predict_speed(before, case.gpu, case.base_model)
        seconds = overhead + assumed_train / (speed.value if speed else 1.0)
    return seconds, seconds / 3600 * gpu.price_per_hour


def errors(
    cases: list[Case], runs: list[PastRun], committed: list[PastRun], held_back: int, method: str
) -> dict[str, list[float]]:
    """Absolute % errors on the newest `held_back` cases, each predicted from the runs before it."""
    out: dict[str, list[float]] = {"time": [], "dollars": []}
    for k in range(len(cases) - held_back, len(cases)):
        seconds, dollars = predict(cases[k], committed + runs[:k], method)
        out["time"].append(abs(seconds / cases[k].actual_seconds - 1) * 100)
        out["dollars"].append(abs(dollars / cases[k].actual_dollars - 1) * 100)
    return out


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--held-back", type=int, default=20)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--noise", type=float, default=0.2, help="lognormal sigma of overhead and speed")
    args = parser.parse_args()

    expected = curve_flops(load_settings(ROOT, {}))
    documents = ResultsIndex(Repo(ROOT)).documents()
    committed = load_history(documents, lambda m: estimate_params(m)[0], expected)
    files = len(list((ROOT / "train" / "results").glob("*.json")))
    print(f"committed results: {files} files, {len(committed)} usable past runs (GPU pods with meta.phases)")
    cases = synthetic(args.runs, args.seed, args.noise)
    runs = [
        r for c in cases if (r := past_run(c.document["config"]["name"], c.document, MODELS.get, expected))
    ]
    assert len(runs) == len(cases)
    print(
        f"synthetic history: {len(cases)} runs (seed {args.seed}, noise σ {args.noise}); the newest "
        f"{args.held_back} predicted in time order, each from the runs before it (+ the committed ones)"
    )
    methods = ("history", "haha.toml", "truth")
    found = {m: errors(cases, runs, committed, args.held_back, m) for m in methods}
    print(f"{'absolute % error':<22}" + "".join(f"{m:>12}" for m in methods))
    for what in ("time", "dollars"):
        for name, fn in (("median", statistics.median), ("p90", p90)):
            print(f"{what + ' ' + name:<22}" + "".join(f"{fn(found[m][what]):>11.1f}%" for m in methods))
    print("truth: the known overhead and speed share the history was drawn from (the noise's own error)")


if __name__ == "__main__":
    main()
