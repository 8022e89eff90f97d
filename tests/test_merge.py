"""Merging an adapter for the engines that serve it merged: float32, reused only while unchanged.

A tiny random Llama (SmolLM2's tokenizer, 8-wide layers) so that the merge itself takes a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from haha.evaluate.merge import merge_adapter
from haha.models import SMOLLM2, ensure_model
from process_settings import process_settings
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(ensure_model(SMOLLM2, process_settings()))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    out = tmp_path_factory.mktemp("base") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_adapter(base: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


def q_proj(merged: Path) -> torch.Tensor:
    (weights,) = merged.glob("*.safetensors")
    return load_file(weights)["model.layers.0.self_attn.q_proj.weight"]


def test_merge_is_float32_and_follows_a_retrained_adapter(tiny_base: Path, tmp_path: Path) -> None:
    adapter = save_adapter(tiny_base, tmp_path / "output", seed=1)
    merged = merge_adapter(str(tiny_base), adapter)
    assert merged == tmp_path / "output-merged"
    first = q_proj(merged)
    assert first.dtype == torch.float32  # a bfloat16 merge would round the LoRA delta away
    written = (merged / "merged_from.json").stat().st_mtime_ns

    assert merge_adapter(str(tiny_base), adapter) == merged  # unchanged adapter: the merge is reused
    assert (merged / "merged_from.json").stat().st_mtime_ns == written

    save_adapter(tiny_base, adapter, seed=2)  # retrained into the same folder (haha run --retrain)
    assert not torch.equal(q_proj(merge_adapter(str(tiny_base), adapter)), first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"
