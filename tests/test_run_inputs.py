"""Bad input to `haha run` fails before any training, naming file, line and field, and leaves nothing."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from fakes.hf_hub import HubFake, HubRepo
from haha.errors import InputError, ModelUnavailable, RunFailed
from haha.evaluate.vllm_limits import max_lora_rank
from haha.experiment import Experiment
from haha.models import SMOLLM2, ensure_model
from haha.repo import Repo
from haha.results import config_summary, write_results
from haha.run import preflight
from haha.settings import load_settings
from haha.train import Device, _failure, _stream, axolotl_config, cpu_overrides, wandb_run_id
from haha.workspace import localize
from run_fixtures import NAME, make_tiny_repo

pytest_plugins = ["fakes.fixtures"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tiny_repo(tmp_path)
    return tmp_path


def config_path(root: Path) -> Path:
    return root / f"train/config/{NAME}.yml"


def test_missing_dataset_names_config_line_and_field(root: Path) -> None:
    (root / "train/data/tiny.jsonl").unlink()
    with pytest.raises(InputError) as info:
        preflight(Repo(root), NAME, load_settings(root, {"HAHA_WORKDIR": str(root / "work")}))
    err = info.value
    assert err.location.file == str(config_path(root))
    assert err.location.field == "datasets.0.path"
    assert err.location.line == Experiment.load(config_path(root)).line("datasets.0.path")
    assert "train/data/tiny.jsonl" in err.message
    assert not (root / "work").exists()


def test_base_model_not_available_offline_says_how_to_provide_it(root: Path, tmp_path: Path) -> None:
    path = config_path(root)
    path.write_text(
        path.read_text().replace("HuggingFaceTB/SmolLM2-135M-Instruct", "meta-llama/Meta-Llama-3-8B")
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    with pytest.raises(ModelUnavailable) as info:
        preflight(Repo(root), NAME, load_settings(root, env))
    assert info.value.location.field == "base_model"
    assert info.value.location.file == str(path)
    assert "hf download meta-llama/Meta-Llama-3-8B" in info.value.fix


def use_model(root: Path, model_id: str) -> None:
    path = config_path(root)
    path.write_text(path.read_text().replace(SMOLLM2, model_id))


def test_base_model_the_hub_serves_is_left_to_download(
    root: Path, tmp_path: Path, hub_api: tuple[HubFake, str]
) -> None:
    """With the Hub reachable, an uncached model is downloaded (None), SmolLM2 too: no seeding."""
    fake, url = hub_api
    for model_id in ("meta-llama/Meta-Llama-3-8B", SMOLLM2):
        fake.repos[model_id] = HubRepo(model_id, private=False)
        fake.repos[model_id].commit({"config.json": b"{}"})
    env = {"HF_ENDPOINT": url, "HF_TOKEN": fake.token, "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    assert ensure_model("meta-llama/Meta-Llama-3-8B", load_settings(root, env)) is None
    assert ensure_model(SMOLLM2, load_settings(root, env)) is None
    assert not (tmp_path / "empty-cache").exists(), "nothing seeded while the Hub serves the model"
    use_model(root, "meta-llama/Meta-Llama-3-8B")
    assert preflight(Repo(root), NAME, load_settings(root, env)).model == "meta-llama/Meta-Llama-3-8B"


def test_base_model_the_hub_refuses_fails_before_training(
    root: Path, tmp_path: Path, hub_api: tuple[HubFake, str]
) -> None:
    """No token for a gated/private model (the fake answers 401 like the Hub): refused at preflight."""
    _, url = hub_api
    use_model(root, "meta-llama/Meta-Llama-3-8B")
    env = {"HF_ENDPOINT": url, "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    with pytest.raises(ModelUnavailable) as info:
        preflight(Repo(root), NAME, load_settings(root, env))
    assert "HTTP 401" in info.value.message and "HF_TOKEN" in info.value.message
    assert info.value.location.field == "base_model"
    assert not (root / "work").exists()


def test_base_model_with_the_hub_unreachable_fails_before_training(root: Path, tmp_path: Path) -> None:
    use_model(root, "meta-llama/Meta-Llama-3-8B")
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="not reachable") as info:
        preflight(Repo(root), NAME, load_settings(root, env))
    assert time.monotonic() - started < 5
    assert "hf download meta-llama/Meta-Llama-3-8B" in info.value.fix


def test_wandb_run_id_is_new_per_attempt_and_the_name_stays_the_basename(root: Path) -> None:
    """A retry must not resume (or 409 on) the failed attempt's W&B run."""
    repo = Repo(root)
    exp = Experiment.load(config_path(root))
    env = {"HAHA_WORKDIR": str(root / "work")}
    config, _ = axolotl_config(exp, repo, root / "work", load_settings(root, env), Device("cpu", 1, "x"))
    assert config["wandb_name"] == NAME
    assert re.fullmatch(rf"{NAME}-\d{{8}}T\d{{6}}Z", config["wandb_run_id"])
    in_pod = wandb_run_id(NAME, "abc123xyz")
    assert re.fullmatch(rf"{NAME}-\d{{8}}T\d{{6}}Z-abc123xyz", in_pod)


