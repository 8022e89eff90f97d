"""Time `write_report` over 50 results files × 165 completions (11 prompts × 5 temperatures × 3 seeds).

Run: .venv/bin/python bench/report_bench.py   (target: under 5 s)
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from haha.report import write_report

CONFIGS = 50
PROMPTS = [
    f"Setup number {i}: a town has installed a vending machine that sells item {i}." for i in range(11)
]
TEMPERATURES = [0.1, 0.3, 0.5, 0.7, 0.9]
SEEDS = 3
TARGET_S = 5.0
WORDS = [
    "otters",
    "pebbles",
    "mayor",
    "budget",
    "refund",
    "pigeons",
    "committee",
    "sequel",
    "crayon",
    "ferns",
    "union",
    "snacks",
    "nap",
]


def completion(rng: random.Random, kind: int) -> str:
    """Mostly healthy punchlines, with every tenth config broken in one of the ways we flag."""
    if kind == 1 and rng.random() < 0.7:
        return ""
    if kind == 2:
        return "and then the otters juggled " * rng.randint(30, 200)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."


def write_repo(root: Path) -> None:
    for folder in ("train/config", "train/data", "train/results"):
        (root / folder).mkdir(parents=True)
    rows = [{"instruction": f"setup {i}", "input": "", "output": f"punchline {i} " * 5} for i in range(500)]
    (root / "train/data/haha-v1.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    for n in range(1, CONFIGS + 1):
        rng = random.Random(n)
        kind = n % 10 if n % 10 in (1, 2) else 0
        config = {"name": f"haha-llama-3-8b-lora-{n:03d}", "default_system_message": "Be funny.",
                  "learning_rate": 1e-5 * n, "lora_r": 8 * (1 + n % 4), "num_epochs": 1 + n % 3}  # fmt: skip
        results = [
            {"prompt": p, "settingsResults": [
                {"temperature": t, "completions": [completion(rng, kind) for _ in range(SEEDS)]}
                for t in TEMPERATURES]}
            for p in PROMPTS
        ]  # fmt: skip
        (root / "train/results" / f"{config['name']}.json").write_text(
            json.dumps({"config": config, "results": results})
        )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_repo(root)
        start = time.perf_counter()
        written = write_report(root)
        elapsed = time.perf_counter() - start
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in written)
    total = CONFIGS * len(PROMPTS) * len(TEMPERATURES) * SEEDS
    verdict = "OK" if elapsed < TARGET_S else "OVER TARGET"
    print(f"write_report: {CONFIGS} files × {total // CONFIGS} completions in {elapsed:.2f} s "
          f"(target < {TARGET_S:.0f} s) {verdict}; {sizes}")  # fmt: skip
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
