"""The repo's results files (train/results/*.json, baseline/*.json), each read at most once per process.

A PR can put anything under train/results/, and `haha check`, `haha plan` and `haha launch` each need
those files for more than one thing: the gate checks them and predicts costs from their history; plan
counts them as done and, under a monthly limit, sums their spend. One bounded reader serves them all:
at most MAX_RECORD_BYTES, strict JSON (no NaN or Infinity), nesting no deeper than Python's stack,
never a link that leaves the checkout. What cannot be read is kept with the reason, so each caller
decides: the gate fails the PR naming the file and line, plan counts the run as done and says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haha.repo import Repo, read_bounded
from haha.schemas import refuse_constant

MAX_RECORD_BYTES = 64 * 1024**2  # a results file is ~30 KB per 100 completions


def parse_record(text: str) -> Any:
    """Results JSON, bounded: at most MAX_RECORD_BYTES characters, strict JSON (no NaN). Raises
    ValueError (json.JSONDecodeError included) or RecursionError (nesting deeper than Python's stack)."""
    if len(text) > MAX_RECORD_BYTES:
        raise ValueError(f"over the limit of {MAX_RECORD_BYTES:,} characters")
    return json.loads(text, parse_constant=refuse_constant)


def read_record(path: Path) -> tuple[Any, str]:
    """A results file and its text, read and parsed bounded (`parse_record`); also raises OSError."""
    text = read_bounded(path, MAX_RECORD_BYTES)
    return parse_record(text), text


@dataclass(frozen=True)
class ResultsFile:
    """One results file as read: its data and text, or why it could not be read (and the line)."""

    path: Path
    data: Any = None
    text: str = ""
    error: str | None = None
    line: int | None = None

    @property
    def document(self) -> Mapping[str, Any] | None:
        """The file's JSON object; None when unreadable or not an object."""
        return self.data if self.error is None and isinstance(self.data, dict) else None

    @property
    def problem(self) -> str | None:
        """Why this file gives no JSON object (None when it does)."""
        if self.document is not None:
            return None
        return self.error or f"a JSON {type(self.data).__name__}, not an object"


def read_file(repo: Repo, path: Path) -> ResultsFile:
    """`path` read once through `read_record`; every failure becomes `error` (never an exception)."""
    if not repo.inside(path):
        return ResultsFile(
            path, error="not a file inside the repository (a link that leaves it is never read)"
        )
    try:
        data, text = read_record(path)
    except json.JSONDecodeError as exc:
        return ResultsFile(path, error=f"not valid JSON (column {exc.colno}): {exc.msg}", line=exc.lineno)
    except RecursionError:
        return ResultsFile(path, error="nested deeper than a JSON parser's stack allows")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and NaN are ValueErrors
        return ResultsFile(path, error=str(exc)[:160])
    return ResultsFile(path, data, text)


class ResultsIndex:
    """The results files one process reads, each on first use and then kept; `haha plan` and the
    gate hand one index down, so no stage reads a file its neighbour has read."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._files: dict[Path, ResultsFile] = {}

    def file(self, path: Path) -> ResultsFile:
        """One results file (or a baseline's), read at most once."""
        if path not in self._files:
            self._files[path] = read_file(self.repo, path)
        return self._files[path]

    def collected(self) -> dict[str, ResultsFile]:
        """train/results/<name>.json by name: every run collect brought back, readable or not."""
        folder = self.repo.results_dir
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return {p.stem: self.file(p) for p in paths if p.is_file() or p.is_symlink()}

    def documents(self) -> dict[str, Mapping[str, Any]]:
        """The collected files that read as JSON objects, by name (the gate reports the others)."""
        return {name: doc for name, found in self.collected().items() if (doc := found.document) is not None}

    def unreadable(self) -> dict[str, ResultsFile]:
        """The collected files that do not read as JSON objects, by name."""
        return {name: found for name, found in self.collected().items() if found.document is None}
