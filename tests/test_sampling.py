"""Per-row sampling: each row's token depends only on its own logits, settings, history and seed."""

from __future__ import annotations

import torch
from haha.evaluate.requests import Sampling
from haha.evaluate.sampling import apply_output_penalties, apply_repetition_penalty, sample_tokens

EMPTY = torch.tensor([], dtype=torch.long)


def draw(logits: torch.Tensor, sampling: Sampling, seed: int, generated: torch.Tensor = EMPTY) -> int:
    return sample_tokens(
        logits.unsqueeze(0), [sampling], [EMPTY], [generated], [torch.Generator().manual_seed(seed)]
    )[0]


def test_a_row_draws_the_same_token_alone_and_in_any_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 50)
    samplings = [Sampling(temperature=t, max_tokens=8) for t in (0.0, 0.3, 0.7, 1.0, 1.3, 0.9)]
    batch = sample_tokens(
        logits, samplings, [EMPTY] * 6, [EMPTY] * 6, [torch.Generator().manual_seed(s) for s in range(6)]
    )
    alone = [draw(logits[i], samplings[i], i) for i in range(6)]
    assert batch == alone


def test_temperature_zero_is_greedy_and_seeds_vary_samples() -> None:
    logits = torch.tensor([0.0, 3.0, 2.9, 0.5])
    assert {draw(logits, Sampling(temperature=0.0, max_tokens=1), seed) for seed in range(20)} == {1}
    assert len({draw(logits, Sampling(temperature=1.0, max_tokens=1), seed) for seed in range(40)}) > 1


def test_top_k_and_top_p_restrict_the_choice() -> None:
    logits = torch.tensor([5.0, 4.0, 0.0, -1.0, -2.0])
    top_k = Sampling(temperature=5.0, max_tokens=1, top_k=2)
    assert {draw(logits, top_k, seed) for seed in range(60)} <= {0, 1}
    top_p = Sampling(temperature=1.0, max_tokens=1, top_p=0.5)
    assert {draw(logits, top_p, seed) for seed in range(60)} == {0}  # the token crossing top_p is kept


def test_penalties_follow_vllm_semantics() -> None:
    logits = torch.tensor([2.0, -2.0, 1.0], dtype=torch.float64)
    assert apply_repetition_penalty(logits, torch.tensor([0, 1]), 2.0).tolist() == [1.0, -4.0, 1.0]
    generated = torch.tensor([2, 2, 0])
    penalised = apply_output_penalties(
        logits,
        generated,
        Sampling(temperature=1.0, max_tokens=1, presence_penalty=0.5, frequency_penalty=0.25),
    )
    assert penalised.tolist() == [2.0 - 0.25 - 0.5, -2.0, 1.0 - 0.5 - 0.5]


def test_settings_read_every_sampling_key() -> None:
    setting = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.2,
        "frequency_penalty": 0.3,
        "max_tokens": 32,
    }
    s = Sampling.from_setting(setting, default_max_tokens=64)
    assert (
        s.top_p,
        s.top_k,
        s.min_p,
        s.repetition_penalty,
        s.presence_penalty,
        s.frequency_penalty,
        s.max_tokens,
    ) == (0.9, 40, 0.05, 1.1, 0.2, 0.3, 32)
    assert Sampling.from_setting({"temperature": 0.1}, default_max_tokens=64).max_tokens == 64
