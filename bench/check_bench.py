"""Time `haha check` on a large repo (a 10,000-row dataset used by 20 configs) against a baseline.

    python bench/check_bench.py [--rows 10000] [--configs 20] [--baseline REF] [--repeats 5]

The baseline is `haha` as of REF (default: 8161ccc, the previous release), taken with `git archive`.
Each round runs `haha check --format markdown` in a fresh process for the baseline and for the
working tree, alternating, so both see the same machine load; it prints the median time of the
check itself (run_check and rendering) and of the whole process (imports included, what a CI job
pays), their ratio, the load average, and whether both printed the same report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0
DEFAULT_BASELINE = "8161ccc"
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
    "llama": "train/config/haha-llama-3-8b-lora-001.yml",
    "smollm2": "train/config/haha-smollm2-135m-lora-001.yml",
}
# What each side takes from its own version: the package (its schema_files link to schemas/),
# settings, eval spec and starter configs.
EXPORTED = ("scripts", "schemas", "haha.toml", "train/eval", *STARTERS.values())
# Run in a fresh process with PYTHONPATH naming the `haha` to time; the API both releases share.
CHILD = """
import sys, time
start = time.perf_counter()
from haha.check.command import check_command
from haha.cli import context
imported = time.perf_counter()
code = check_command(*context(None), None, "markdown")
sys.stderr.write(f"\\nBENCH {time.perf_counter() - imported} {code}\\n")
"""


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_repo(root: Path, rows: int, configs: int, source: Path = ROOT) -> None:
    """train/ with one dataset of `rows` unique rows and `configs` configs in two series; haha.toml,
    the eval spec and the starter configs come from the checkout `source`."""
    rng = random.Random(0)
    (root / "train/data").mkdir(parents=True)
    (root / "train/config").mkdir()
    (root / "train/results").mkdir()
    shutil.copytree(source / "train/eval", root / "train/eval")
    shutil.copy(source / "haha.toml", root / "haha.toml")
    with (root / "train/data/haha-v1.jsonl").open("w") as out:
        for i in range(rows):
            row = {"instruction": f"{sentence(rng, 12)} ({i})", "input": "", "output": sentence(rng, 16)}
            out.write(json.dumps(row) + "\n")
    for i in range(configs):
        series = list(STARTERS)[i % len(STARTERS)]
        text = (source / STARTERS[series]).read_text()
        text = text.replace("lora_r: 32", f"lora_r: {(8, 16, 32, 64)[i % 4]}")
        # A different system message per config: the worst case, every config tokenises the rows anew.
        text = text.replace("craft jokes.\n", f"craft jokes (take {i}).\n", 1)
        (root / f"train/config/bench-{series}-{i // len(STARTERS) + 1:03d}.yml").write_text(text)


def export(ref: str, into: Path) -> Path:
    """The files of EXPORTED as of `ref`, unpacked into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, *EXPORTED],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def time_once(scripts: Path, repo: Path) -> tuple[float, float, int, str]:
    """(check seconds, whole-process seconds, exit code, stdout) of one fresh `haha check`."""
    env = {**os.environ, "PYTHONPATH": str(scripts)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=repo, env=env, check=False, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    line = [x for x in done.stderr.splitlines() if x.startswith("BENCH ")]
    if not line:
        raise SystemExit(f"haha check from {scripts} failed:\n{done.stderr[-3000:]}")
    _, check_s, code = line[-1].split()
    return float(check_s), wall, int(code), done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, each running both once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = export(args.baseline, Path(tmp) / "old")
        sources = {f"baseline {args.baseline}": old, "working tree": ROOT}
        sides = {}
        for number, (name, source) in enumerate(sources.items()):
            make_repo(repo := Path(tmp) / f"repo{number}", args.rows, args.configs, source)
            sides[name] = (source / "scripts", repo)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        outputs: dict[str, str] = {}
        codes: dict[str, int] = {}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for name, (scripts, repo) in sides.items():
                check_s, wall, codes[name], outputs[name] = time_once(scripts, repo)
                times[name].append((check_s, wall))
        load_after = os.getloadavg()
    print(f"haha check, {args.rows} rows x {args.configs} configs, median of {args.repeats} fresh processes")
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {os.cpu_count()} CPUs")
    medians = {}
    for name, runs in times.items():
        check_s = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        medians[name] = (check_s, wall)
        print(f"  {name:<24} check {check_s:5.2f} s   whole process {wall:5.2f} s   exit {codes[name]}")
    (old_check, old_wall), (new_check, new_wall) = medians.values()
    print(
        f"  {'speed-up':<24} check {old_check / new_check:5.2f}x   whole process {old_wall / new_wall:5.2f}x"
    )
    same = len(set(outputs.values())) == 1
    print(f"  same report from both: {'yes' if same else 'no'}; target: check < {TARGET_S:.0f} s")
    sys.exit(0 if new_check < TARGET_S else 1)


if __name__ == "__main__":
    main()
