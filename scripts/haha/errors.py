"""One error hierarchy: every failure a user can cause carries where it is and how to fix it.

The CLI catches `HahaError` once, prints it without a traceback and exits with the class's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where a problem sits: file, 1-based line and the field (dotted path) inside it."""

    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
        text = ":".join(parts)
        return f"{text} [{self.field}]" if self.field else text


class HahaError(Exception):
    """A problem the user can act on."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = Location(str(file) if file is not None else None, line, field)
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location.file else self.message
        if self.location.field and not self.location.file:
            text = f"[{self.location.field}] {text}"
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class InputError(HahaError):
    """A config, dataset, eval spec or settings file is invalid."""

    exit_code = 2


class ModelUnavailable(HahaError):
    """A base model cannot be loaded (not cached offline, not downloadable)."""

    exit_code = 3


class RunFailed(HahaError):
    """Training or evaluation failed; logs say why."""

    exit_code = 4


class ServiceError(HahaError):
    """A cloud service (RunPod, HF Hub, GitHub) refused or failed a request."""

    exit_code = 5


class AlreadyDone(HahaError):
    """The requested output exists and would be overwritten; pass --force to replace it."""

    exit_code = 6
