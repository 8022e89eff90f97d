"""The main job's numbers on this machine's device: train tokens/s, eval seconds, peak memory.

    python bench/run_bench.py [CONFIG]        (default: haha-smollm2-135m-lora-001)

Runs the real `haha run` (Axolotl training + eval, no publish) in a throwaway work folder and prints
one table. On a CPU machine it checks the main-job targets (<= 10 min wall, <= 8 GiB RAM); on a GPU
it is the one script to run there (the device needs Axolotl installed, see the README).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from haha.repo import Repo
from haha.run import run_experiment
from haha.settings import load_settings
from haha.train import Device

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "haha-smollm2-135m-lora-001"
    repo = Repo(ROOT)
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "HAHA_WORKDIR": work}
        results_file = repo.results_path(name)
        kept = results_file.read_bytes() if results_file.exists() else None
        started = time.perf_counter()
        try:
            summary = run_experiment(
                repo,
                load_settings(ROOT, env),
                name,
                lambda _: None,
                force=True,
                publish=False,
                retrain=True,
            )
            meta = json.loads(summary.results_file.read_text())["meta"]
        finally:
            if kept is not None:  # the bench must not replace (or add) results in the repo
                results_file.write_bytes(kept)
            else:
                results_file.unlink(missing_ok=True)
        wall = time.perf_counter() - started
    peak_gib = (
        max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        / 2**20
    )
    seconds = meta["stage_seconds"]
    tokens = meta.get("tokens_trained") or 0
    completions = len(meta["seeds"]) * len(meta["settings"]) * _prompts(repo)
    train_rate, eval_rate = tokens / seconds["train"], completions / seconds["eval"]
    print(f"config {name} on {Device.detect()} with the {meta['engine']} engine")
    print(f"{'train':<8}{seconds['train']:>8.1f} s  {train_rate:>9.0f} tokens/s ({tokens} tokens)")
    print(f"{'eval':<8}{seconds['eval']:>8.1f} s  {eval_rate:>9.1f} completions/s")
    print(f"{'wall':<8}{wall:>8.1f} s  (target <= 600 s on a 2-core CPU)")
    print(f"{'memory':<8}{peak_gib:>8.1f} GiB peak RSS of one process (target <= 8 GiB)")


def _prompts(repo: Repo) -> int:
    return len(json.loads(repo.eval_path.read_text())["prompts"])


if __name__ == "__main__":
    main()
