"""A verb that fails leaves the committed files as they were (issue 17): report, collect."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import make_repo
from haha.collect import collect
from haha.repo import Repo
from haha.report import html
from haha.report.commands import report_command
from haha.store.local import LocalStore
from pod_results import write_fake_results
from report_data import healthy, results_doc
from report_data import make_repo as make_results_repo

SMOL, LLAMA = "haha-smollm2-135m-lora-001", "haha-llama-3-8b-lora-001"


def committed(root: Path) -> dict[str, bytes]:
    results = root / "train/results"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


def test_a_report_that_fails_half_way_rewrites_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTML page fails after the markdown and plots were rendered: README.md and plots stay old."""
    root = make_results_repo(tmp_path, [results_doc(f"haha-x-{i:03d}", healthy, seed=i) for i in (1, 2)])
    for name in ("README.md", "index.html", "plots/metrics.png"):
        (root / "train/results" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "train/results" / name).write_text(f"old {name}\n")
    before = committed(root)

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the page failed")

    monkeypatch.setattr(html, "render", broken)
    with pytest.raises(RuntimeError):
        report_command(root)
    assert committed(root) == before


def publish(root: Path, basename: str) -> Path:
    """The run's results as its pod publishes them: <store>/<basename>/results.json."""
    made = write_fake_results(root, basename)
    target = root / ".haha/store" / basename / "results.json"
    target.parent.mkdir(parents=True)
    shutil.move(made, target)
    return target


def test_collect_with_a_bad_second_run_collects_the_first_whole_and_says_so(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    publish(root, LLAMA)
    (publish(root, SMOL)).write_text('{"config": {"name": "' + SMOL)  # truncated upload
    haha = Path(sys.executable).parent / "haha"
    done = subprocess.run(
        [str(haha), "collect", "--repo", str(root)], capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HAHA_STORE": "local", "COLUMNS": "10000"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["changed"] == [LLAMA] and [e["config"] for e in summary["errors"]] == [SMOL]
    assert f".haha/store/{SMOL}/results.json:1" in summary["errors"][0]["error"]
    assert "1 run(s) not collected" in done.stderr
    collected = json.loads((root / f"train/results/{LLAMA}.json").read_text())
    assert collected == json.loads((root / f".haha/store/{LLAMA}/results.json").read_text())
    assert not (root / f"train/results/{SMOL}.json").exists()
    assert LLAMA in (root / "train/results/README.md").read_text()  # the report covers what was collected


def test_collect_puts_every_file_back_when_the_report_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path)
    publish(root, LLAMA)
    publish(root, SMOL)
    old = root / f"train/results/{SMOL}.json"
    old.write_text('{"an": "older copy"}\n')
    before = committed(root)

    def broken(repo_root: Path) -> list[Path]:
        raise RuntimeError("the report failed")

    monkeypatch.setattr("haha.report.write_report", broken)
    store = LocalStore(root / ".haha/store")
    with pytest.raises(RuntimeError):
        collect(Repo(root), store, None, print)
    assert committed(root) == before
