"""The vLLM engine: one `generate` call over every request, LoRA served unmerged on GPUs.

Adapters are merged into the base first (see merge.py) and served as a plain model where vLLM
cannot serve them unmerged, or should not (`serve_merged`): on CPU, and for adapters that carry
`modules_to_save` (e.g. embed_tokens/lm_head, as Axolotl's own Llama-3 example sets).

Version-dependent facts are read from the installed vLLM where it can tell (the LoRA rank table);
the rest are stated against the version they were read from (0.32.0) and checked by the vllm tests.
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
from haha.evaluate.vllm_limits import batch_invariant_supported, max_lora_rank


def cuda_capability() -> tuple[int, int] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return major, minor


# On CPU, vLLM reserves gpu_memory_utilization (0.92) of *all* RAM and refuses to start when less is
# free. A fixed KV cache (VLLM_CPU_KVCACHE_SPACE, in GiB, still wins) skips that check; 1 GiB holds
# ~45k tokens of SmolLM2-135M or ~8k of Llama-3-8B.
CPU_KV_CACHE_BYTES = 1 << 30


def llm_kwargs(is_cpu: bool) -> dict:
    """dtype and memory arguments of LLM(...) for the platform.

    CPU: float32, as the HF engine uses on CPU. In bf16, vllm-cpu 0.32's numerics depend on the batch
    shape: up to 7 of 12 seeded SmolLM2 completions (greedy ones too) changed when generated alone
    instead of in their batch, breaking the Engine contract; in float32 none did.

    Chunked prefill is off on CPU: when a seeded request's prefill is split over steps, vLLM rewinds
    its generator's offset, which CPU generators do not have ("RuntimeError: CPU Generator does not use
    offset"; 0.32, v1/worker/gpu_model_runner.py). With it off, a prompt waits for a step with room for
    all of it (vLLM raises max_num_batched_tokens to max_model_len), so none is ever split. Seen on
    the starter eval.json: 180 prompts of ~60 tokens overflow the first step's 4,096-token budget.
    Eager on CPU: vllm-cpu otherwise traces and compiles the model with Inductor (platforms/cpu.py),
    which took longer to start here than it saved on a 64-token eval (load 154 s vs 44 s, decode equal).

    CUDA graphs on GPU: every decode step otherwise launches each kernel from Python. Batch-invariant
    mode does not need eager: vLLM 0.32 turns on its breakable CUDA graphs for it by itself
    (config/vllm.py, "VLLM_BATCH_INVARIANT=1: auto-enabling VLLM_USE_BREAKABLE_CUDAGRAPH=1").
    """
    if is_cpu:
        return {
            "dtype": "float32",
            "enforce_eager": True,
            "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES,
            "enable_chunked_prefill": False,
        }
    return {"dtype": "bfloat16", "enforce_eager": False}


def serve_merged(adapter_config: dict, is_cpu: bool, asked: bool | None = None) -> bool:
    """Whether to merge the adapter into the base and serve a plain model instead of a LoRA request
    (`asked`, when not None, decides, except that `modules_to_save` always needs the merge).

    On CPU, vllm-cpu 0.32's LoRA path (punica kernels in plain torch, applied to every linear layer at
    every step) made the starter eval 2.8x slower than the same adapter merged first (165 s against
    58 s, docs/calibration.md); a merge costs seconds. On GPUs the LoRA kernels are cheap and serving
    unmerged keeps one base model for any adapter. vLLM rejects `modules_to_save` everywhere.
    """
    if adapter_config.get("modules_to_save"):
        return True
    return is_cpu if asked is None else asked


def cpu_threads() -> int:
    """The cores this process may run on (all of them where the OS cannot say, e.g. macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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

    def __init__(
        self, base_model: str, adapter: Path | None, max_model_len: int = 1024, merge: bool | None = None
    ) -> None:
        """`merge`: serve the adapter merged (True) or as a LoRA request (False); None: `serve_merged`."""
        self.base_model = base_model
        self.adapter = adapter
        self.max_model_len = max_model_len
        self.merge = merge
        self._llm = None
        self._lora = None
        self._stop_ids: list[int] = []
        self._dtype: str | None = None
        self._batch_invariant = False

    def versions(self) -> dict[str, str]:
        return {pkg: version(pkg) for pkg in (vllm_distribution(), "torch", "transformers")}

    def mode(self) -> dict:
        """How completions were computed (results meta.eval); known once the engine has loaded."""
        return {"batch_invariant": self._batch_invariant, "dtype": self._dtype}

    def _load(self) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # deterministic offline batches
        # Set before vLLM is imported: some of its modules read the flag at import (LoRA kernels).
        # On CUDA a re-eval then reproduces every completion whatever the batch, as float32 does on CPU.
        # An explicit VLLM_BATCH_INVARIANT in the environment wins.
        if batch_invariant_supported(version(vllm_distribution()), cuda_capability()):
            os.environ.setdefault("VLLM_BATCH_INVARIANT", "1")
        from vllm import LLM, envs
        from vllm.lora.request import LoRARequest
        from vllm.platforms import current_platform

        is_cpu = current_platform.is_cpu()
        if is_cpu:
            # vLLM (utils/torch_utils.py) drops torch to one thread for serving unless OMP_NUM_THREADS
            # is set, and then leaves torch's own default (a thread per core): on 2 cores one thread
            # halves the speed of every step. An explicit OMP_NUM_THREADS wins. The completions were
            # the same with 1 and 2 threads (180/180, float32; docs/calibration.md).
            os.environ.setdefault("OMP_NUM_THREADS", str(cpu_threads()))
        self._batch_invariant = bool(envs.VLLM_BATCH_INVARIANT)  # as vLLM itself read it
        model, lora_kwargs = self.base_model, {}
        if self.adapter is not None:
            config = adapter_settings(self.adapter)
            if serve_merged(config, is_cpu, self.merge):
                model = str(merge_adapter(self.base_model, self.adapter))
            else:
                lora_kwargs = {"enable_lora": True, "max_lora_rank": max_lora_rank(int(config.get("r", 16)))}
                self._lora = LoRARequest("adapter", 1, str(self.adapter))
        kwargs = llm_kwargs(is_cpu)
        self._dtype = kwargs["dtype"]
        try:
            self._llm = LLM(
                model=model,
                seed=0,
                max_model_len=self.max_model_len,
                **kwargs,
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
