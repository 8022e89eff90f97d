"""Writing a file so that readers see the old content or the new, never half of it.

A temporary file with a unique name beside the target (two writers never share one), flushed and
fsynced, then renamed over the target; on any failure the temporary file is removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, content: str | bytes) -> Path:
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
