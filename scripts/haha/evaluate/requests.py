"""Turning eval.json into engine requests: one per prompt × setting × seed, in results order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from haha.evalspec import EvalSpec

STOP_STRINGS = ("<|im_end|>",)


def chatml_prompt(system: str, user: str) -> str:
    """The exact ChatML text the model was trained on (system block, user turn, open assistant turn)."""
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{head}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters with the defaults of both engines made explicit."""

    temperature: float
    max_tokens: int
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def from_setting(cls, setting: dict[str, Any], default_max_tokens: int) -> Sampling:
        names = ("top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
        known = {k: setting[k] for k in names if k in setting}
        return cls(
            temperature=float(setting["temperature"]),
            max_tokens=int(setting.get("max_tokens", default_max_tokens)),
            **known,
        )


@dataclass(frozen=True)
class EvalRequest:
    prompt_index: int
    setting_index: int
    seed: int
    text: str
    sampling: Sampling


def build_requests(spec: EvalSpec, system: str, default_max_tokens: int) -> list[EvalRequest]:
    """All requests, prompt-major then setting then seed, matching the results JSON nesting."""
    samplings = [Sampling.from_setting(s, default_max_tokens) for s in spec.settings]
    return [
        EvalRequest(p, s, seed, chatml_prompt(system, prompt), samplings[s])
        for p, prompt in enumerate(spec.prompts)
        for s in range(len(spec.settings))
        for seed in spec.seeds
    ]


def clean_completion(text: str) -> str:
    """Cut at the first stop string and trim whitespace."""
    for stop in STOP_STRINGS:
        text = text.split(stop, 1)[0]
    return text.strip()
