"""Parameter counts of base models, for the 6·N·D FLOP estimate, without downloading anything."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Exact counts where we know them: they make the cost table match the calibration runs.
KNOWN_PARAMS = {
    "meta-llama/Meta-Llama-3-8B": 8.03e9,  # model card: 8,030,261,248
    "meta-llama/Meta-Llama-3-8B-Instruct": 8.03e9,
    "meta-llama/Llama-3.1-8B": 8.03e9,
    "meta-llama/Llama-3.1-8B-Instruct": 8.03e9,
    "HuggingFaceTB/SmolLM2-135M": 134.5e6,  # measured: docs/calibration.md
    "HuggingFaceTB/SmolLM2-135M-Instruct": 134.5e6,
}
# Context lengths (max_position_embeddings in each model's config.json on the Hub).
KNOWN_CONTEXT = {
    "meta-llama/Meta-Llama-3-8B": 8192,
    "meta-llama/Meta-Llama-3-8B-Instruct": 8192,
    "meta-llama/Llama-3.1-8B": 131072,
    "meta-llama/Llama-3.1-8B-Instruct": 131072,
    "HuggingFaceTB/SmolLM2-135M": 8192,
    "HuggingFaceTB/SmolLM2-135M-Instruct": 8192,
}
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)([bm])(?![a-z])", re.IGNORECASE)
_UNIT = {"b": 1e9, "m": 1e6}


def params_from_name(base_model: str) -> float | None:
    """`...-8B` → 8e9, `...-135M-...` → 135e6 (the last size token in the repo name)."""
    sizes = _SIZE.findall(base_model.rsplit("/", 1)[-1])
    if not sizes:
        return None
    number, unit = sizes[-1]
    return float(number) * _UNIT[unit.lower()]


def params_from_config(config: dict[str, Any]) -> float | None:
    """Count a Llama-style decoder from its config.json (embeddings, attention, gated MLP)."""
    try:
        hidden = config["hidden_size"]
        layers = config["num_hidden_layers"]
        inter = config["intermediate_size"]
        vocab = config["vocab_size"]
        heads = config["num_attention_heads"]
    except KeyError:
        return None
    kv_dim = hidden * config.get("num_key_value_heads", heads) // heads
    attention = 2 * hidden * hidden + 2 * hidden * kv_dim
    mlp = 3 * hidden * inter
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return float(embeddings + layers * (attention + mlp))


def _cached_config(base_model: str) -> dict[str, Any] | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(base_model, "config.json")
    except ValueError:
        return None
    if not isinstance(path, str):
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def estimate_params(base_model: str) -> tuple[float | None, str]:
    """Parameters of `base_model` and where the number came from."""
    if base_model in KNOWN_PARAMS:
        return KNOWN_PARAMS[base_model], "known model"
    from_name = params_from_name(base_model)
    if from_name is not None:
        return from_name, "size in the model name"
    config = _cached_config(base_model) if base_model else None
    from_config = params_from_config(config) if config else None
    if from_config is not None:
        return from_config, "config.json in the HF cache"
    return None, "unknown"


def context_length(base_model: str) -> int | None:
    """The base model's context in tokens: known, or its cached config.json; None when unknown."""
    if base_model in KNOWN_CONTEXT:
        return KNOWN_CONTEXT[base_model]
    found = (_cached_config(base_model) or {}).get("max_position_embeddings") if base_model else None
    return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else None
