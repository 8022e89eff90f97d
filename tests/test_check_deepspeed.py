"""`haha check` on DeepSpeed: Axolotl's ZeRO configs pass, bad JSON is refused, ZeRO stages in memory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from check_helpers import LLAMA, ROOT, check, edit_config, errors, make_repo, only, warnings
from haha.check.scale import Sharding, World, memory_per_gpu
from haha.experiment import Experiment

NEXT = "train/config/haha-llama-3-8b-lora-002.yml"
H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The starter repo with this repo's DeepSpeed configs and its pinned training set."""
    root = make_repo(tmp_path)
    shutil.copytree(ROOT / "deepspeed_configs", root / "deepspeed_configs")
    (root / "requirements").mkdir()
    shutil.copy(ROOT / "requirements/train-cuda.txt", root / "requirements/train-cuda.txt")
    return root


def add_next(root: Path, **changes: object) -> Path:
    (root / NEXT).write_text((root / LLAMA).read_text())
    edit_config(root, NEXT, **changes)
    return root / NEXT


def mine(root: Path) -> list:
    return [f for f in errors(check(root)) if f.file in (NEXT, None) or "deepspeed" in (f.file or "")]


def test_the_pinned_training_set_has_deepspeed() -> None:
    """What the gate used to refuse every deepspeed config for (no pin in the pod's set)."""
    pinned = (ROOT / "requirements/train-cuda.txt").read_text()
    assert "\ndeepspeed==0.18." in pinned
    assert "\ndeepspeed==0.18." in (ROOT / "requirements/train-cpu.txt").read_text()


@pytest.mark.parametrize("name", ["zero2.json", "zero3.json", "zero3_bf16.json", "zero1.json"])
def test_axolotls_zero_configs_pass_the_gate(root: Path, name: str) -> None:
    add_next(root, haha={"gpus": 2}, micro_batch_size=2, deepspeed=f"deepspeed_configs/{name}")
    report = check(root)
    assert mine(root) == [] and report.exit_code == 0


