"""`haha check` on scale: the `haha:` block, global batch, GPU memory, sharding and N-GPU cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from check_helpers import LLAMA, check, edit_config, errors, make_repo, only, warnings
from haha.check import cost
from haha.check.scale import World, eval_weights_gib
from haha.experiment import Experiment
from haha.settings import load_settings

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
NEXT = "train/config/haha-llama-3-8b-lora-002.yml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def add_next(root: Path, **changes: object) -> Path:
    """haha-llama-3-8b-lora-002: the starter Llama config with `changes` (None deletes a key)."""
    (root / NEXT).write_text((root / LLAMA).read_text())
    edit_config(root, NEXT, **changes)
    return root / NEXT


def cost_of(root: Path, name: str = "haha-llama-3-8b-lora-002"):
    (found,) = [c for c in check(root).costs if c.config == name]
    return found


def test_two_gpus_check_clean_and_cost_two_gpus(root: Path) -> None:
    add_next(root, haha={"gpus": 2})
    report = check(root)
    assert not [f for f in errors(report) if f.file == NEXT] and report.exit_code == 0
    mine = [f.message for f in report.findings if f.file == NEXT and f.severity.value != "notice"]
    assert len(mine) == 1 and "global batch is 8" in mine[0]  # a warning: the series' batch doubled
    one, two = cost_of(root, "haha-llama-3-8b-lora-001"), cost_of(root)
    assert (one.gpus, two.gpus) == (1, 2)
    assert two.scaling_efficiency == pytest.approx(0.9)
    assert two.train_seconds == pytest.approx(one.train_seconds / (2 * 0.9))
    overhead_h = load_settings(root, {}).compute.overhead_minutes / 60
    price = load_settings(root, {}).gpu().price_per_hour
    assert two.dollars == pytest.approx((two.train_seconds / 3600 + overhead_h) * price * 2)
    assert two.global_batch == 2 * one.global_batch == 8


def test_scaling_efficiency_is_point_nine_per_doubling() -> None:
    assert [round(cost.scaling_efficiency(n), 3) for n in (1, 2, 4, 8)] == [1.0, 0.9, 0.81, 0.729]


def test_global_batch_divides_by_context_parallel() -> None:
    world = World(gpus=8, micro_batch_size=2, gradient_accumulation_steps=4, context_parallel_size=2)
    assert world.global_batch == 2 * 4 * 8 // 2


def test_gpu_types_price_the_first_listed(root: Path) -> None:
    add_next(root, haha={"gpus": 1, "gpu_types": [A100, H100]})
    found = cost_of(root)
    assert found.gpu == A100


@pytest.mark.parametrize(
    ("block", "field", "text"),
    [
        ({"gpus": 0}, "haha.gpus", "from 1 to 8"),
        ({"gpus": 9}, "haha.gpus", "from 1 to 8"),
        ({"gpus": "2"}, "haha.gpus", "whole number"),
        ({"gpus": True}, "haha.gpus", "whole number"),
        ({"gpu_types": ["NVIDIA H100 80GB"]}, "haha.gpu_types.0", "did you mean 'NVIDIA H100 80GB HBM3'"),
        ({"gpu_types": []}, "haha.gpu_types", "non-empty list"),
        ({"gpu": 2}, "haha.gpu", "did you mean gpus"),
        ([2], "haha", "mapping"),
    ],
)
def test_bad_block_names_file_line_field_and_fix(root: Path, block: object, field: str, text: str) -> None:
    add_next(root, haha=block)
    found = only(errors(check(root)), text)
    assert (found.file, found.field) == (NEXT, field)
    assert found.line is not None and found.fix


def test_the_block_is_not_an_axolotl_option_warning(root: Path) -> None:
    add_next(root, haha={"gpus": 2})
    assert not [f for f in check(root).findings if "not an Axolotl option" in f.text()]


def test_axolotl_never_sees_the_block(root: Path) -> None:
    exp = Experiment.load(add_next(root, haha={"gpus": 4, "gpu_types": [H100]}))
    assert "haha" not in exp.config
    resources = exp.resources(load_settings(root, {}))
    assert (resources.gpus, resources.gpu_types) == (4, (H100,))


def test_defaults_come_from_haha_toml(root: Path) -> None:
    toml = root / "haha.toml"
    toml.write_text(toml.read_text().replace("gpu_count = 1", "gpu_count = 2"))
    resources = Experiment.load(root / LLAMA).resources(load_settings(root, {}))
    assert resources.gpus == 2
    assert resources.gpu_types[0] == "NVIDIA H200"


def test_changed_global_batch_warns_with_the_fix(root: Path) -> None:
    add_next(root, haha={"gpus": 2})
    found = only(warnings(check(root)), "global batch is 8")
    assert found.field == "haha.gpus"
    assert "haha-llama-3-8b-lora-001 had 4" in found.message
    assert found.fix == "set micro_batch_size: 2 to keep 4"


def test_same_global_batch_checks_without_a_warning(root: Path) -> None:
    add_next(root, haha={"gpus": 2}, micro_batch_size=2)
    report = check(root)
    assert not [f for f in report.findings if f.file == NEXT and f.severity.value != "notice"]
    assert cost_of(root).global_batch == 4


def test_deepspeed_and_fsdp_together_are_refused(root: Path) -> None:
    (root / "deepspeed_configs").mkdir()
    (root / "deepspeed_configs/zero2.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    add_next(root, deepspeed="deepspeed_configs/zero2.json", fsdp_version=2, fsdp_config={"x": 1})
    found = only(errors(check(root)), "both set")
    assert found.field == "deepspeed"


def test_missing_deepspeed_file_is_an_error(root: Path) -> None:
    add_next(root, haha={"gpus": 2}, deepspeed="deepspeed_configs/zero3.json")
    found = only(errors(check(root)), "does not exist in the repo")
    assert found.field == "deepspeed" and found.line is not None


def test_deepspeed_not_in_the_pod_image_is_an_error(root: Path) -> None:
    (root / "requirements").mkdir()
    (root / "requirements/train-cuda.txt").write_text("axolotl==0.19.0\ntorch==2.13.0\n")
    (root / "deepspeed_configs").mkdir()
    (root / "deepspeed_configs/zero2.json").write_text("{}")
    add_next(root, haha={"gpus": 2}, deepspeed="deepspeed_configs/zero2.json")
    only(errors(check(root)), "pod image has no DeepSpeed")
    (root / "requirements/train-cuda.txt").write_text("axolotl==0.19.0\ndeepspeed==0.18.2\n")
    assert not [f for f in errors(check(root)) if f.file == NEXT]
    # read bounded and strictly as UTF-8, like every file of a PR: a broken lock file is no pin, not a crash
    (root / "requirements/train-cuda.txt").write_bytes(b"deepspeed==0.18.2\n\xff\n")
    only(errors(check(root)), "pod image has no DeepSpeed")


def test_context_parallel_must_divide_gpus(root: Path) -> None:
    add_next(root, haha={"gpus": 3}, context_parallel_size=2)
    assert only(errors(check(root)), "does not divide").field == "context_parallel_size"


def test_full_finetune_of_70b_does_not_fit_and_says_why(root: Path) -> None:
    big = {"base_model": "meta-llama/Meta-Llama-3-70B", "adapter": None, "lora_r": None}
    add_next(root, optimizer="adamw_torch", **big)
    found = only(errors(check(root)), "GiB per GPU")
    assert "weights" in found.message and "75 GiB" in found.message  # 80 GB (datasheet) = 74.5 GiB
    assert "eval runs on one GPU" in only(warnings(check(root)), "eval runs on one GPU").message


def test_fsdp_over_eight_gpus_shards_the_70b_weights(root: Path) -> None:
    add_next(
        root,
        base_model="meta-llama/Meta-Llama-3-70B",
        adapter="qlora",
        load_in_4bit=True,
        haha={"gpus": 8, "gpu_types": [H100]},
        fsdp_version=2,
        fsdp_config={"reshard_after_forward": True},
        micro_batch_size=1,
        gradient_accumulation_steps=1,
    )
    report = check(root)
    assert not [f for f in report.findings if "GiB per GPU" in f.text()]
    found = cost_of(root)
    assert found.memory_gib is not None and found.memory_gib < 20
    assert eval_weights_gib(70e9) > 80  # and eval on one H100 is flagged (70B bf16 = 130 GiB)
    only(warnings(report), "eval runs on one GPU")


def test_llama_8b_lora_memory_is_plausible(root: Path) -> None:
    """Axolotl's Llama-3-8B LoRA, bf16, 4 × 512 with checkpointing: ~16 GiB weights + a few GiB."""
    found = cost_of(root, "haha-llama-3-8b-lora-001")
    assert 17 < found.memory_gib < 26


def test_each_config_is_parsed_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The global-batch rule compares 002 with 001; the gate hands it the 001 it already parsed."""
    add_next(root, micro_batch_size=8)
    parsed: list[str] = []
    load = Experiment.load.__func__

    def counting(cls: type[Experiment], path: Path, text: str | None = None) -> Experiment:
        parsed.append(path.name)
        return load(cls, path, text)

    monkeypatch.setattr(Experiment, "load", classmethod(counting))
    report = check(root)
    assert "haha-llama-3-8b-lora-001 had 4" in only(warnings(report), "global batch is 8").message
    assert sorted(parsed) == sorted(p.name for p in (root / "train/config").iterdir())
