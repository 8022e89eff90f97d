"""One bounded reader for train/results/ (haha.resultsindex), as users run it: `haha check`, `haha plan`
(under a monthly spend limit) and `haha launch` read each results file once per process, and a results
file of 100 MiB or nested 100,000 deep neither hangs nor crashes them: each names the file.

Opens are counted with Python's own audit hook ("open" event, raised by every io.open) in a tiny
wrapper around the `haha` entry point, so nothing in the package is mocked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from check_helpers import make_git_repo
from pod_results import write_fake_results

LLAMA = "haha-llama-3-8b-lora-001"
SMOL = "haha-smollm2-135m-lora-001"
LLAMA_2 = "haha-llama-3-8b-lora-002"

# `haha` with an audit hook that appends every path opened under train/results/ to a file.
COUNTING = """
import sys
from pathlib import Path

watched, log = sys.argv[1], open(sys.argv[2], "a")

def hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(watched):
        log.write(args[0] + "\\n")
        log.flush()

sys.addaudithook(hook)
sys.argv = ["haha", *sys.argv[3:]]
from haha.cli import main
main()
"""


def run_haha(root: Path, *args: str, opens: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The `haha` process (through the counting wrapper when `opens` is given)."""
    env = {**os.environ, "HAHA_STORE": "local", "COLUMNS": "400"}  # no wrapped messages
    env.pop("GITHUB_TOKEN", None)
    if opens is None:
        command = [str(Path(sys.executable).parent / "haha")]
    else:
        command = [sys.executable, "-c", COUNTING, str(root / "train/results"), str(opens)]
    return subprocess.run(
        [*command, *args, "--repo", str(root)], env=env, capture_output=True, text=True, timeout=300
    )


def opened(log: Path) -> Counter[str]:
    return Counter(Path(line).name for line in log.read_text().splitlines()) if log.exists() else Counter()


def this_month(root: Path, name: str, billed: float) -> Path:
    """Collected results for `name`, made now and billed, with the phases the gate's history reads."""
    path = write_fake_results(root, name)
    document = json.loads(path.read_text())
    document["meta"]["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["meta"]["cost"] = {
        "gpu_type": "NVIDIA H200",
        "gpu_count": 1,
        "cost_per_hour": 3.59,
        "billed_seconds": 750.0,
        "billed_dollars": billed,
        "priced": "billed",
        "predicted_seconds": None,
        "predicted_dollars": None,
        "predicted_from": "assumed",
    }
    document["meta"]["phases"] = {"boot": 60.0, "setup": 30.0, "train": 600.0, "eval": 60.0}
    path.write_text(json.dumps(document))
    return path


