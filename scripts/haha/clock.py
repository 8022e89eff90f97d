"""UTC time as every stage writes it: status files, results metadata, pod deadlines."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime | None = None) -> str:
    """`2026-11-27T23:58:47Z`: the one timestamp format in files and logs."""
    return (when or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: object) -> datetime | None:
    """An ISO 8601 time as files carry it (`Z` or an offset; naive means UTC), in UTC; None when
    `value` is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def month(when: datetime) -> str:
    """The UTC month, `2026-11`: what spend limits and the report's spend add up by."""
    return when.astimezone(UTC).strftime("%Y-%m")
