"""Predictions from the repo's own history (check/history.py) on synthetic histories; the gate using them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from check_helpers import check, make_repo
from haha.check.history import (
    MIN_RUNS,
    RECENT_RUNS,
    PastRun,
    curve_flops,
    load_history,
    past_run,
    predict_overhead,
    predict_speed,
)
from haha.check.render import render_markdown
from haha.repo import Repo
from haha.resultsindex import ResultsIndex
from haha.settings import load_settings
from hypothesis import given, settings
from hypothesis import strategies as st

LLAMA = "meta-llama/Meta-Llama-3-8B"
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PARAMS = {LLAMA: 8.03e9, SMOL: 134.5e6}
ASSUMED = 1200.0


def run(i: int, overhead: float, gpu: str = "h200", model: str = LLAMA, share: float = 0.7) -> PastRun:
    created = f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"  # later i: more recent
    return PastRun(f"x-{i:03d}", model, gpu, created, overhead, share)


def flat(gpu_type: str, tokens_per_step: float) -> float | None:
    """A curve that predicts 1e14 FLOP/s per GPU for 100,000-token micro-batches on an H200."""
    return 1e14 if "H200" in gpu_type and tokens_per_step == 100_000 else None


def document(overhead: float, train_s: float, tokens: int, device: str = "1x H200") -> dict:
    """A results file's meta as a pod writes it (haha.phases), split into phases like a real run."""
    phases = {"boot": overhead * 0.4, "setup": overhead * 0.3, "train": train_s, "eval": overhead * 0.2}
    phases |= {"publish": overhead * 0.05, "baseline": 77.0, "teardown": overhead * 0.05}
    cost = {
        "gpu_type": "H200 SXM",  # RunPod's display name
        "gpu_count": 1,
        "cost_per_hour": 3.59,
        "billed_seconds": sum(phases.values()),
        "billed_dollars": 1.0,
        "priced": "billed",
        "predicted_seconds": None,
        "predicted_dollars": None,
        "predicted_from": "assumed",
    }
    meta = {"base_model": LLAMA, "device": device, "created_at": "2026-12-01T00:00:00Z"}
    # Ten logged steps of two micro-batches each: tokens ÷ 20 per micro-batch.
    meta |= {"train_loss": [{"step": s, "loss": 1.0} for s in range(1, 11)], "tokens_trained": tokens}
    config = {"name": "x-001", "default_system_message": "", "gradient_accumulation_steps": 2}
    return {"config": config, "results": [], "meta": meta | {"phases": phases, "cost": cost}}


def test_a_past_run_is_its_overhead_and_its_speed_as_a_share_of_the_curve() -> None:
    past = past_run("x-001", document(600.0, 100.0, 2_000_000), PARAMS.get, flat)
    assert past is not None and past.gpu == "h200"
    assert past.overhead_seconds == pytest.approx(600.0)  # no training, no baseline
    assert past.speed_share == pytest.approx(6 * 8.03e9 * 2_000_000 / 100.0 / 1e14)
    unknown_shape = past_run("x-001", document(600.0, 100.0, 1_000_000), PARAMS.get, flat)
    assert unknown_shape is not None and unknown_shape.speed_share is None


def test_cpu_runs_and_files_without_phases_predict_nothing() -> None:
    assert past_run("x-001", document(600.0, 100.0, 10, device="cpu (x86_64)"), PARAMS.get, flat) is None
    assert past_run("x-001", {"meta": {"stage_seconds": {"train": 3.0}}}, PARAMS.get, flat) is None
    assert past_run("x-001", {"config": {}}, PARAMS.get, flat) is None


def test_too_few_runs_fall_back_to_haha_toml_and_say_so() -> None:
    runs = [run(i, 300.0) for i in range(MIN_RUNS - 1)]
    predicted = predict_overhead(runs, "NVIDIA H200", LLAMA, ASSUMED)
    assert (predicted.value, predicted.source, predicted.scope) == (ASSUMED, "assumed", "haha.toml")
    assert predict_speed(runs, "NVIDIA H200", LLAMA) is None