def test_a_stage_deepspeed_does_not_know_is_an_error_in_the_json(root: Path) -> None:
    bad = root / "deepspeed_configs/mine.json"
    bad.write_text(json.dumps({"bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 4}}, indent=2))
    add_next(root, haha={"gpus": 2}, micro_batch_size=2, deepspeed="deepspeed_configs/mine.json")
    found = only(errors(check(root)), "ZeRO stages are 0, 1, 2 and 3")
    assert (found.file, found.line) == ("deepspeed_configs/mine.json", 6)
    assert found.field == "zero_optimization.stage"
    assert "stage to 2" in found.fix


@pytest.mark.parametrize(
    ("text", "says", "line"),
    [
        ('{"zero_optimization": {"stage": 2},\n "train_batch_size": NaN}', "not valid JSON", None),
        ('{"zero_optimization":\n {"stage": 2,}}', "not valid JSON", 2),
        ("[1, 2]", "must be a JSON object", None),
        ('{"zero_optimization": 2}', "must be an object", 1),
        ('{"a":' * 40 + "1" + "}" * 40, "nested more than 32", None),
        ('{"x": "' + "a" * 300_000 + '"}', "over 262,144 bytes", None),
    ],
)
def test_bad_deepspeed_json_is_refused_naming_the_file(root: Path, text: str, says: str, line: int) -> None:
    (root / "ds.json").write_text(text)
    add_next(root, haha={"gpus": 2}, micro_batch_size=2, deepspeed="ds.json")
    found = only(errors(check(root)), says)
    assert found.file == "ds.json" and found.fix
    assert found.line == line


def test_missing_file_names_axolotls_configs(root: Path) -> None:
    add_next(root, haha={"gpus": 2}, deepspeed="deepspeed_configs/zero4.json")
    found = only(errors(check(root)), "does not exist in the repo")
    assert "zero2.json" in found.fix and "zero3.json" in found.fix


def gib(root: Path, config: str | None, gpus: int) -> tuple[float, ...]:
    """(weights, trainable state) GiB per GPU of a full finetune of Llama-3-8B in bf16."""
    path = add_next(root, adapter=None, lora_r=None, bf16=True, optimizer="adamw_torch", deepspeed=config)
    exp = Experiment.load(path)
    m = memory_per_gpu(exp, 8.03e9, World(gpus, 1, 1, 1), Sharding.of(exp.config, root, gpus))
    return round(m.weights, 1), round(m.trainable_state, 1)


def test_zero_stages_shard_memory_as_the_zero_paper_says(root: Path) -> None:
    """8.03B params: bf16 weights 15.0 GiB, fp32 master + Adam moments 89.7 GiB, fp32 gradients 29.9 GiB.

    ZeRO-1 divides the optimizer state by the GPUs, ZeRO-2 the gradients too, ZeRO-3 the weights too
    (Rajbhandari et al. 2020, Fig. 1); Axolotl's zero2.json offloads the optimizer to CPU memory.
    """
    assert [gib(root, None, n) for n in (1, 2, 8)] == [(15.0, 119.7)] * 3  # plain DDP: a copy each
    assert [gib(root, "deepspeed_configs/zero1.json", n) for n in (1, 2, 8)] == [
        (15.0, 119.7),
        (15.0, 74.8),
        (15.0, 41.1),
    ]
    assert [gib(root, "deepspeed_configs/zero2_torch_compile.json", n) for n in (1, 2, 8)] == [
        (15.0, 29.9),  # offload_optimizer: cpu: only the gradients stay on the GPU
        (15.0, 15.0),
        (15.0, 3.7),
    ]
    assert [gib(root, "deepspeed_configs/zero3.json", n) for n in (1, 2, 8)] == [
        (15.0, 119.7),
        (7.5, 59.8),
        (1.9, 15.0),
    ]
    assert gib(root, "deepspeed_configs/zero3_bf16_cpuoffload_all.json", 8) == (0.0, 3.7)


def test_zero3_lets_a_full_8b_finetune_fit_eight_h100s(root: Path) -> None:
    add_next(
        root,
        adapter=None,
        lora_r=None,
        haha={"gpus": 8, "gpu_types": [H100]},
        micro_batch_size=1,
        gradient_accumulation_steps=1,
        deepspeed="deepspeed_configs/zero3_bf16.json",
    )
    assert not [f for f in check(root).findings if "GiB per GPU" in f.text()]
    edit_config(root, NEXT, deepspeed=None)
    only([f for f in check(root).findings if f.file == NEXT], "GiB per GPU")


@pytest.mark.parametrize(("key", "value"), [("optimizer", "muon"), ("ple_cpu_offload", True)])
def test_what_axolotl_refuses_beside_deepspeed_is_an_error(root: Path, key: str, value: object) -> None:
    ds = "deepspeed_configs/zero2.json"
    add_next(root, haha={"gpus": 2}, micro_batch_size=2, deepspeed=ds, **{key: value})
    found = only(errors(check(root)), "not compatible with DeepSpeed")
    assert (found.file, found.field) == (NEXT, key) and found.line is not None


def test_offload_warns_that_the_image_cannot_compile_cpu_adam(root: Path) -> None:
    add_next(root, haha={"gpus": 2}, micro_batch_size=2, deepspeed="deepspeed_configs/zero2.json")
    found = only(warnings(check(root)), "offloads to CPU memory")
    assert found.field == "deepspeed" and "zero3.json" in found.fix
    edit_config(root, NEXT, deepspeed="deepspeed_configs/zero3.json")
    assert not [f for f in warnings(check(root)) if "offloads" in f.message]


@pytest.mark.parametrize("path", ["/dev/zero", "../outside.json", "/etc/hostname"])
def test_a_path_outside_the_repo_is_refused_without_reading_it(root: Path, path: str) -> None:
    """`deepspeed: /dev/zero` once made the gate read forever (the memory model read any path)."""
    add_next(root, haha={"gpus": 2}, deepspeed=path)
    found = only(errors(check(root)), "must be a path relative to the repo root")
    assert found.field == "deepspeed"
