"""GPU smoke test: the starter Llama-3 config, cut small, through real Axolotl and then the eval engine.

    python bench/gpu_smoke.py [--layers 8] [--steps 40] [--tokenizer DIR] [--out FILE.json]
    python bench/gpu_smoke.py --tiny          (the CPU dry run: a toy shape, CPU overrides)

Needs no Hub access: the base model is a random-init Llama-3-8B shape (32 heads, 8 KV heads, hidden
4096, MLP 14336, vocabulary 128,256) with `--layers` of its 32 layers, written to a local folder, and
the tokenizer is SmolLM2's (ChatML tokens included; from the HF cache, or `--tokenizer DIR`). Training
goes through haha's own `train()` (the pod's code path: Device detection, W&B naming, the log parser)
on a throwaway repo holding train/config/haha-gpusmoke-001.yml: the starter
train/config/haha-llama-3-8b-lora-001.yml with these changes, each printed:
- base_model: the local random-init folder; pad token: SmolLM2's <|endoftext|>;
- max_steps (default 40), no evaluation or checkpoints during training, no W&B;
- flash_attention → sdp_attention and adamw_bnb_8bit → adamw_torch_fused where flash-attn or
  bitsandbytes are not installed (the GPU device here has neither; the pod image has both).
Then the transformers engine (vLLM where installed) evaluates the starter eval.json (180 requests)
with the adapter, twice (the second pass checks the completions repeat).

Prints one table: train tokens/s (steady state, after the first logged step), MFU (6 × params ×
tokens/s / the GPU's dense bf16 peak from haha.toml, the cost model's convention), eval seconds (load,
generate), peak GPU memory (train: nvidia-smi, whole process; eval: torch's max allocated).
bench/gpu_smoke_wheels.py builds the wheels a registry-less CUDA machine needs (and says how to run).

Measured 2026-11-28 on one H200 (torch 2.11.0+cu130, transformers 5.16.1, peft 0.20.0, Axolotl 0.19.0,
bitsandbytes 0.50.2; no flash-attn there, so sdp_attention; Axolotl auto-enabled its LoRA Triton
kernels; adamw_bnb_8bit kept): 8 of 32 layers, 2.80 B params, packed 4 × 512, 60 steps:

| what           | number |
|----------------|--------|
| train tokens/s | 8,750 (steady state; 0.234 s/step) |
| train MFU      | 14.8% (6·N·tok/s over 989 TFLOP/s) |
| train wall     | 54.9 s (Axolotl start, data prep, 60 steps, save) |
| train peak GPU | 11.8 GiB (nvidia-smi) |
| eval (HF engine, bf16) | 11.1 s with model load + LoRA merge, then 1.0 s for 180 completions |
| eval repeat    | 180/180 identical on a second pass |
| eval peak GPU  | 5.8 GiB (torch max allocated) |
| wall           | 82.3 s (random-init model built and saved in 15.3 s) |
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("haha") is None:  # a bare checkout (the GPU device): use the source tree
    sys.path.insert(0, str(ROOT / "scripts"))

import yaml  # noqa: E402
from haha.evalspec import EvalSpec  # noqa: E402
from haha.evaluate import build_requests, choose_engine  # noqa: E402
from haha.experiment import Experiment  # noqa: E402
from haha.models import SMOLLM2, cached_snapshot  # noqa: E402
from haha.repo import Repo  # noqa: E402
from haha.settings import load_settings  # noqa: E402
from haha.train import Device, train  # noqa: E402

STARTER = "haha-llama-3-8b-lora-001"
NAME = "haha-gpusmoke-001"
LLAMA3_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 49152,
    "max_position_embeddings": 2048,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
_TOKENS = re.compile(r"""['"]tokens/total['"]:\s*'?(\d+)""")
_LOSS_LINE = re.compile(r"""['"]loss['"]:\s*'?([\d.]+)""")
_STEP_LOG = re.compile(r"^train: step (\d+)/(\d+) loss ([\d.]+)")