def test_widens_from_gpu_and_model_to_gpu_to_any() -> None:
    same = [run(i, 100.0) for i in range(2)]
    other_model = [run(10 + i, 200.0, model=SMOL) for i in range(2)]
    other_gpu = [run(20 + i, 400.0, gpu="a100") for i in range(3)]
    by_gpu = predict_overhead(same + other_model, "NVIDIA H200", LLAMA, ASSUMED)
    assert (by_gpu.source, by_gpu.scope, by_gpu.value) == ("from 4 runs", "NVIDIA H200", 150.0)
    anywhere = predict_overhead(same + other_gpu, "NVIDIA H200", LLAMA, ASSUMED)
    assert (anywhere.source, anywhere.scope, anywhere.value) == ("from 5 runs", "any GPU", 400.0)
    narrow = predict_overhead([*same, run(30, 110.0), *other_model], "NVIDIA H200", LLAMA, ASSUMED)
    assert (narrow.scope, narrow.value) == ("NVIDIA H200, Meta-Llama-3-8B", 100.0)
    # Another GPU type's training speed says nothing about this one's.
    assert predict_speed(other_gpu, "NVIDIA H200", LLAMA) is None


def test_only_recent_runs_count() -> None:
    old = [run(i, 5000.0) for i in range(RECENT_RUNS)]
    new = [run(100 + i, 300.0) for i in range(RECENT_RUNS)]
    predicted = predict_overhead(new + old, "NVIDIA H200", LLAMA, ASSUMED)
    assert (predicted.value, predicted.runs) == (300.0, RECENT_RUNS)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(5, RECENT_RUNS),
    outlier=st.floats(0.0, 1e6, allow_nan=False),
)
def test_one_outlier_stays_out_of_the_prediction(seed: int, n: int, outlier: float) -> None:
    """A median: one run that took any time at all (a stuck pull, a crashed upload) stays an outlier."""
    rng = random.Random(seed)
    usual = [rng.gauss(600.0, 30.0) for _ in range(n - 1)]
    runs = [run(i, v) for i, v in enumerate(usual)] + [run(n, outlier)]
    predicted = predict_overhead(runs, "NVIDIA H200", LLAMA, ASSUMED)
    assert predicted.runs == n
    assert min(usual) <= predicted.value <= max(usual)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), noise=st.floats(0.0, 0.3))
def test_speed_with_known_noise_is_recovered(seed: int, noise: float) -> None:
    """Runs whose speed is a known share times lognormal noise: the prediction is near the known share."""
    rng = random.Random(seed)
    true = 0.6
    runs = [run(i, 600.0, share=true * rng.lognormvariate(0.0, noise)) for i in range(9)]
    predicted = predict_speed(runs, "NVIDIA H200", LLAMA)
    assert predicted is not None and predicted.runs == 9
    assert abs(predicted.value / true - 1) < 1.5 * noise + 1e-9


def write_history(results: Path, count: int, overhead: float) -> None:
    for i in range(count):
        doc = document(overhead, 100.0, 2_000_000)
        doc["meta"]["created_at"] = f"2026-12-01T{i:02d}:00:00Z"
        (results / f"haha-old-{i + 1:03d}.json").write_text(json.dumps(doc))


def test_the_gate_prices_new_configs_from_history_and_says_so(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    before = {c.config: c for c in check(root).costs}["haha-llama-3-8b-lora-001"]
    assert (before.predicted_from, before.overhead_seconds) == ("assumed", 20 * 60)
    assert "assumed (haha.toml)" in render_markdown(check(root))

    write_history(root / "train/results", 4, overhead=300.0)
    report = check(root)
    after = {c.config: c for c in report.costs}["haha-llama-3-8b-lora-001"]
    assert (after.predicted_from, after.overhead_from, after.train_from) == ("4 runs", *["from 4 runs"] * 2)
    assert after.overhead_seconds == pytest.approx(300.0)
    share = 6 * 8.03e9 * 2_000_000 / 100.0 / curve_flops(load_settings(root, {}))("H200 SXM", 100_000)
    assert after.train_seconds == pytest.approx(before.train_seconds / share)
    assert after.mfu == pytest.approx(before.mfu * share)
    assert after.dollars == pytest.approx((after.train_seconds + 300.0) / 3600 * 3.59)
    assert "| from 4 runs |" in render_markdown(report)


def test_load_history_skips_unreadable_files(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    write_history(root / "train/results", 2, overhead=300.0)
    (root / "train/results/broken.json").write_text("{")
    (root / "train/results/deep.json").write_text("[" * 100_000 + "]" * 100_000)
    documents = ResultsIndex(Repo(root)).documents()
    assert [r.config for r in load_history(documents, PARAMS.get, flat)] == ["haha-old-001", "haha-old-002"]
