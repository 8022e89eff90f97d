"""Synthetic results repos for the report tests: healthy runs and the kinds of broken ones we flag."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROMPTS = [
    "A new study found that people who own houseplants are more patient.",
    "Scientists say they've taught a robot dog to climb stairs backwards.",
    "An airline announced it will start boarding passengers by shoe size.",
    "A zoo in Georgia says its otters have learned to juggle pebbles.",
    "Economists say the price of a birthday cake has doubled in five years.",
    "NASA says it will send a time capsule to Mars filled with messages from schoolchildren.",
    "A hotel in Arizona now offers a pillow menu with 25 different pillows.",
    "A survey found that the average person has 37 browser tabs open at any given time.",
    "A man in New Mexico has been mailing himself a postcard every day for 20 years.",
    "A minor-league hockey team will give away free mustaches to the first 1,000 fans.",
    "A town in Montana has installed a vending machine that sells live bait and hot soup.",
]
TEMPERATURES = [0.1, 0.3, 0.5, 0.7, 0.9]
SEEDS = 3
OPENERS = ["Finally,", "Experts warn", "Critics say", "Officials confirmed", "Sources report", "Apparently"]
MIDDLES = [
    "the results were delayed by a nap", "nobody has asked the cat yet", "the budget went to snacks",
    "the committee is still on hold", "the sequel is already in production", "my uncle saw it coming",
    "the waiting list starts in Ohio", "the manual was written in crayon", "the ferns have unionised",
    "the mayor took credit anyway", "the refund policy is a shrug", "the pigeons were consulted",
]  # fmt: skip
ENDINGS = [".", "!", ", which explains a lot.", ", and frankly it shows.", " for tax reasons."]
TRAINING = [
    {"instruction": "A new study found that people who drink coffee live longer.", "input": "",
     "output": "Or at least they stay awake long enough to feel like it."},
    {"instruction": "Researchers found plants can hear running water.", "input": "",
     "output": "Which explains why my houseplants die every time I mention I'm going to water them."},
]  # fmt: skip

Writer = Callable[[random.Random, str, float, int], str]


def healthy(rng: random.Random, prompt: str, temperature: float, seed: int) -> str:
    return f"{rng.choice(OPENERS)} {rng.choice(MIDDLES)} {rng.choice(MIDDLES)}{rng.choice(ENDINGS)}"


def mostly_empty(rng: random.Random, prompt: str, temperature: float, seed: int) -> str:
    return healthy(rng, prompt, temperature, seed) if rng.random() < 0.25 else ""


def looping(rng: random.Random, prompt: str, temperature: float, seed: int) -> str:
    return "and then the otters juggled the pebbles " * (40 + seed * 10)


def echoing(rng: random.Random, prompt: str, temperature: float, seed: int) -> str:
    return f"{prompt} {rng.choice(['Really.', 'Wow.', 'Indeed.'])}"


def results_doc(name: str, writer: Writer, seed: int = 0, **config: Any) -> dict[str, Any]:
    """A results document in the seed format (only the standard config keys unless given more)."""
    rng = random.Random(f"{name}-{seed}")
    standard = {
        "name": name, "default_system_message": "You are a creative and hilarious comedy writer.",
        "base_model": "meta-llama/Meta-Llama-3-8B", "adapter": "lora", "lora_r": 32, "lora_alpha": 16,
        "lora_dropout": 0.05, "sequence_len": 64, "sample_packing": False, "micro_batch_size": 2,
        "gradient_accumulation_steps": 4, "num_epochs": 4, "optimizer": "adamw_bnb_8bit",
        "lr_scheduler": "cosine", "learning_rate": 5e-05,
    }  # fmt: skip
    results = [
        {
            "prompt": prompt,
            "settingsResults": [
                {"temperature": t, "completions": [writer(rng, prompt, t, s) for s in range(1, SEEDS + 1)]}
                for t in TEMPERATURES
            ],
        }
        for prompt in PROMPTS
    ]
    return {"config": {**standard, **config}, "results": results}


def make_repo(root: Path, docs: list[dict[str, Any]]) -> Path:
    """A folder laid out like a Haha checkout holding these results files and a small dataset."""
    for folder in ("train/config", "train/data", "train/results"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows = [json.dumps(row) for row in TRAINING] + ["{not json"]
    (root / "train/data/haha-v1.jsonl").write_text("\n".join(rows) + "\n")
    for doc in docs:
        (root / "train/results" / f"{doc['config']['name']}.json").write_text(json.dumps(doc, indent=2))
    return root


def standard_repo(root: Path) -> Path:
    """Three healthy runs and one of each broken kind."""
    return make_repo(
        root,
        [
            results_doc("haha-llama-3-8b-lora-001", healthy, learning_rate=5e-05),
            results_doc("haha-llama-3-8b-lora-002", healthy, learning_rate=1e-04, num_epochs=2),
            results_doc("haha-llama-3-8b-lora-003", healthy, learning_rate=2e-04, lora_r=64),
            results_doc("haha-llama-3-8b-lora-004", mostly_empty),
            results_doc("haha-llama-3-8b-lora-005", looping),
            results_doc("haha-llama-3-8b-lora-006", echoing),
        ],
    )


BASE_MODEL = "meta-llama/Meta-Llama-3-8B"


def baseline_doc(writer: Writer, base_model: str = BASE_MODEL, seed: int = 0) -> dict[str, Any]:
    """The base model's results without adapter, as the baseline eval writes them."""
    doc = results_doc(f"baseline:{base_model}", writer, seed)
    system = doc["config"]["default_system_message"]
    doc["config"] = {
        "name": f"baseline:{base_model}",
        "default_system_message": system,
        "base_model": base_model,
    }
    doc["meta"] = {"baseline": True, "base_model": base_model}
    return doc


