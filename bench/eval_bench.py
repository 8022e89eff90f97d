"""vLLM against the transformers engine on the starter eval, side by side in one run.

    python bench/eval_bench.py [--adapter DIR] [--runs 2] [--alone 6] [--eval-python PY]

Both engines evaluate the same 180 requests (train/eval/eval.json: 12 prompts x 5 temperatures x
3 seeds, 64 tokens) with the same LoRA adapter on the same machine, each in a fresh process of the
eval environment (`.venv-vllm`, where `make run` evaluates), alternating engine by engine so that a
change in the machine's load hits both. Per run: load (process start to engine ready: imports, model,
adapter merge), generate, the whole process's wall and CPU seconds. Then the contract checks: every
run of an engine gives the same completions, and a sample of requests generated one at a time gives
what the batch gave. The load average is printed before and after: the machine may be shared.

Without --adapter, a LoRA r=16 adapter on every linear layer with random non-zero B is made once
(beside the other bench files under .haha/bench); pass a trained one to see real completion lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You are a creative and hilarious comedy writer that loves to craft jokes."
ENGINES = ("transformers", "vllm")


def requests():
    from haha.evalspec import load_eval_spec
    from haha.evaluate import build_requests

    return build_requests(load_eval_spec(ROOT / "train/eval/eval.json"), SYSTEM, 64)


def base_model() -> str:
    from haha.models import SMOLLM2, ensure_model
    from haha.settings import load_settings

    return str(ensure_model(SMOLLM2, load_settings(ROOT, os.environ)))


def make_adapter(out: Path) -> Path:
    """A LoRA adapter like the starter config's (r=16, alpha 32, all linear layers), random B."""
    if (out / "adapter_config.json").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_model(), dtype=torch.float32)
    linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = LoraConfig(r=16, lora_alpha=32, target_modules=linear, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)  # changes completions, keeps them language
    peft_model.save_pretrained(out)
    return out


def child(engine_name: str, adapter: Path, alone: int, out: Path, started: float) -> None:
    """One engine in this process: load, generate all, then `alone` sampled requests one at a time."""
    from haha.evaluate import choose_engine

    reqs = requests()
    engine = choose_engine(engine_name, base_model(), adapter)
    engine.generate(reqs[:1])  # loads the engine; its own cost is in "load"
    loaded, loaded_cpu = time.time(), time.process_time()
    batch = engine.generate(reqs)
    generated, generated_cpu = time.time(), time.process_time()
    step = max(1, len(reqs) // alone) if alone else len(reqs)
    sample = list(range(0, len(reqs), step))[:alone]
    singles = {i: engine.generate([reqs[i]])[0] for i in sample}
    report = {
        "load_s": loaded - started,
        "generate_s": generated - loaded,
        "generate_cpu_s": generated_cpu - loaded_cpu,  # every thread's: less sensitive to other load
        "completions": batch,
        "alone_same": sum(singles[i] == batch[i] for i in sample),
        "alone": len(sample),
        "mode": engine.mode(),
    }
    out.write_text(json.dumps(report))


def run_child(python: str, engine: str, adapter: Path, alone: int, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    argv = [python, __file__, "--child", engine, "--adapter", str(adapter), "--alone", str(alone)]
    argv += ["--out", str(out), "--started", repr(started)]
    # As `make test-vllm` and the eval stage run it: in-process engine, OpenMP threads that sleep.
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{engine} failed:\n{done.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**json.loads(out.read_text()), "wall_s": time.time() - started, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--alone", type=int, default=6, help="requests also generated one at a time")
    parser.add_argument("--eval-python", default=str(ROOT / ".venv-vllm/bin/python"))
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.adapter, args.alone, args.out, args.started)
        return
    work = ROOT / ".haha/bench/eval"
    work.mkdir(parents=True, exist_ok=True)
    adapter = args.adapter or make_adapter(work / "adapter")
    engines = args.engines.split(",")
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    for n in range(args.runs):
        for engine in engines:
            result = run_child(args.eval_python, engine, adapter, args.alone, work / f"{engine}-{n}.json")
            runs[engine].append(result)
            load_s, generate_s = result["load_s"], result["generate_s"]
            print(f"  {engine} run {n + 1}: load {load_s:.1f} s, generate {generate_s:.1f} s")
    load_after = os.getloadavg()

    print(f"\n180 requests x 64 tokens, SmolLM2-135M + LoRA ({adapter}), CPU, {os.cpu_count()} cores")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1-minute)")
    head = f"{'engine':<14}{'run':>4}{'load s':>9}{'generate s':>12}{'(CPU s)':>9}"
    print(f"{head}{'process s':>11}{'(CPU s)':>9}  contract")
    for engine, results in runs.items():
        first = results[0]["completions"]
        for n, r in enumerate(results):
            same = "same as run 1" if r["completions"] == first else "DIFFERS from run 1"
            alone = f"{r['alone_same']}/{r['alone']} alone = in batch"
            print(
                f"{engine:<14}{n + 1:>4}{r['load_s']:>9.1f}{r['generate_s']:>12.1f}"
                f"{r['generate_cpu_s']:>9.1f}"
                f"{r['wall_s']:>11.1f}{r['cpu_s']:>9.1f}  {same}; {alone}; {r['mode']}"
            )
    if len(engines) == 2:
        a, b = (min(r["wall_s"] for r in runs[e]) for e in engines)
        g_a, g_b = (min(r["generate_s"] for r in runs[e]) for e in engines)
        c_a, c_b = (min(r["cpu_s"] for r in runs[e]) for e in engines)
        ratios = f"process {b / a:.2f}, generate {g_b / g_a:.2f}, CPU {c_b / c_a:.2f}"
        print(f"{engines[1]} / {engines[0]}, best of each: {ratios}")
        print("target: vllm / transformers <= 1.0, every run the same, every sampled request the same alone")


if __name__ == "__main__":
    main()
