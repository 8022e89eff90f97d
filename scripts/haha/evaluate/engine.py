"""The Engine interface every eval engine implements (the choice between them: evaluate/__init__)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

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
