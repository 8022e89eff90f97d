"""A stand-in for `haha run` in pod tests (HAHA_RUN_ARGV): real results files in seconds, or a real failure.

argv[1] picks the behaviour, as a test would pick a config that fails in that way:
  ok            write train/results/<basename>.json built from the repo's real config and eval.json
  train-crash   die the way a training exception does
  eval-oom      finish "training", then die with CUDA's out-of-memory error during eval
  sleep         hang (for deadline tests)
  fail-for=NAME crash for basename NAME, else ok
  sleep-for=NAME hang for basename NAME, else ok (a shared pod's watchdog stops only that one)
With FAKE_RUN_GATE set to a path, it first waits (up to 60 s) for that file, so a test can hold pods
in flight for as long as it needs them there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pod_results import write_fake_results


def wait_for_gate(gate: str | None) -> None:
    deadline = time.monotonic() + 60
    while gate and not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    basename = os.environ["HAHA_BASENAME"]
    mode = sys.argv[1]
    wait_for_gate(os.environ.get("FAKE_RUN_GATE"))
    print(f"fake run: {basename} ({mode}, {os.environ.get('HAHA_MODE')})", flush=True)
    if mode.startswith("fail-for="):
        mode = "train-crash" if mode.split("=", 1)[1] == basename else "ok"
    if mode.startswith("sleep-for="):
        mode = "sleep" if mode.split("=", 1)[1] == basename else "ok"
    if mode == "ok":
        print("train: step 1/1 loss 1.23", flush=True)
        write_fake_results(Path.cwd(), basename)
        print("results: written", flush=True)
    elif mode == "train-crash":
        print("train: step 1/4 loss 2.5", flush=True)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    elif mode == "eval-oom":
        print("train: done, adapter saved", flush=True)
        print("eval: 165 completions with the vllm engine", flush=True)
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
        sys.exit(1)
    elif mode == "sleep":
        print("train: step 1/100000", flush=True)
        time.sleep(300)


if __name__ == "__main__":
    main()
