"""bench/check_bench.py stays runnable: it times a baseline ref and the working tree in one run."""

from __future__ import annotations

import subprocess
import sys

from check_helpers import ROOT


def test_check_bench_prints_the_baseline_and_the_working_tree_side_by_side() -> None:
    args = ["--rows", "20", "--configs", "2", "--repeats", "1", "--baseline", "HEAD"]
    done = subprocess.run(
        [sys.executable, "bench/check_bench.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:2] == ["baseline", "HEAD"] and "exit 0" in line for line in lines)
    assert any(line.split()[:2] == ["working", "tree"] and "exit 0" in line for line in lines)
    assert "same report from both: yes" in done.stdout