def main() -> None:
    args = parse_args()
    device = Device.detect()
    if device.kind == "cpu" and not args.tiny:
        sys.exit("no CUDA device: pass --tiny for the CPU dry run")
    work = Path(args.work or tempfile.mkdtemp(prefix="haha-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"device": str(device), "tiny": args.tiny}
    print(f"gpu_smoke: {device}; work folder {work}", flush=True)

    started = time.perf_counter()
    shape = {**(TINY if args.tiny else LLAMA3_8B)}
    if args.layers:
        shape["num_hidden_layers"] = args.layers
    model_dir, params = make_base_model(work / "base", shape, tokenizer_dir(args.tokenizer), device)
    report["model"] = {**shape, "params": params, "seconds": round(time.perf_counter() - started, 1)}
    print(f"base model: {params / 1e9:.3f} B params, {shape['num_hidden_layers']} layers", flush=True)

    repo, changes = make_repo(work / "repo", model_dir, args.steps)
    report["config_changes"] = changes
    for key, (was, now) in changes.items():
        print(f"config: {key}: {was!r} -> {now!r}", flush=True)
    report["train"] = run_training(repo, work / "run", device, params)
    report["eval"] = run_eval(repo, model_dir, Path(report["train"]["adapter"]), device)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_table(report)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=None, help="Llama-3-8B layers to keep (default 8)")
    parser.add_argument("--steps", type=int, default=40, help="training steps (max_steps)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: SmolLM2's, cached)")
    parser.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here too")
    parser.add_argument("--tiny", action="store_true", help="a toy shape: the CPU dry run")
    args = parser.parse_args()
    if args.layers is None and not args.tiny:
        args.layers = 8
    return args


def tokenizer_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    cached = cached_snapshot(SMOLLM2, load_settings(Path.cwd(), os.environ).hub_cache_dir)
    if cached is None:
        sys.exit(f"no tokenizer: pass --tokenizer DIR (a folder with tokenizer.json), or seed {SMOLLM2}")
    return cached


def make_base_model(out: Path, shape: dict[str, Any], tokenizer: Path, device: Device) -> tuple[Path, int]:
    """A random-init LlamaForCausalLM of `shape` in bf16 (fp32 on CPU), saved with the tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2)
    dtype = torch.bfloat16 if device.kind == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if device.kind == "cuda" else "cpu"):
        model = LlamaForCausalLM(config).to(dtype)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    del model
    if device.kind == "cuda":
        torch.cuda.empty_cache()
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(out)
    return out, params


def make_repo(root: Path, model_dir: Path, steps: int) -> tuple[Repo, dict[str, list[Any]]]:
    """A throwaway repo: the starter Llama config cut small, the starter data, eval.json, haha.toml."""
    for sub in ("train/config", "train/data", "train/eval", "train/results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    shutil.copy(ROOT / "train/eval/eval.json", root / "train/eval/eval.json")
    config = yaml.safe_load((ROOT / f"train/config/{STARTER}.yml").read_text())
    for ref in config["datasets"]:
        name = Path(ref["path"]).name
        shutil.copy(ROOT / "train/data" / name, root / "train/data" / name)
    wanted: dict[str, Any] = {
        "base_model": str(model_dir),
        "special_tokens": {"pad_token": "<|endoftext|>"},
        "max_steps": steps,
        "val_set_size": 0.0,
        "eval_strategy": "no",
        "evals_per_epoch": None,
        "saves_per_epoch": None,
        "save_strategy": "no",
    }
    if importlib.util.find_spec("flash_attn") is None and config.get("flash_attention"):
        wanted |= {"flash_attention": False, "sdp_attention": True}
    if importlib.util.find_spec("bitsandbytes") is None and "bnb" in str(config.get("optimizer")):
        wanted["optimizer"] = "adamw_torch_fused"
    changes = {k: [config.get(k), v] for k, v in wanted.items() if config.get(k) != v}
    config.update(wanted)
    config = {k: v for k, v in config.items() if v is not None}
    (root / f"train/config/{NAME}.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Repo(root), changes


class GpuMemory:
    """The peak `memory.used` nvidia-smi reports while the block runs (every process on the GPU)."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.available = shutil.which("nvidia-smi") is not None

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                self.peak_mib = max([self.peak_mib, *(int(v) for v in out.split() if v.isdigit())])
            except (OSError, subprocess.SubprocessError):
                return

    def __enter__(self) -> GpuMemory:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join(timeout=15)


def run_training(repo: Repo, workdir: Path, device: Device, params: int) -> dict[str, Any]:
    """haha's train() on the cut config; steady-state tokens/s from the loss lines' arrival times."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HAHA_WORKDIR": str(workdir.parent)}
    settings = load_settings(repo.root, env).model_copy(update={"wandb_project": ""})  # no W&B here
    exp = Experiment.load(repo.config_path(NAME))
    arrivals: list[tuple[float, int]] = []  # (wall time, step) per logged loss

    def log(line: str) -> None:
        print(line, flush=True)
        if m := _STEP_LOG.match(line):
            arrivals.append((time.perf_counter(), int(m.group(1))))

    started = time.perf_counter()
    with GpuMemory() as memory:
        outcome = train(exp, repo, workdir, settings, device, log, force=True)
    seconds = time.perf_counter() - started
    text = outcome.log_file.read_text(errors="replace").replace("\r", "\n")
    totals = [
        int(m.group(1))
        for line in text.splitlines()
        if _LOSS_LINE.search(line)
        for m in [_TOKENS.search(line)]
        if m
    ]
    result: dict[str, Any] = {
        "adapter": str(outcome.adapter_dir),
        "seconds": round(seconds, 1),
        "steps_logged": len(arrivals),
        "tokens_trained": outcome.tokens_trained,
        "peak_gpu_mib": memory.peak_mib if memory.available else None,
    }
    if len(arrivals) >= 3 and len(totals) == len(arrivals):
        # From the first logged step on: model load, data prep and the first (compiling) step excluded.
        tokens = totals[-1] - totals[0]
        span = arrivals[-1][0] - arrivals[0][0]
        result["tokens_per_s"] = round(tokens / span, 1)
        result["step_s"] = round(span / (arrivals[-1][1] - arrivals[0][1]), 3)
        peak = peak_tflops(device, repo)
        if peak:
            result["mfu"] = round(6 * params * tokens / span / (peak * 1e12), 4)
            result["peak_tflops"] = peak
    else:
        result["note"] = f"{len(arrivals)} loss lines, {len(totals)} token totals: no steady-state rate"
    return result


def peak_tflops(device: Device, repo: Repo) -> float | None:
    if device.kind != "cuda":
        return None
    settings = load_settings(repo.root, {})
    for gpu in settings.compute.gpu_types:
        if gpu.id in device.name or device.name in gpu.id:
            return gpu.peak_bf16_tflops
    return 989.0 if re.search(r"H100|H200", device.name) else None


def run_eval(repo: Repo, model_dir: Path, adapter: Path, device: Device) -> dict[str, Any]:
    """The starter eval.json (prompts × settings × seeds) through the engine, twice."""
    import torch

    settings = load_settings(repo.root, {})
    data = json.loads(repo.eval_path.read_text())
    spec = EvalSpec(tuple(data["prompts"]), tuple(data["settings"]), int(data["seedVariants"]), "smoke")
    exp = Experiment.load(repo.config_path(NAME))
    requests = build_requests(spec, exp.system_message, settings.default_max_tokens)
    if device.kind == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine = choose_engine("auto", str(model_dir), adapter, settings.eval_batch_size)
    started = time.perf_counter()
    first = engine.generate(requests)  # loads the model first
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = engine.generate(requests)
    second_s = time.perf_counter() - started
    result = {
        "engine": engine.name,
        "requests": len(requests),
        "first_pass_s": round(first_s, 1),  # model load + merge + generate
        "second_pass_s": round(second_s, 1),  # generate alone
        "repeat_identical": sum(a == b for a, b in zip(first, second, strict=True)),
        "mode": engine.mode(),
    }
    if device.kind == "cuda":
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return result


def print_table(report: dict[str, Any]) -> None:
    t, e, m = report["train"], report["eval"], report["model"]
    mfu = f"{t['mfu']:.1%}" if "mfu" in t else "n/a"
    rows = [
        ("device", report["device"]),
        ("model", f"Llama-3-8B shape, {m['num_hidden_layers']} layers, {m['params'] / 1e9:.2f} B params"),
        ("train tokens/s", f"{t.get('tokens_per_s', 'n/a')} (steady state, {t['steps_logged']} steps)"),
        ("train MFU", f"{mfu} (6·N·tok/s over {t.get('peak_tflops', '?')} TFLOP/s)"),
        ("train wall", f"{t['seconds']} s (Axolotl start, data prep, steps, save)"),
        ("train peak GPU", f"{t['peak_gpu_mib']} MiB (nvidia-smi)"),
        ("eval engine", f"{e['engine']} {e['mode']}"),
        (
            "eval seconds",
            f"{e['first_pass_s']} s with load, {e['second_pass_s']} s generate ({e['requests']})",
        ),
        ("eval repeat", f"{e['repeat_identical']}/{e['requests']} identical on a second pass"),
        ("eval peak GPU", f"{e.get('peak_gpu_gib', 'n/a')} GiB (torch max allocated)"),
        ("wall", f"{report['wall_s']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n| " + "what".ljust(width) + " | number |\n|" + "-" * (width + 2) + "|--------|")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