def with_limit(root: Path, dollars: float) -> None:
    toml = root / "haha.toml"
    toml.write_text(re.sub(r"(?m)^monthly_dollars = \S+", f"monthly_dollars = {dollars}", toml.read_text()))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two configs, one collected this month and billed, a monthly limit that holds nothing."""
    root = make_git_repo(tmp_path)
    this_month(root, SMOL, 2.0)
    with_limit(root, 1000)
    return root


def test_plan_reads_each_results_file_once_under_a_monthly_limit(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "opens.txt"
    done = run_haha(repo, "plan", opens=log)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    # The file served all three: done (plan), spent this month (budget), past run (the gate's history).
    assert plan["done"] == [SMOL] and [r["config"] for r in plan["include"]] == [LLAMA]
    assert plan["budget"]["spent_dollars"] == 2.0
    assert opened(log) == {f"{SMOL}.json": 1}


def test_check_reads_each_results_file_once(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "opens.txt"
    done = run_haha(repo, "check", "--format", "github", opens=log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert opened(log) == {f"{SMOL}.json": 1}  # the results check and the cost history share it


def test_launch_prices_every_pod_with_one_reading(repo: Path, tmp_path: Path) -> None:
    shutil.copy(repo / f"train/config/{LLAMA}.yml", repo / f"train/config/{LLAMA_2}.yml")
    log = tmp_path / "opens.txt"
    done = run_haha(repo, "launch", "--dry-run", "--compute", "local", LLAMA, LLAMA_2, opens=log)
    assert done.returncode == 0, done.stderr
    pods = json.loads(done.stdout)
    assert [p["config"] for p in pods] == [LLAMA, LLAMA_2]
    assert all(p["env"].get("HAHA_PREDICTED") for p in pods)  # both priced by the gate
    assert opened(log) == {f"{SMOL}.json": 1}


def huge(path: Path) -> str:
    """A valid results-shaped JSON object of 100 MiB (a padding string)."""
    with path.open("w") as handle:
        handle.write(json.dumps({"config": {"name": path.stem}})[:-1] + ', "pad": "')
        handle.write("x" * (100 * 1024**2))
        handle.write('"}')
    return "over the limit of 67,108,864 bytes"


def deep(path: Path) -> str:
    path.write_text("[" * 100_000 + "]" * 100_000)
    return "nested deeper"


@pytest.mark.parametrize("make", [huge, deep], ids=["100MiB", "nested"])
def test_a_huge_or_deep_results_file_is_named_by_plan_check_and_report(
    repo: Path, make: Callable[[Path], str]
) -> None:
    shutil.copy(repo / f"train/config/{LLAMA}.yml", repo / f"train/config/{LLAMA_2}.yml")
    bad = repo / f"train/results/{LLAMA}.json"
    why = make(bad)

    plan = run_haha(repo, "plan")
    assert plan.returncode == 2, plan.stderr  # a plan, with the file under errors (launch.yml fails the job)
    found = json.loads(plan.stdout)
    assert [r["config"] for r in found["include"]] == [LLAMA_2]
    assert sorted(found["done"]) == [LLAMA, SMOL]  # counted done: never a second pod for it
    (error,) = found["errors"]
    assert error["config"] == LLAMA
    assert f"train/results/{LLAMA}.json" in error["error"] and why in error["error"]
    assert found["budget"]["spent_dollars"] == 2.0  # the readable file still counts

    check = run_haha(repo, "check", "--format", "github")
    assert check.returncode == 1, check.stdout + check.stderr
    assert any(
        f"file=train/results/{LLAMA}.json" in line and why in line for line in check.stdout.splitlines()
    ), check.stdout

    report = run_haha(repo, "report")
    assert report.returncode == 2, report.stderr
    assert f"train/results/{LLAMA}.json" in report.stderr and "Traceback" not in report.stderr
    assert not (repo / "train/results/README.md").exists()  # nothing written from a partial read


def test_check_against_a_base_reads_a_changed_results_file_once(repo: Path, tmp_path: Path) -> None:
    """A PR that edits committed results: the results check and the frozen-results check share it."""
    from check_helpers import git

    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "collected")
    git(repo, "checkout", "-qb", "pr")
    path = repo / f"train/results/{SMOL}.json"
    document = json.loads(path.read_text())
    document["meta"]["stage_seconds"]["train"] = 1.0  # schema-valid, but not the pipeline's
    path.write_text(json.dumps(document))
    git(repo, "commit", "-qam", "an edit")
    log = tmp_path / "opens.txt"
    done = run_haha(repo, "check", "--base", "main", "--format", "github", opens=log)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"file=train/results/{SMOL}.json" in done.stdout and "changed by hand" in done.stdout
    assert opened(log) == {f"{SMOL}.json": 1}


def test_plan_survives_an_eval_spec_nested_too_deep(repo: Path) -> None:
    """plan hashes eval.json as the pods do and reads what it asks for where it can (the gate reports it)."""
    (repo / "train/eval/eval.json").write_text("[" * 100_000 + "]" * 100_000)
    done = run_haha(repo, "plan")
    assert done.returncode == 0, done.stderr
    runs = {r["config"]: r["mode"] for r in json.loads(done.stdout)["include"]}
    assert runs == {LLAMA: "train", SMOL: "eval"}  # eval.json changed: SMOL's results are not current
