"""A child process whose output goes to a log file as it comes, and to the caller line by line.

The log is flushed on every line: it is read while the child runs (and uploaded if a pod dies).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


class Teed:
    """Iterate to run `argv` (stdout and stderr together); `returncode` is set once it ends."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_file: Path) -> None:
        self.argv, self.cwd, self.env, self.log_file = list(argv), cwd, dict(env), log_file
        self.returncode: int | None = None

    def __iter__(self) -> Iterator[str]:
        with self.log_file.open("w") as sink:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                sink.write(line)
                sink.flush()
                yield line
            self.returncode = proc.wait()
