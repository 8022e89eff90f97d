"""What the pinned vLLM allows, in one leaf module: the PR gate and the engine both read it.

The gate runs where vLLM is not installed (Actions), so the tables are kept here as read from the
pinned version; the engine prefers what the installed vLLM reports.
"""

from __future__ import annotations

import typing

from haha.errors import RunFailed

# vllm.config.lora.MaxLoRARanks as of 0.32.0: only used where vLLM is not installed (it is read from
# the installed vLLM otherwise; tests/test_vllm_engine.py checks the two agree).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Batch-invariant mode (VLLM_BATCH_INVARIANT=1) with LoRA, as read in vLLM 0.32.0's source: its Triton
# LoRA kernels switch to split_k=1 under the flag (vllm/lora/ops/triton_ops/utils.py), and the mode
# covers CUDA with compute capability 8.0+ (Ampere through Triton matmuls, Hopper/Blackwell through
# cuBLAS settings). Earlier versions were not checked, so the mode stays off for them.
BATCH_INVARIANT_SINCE = (0, 32, 0)


def lora_ranks() -> tuple[int, ...]:
    """The LoRA ranks the installed vLLM accepts as max_lora_rank."""
    try:
        from vllm.config.lora import MaxLoRARanks
    except ImportError:
        return VLLM_LORA_RANKS
    return tuple(sorted(int(r) for r in typing.get_args(MaxLoRARanks)))


def max_lora_rank(rank: int, allowed: tuple[int, ...] | None = None) -> int:
    """The smallest rank vLLM accepts that holds `rank`."""
    allowed = allowed or lora_ranks()
    for candidate in allowed:
        if rank <= candidate:
            return candidate
    raise RunFailed(
        f"LoRA rank {rank} exceeds vLLM's maximum {allowed[-1]}",
        field="lora_r",
        fix="lower lora_r, or evaluate with --engine transformers",
    )


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def batch_invariant_supported(vllm_version: str, cuda_capability: tuple[int, int] | None) -> bool:
    """Whether this vLLM on this device has a batch-invariant mode that covers LoRA."""
    return (
        cuda_capability is not None
        and cuda_capability >= (8, 0)
        and _release(vllm_version) >= BATCH_INVARIANT_SINCE
    )