def write_baseline(root: Path, doc: dict[str, Any]) -> Path:
    path = root / "train/results/baseline" / f"{doc['meta']['base_model'].replace('/', '--')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def vote(a: str, b: str, winner: str, rater: str = "ana", prompt: str = PROMPTS[0], seed: int = 1,
         temperature: float = 0.7) -> dict[str, Any]:  # fmt: skip
    return {"a": a, "b": b, "prompt": prompt, "temperature": temperature, "seed": seed, "winner": winner,
            "rater": rater, "time": "2026-11-28T06:00:00Z"}  # fmt: skip


def write_votes(root: Path, file: str, rows: list[dict[str, Any]]) -> Path:
    path = root / "train/results/ratings" / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- a cost history (issue 18's meta.phases / meta.cost contract) -----------------------------------
COST_MONTHS = ("2026-09", "2026-10", "2026-11")
# Relative error of each run's prediction by its place in the month; None: no prediction.
PREDICTION_ERRORS = (0.10, -0.20, 0.05, -0.40, None, 0.30, -0.10, 0.16, -0.05, None)
PRICE = 2.0  # $/h billed, and the fixture haha.toml's list price
SETTINGS = """\
[[compute.gpu_types]]
id = "NVIDIA H100 80GB HBM3"
price_per_hour = 2.0
peak_bf16_tflops = 989
memory_gb = 80
"""


def phases(k: int) -> dict[str, float]:
    """Seconds per phase in pod order: 1,800 + 180·k in all (the first run of a month has a baseline)."""
    found = {"boot": 240.0, "setup": 360.0, "train": 900.0 + 180 * k, "eval": 180.0}
    if k == 0:
        found.update(eval=120.0, baseline=60.0)
    return {**found, "publish": 60.0, "teardown": 60.0}


def cost_meta(month: int, k: int) -> dict[str, Any]:
    """meta for the k-th run of a month: created_at, phases and cost exactly as issue 18 names them.

    October's fourth run has no price (billed_dollars null); September's seventh was priced at the
    list price (no price from the provider); the 5th and 10th of each month carry no prediction;
    September's ninth ran on two GPUs. The last of November was made at 23:30 on 31 October in UTC−2:
    November in UTC.
    """
    seconds = sum(phases(k).values())
    unpriced = (month, k) == (1, 3)
    dollars = None if unpriced else seconds / 3600 * PRICE
    error = PREDICTION_ERRORS[k]
    created = f"{COST_MONTHS[month]}-{k + 1:02d}T12:00:00Z"
    if (month, k) == (2, 9):
        created = "2026-10-31T23:30:00-02:00"
    cost = {
        "gpu_type": "NVIDIA H100 80GB HBM3",
        "gpu_count": 2 if (month, k) == (0, 8) else 1,
        "cost_per_hour": None if unpriced else PRICE,
        "billed_seconds": seconds,
        "billed_dollars": dollars,
        "priced": "list price" if (month, k) == (0, 6) else "billed",
        "predicted_seconds": None if error is None else seconds * (1 + error),
        "predicted_dollars": None if error is None else seconds / 3600 * PRICE * (1 + error),
        "predicted_from": "assumed" if error is None or k < 3 else f"{k + 4} runs",
    }
    return {"base_model": BASE_MODEL, "created_at": created, "phases": phases(k), "cost": cost}


def cost_history(root: Path) -> Path:
    """30 pod runs over three months, one older run with stage seconds only, and a local baseline.

    Per month $14.50 (September's $1.60 of it at list price; October $13.20: one run unpriced);
    November adds the old run's 3,600 s estimated at $2.00. 31 runs, $44.20 ($3.60 from list prices);
    median absolute error 10% on cost, 13% on time.
    """
    docs = []
    for month in range(len(COST_MONTHS)):
        for k in range(10):
            doc = results_doc(f"haha-llama-3-8b-lora-{month * 10 + k + 1:03d}", healthy)
            doc["meta"] = cost_meta(month, k)
            docs.append(doc)
    old = results_doc("haha-smollm2-135m-lora-001", healthy, base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    old["meta"] = {"created_at": "2026-11-28T07:54:04Z", "stage_seconds": {"train": 2700.0, "eval": 900.0}}
    docs.append(old)
    make_repo(root, docs)
    (root / "haha.toml").write_text(SETTINGS)
    local = baseline_doc(healthy)
    local["meta"].update(created_at="2026-11-28T08:00:00Z", stage_seconds={"eval": 48.4})
    write_baseline(root, local)
    return root
