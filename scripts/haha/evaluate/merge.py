"""Merging a LoRA adapter into its base model, for engines that cannot serve it unmerged."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def merge_adapter(base_model: str, adapter: Path) -> Path:
    """Write base + adapter as one model beside the adapter (reused when already there)."""
    out = adapter.parent / f"{adapter.name}-merged"
    if (out / "config.json").is_file():
        return out
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_source = adapter if (adapter / "tokenizer.json").exists() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    # Written aside and renamed: config.json marks a finished merge, so a killed run must not leave one.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