def test_first_training_step_time_is_taken_from_the_trainer_bar(tmp_path: Path) -> None:
    """The wall time of the first finished step (what meta.boot_to_first_step_s is measured to)."""
    script = (
        "import time\n"
        "print('Tokenizing: 100%|#| 8/8 [00:00<00:00]', flush=True)\n"
        "print('  0%|          | 0/4 [00:00<?, ?it/s]', flush=True)\n"
        "time.sleep(0.5)\n"
        "print(' 25%|##5       | 1/4 [00:00<00:01, 2.00it/s]', flush=True)\n"
        "print(\"{'loss': '1.5', 'tokens/total': 80, 'tokens/trainable': 20}\", flush=True)\n"
    )
    started = time.time()
    lines: list[str] = []
    out = _stream([sys.executable, "-c", script], tmp_path, {}, tmp_path / "log", lines.append)
    assert out.code == 0 and out.tokens == {"total": 80, "supervised": 20}
    assert out.first_step_at is not None and started + 0.4 < out.first_step_at < time.time()
    assert lines == ["train: step 1/4 loss 1.5"]


def test_invalid_eval_spec_names_line_and_field(root: Path) -> None:
    spec = json.loads((root / "train/eval/eval.json").read_text())
    spec["prompts"][1] = 42
    (root / "train/eval/eval.json").write_text(json.dumps(spec, indent=2))
    with pytest.raises(InputError) as info:
        preflight(Repo(root), NAME, load_settings(root, {}))
    assert info.value.location.field == "prompts.1"
    assert info.value.location.line == 4  # "{", '"prompts": [', first prompt, then the bad one


def test_unsafe_dataset_path_is_refused(root: Path) -> None:
    path = config_path(root)
    path.write_text(
        path.read_text().replace("/workspace/data/tiny.jsonl", "/workspace/data/../../etc/passwd")
    )
    with pytest.raises(InputError, match=r"contains '\.\.'") as info:
        preflight(Repo(root), NAME, load_settings(root, {}))
    assert info.value.location.field == "datasets.0.path"


def test_out_of_memory_is_reported_with_a_fix(tmp_path: Path) -> None:
    oom = _failure(1, ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], tmp_path)
    assert isinstance(oom, RunFailed) and "out of memory" in oom.message and "micro_batch_size" in oom.fix
    killed = _failure(-9, ["step 3/40"], tmp_path)
    assert "out of memory" in killed.message
    other = _failure(1, ["ValueError: bad dataset type"], tmp_path)
    assert "bad dataset type" in other.message


def test_vllm_rank_limit() -> None:
    assert [max_lora_rank(r) for r in (4, 8, 9, 32, 200, 256)] == [8, 8, 16, 32, 256, 256]
    with pytest.raises(RunFailed) as info:
        max_lora_rank(1024)
    assert info.value.location.field == "lora_r"


def test_results_are_validated_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "results" / "haha-x-001.json"
    with pytest.raises(InputError):
        write_results({"config": {"name": "haha-x-001"}, "results": []}, target)  # no system message
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_config_summary_keeps_every_hyperparameter(root: Path) -> None:
    """Two configs that differ only in weight_decay differ in their results' config block."""
    exp = Experiment.load(config_path(root))
    other_path = root / "train/config/haha-tiny-002.yml"
    other_path.write_text(config_path(root).read_text().replace("weight_decay: 0.0", "weight_decay: 0.1"))
    a, b = config_summary(exp), config_summary(Experiment.load(other_path))
    assert a["weight_decay"] == 0.0 and b["weight_decay"] == 0.1
    assert list(a)[:2] == ["name", "default_system_message"]
    assert "output_dir" not in a and "wandb_project" not in a


def test_workspace_paths_map_into_the_repo_and_work_folder(root: Path) -> None:
    repo = Repo(root)
    mapped = localize(
        {
            "datasets": [{"path": "/workspace/data/tiny.jsonl"}],
            "output_dir": "/workspace/output",
            "dataset_prepared_path": "./last_run_prepared",
            "base_model": "x/y",
        },
        repo,
        root / "work",
    )
    assert mapped["datasets"][0]["path"] == str(root / "train/data/tiny.jsonl")
    assert mapped["output_dir"] == str(root / "work/output")
    assert mapped["dataset_prepared_path"] == str(root / "work/last_run_prepared")
    assert mapped["base_model"] == "x/y"


def test_cpu_overrides_are_set_even_where_the_config_is_silent() -> None:
    changes = cpu_overrides({"bf16": "auto", "deepspeed": "zero2.json", "sample_packing": False})
    assert changes["bf16"] == ["auto", False]
    assert changes["lora_mlp_kernel"] == [None, False]
    assert changes["deepspeed"] == ["zero2.json", None]
    assert "sample_packing" not in changes


def test_loss_curve_reads_each_logged_step_back_from_the_training_log(tmp_path: Path) -> None:
    from haha.train import loss_curve

    log = tmp_path / "train.log"
    log.write_text(
        " 50%|█████     | 1/2 [00:01<00:01,  1.0s/it]\n"
        "{'loss': 2.5, 'grad_norm': 1.0, 'learning_rate': 0.001, 'epoch': 0.5}\n"
        "100%|██████████| 2/2 [00:02<00:00,  1.0s/it]\r{'loss': '1.25', 'epoch': 1.0}\n"
        "{'eval_loss': 1.5, 'epoch': 1.0}\n"
    )
    assert loss_curve(log) == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 1.25, "eval_loss": 1.5}]
    assert loss_curve(tmp_path / "missing.log") == []
