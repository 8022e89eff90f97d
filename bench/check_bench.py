"""Time `haha check` on a large repo: a 10,000-row dataset used by 20 configs (target: under 10 s).

    python bench/check_bench.py [--rows 10000] [--configs 20]

Prints the in-process time of run_check and the time of a fresh `python` process doing the same
(imports included), which is what a CI job pays.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from haha.check import run_check
from haha.repo import Repo
from haha.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
WORDS = (
    "cat",
    "dog",
    "mayor",
    "robot",
    "pizza",
    "senator",
    "llama",
    "tax",
    "wizard",
    "drone",
    "comet",
    "tuba",
)
STARTERS = {
    "llama": ROOT / "train/config/haha-llama-3-8b-lora-001.yml",
    "smollm2": ROOT / "train/config/haha-smollm2-135m-lora-001.yml",
}


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_repo(root: Path, rows: int, configs: int) -> None:
    """train/ with one dataset of `rows` unique rows and `configs` configs in two series."""
    rng = random.Random(0)
    (root / "train/data").mkdir(parents=True)
    (root / "train/config").mkdir()
    (root / "train/results").mkdir()
    shutil.copytree(ROOT / "train/eval", root / "train/eval")
    shutil.copy(ROOT / "haha.toml", root / "haha.toml")
    with (root / "train/data/haha-v1.jsonl").open("w") as out:
        for i in range(rows):
            row = {"instruction": f"{sentence(rng, 12)} ({i})", "input": "", "output": sentence(rng, 16)}
            out.write(json.dumps(row) + "\n")
    for i in range(configs):
        series = list(STARTERS)[i % len(STARTERS)]
        text = STARTERS[series].read_text().replace("lora_r: 32", f"lora_r: {(8, 16, 32, 64)[i % 4]}")
        # A different system message per config: the worst case, every config tokenises the rows anew.
        text = text.replace("craft jokes.\n", f"craft jokes (take {i}).\n", 1)
        (root / f"train/config/bench-{series}-{i // len(STARTERS) + 1:03d}.yml").write_text(text)


def time_in_process(root: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    report = run_check(Repo(root), load_settings(root, {}))
    return time.perf_counter() - start, report.exit_code, len(report.costs)


def time_subprocess(root: Path) -> float:
    code = (
        "import sys; from haha.check.command import check_command; from haha.cli import context; "
        "sys.exit(check_command(*context(None), None, 'markdown'))"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=root, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--configs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root, args.rows, args.configs)
        elapsed, code, costed = time_in_process(root)
        print(
            f"run_check: {args.rows} rows x {args.configs} configs: {elapsed:.2f} s "
            f"(exit {code}, {costed} costed; target < {TARGET_S:.0f} s)"
        )
        cold = time_subprocess(root)
        print(f"fresh process (imports + check + markdown): {cold:.2f} s (target < {TARGET_S:.0f} s)")
    sys.exit(0 if max(elapsed, cold) < TARGET_S else 1)


if __name__ == "__main__":
    main()
