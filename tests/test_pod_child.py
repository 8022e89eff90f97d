"""The run's child process in a pod (haha.pod.child): what reaches the log when the console is gone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from haha.pod.child import ChildRun


class DeadConsole:
    """stdout whose reader has exited, as boot.sh's `tee` is when its container is being stopped."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_dead_console_does_not_end_the_run_and_the_log_gets_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", DeadConsole())
    script = "import time\nfor i in range(3):\n    print(f'step {i}', flush=True)\n    time.sleep(0.05)\n"
    with (tmp_path / "pod.log").open("w") as log:
        rc = ChildRun(log).run([sys.executable, "-c", script], {"PATH": "/usr/bin:/bin"}, tmp_path)
    assert rc == 0
    assert (tmp_path / "pod.log").read_text().splitlines() == ["step 0", "step 1", "step 2"]
