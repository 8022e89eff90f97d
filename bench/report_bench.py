"""Time `write_report` over 50 results files × 165 completions (11 prompts × 5 temperatures × 3 seeds),
plus a baseline, a training curve per config, 5,000 ratings (people and judge), and each config's
phases and cost over 12 months (issue 18's meta.phases / meta.cost: the report's cost section).

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
RATINGS = 5000
BASE_MODEL = "meta-llama/Meta-Llama-3-8B"
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


def results(rng: random.Random, kind: int) -> list[dict]:
    return [
        {"prompt": p, "settingsResults": [
            {"temperature": t, "completions": [completion(rng, kind) for _ in range(SEEDS)]}
            for t in TEMPERATURES]}
        for p in PROMPTS
    ]  # fmt: skip


def write_ratings(root: Path, names: list[str]) -> None:
    """RATINGS votes: three people and a judge; a config's strength grows with its number."""
    rng = random.Random(0)
    rows: dict[str, list[str]] = {}
    for i in range(RATINGS):
        a, b = sorted(rng.sample(names, 2))
        p_a = 1 / (1 + 10 ** ((names.index(b) - names.index(a)) / 40))
        winner = "tie" if rng.random() < 0.1 else ("a" if rng.random() < p_a else "b")
        rater = ("ana", "bo", "cy", "judge:gpt-x")[i % 4]
        row = {"a": a, "b": b, "prompt": rng.choice(PROMPTS), "temperature": rng.choice(TEMPERATURES),
               "seed": rng.randint(1, SEEDS), "winner": winner, "rater": rater,
               "time": "2026-11-28T06:00:00Z"}  # fmt: skip
        file = "judge--gpt-x.jsonl" if rater.startswith("judge:") else f"{rater}.jsonl"
        rows.setdefault(file, []).append(json.dumps(row))
    (root / "train/results/ratings").mkdir()
    for file, lines in rows.items():
        (root / "train/results/ratings" / file).write_text("\n".join(lines) + "\n")


def cost_meta(rng: random.Random, n: int) -> dict:
    """created_at, phases and cost as a pod writes them; every fifth run without a prediction."""
    phases = {"boot": rng.uniform(60, 900), "setup": rng.uniform(60, 300), "train": rng.uniform(300, 7200),
              "eval": rng.uniform(20, 120), "publish": 30.0, "teardown": 20.0}  # fmt: skip
    seconds = sum(phases.values())
    predicted = None if n % 5 == 0 else seconds * rng.uniform(0.6, 1.5)
    cost = {"gpu_type": "NVIDIA H200", "gpu_count": 1, "cost_per_hour": 3.59, "billed_seconds": seconds,
            "billed_dollars": seconds / 3600 * 3.59, "priced": "billed", "predicted_seconds": predicted,
            "predicted_dollars": predicted and predicted / 3600 * 3.59,
            "predicted_from": "assumed" if n < 10 else f"{n - 1} runs"}  # fmt: skip
    return {"created_at": f"2026-{1 + n % 12:02d}-15T12:00:00Z", "phases": phases, "cost": cost}


def write_repo(root: Path) -> None:
    for folder in ("train/config", "train/data", "train/results"):
        (root / folder).mkdir(parents=True)
    rows = [{"instruction": f"setup {i}", "input": "", "output": f"punchline {i} " * 5} for i in range(500)]
    (root / "train/data/haha-v1.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    for n in range(1, CONFIGS + 1):
        rng = random.Random(n)
        kind = n % 10 if n % 10 in (1, 2) else 0
        config = {"name": f"haha-llama-3-8b-lora-{n:03d}", "default_system_message": "Be funny.",
                  "base_model": BASE_MODEL, "learning_rate": 1e-5 * n, "lora_r": 8 * (1 + n % 4),
                  "num_epochs": 1 + n % 3}  # fmt: skip
        loss = [{"step": s, "loss": 2.5 / (1 + s / 20) + rng.random() * 0.05} for s in range(1, 201)]
        for point in loss[24::25]:
            point["eval_loss"] = point["loss"] + 0.1
        meta = {"base_model": BASE_MODEL, "train_loss": loss, **cost_meta(rng, n)}
        (root / "train/results" / f"{config['name']}.json").write_text(
            json.dumps({"config": config, "results": results(rng, kind), "meta": meta})
        )
    baseline = {"name": f"baseline:{BASE_MODEL}", "default_system_message": "Be funny."}
    (root / "train/results/baseline").mkdir()
    (root / "train/results/baseline" / f"{BASE_MODEL.replace('/', '--')}.json").write_text(
        json.dumps(
            {
                "config": baseline,
                "results": results(random.Random(0), 0),
                "meta": {"baseline": True, "base_model": BASE_MODEL},
            }
        )
    )
    write_ratings(root, [f"haha-llama-3-8b-lora-{n:03d}" for n in range(1, CONFIGS + 1)] + [baseline["name"]])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_repo(root)
        start, cpu = time.perf_counter(), time.process_time()
        written = write_report(root)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in written)
    total = CONFIGS * len(PROMPTS) * len(TEMPERATURES) * SEEDS
    verdict = "OK" if elapsed < TARGET_S else "OVER TARGET"
    print(f"write_report: {CONFIGS} files × {total // CONFIGS} completions + baseline, loss curves and "
          f"{RATINGS:,} ratings in {elapsed:.2f} s (CPU {cpu:.2f} s) "
          f"(target < {TARGET_S:.0f} s) {verdict}; {sizes}")  # fmt: skip
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
