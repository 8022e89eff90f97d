"""Batched eval vs one request at a time: same model, same machine, same requests, in one run.

    python bench/eval_bench.py [--sample N] [--max-tokens T]

The batched engine decodes the whole eval.json (12 prompts x 5 temperatures x 3 seeds) in one pass;
one-at-a-time decodes a systematic sample of the same requests (every k-th, N in all; --sample 0
runs all of them) and its per-request mean is extrapolated to the full set. Target: >= 10x.
Uses the base SmolLM2 model (no adapter) so no training is needed; `haha models seed` first.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from haha.evalspec import load_eval_spec
from haha.evaluate import build_requests
from haha.evaluate.hf_engine import TransformersEngine
from haha.models import SMOLLM2, ensure_model
from haha.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You are a creative and hilarious comedy writer that loves to craft jokes."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    spec = load_eval_spec(ROOT / "train/eval/eval.json")
    requests = build_requests(spec, SYSTEM, args.max_tokens)
    engine = TransformersEngine(str(ensure_model(SMOLLM2, load_settings(ROOT, os.environ))), None)
    engine.generate(requests[:2])  # load + warm up, excluded from both timings

    started = time.perf_counter()
    batched = engine.generate(requests)
    batched_s = time.perf_counter() - started

    step = max(1, len(requests) // args.sample) if args.sample else 1
    sample = list(range(0, len(requests), step))[: args.sample or None]
    started = time.perf_counter()
    singles = [engine.generate([requests[i]])[0] for i in sample]
    single_s = time.perf_counter() - started
    per_request = single_s / len(sample)
    projected = per_request * len(requests)
    same = sum(singles[k] == batched[i] for k, i in enumerate(sample))

    print(f"requests: {len(requests)} (max_tokens {args.max_tokens}), model {SMOLLM2}, CPU")
    print(f"{'mode':<28}{'seconds':>10}{'per request':>14}")
    print(f"{'batched (all)':<28}{batched_s:>10.1f}{batched_s / len(requests):>14.3f}")
    print(f"{f'one at a time ({len(sample)} sampled)':<28}{single_s:>10.1f}{per_request:>14.3f}")
    print(f"{'one at a time (projected)':<28}{projected:>10.1f}")
    print(f"speed-up: {projected / batched_s:.1f}x (target >= 10x)")
    print(f"batch-invariance: {same}/{len(sample)} sampled completions identical alone and in the batch")


if __name__ == "__main__":
    main()
