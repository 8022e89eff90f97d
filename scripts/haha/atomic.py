"""Writing files so that nothing already in them is lost.

A rewrite goes to a temporary file with a unique name beside the target (two writers never share
one), flushed and fsynced, then renamed over the target: readers see the old content or the new,
never half of it; on any failure the temporary file is removed. An append adds whole lines at the
end and never truncates; a file whose last line lacks its newline gets one first, so the new line
never runs into the old one (`{…}{…}`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Replace `path` with `content` whole (creating its folder), or leave it as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, document: Any, **dump_args: Any) -> Path:
    """`document` as indented JSON with a final newline."""
    return write_atomic(path, json.dumps(document, indent=2, ensure_ascii=False, **dump_args) + "\n")


def append_line(path: Path, line: str) -> Path:
    """Add one line at the end of `path` in a single write, after a newline if the file lacks one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = line.encode("utf-8") + (b"" if line.endswith("\n") else b"\n")
    with path.open("a+b") as out:  # O_APPEND: every write lands at the end, nothing is truncated
        end = out.seek(0, os.SEEK_END)
        if end:
            out.seek(end - 1)
            if out.read(1) != b"\n":
                data = b"\n" + data
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path
