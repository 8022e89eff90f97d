"""The cost model: it reproduces its calibration and flags configs that would waste the GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_helpers import SMOL, check, make_repo, only, warnings
from haha.check import cost
from haha.check.estimate import estimate
from haha.check.params import estimate_params, params_from_config, params_from_name
from haha.experiment import Experiment
from haha.phases import human_duration
from haha.settings import GpuType, Settings, Throughput, load_settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_settings(ROOT, {})
CURVE = cost.fit_mfu(SETTINGS.throughput)
H200 = SETTINGS.gpu()


def test_curve_reproduces_both_calibration_points() -> None:
    t = SETTINGS.throughput
    assert CURVE.at(t.small_step_tokens) == pytest.approx(t.small_step_mfu, rel=1e-12)
    assert CURVE.at(t.large_step_tokens) == pytest.approx(t.large_step_mfu, rel=1e-12)
    assert cost.gpu_mfu(CURVE, t.large_step_tokens, cost.CALIBRATION_PEAK_TFLOPS) == pytest.approx(0.30)


def test_curve_saturates() -> None:
    assert 0.30 < CURVE.u_max < 0.40
    assert CURVE.at(1e9) == pytest.approx(CURVE.u_max, rel=1e-4)


def test_curve_rejects_points_that_fall() -> None:
    with pytest.raises(ValueError, match="saturating"):
        cost.fit_mfu(Throughput(small_step_mfu=0.3, large_step_mfu=0.1))


def test_measured_throughput_is_reproduced() -> None:
    """NOTES.md: packed 16 x 1024 on the H200 trained Llama-3-8B at 6,114 tok/s."""
    seconds = cost.train_seconds(cost.training_flops(8.03e9, 6114), 0.30, 989)
    assert seconds == pytest.approx(1.0, rel=0.01)


def test_slower_gpu_keeps_achieved_flops_for_small_steps() -> None:
    a100 = 312.0
    mfu = cost.gpu_mfu(CURVE, 128, a100)
    assert mfu * a100 == pytest.approx(0.017 * cost.CALIBRATION_PEAK_TFLOPS)
    assert cost.gpu_mfu(CURVE, 1e6, a100) == pytest.approx(CURVE.u_max, rel=1e-3)


def test_dollars_include_overhead() -> None:
    gpu = GpuType(id="g", price_per_hour=2.0, peak_bf16_tflops=100, memory_gb=80)
    assert cost.dollars(3600, 30, gpu) == pytest.approx(3.0)
    assert cost.dollars(3600, 30, gpu, gpu_count=2) == pytest.approx(6.0)


def test_training_tokens_subtract_the_validation_split() -> None:
    shape = cost.Shape(
        micro_batch_size=1, sequence_len=64, sample_packing=False, num_epochs=3, val_set_size=0.1
    )
    assert cost.training_tokens(1000, 100, shape) == pytest.approx(2700)
    counted = cost.Shape(1, 64, False, 1, val_set_size=10)
    assert cost.training_tokens(1000, 100, counted) == pytest.approx(900)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("meta-llama/Meta-Llama-3-70B", 70e9),
        ("org/SmolLM2-360M-Instruct", 360e6),
        ("Qwen/Qwen2.5-0.5B", 0.5e9),
        ("mistralai/Mistral-7B-v0.1", 7e9),
        ("gpt2", None),
    ],
)
def test_params_from_name(name: str, params: float | None) -> None:
    assert params_from_name(name) == params


def test_params_from_config_counts_smollm2() -> None:
    smollm2 = {
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "intermediate_size": 1536,
        "vocab_size": 49152,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "tie_word_embeddings": True,
    }
    assert params_from_config(smollm2) == pytest.approx(134.5e6, rel=0.01)


def test_known_models_win_over_the_name() -> None:
    assert estimate_params("meta-llama/Meta-Llama-3-8B") == (8.03e9, "known model")


def config(**keys: object) -> Experiment:
    base = {"base_model": "meta-llama/Meta-Llama-3-8B", "num_epochs": 1, "val_set_size": 0}
    text = "\n".join(
        f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in {**base, **keys}.items()
    )
    return Experiment.load(Path("train/config/x-001.yml"), text + "\n")


def low_util(exp: Experiment, lengths: list[int], settings: Settings = SETTINGS) -> list[str]:
    _, findings = estimate(exp, lengths, "cl100k_base", settings)
    return [f.message + " " + (f.fix or "") for f in findings if "utilisation" in f.message]


def test_low_utilisation_fires_for_micro_batch_2_by_seq_64() -> None:
    exp = config(micro_batch_size=2, sequence_len=64, sample_packing=True)
    result, _ = estimate(exp, [60] * 100, "cl100k_base", SETTINGS)
    assert result.tokens_per_step == 128
    assert result.mfu == pytest.approx(0.017)
    [message] = low_util(exp, [60] * 100)
    assert "1.7%" in message
    assert "micro_batch_size: 8 → " in message
    assert "sequence_len: 2048 with sample_packing: true → MFU 22%" in message


def test_each_suggested_change_shows_time_and_cost_before_and_after() -> None:
    """Issue 18: not only the MFU after a change, but what it does to the train time and the bill."""
    exp = config(micro_batch_size=2, sequence_len=64, sample_packing=True, num_epochs=200)
    before, _ = estimate(exp, [60] * 1000, "cl100k_base", SETTINGS)
    [message] = low_util(exp, [60] * 1000)
    after_mfu = cost.gpu_mfu(CURVE, 8 * 64, H200.peak_bf16_tflops)
    seconds = before.train_seconds * before.mfu / after_mfu
    dollars = cost.dollars(seconds, SETTINGS.compute.overhead_minutes, H200)
    assert seconds < before.train_seconds and dollars < before.dollars
    expected = (
        f"micro_batch_size: 8 → MFU {after_mfu:.0%}, train {human_duration(before.train_seconds)} → "
        f"{human_duration(seconds)}, ${before.dollars:.2f} → ${dollars:.2f}"
    )
    assert expected in message


def test_no_warning_for_packed_16_by_1024() -> None:
    exp = config(micro_batch_size=16, sequence_len=1024, sample_packing=True)
    result, _ = estimate(exp, [60] * 100, "cl100k_base", SETTINGS)
    assert result.mfu == pytest.approx(0.30)
    assert low_util(exp, [60] * 100) == []


def test_unpacked_rows_use_their_mean_length_and_suggest_packing() -> None:
    exp = config(micro_batch_size=8, sequence_len=1024)
    result, _ = estimate(exp, [50] * 10, "cl100k_base", SETTINGS)
    assert result.tokens_per_step == 400
    [message] = low_util(exp, [50] * 10)
    packed = cost.gpu_mfu(CURVE, 8 * 1024, H200.peak_bf16_tflops)
    assert f"sample_packing: true → MFU {packed:.0%}" in message


def test_estimate_prices_the_first_gpu_type() -> None:
    exp = config(micro_batch_size=16, sequence_len=1024, sample_packing=True, num_epochs=2)
    result, _ = estimate(exp, [1000] * 100, "cl100k_base", SETTINGS)
    assert result.train_tokens == 200_000
    seconds = 6 * 8.03e9 * 200_000 / (0.30 * 989e12)
    assert result.train_seconds == pytest.approx(seconds)
    hours = seconds / 3600 + SETTINGS.compute.overhead_minutes / 60
    assert result.dollars == pytest.approx(hours * H200.price_per_hour)
    assert result.gpu == H200.id


def test_smollm2_starter_warns_about_utilisation(tmp_path: Path) -> None:
    finding = only(warnings(check(make_repo(tmp_path))), "predicted GPU utilisation")
    assert finding.file == SMOL


@pytest.mark.parametrize(
    ("strategy", "kept_tokens", "severity"),
    [("drop", 50 * 90, "warning"), ("truncate", 50 * 90 + 10 * 100, "warning"), ("raise", 50 * 90, "error")],
)
def test_long_rows_follow_excess_length_strategy(strategy: str, kept_tokens: int, severity: str) -> None:
    exp = config(micro_batch_size=16, sequence_len=100, sample_packing=True, excess_length_strategy=strategy)
    result, findings = estimate(exp, [90] * 50 + [150] * 10, "cl100k_base", SETTINGS)
    assert result.train_tokens == kept_tokens
    [long_rows] = [f for f in findings if "longer than sequence_len 100" in f.message]
    assert long_rows.severity.value == severity
    assert long_rows.message.startswith("10 of 60 rows (16.7%)")


def test_a_haha_toml_without_gpu_types_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = make_repo(tmp_path)
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().split("[compute]")[0])  # no [compute]: no GPU list to price on
    done = subprocess.run(
        [str(Path(sys.executable).parent / "haha"), "check", "--repo", str(root)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "haha.toml [compute.gpu_types]" in done.stderr and "Traceback" not in done.stderr
