"""Per-row sampling with a per-request seed, so a completion never depends on its batch-mates.

HF `generate` draws from one global RNG across the batch: a row's tokens change with what else is in
the batch. Here each row owns a `torch.Generator` seeded with its request's seed and draws exactly
one uniform number per token from it (inverse-CDF sampling); every filter (temperature, top-k, top-p,
min-p, repetition penalty) is applied to that row alone. Batched where the maths is per-row anyway.
"""

from __future__ import annotations

import torch

from haha.evaluate.requests import Sampling


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """HF/vLLM semantics: divide positive scores of seen tokens by `penalty`, multiply negative ones."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    scores = logits.gather(0, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(0, seen, scores)


def apply_output_penalties(logits: torch.Tensor, generated: torch.Tensor, s: Sampling) -> torch.Tensor:
    """OpenAI/vLLM semantics, on generated tokens only: subtract presence once, frequency per use."""
    if (s.presence_penalty == 0 and s.frequency_penalty == 0) or generated.numel() == 0:
        return logits
    counts = torch.bincount(generated, minlength=logits.numel()).to(logits.dtype)
    return logits - s.frequency_penalty * counts - s.presence_penalty * (counts > 0).to(logits.dtype)


def filter_logits(logits: torch.Tensor, s: Sampling) -> torch.Tensor:
    """One row's logits with everything outside top-k / top-p / min-p set to -inf (after temperature)."""
    if s.top_k > 0 and s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.min_p > 0:
        probs = (logits / s.temperature).softmax(-1)
        logits = logits.masked_fill(probs < s.min_p * probs.max(), float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = logits.sort(descending=True)
        probs = (sorted_logits / s.temperature).softmax(-1)
        drop = probs.cumsum(-1) - probs >= s.top_p  # keep the token that crosses top_p
        logits = logits.scatter(0, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


def _needs_row_filters(s: Sampling) -> bool:
    penalties = s.repetition_penalty != 1.0 or s.presence_penalty != 0 or s.frequency_penalty != 0
    return penalties or s.top_k > 0 or s.min_p > 0 or s.top_p < 1.0


def sample_tokens(
    logits: torch.Tensor,
    samplings: list[Sampling],
    prompts: list[torch.Tensor],
    generated: list[torch.Tensor],
    generators: list[torch.Generator],
) -> list[int]:
    """Next token per row. `logits` is [rows, vocab]; row i uses only its own sampling, tokens, generator."""
    logits = logits.float().clone()  # float32 like the model output; float64 doubled the per-step cost
    for i, s in enumerate(samplings):
        if _needs_row_filters(s):
            row = apply_repetition_penalty(
                logits[i], torch.cat([prompts[i], generated[i]]), s.repetition_penalty
            )
            logits[i] = filter_logits(apply_output_penalties(row, generated[i], s), s)
    greedy = [s.temperature == 0 for s in samplings]
    temps = torch.tensor([s.temperature or 1.0 for s in samplings]).unsqueeze(1)
    cdf = (logits / temps).softmax(-1).cumsum(-1)
    draws = torch.cat([torch.rand(1, generator=g) for g in generators])
    picks = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(1)).squeeze(1)
    picks = picks.clamp(max=logits.shape[1] - 1)
    argmax = logits.argmax(-1)
    return [int(argmax[i] if greedy[i] else picks[i]) for i in range(len(samplings))]
