"""Haha: run LLM finetune experiments straight from a git repo."""

__version__ = "0.1.0"
