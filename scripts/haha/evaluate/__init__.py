"""Evaluation: every prompt × setting × seed completed by an engine (vLLM, or HF transformers)."""

from haha.evaluate.engine import Engine, choose_engine
from haha.evaluate.requests import EvalRequest, build_requests, chatml_prompt

__all__ = ["Engine", "EvalRequest", "build_requests", "chatml_prompt", "choose_engine"]
