"""The run stage end to end: real Axolotl LoRA training on SmolLM2 (CPU), real eval, results, publish."""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from haha.errors import AlreadyDone, RunFailed
from haha.evalspec import load_eval_spec
from haha.evaluate import build_requests
from haha.evaluate.hf_engine import TransformersEngine
from haha.models import SMOLLM2, ensure_model
from haha.results import SCHEMA_VERSION
from haha.run import evaluate_only, run_experiment
from haha.schemas import validate
from haha.settings import load_settings
from process_settings import process_settings
from run_fixtures import NAME, TrainedRepo, train_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRepo:
    return train_tiny(tmp_path_factory.mktemp("tiny"))


def results_of(trained: TrainedRepo) -> dict:
    return json.loads(trained.repo.results_path(NAME).read_text())


def test_results_file_is_valid_and_complete(trained: TrainedRepo) -> None:
    doc = results_of(trained)
    validate("results", doc, file="results")
    assert [r["prompt"] for r in doc["results"]] == [row["instruction"] for row in trained.rows]
    for entry in doc["results"]:
        assert [s["temperature"] for s in entry["settingsResults"]] == [0.0, 0.8]
        assert all(len(s["completions"]) == 2 for s in entry["settingsResults"])
    config = doc["config"]
    assert config["name"] == NAME
    assert config["learning_rate"] == 0.003 and config["lora_r"] == 16
    meta = doc["meta"]
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["engine"] == "transformers"
    assert meta["seeds"] == [1, 2]
    assert "lora_mlp_kernel" in meta["cpu_overrides"]
    assert meta["stage_seconds"]["train"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", meta["eval_sha256"])
    assert meta["settings"][0]["max_tokens"] == 40
    expected = {"batch_invariant": False, "dtype": "float32", "process": "in-process"}
    assert {k: meta["eval"].get(k) for k in expected} == expected  # other keys: placement
    assert meta["wandb"]["name"] == NAME
    assert re.fullmatch(rf"{NAME}-\d{{8}}T\d{{6}}Z", meta["wandb"]["run_id"])


def test_boot_to_first_step_is_recorded(trained: TrainedRepo) -> None:
    """HAHA_BOOT_EPOCH set (as in a pod): seconds to the first training step, within the train stage."""
    meta = results_of(trained)["meta"]
    assert 0 < meta["boot_to_first_step_s"] < meta["stage_seconds"]["train"] + 5


def test_phases_and_cost_are_recorded(trained: TrainedRepo) -> None:
    """Outside a pod: set-up (boot.sh's clock → first step), training and eval, at the list price."""
    meta = results_of(trained)["meta"]
    assert list(meta["phases"]) == ["setup", "train", "eval"]  # no pod: no boot, publish, teardown
    assert meta["phases"]["setup"] == pytest.approx(meta["boot_to_first_step_s"], abs=0.2)
    assert meta["phases"]["eval"] == meta["stage_seconds"]["eval"]
    assert meta["phases"]["train"] < meta["stage_seconds"]["train"]
    cost, gpu = meta["cost"], trained.settings.gpu()
    assert (cost["priced"], cost["gpu_type"]) == ("list price", gpu.id)
    assert cost["predicted_from"] == "not recorded"
    assert sum(meta["phases"].values()) - 0.5 <= cost["billed_seconds"]
    expected = cost["billed_seconds"] / 3600 * gpu.price_per_hour
    assert cost["billed_dollars"] == pytest.approx(expected, abs=1e-3)


def test_overfit_reproduces_data(trained: TrainedRepo) -> None:
    """Trained to memorisation, greedy decoding gives back the training punchlines: train → eval works."""
    doc = results_of(trained)
    greedy = [entry["settingsResults"][0]["completions"][0] for entry in doc["results"]]
    expected = [row["output"] for row in trained.rows]
    matches = sum(g.strip() == e.strip() for g, e in zip(greedy, expected, strict=True))
    assert matches >= len(expected) // 2, list(zip(greedy, expected, strict=True))


def test_progress_is_reported_per_stage(trained: TrainedRepo) -> None:
    assert any(re.search(r"train: step \d+/\d+ loss", line) for line in trained.log)
    assert any(line.startswith("eval: 32/32 completions") for line in trained.log)
    assert any(line.startswith("publish: ") for line in trained.log)


def test_published_to_local_store(trained: TrainedRepo) -> None:
    folder = Path(trained.summary.location)
    assert (folder / "adapter_config.json").is_file()
    assert (folder / "adapter_model.safetensors").is_file()
    assert json.loads((folder / "results.json").read_text())["config"]["name"] == NAME
    assert (folder / "logs" / "train.log").read_text().strip()
    assert "# haha-tiny-001" in (folder / "README.md").read_text()


def test_existing_results_are_not_overwritten_without_force(trained: TrainedRepo) -> None:
    path = trained.repo.results_path(NAME)
    before = path.read_bytes()
    with pytest.raises(AlreadyDone, match="--force"):
        run_experiment(trained.repo, trained.settings, NAME, lambda _: None)
    assert path.read_bytes() == before


def test_rerun_reuses_adapter_and_gives_identical_results(trained: TrainedRepo) -> None:
    """A re-run (e.g. after a crash in eval) skips training; same seeds give the same completions."""
    before = results_of(trained)["results"]
    log: list[str] = []
    summary = run_experiment(
        trained.repo,
        trained.settings,
        NAME,
        log.append,
        engine="transformers",
        force=True,
        publish=False,
    )
    assert any("not retraining" in line for line in log)
    assert summary.stage_seconds["train"] < 5
    assert results_of(trained)["results"] == before


def test_eval_in_the_eval_environment_gives_the_same_results(trained: TrainedRepo) -> None:
    """HAHA_EVAL_PYTHON: eval runs as `haha eval` in that interpreter; same engine, same completions."""
    before = results_of(trained)
    log: list[str] = []
    env = {**trained.env, "HAHA_EVAL_PYTHON": sys.executable}
    run_experiment(
        trained.repo,
        load_settings(trained.repo.root, env),
        NAME,
        log.append,
        engine="transformers",
        force=True,
        publish=False,
    )
    after = results_of(trained)
    assert after["results"] == before["results"]
    meta = after["meta"]
    assert meta["engine"] == "transformers"
    expected = {"batch_invariant": False, "dtype": "float32", "process": "subprocess"}
    assert {k: meta["eval"].get(k) for k in expected} == expected  # other keys: placement
    assert meta["versions"]["transformers"] == version("transformers")
    assert meta["versions"]["axolotl"] == version("axolotl")
    # The adapter was reused: the W&B run recorded is the one that trained it, not a new attempt's.
    assert meta["wandb"]["run_id"] == before["meta"]["wandb"]["run_id"]
    assert "boot_to_first_step_s" not in meta  # no training step in this attempt
    assert list(meta["phases"]) == ["setup", "eval"]  # the reused adapter's load is set-up
    assert any(line.startswith("eval: 32/32 completions") for line in log), log
    eval_log = Path(trained.env["HAHA_WORKDIR"]) / NAME / "eval.log"
    assert "eval: 32 completions with the transformers engine" in eval_log.read_text()


def test_eval_environment_without_vllm_fails_loudly(trained: TrainedRepo) -> None:
    """`auto` asks the eval environment for vLLM: one without it is an error, not a silent fallback."""
    env = {**trained.env, "HAHA_EVAL_PYTHON": sys.executable}  # this env has no vLLM
    path = trained.repo.results_path(NAME)
    before = path.read_bytes()
    with pytest.raises(RunFailed, match="vLLM is not installed") as info:
        evaluate_only(
            trained.repo,
            load_settings(trained.repo.root, env),
            NAME,
            lambda _: None,
            trained.summary.adapter,
            force=True,
        )
    assert info.value.location.file.endswith("eval.log")
    assert path.read_bytes() == before


def test_completion_does_not_depend_on_batch(trained: TrainedRepo) -> None:
    spec = load_eval_spec(trained.repo.eval_path)
    requests = build_requests(
        spec, "You are a creative and hilarious comedy writer that loves to craft jokes.", 64
    )
    engine = TransformersEngine(base_model(), trained.summary.adapter)
    batch = engine.generate(requests)
    sampled = [i for i, r in enumerate(requests) if r.sampling.temperature > 0][:3]
    for i in sampled:
        assert engine.generate([requests[i]]) == [batch[i]]
    assert engine.generate(list(reversed(requests))) == list(reversed(batch))


def base_model() -> str:
    return str(ensure_model(SMOLLM2, process_settings()))


def test_base_model_without_pad_token_evaluates() -> None:
    """The base SmolLM2 tokenizer has no pad token (Axolotl's saved one does): batching must still work."""
    from haha.evalspec import EvalSpec

    spec = EvalSpec(
        ("A man in Ohio bought a boat.", "Scientists found a new moon."), ({"temperature": 0.5},), 2, "0"
    )
    requests = build_requests(spec, "Be funny.", 8)
    texts = TransformersEngine(base_model(), None).generate(requests)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
