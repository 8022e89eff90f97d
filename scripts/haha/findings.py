"""Findings: what `haha check` reports, and the three ways to print them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from haha.errors import HahaError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


@dataclass(frozen=True)
class Finding:
    """One problem or observation, pinned to a file, line and field where possible."""

    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    fix: str | None = None

    @classmethod
    def from_error(cls, error: HahaError, severity: Severity = Severity.ERROR) -> Finding:
        loc = error.location
        return cls(severity, error.message, loc.file, loc.line, loc.field, error.fix)

    @property
    def where(self) -> str:
        text = self.file or ""
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f" [{self.field}]"
        return text

    def text(self) -> str:
        head = (
            f"{self.severity.value}: {self.where}: {self.message}"
            if self.where
            else f"{self.severity.value}: {self.message}"
        )
        return f"{head}\n  fix: {self.fix}" if self.fix else head

    def github(self) -> str:
        """A workflow command: GitHub turns it into an annotation on the PR diff."""
        props = []
        if self.file:
            props.append(f"file={_escape_property(self.file)}")
        if self.line is not None:
            props.append(f"line={self.line}")
        if self.field:
            props.append(f"title={_escape_property(self.field)}")
        body = self.message + (f" (fix: {self.fix})" if self.fix else "")
        return f"::{self.severity.value} {','.join(props)}::{_escape_data(body)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
