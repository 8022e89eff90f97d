"""The run inside a pod as a child process: a crash, an OOM kill or a hang there cannot skip teardown.

It runs in a session of its own, so stopping it stops whatever it started (Axolotl's workers, vLLM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

KILL_GRACE_S = 10.0


class ChildRun:
    """Start once, stream output to stdout and a log file, stop from any thread."""

    def __init__(self, log_out: TextIO) -> None:
        self._log_out = log_out
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._stopped = False

    def run(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        """The child's exit status; 124 when it was stopped before it could start."""
        with self._lock:
            if self._stopped:
                return 124
            self._proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(OSError):  # a console whose reader died (boot.sh's tee) costs no run
                sys.stdout.write(line)
                sys.stdout.flush()
            with contextlib.suppress(ValueError):  # the log may be closed by a finishing watchdog
                self._log_out.write(line)
        return self._proc.wait()

    def stop(self) -> None:
        """SIGTERM the child's process group, then SIGKILL after a grace period."""
        with self._lock:
            self._stopped = True
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue
