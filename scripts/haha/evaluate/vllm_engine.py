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

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


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


def cpu_kwargs(is_cpu: bool) -> dict:
    """Extra LLM(...) arguments for the CPU backend (vllm-cpu); none on GPUs."""
    return {"kv_cache_memory_bytes": CPU_KV_CACHE_BYTES} if is_cpu else {}


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
                dtype="bfloat16",
                enforce_eager=True,
                seed=0,
                max_model_len=self.max_model_len,
                **cpu_kwargs(current_platform.is_cpu()),
                **lora_kwargs,
            )
        except ValueError as exc:
            raise RunFailed(
                f"vLLM could not load the model/adapter: {exc}",
                fix="evaluate with --engine transformers, or merge the adapter",
            ) from exc

    def generate(self, requests: list[EvalRequest], progress: Progress | None = None) -> list[str]:
        from vllm import SamplingParams

        if self._llm is None:
            self._load()
        params = [
            SamplingParams(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                top_k=r.sampling.top_k,
                min_p=r.sampling.min_p,
                repetition_penalty=r.sampling.repetition_penalty,
                max_tokens=r.sampling.max_tokens,
                seed=r.seed,
                stop=list(STOP_STRINGS),
            )
            for r in requests
        ]
        outputs = self._llm.generate(
            [r.text for r in requests], params, lora_request=self._lora, use_tqdm=False
        )
        if progress:
            progress(len(requests), len(requests))
        return [clean_completion(o.outputs[0].text) for o in outputs]
