"""Merging a LoRA adapter into its base model, for engines that serve it merged (see vllm_engine)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

MARKER = "merged_from.json"  # written last: names the base and the adapter files the merge came from


def adapter_digest(base_model: str, adapter: Path) -> dict[str, str]:
    """What a merge depends on: the base model's name and a hash of each adapter file."""
    files = sorted(p for p in adapter.iterdir() if p.is_file())
    return {"base_model": base_model} | {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def merge_adapter(base_model: str, adapter: Path) -> Path:
    """Write base + adapter as one model beside the adapter (reused while the adapter is unchanged).

    Merged in float32, the dtype the engines compute in on CPU: a bfloat16 merge rounds the LoRA delta
    away from what the HF engine (which merges in float32) evaluates. A retrained adapter (same folder,
    new weights) gets a new merge.
    """
    out = adapter.parent / f"{adapter.name}-merged"
    digest = adapter_digest(base_model, adapter)
    marker = out / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == digest:
        return out
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_source = adapter if (adapter / "tokenizer.json").exists() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    # Written aside and renamed: the marker means a finished merge, so a killed run must not leave one.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps(digest, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
