"""Writes that cannot lose data (issue 17): processes killed with SIGKILL part-way through writing.

A child process writes; the test kills it after a random short delay, many times, and then reads
what is on disk: every rewritten file is whole, old or new, and an append file holds the old bytes
plus whole lines. The same harness run on a plain `write_bytes` writer finds a torn file, so it can
fail. The last test kills the real `haha report` at points spread over its run.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from haha.report import write_report
from report_data import healthy, make_repo, results_doc

WRITER = """
import sys
from pathlib import Path
from haha.atomic import append_line, write_atomic

mode, path = sys.argv[1], Path(sys.argv[2])
contents = [Path(p).read_bytes() for p in sys.argv[3:]]
print("ready", flush=True)
for i in range(10**6):
    if mode == "atomic":
        write_atomic(path, contents[i % 2])
    elif mode == "plain":
        path.write_bytes(contents[i % 2])
    else:
        append_line(path, '{"vote": %d, "pad": "%s"}' % (i, "x" * 200))
"""


def kill_after(argv: list[str], delay: float) -> None:
    """Start the child, wait until it is writing, let it run `delay` seconds, then SIGKILL it."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n", child.stderr.read()
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)


def torn_after_kills(tmp_path: Path, mode: str, kills: int) -> int:
    """How many of `kills` SIGKILLs left the target neither the old nor the new content."""
    old, new = b"o" * 8_000_000 + b"\n", b"n" * 8_000_000 + b"\n"
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    target = tmp_path / "target.bin"
    rng = random.Random(17)
    torn = 0
    for _ in range(kills):
        target.write_bytes(old)
        argv = [sys.executable, "-c", WRITER, mode, str(target), str(tmp_path / "old"), str(tmp_path / "new")]
        kill_after(argv, rng.uniform(0.0, 0.15))
        torn += target.read_bytes() not in (old, new)
        for leftover in tmp_path.glob(".target.bin.*"):  # what a killed writer could not clean up
            assert leftover.name.endswith(".tmp")  # hidden: readers skip dot files
            leftover.unlink()
    return torn


def test_a_rewrite_killed_at_any_point_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    assert torn_after_kills(tmp_path, "atomic", 25) == 0


def test_the_harness_finds_a_torn_plain_write(tmp_path: Path) -> None:
    """The same kills on `Path.write_bytes` (truncate, then write): some leave half a file."""
    assert torn_after_kills(tmp_path, "plain", 25) > 0


def test_an_append_killed_at_any_point_keeps_every_old_byte_and_whole_lines(tmp_path: Path) -> None:
    target = tmp_path / "ana.jsonl"
    committed = '{"vote": "committed"}'  # saved without a final newline
    rng = random.Random(5)
    for _ in range(15):
        target.write_text(committed)
        kill_after([sys.executable, "-c", WRITER, "append", str(target)], rng.uniform(0.0, 0.1))
        text = target.read_text()
        assert text.startswith(committed + "\n")
        lines = text.splitlines()
        assert all(json.loads(line) for line in lines[:-1])  # every line but the last is whole
        if text.endswith("\n"):
            json.loads(lines[-1])


@pytest.fixture
def report_repo(tmp_path: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A repo with a committed (old) report, and the bytes a complete `haha report` writes (new)."""
    root = make_repo(
        tmp_path / "repo", [results_doc(f"haha-x-{i:03d}", healthy, seed=i) for i in range(1, 9)]
    )
    results = root / "train/results"
    new = {p.relative_to(results).as_posix(): p.read_bytes() for p in write_report(root)}
    old = {name: f"old {name}\n".encode() for name in new}
    return root, old, new


# `haha report` on a slow disk: every write to a file goes out in 4 KiB pieces, 2 ms apart, so a
# kill lands inside a write (on a real disk the window is too short to hit on purpose).
SLOW_REPORT = """
import builtins, io, os, sys, time

real_open, real_fdopen = io.open, os.fdopen


class Slow:
    def __init__(self, file):
        self._file = file

    def write(self, data):
        for i in range(0, len(data), 4096):
            self._file.write(data[i : i + 4096])
            self._file.flush()
            time.sleep(0.002)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)


def writing(mode):
    return any(c in mode for c in "wax+")


def slow_open(file, mode="r", *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    return Slow(opened) if writing(mode) else opened


def slow_fdopen(fd, mode="r", *args, **kwargs):
    opened = real_fdopen(fd, mode, *args, **kwargs)
    return Slow(opened) if writing(mode) else opened


builtins.open = io.open = slow_open
os.fdopen = slow_fdopen
sys.argv = ["haha", "report", "--repo", sys.argv[1]]
from haha.cli import main

main()
"""


def test_haha_report_killed_at_any_point_leaves_each_file_old_or_new(
    report_repo: tuple[Path, dict[str, bytes], dict[str, bytes]],
) -> None:
    root, old, new = report_repo
    results = root / "train/results"
    argv = [sys.executable, "-c", SLOW_REPORT, str(root)]
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    whole = time.monotonic() - started
    assert {name: (results / name).read_bytes() for name in new} == new  # the stand-in writes the same bytes
    for i in range(8):
        for name, content in old.items():
            (results / name).write_bytes(content)
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(whole * (0.4 + 0.6 * i / 7))  # the writes come last: kill over the second half
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        for name in old:
            assert (results / name).read_bytes() in (old[name], new[name]), f"{name} torn by kill {i}"
