"""The vLLM engine: one `generate` call over every request, LoRA served unmerged where vLLM can.

vLLM cannot load adapters that carry `modules_to_save` (e.g. embed_tokens/lm_head, as Axolotl's own
Llama-3 example sets): those are merged into the base first (see merge.py) and served as a plain model.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import packages_distributions, version
from pathlib import Path

from haha.errors import RunFailed
from haha.evaluate.engine import Progress
from haha.evaluate.merge import merge_adapter
from haha.evaluate.requests import STOP_STRINGS, EvalRequest, clean_completion

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm.config.lora.MaxLoRARanks (0.32)


def max_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise RunFailed(
        f"LoRA rank {rank} exceeds vLLM's maximum {VLLM_LORA_RANKS[-1]}",
        field="lora_r",
        fix="lower lora_r, or evaluate with --engine transformers",
    )


# On CPU, vLLM reserves gpu_memory_utilization (0.92) of *all* RAM and refuses to start when less is
# free. A fixed KV cache (VLLM_CPU_KVCACHE_SPACE, in GiB, still wins) skips that check; 1 GiB holds
# ~45k tokens of SmolLM2-135M or ~8k of Llama-3-8B.
CPU_KV_CACHE_BYTES = 1 << 30


def llm_kwargs(is_cpu: bool) -> dict:
    """dtype and memory arguments of LLM(...) for the platform.

    CPU: float32, as the HF engine uses on CPU. In bf16, vllm-cpu 0.32's numerics depend on the batch
    shape: up to 7 of 12 seeded SmolLM2 completions (greedy ones too) changed when generated alone
    instead of in their batch, breaking the Engine contract; in float32 none did.
    """
    if is_cpu:
        return {"dtype": "float32", "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES}
    return {"dtype": "bfloat16"}


def sampling_kwargs(request: EvalRequest, stop_token_ids: list[int]) -> dict:
    """SamplingParams(...) arguments for one request (vLLM 0.32: top_k 0 means off; -1 is deprecated)."""
    s = request.sampling
    return {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k if s.top_k > 0 else 0,
        "min_p": s.min_p,
        "repetition_penalty": s.repetition_penalty,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
        "max_tokens": s.max_tokens,
        "seed": request.seed,
        "stop": list(STOP_STRINGS),
        "stop_token_ids": stop_token_ids,
    }


def vllm_distribution() -> str:
    """The installed distribution that provides `import vllm`: "vllm" on GPUs, "vllm-cpu" here."""
    return next(iter(packages_distributions().get("vllm", [])), "vllm")


def adapter_settings(adapter: Path) -> dict:
    return json.loads((adapter / "adapter_config.json").read_text())


class VllmEngine:
    name = "vllm"

    def __init__(self, base_model: str, adapter: Path | None, max_model_len: int = 1024) -> None:
        self.base_model = base_model
        self.adapter = adapter
        self.max_model_len = max_model_len
        self._llm = None
        self._lora = None
        self._stop_ids: list[int] = []

    def versions(self) -> dict[str, str]:
        return {pkg: version(pkg) for pkg in (vllm_distribution(), "torch", "transformers")}

    def _load(self) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # deterministic offline batches
        from vllm import LLM
        from vllm.lora.request import LoRARequest
        from vllm.platforms import current_platform

        model, lora_kwargs = self.base_model, {}
        if self.adapter is not None:
            config = adapter_settings(self.adapter)
            if config.get("modules_to_save"):
                model = str(merge_adapter(self.base_model, self.adapter))
            else:
                lora_kwargs = {"enable_lora": True, "max_lora_rank": max_lora_rank(int(config.get("r", 16)))}
                self._lora = LoRARequest("adapter", 1, str(self.adapter))
        try:
            self._llm = LLM(
                model=model,
                enforce_eager=True,
                seed=0,
                max_model_len=self.max_model_len,
                **llm_kwargs(current_platform.is_cpu()),
                **lora_kwargs,
            )
        except ValueError as exc:
            raise RunFailed(
                f"vLLM could not load the model/adapter: {exc}",
                fix="evaluate with --engine transformers, or merge the adapter",
            ) from exc
        # <|im_end|> is a special token where the vocabulary has it: vLLM drops special tokens from the
        # text, so the stop *string* never matches there, and only EOS would end the turn (Llama-3 with
        # added ChatML tokens: its EOS is <|end_of_text|>). Stop on the token id as the HF engine does.
        vocab = self._llm.get_tokenizer().get_vocab()
        self._stop_ids = [vocab[t] for t in STOP_STRINGS if t in vocab]

    def generate(self, requests: list[EvalRequest], progress: Progress | None = None) -> list[str]:
        from vllm import SamplingParams

        if self._llm is None:
            self._load()
        params = [SamplingParams(**sampling_kwargs(r, self._stop_ids)) for r in requests]
        outputs = self._llm.generate(
            [r.text for r in requests], params, lora_request=self._lora, use_tqdm=False
        )
        if progress:
            progress(len(requests), len(requests))
        return [clean_completion(o.outputs[0].text) for o in outputs]
