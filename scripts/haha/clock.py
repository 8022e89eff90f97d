"""UTC time as every stage writes it: status files, results metadata, pod deadlines."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime | None = None) -> str:
    """`2026-11-27T23:58:47Z`: the one timestamp format in files and logs."""
    return (when or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
